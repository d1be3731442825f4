"""Saving and reloading, tower resolution, and clear errors for unusable checkpoints."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

import aligngpt
from aligngpt.errors import ConfigError
from aligngpt.modeling import AlignGPTForCausalLM


def _batch(processor, folder):
    from PIL import Image

    prompt = processor.build_prompt("What color is the square?", has_image=True)
    return processor([prompt], [Image.open(folder / "images" / "img0.png")])


def test_save_pretrained_reloads_with_identical_logits(official_tiny, tmp_path):
    model, processor = aligngpt.load_pretrained(official_tiny / "checkpoint")
    aligngpt.save_pretrained(model, processor, tmp_path / "saved")
    assert (tmp_path / "saved" / "model.safetensors").is_file()
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert config["model_type"] == "aligngpt" and config["vision_config"]["patch_size"] == 2
    again, processor2 = aligngpt.load_pretrained(tmp_path / "saved")
    batch = _batch(processor, official_tiny)
    with torch.no_grad():
        a, b = model(**batch).logits, again(**batch).logits
    assert torch.equal(a, b)
    assert processor2.tokenize("hello <image>\nworld") == processor.tokenize("hello <image>\nworld")
    # transformers' own from_pretrained works on our layout too (Auto-class conventions)
    native = AlignGPTForCausalLM.from_pretrained(tmp_path / "saved").eval()
    with torch.no_grad():  # may pick another attention kernel: equal up to float rounding
        torch.testing.assert_close(native(**batch).logits, a, atol=1e-5, rtol=0)


def test_tower_resolved_relative_to_the_working_directory(official_tiny, tmp_path, monkeypatch):
    ckpt = tmp_path / "models" / "aligngpt-tiny"
    shutil.copytree(official_tiny / "checkpoint", ckpt)
    shutil.copytree(official_tiny / "clip-vision-tiny", tmp_path / "towers" / "clip-vision-tiny")
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["mm_vision_tower"] = "towers/clip-vision-tiny"
    (ckpt / "config.json").write_text(json.dumps(cfg))
    monkeypatch.chdir(tmp_path)
    model, _ = aligngpt.load_pretrained(ckpt, vision_weights="tower")
    assert model.loading_info.vision_weights_from.startswith("tower:")


def test_explicit_tower_override(official_tiny, tmp_path):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(official_tiny / "checkpoint", ckpt)  # tower folder is not beside it any more
    model, _ = aligngpt.load_pretrained(ckpt, vision_tower=str(official_tiny / "clip-vision-tiny"))
    assert "clip-vision-tiny" in model.loading_info.vision_tower


def test_missing_tower_is_a_clear_error(official_tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ckpt = tmp_path / "ckpt"
    shutil.copytree(official_tiny / "checkpoint", ckpt)
    with pytest.raises(ConfigError) as err:
        aligngpt.load_pretrained(ckpt)
    assert "clip-vision-tiny" in str(err.value) and "looked for" in str(err.value)


def test_unknown_model_type_is_refused(official_tiny, tmp_path):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(official_tiny / "checkpoint", ckpt)
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["model_type"] = "bert"
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="model_type"):
        aligngpt.load_pretrained(ckpt)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        aligngpt.load_pretrained(tmp_path / "nope")


def test_sharded_safetensors_load(official_tiny, tmp_path):
    model, processor = aligngpt.load_pretrained(official_tiny / "checkpoint")
    model.save_pretrained(tmp_path / "sharded", safe_serialization=True, max_shard_size="300KB")
    processor.save_pretrained(tmp_path / "sharded")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    again, _ = aligngpt.load_pretrained(tmp_path / "sharded")
    batch = _batch(processor, official_tiny)
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, again(**batch).logits)


def test_released_clip_folder_name_maps_to_the_hub_id(official_tiny, tmp_path, monkeypatch):
    """A released config naming a local ./playground/.../clip-vit-large-patch14-336 resolves to
    openai/clip-vit-large-patch14-336 on the hub (here: a stub snapshot returning the tiny tower)."""
    from aligngpt.modeling import loading

    asked = []

    def fake_snapshot(repo_id, patterns):
        asked.append(repo_id)
        return official_tiny / "clip-vision-tiny"

    monkeypatch.setattr(loading, "_snapshot", fake_snapshot)
    source = loading.resolve_vision_tower("./playground/model/clip-vit-large-patch14-336", tmp_path, None)
    assert asked == ["openai/clip-vit-large-patch14-336"]
    assert source.folder == official_tiny / "clip-vision-tiny" and source.description.startswith("hub:")


def test_device_map_places_the_model(official_tiny):
    model, processor = aligngpt.load_pretrained(official_tiny / "checkpoint", device_map={"": "cpu"})
    batch = _batch(processor, official_tiny)
    reference, _ = aligngpt.load_pretrained(official_tiny / "checkpoint")
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, reference(**batch).logits)
