"""Transformers-native LLaVA checkpoints (``LlavaForConditionalGeneration``) load as our ``none``
baseline and compute what transformers' own Llava computes.

Both layouts found in the wild are built tiny inside the test from one random Llava: the hub's
(``language_model.model.*``, ``vision_tower.vision_model.*``, ``multi_modal_projector.linear_{1,2}.*``,
sparse config, as ``llava-hf/llava-1.5-7b-hf`` ships) and what transformers 5's ``save_pretrained``
writes. Ground truth: ``LlavaForConditionalGeneration.from_pretrained`` on the same folder, fp32 CPU.
"""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import aligngpt
from aligngpt.constants import IMAGE_TOKEN_INDEX

N_PATCHES = 16


def _tiny_llava(official_tiny):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    from aligngpt.processing import LlamaSPTokenizer

    vocab = len(LlamaSPTokenizer.from_pretrained(official_tiny / "checkpoint"))
    text = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=4, vocab_size=vocab + 2, initializer_range=0.3, pad_token_id=vocab + 1)
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=3,
                              image_size=16, patch_size=4, projection_dim=8, initializer_range=0.3)
    config = LlavaConfig(text_config=text, vision_config=vision, image_token_index=vocab,
                         image_seq_length=N_PATCHES, pad_token_id=vocab + 1)
    torch.manual_seed(0)
    return LlavaForConditionalGeneration(config), vocab


def _sidecar(folder, official_tiny):
    for name in ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(official_tiny / "checkpoint" / name, folder / name)
    pre = {"size": {"shortest_edge": 16}, "crop_size": {"height": 16, "width": 16}, "image_processor_type": "CLIPImageProcessor"}
    (folder / "preprocessor_config.json").write_text(json.dumps(pre), encoding="utf-8")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, official_tiny):
    """{'transformers5': folder, 'hub': folder} holding the same random Llava; and the image token id."""
    root = tmp_path_factory.mktemp("llava_hf")
    model, image_token = _tiny_llava(official_tiny)
    t5 = root / "transformers5"
    model.save_pretrained(str(t5))
    _sidecar(t5, official_tiny)
    saved = load_file(str(t5 / "model.safetensors"))
    assert any(k.startswith("vision_tower.encoder.") for k in saved)  # the flattened tower of transformers 5
    hub = root / "hub"
    hub.mkdir()
    renamed = {("vision_tower.vision_model." + k[len("vision_tower."):] if k.startswith("vision_tower.") else k): v
               for k, v in saved.items()}
    assert {k.split(".")[0] for k in renamed} == {"language_model", "vision_tower", "multi_modal_projector"}
    save_file(renamed, str(hub / "model.safetensors"), metadata={"format": "pt"})
    cfg = model.config
    sparse = {  # only what differs from transformers' defaults, as llava-hf/llava-1.5-7b-hf's config.json
        "architectures": ["LlavaForConditionalGeneration"], "ignore_index": -100, "model_type": "llava",
        "image_token_index": image_token, "pad_token_id": cfg.pad_token_id, "projector_hidden_act": "gelu",
        "text_config": {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32,
                        "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                        "vocab_size": cfg.text_config.vocab_size, "initializer_range": 0.3, "torch_dtype": "float16"},
        "tie_word_embeddings": False, "torch_dtype": "float16", "transformers_version": "4.36.0.dev0",
        "vision_config": {"hidden_size": 16, "image_size": 16, "intermediate_size": 32, "model_type": "clip_vision_model",
                          "num_attention_heads": 2, "num_hidden_layers": 3, "patch_size": 4, "projection_dim": 8},
        "vision_feature_layer": -2, "vision_feature_select_strategy": "default", "image_seq_length": N_PATCHES,
        "vocab_size": cfg.text_config.vocab_size,
    }
    (hub / "config.json").write_text(json.dumps(sparse, indent=2), encoding="utf-8")
    _sidecar(hub, official_tiny)
    return {"transformers5": t5, "hub": hub}, image_token


def _images():
    return [Image.new("RGB", (24, 16), (210, 40, 30)), Image.new("RGB", (16, 20), (30, 120, 220))]


def _hf_inputs(batch, image_token):
    """Our left-padded ids with each -200 expanded to the Llava image-token run, and positions."""
    rows = []
    for ids, mask in zip(batch["input_ids"].tolist(), batch["attention_mask"].tolist()):
        real = [t for t, m in zip(ids, mask) if m]
        expanded = []
        for t in real:
            expanded.extend([image_token] * N_PATCHES if t == IMAGE_TOKEN_INDEX else [t])
        rows.append(expanded)
    width = max(len(r) for r in rows)
    ids = torch.tensor([[0] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, positions


def _until_eos(row, eos):
    row = list(row)
    return row[: row.index(eos) + 1] if eos in row else row


@pytest.mark.parametrize("layout", ["hub", "transformers5"])
def test_llava_hf_matches_transformers_llava(checkpoints, layout):
    from transformers import LlavaForConditionalGeneration

    folders, image_token = checkpoints
    folder = folders[layout]
    ours, processor = aligngpt.load_pretrained(folder, dtype=torch.float32)
    assert ours.loading_info.missing_keys == [] and ours.loading_info.unexpected_keys == []
    assert ours.config.align_mode == "none" and ours.align_indicators is None
    theirs = LlavaForConditionalGeneration.from_pretrained(str(folder), dtype=torch.float32).eval()
    prompts = [processor.build_prompt("What colour is the square?", True),
               processor.build_prompt("Is it round? Answer yes or no.", True)]
    for rows in ([0], [0, 1]):  # a single prompt, then a left-padded batch of two
        batch = processor([prompts[i] for i in rows], [_images()[i] for i in rows])
        ids, mask, positions = _hf_inputs(batch, image_token)
        with torch.no_grad():
            out = ours(**batch)
            ref = theirs(input_ids=ids, attention_mask=mask, position_ids=positions, pixel_values=batch["images"])
        assert torch.equal(out.attention_mask, mask)
        real = mask.bool()
        diff = (out.logits[real] - ref.logits[real].float()).abs().max().item()
        assert diff < 1e-4, diff
        new = ours.generate(**batch, max_new_tokens=10)
        ref_new = theirs.generate(input_ids=ids, attention_mask=mask, pixel_values=batch["images"],
                                  max_new_tokens=10, do_sample=False)[:, ids.shape[1]:]
        eos = ours.config.eos_token_id
        for r in range(len(rows)):
            assert _until_eos(new[r].tolist(), eos) == _until_eos(ref_new[r].tolist(), eos), (layout, rows, r)
