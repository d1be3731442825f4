"""Both training stages on a tiny model built from config: the loss falls, exactly the intended
tensors change, the stage-1 file feeds stage 2, ablation knobs, LoRA, and the final folder loads
with ``aligngpt.load_pretrained``. Resuming: test_training_resume.py."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import aligngpt
from aligngpt.errors import ConfigError
from aligngpt.training import STAGE1_FILE, train

from .test_training_fixtures import Snapshot, losses as _losses, make_pretrain_json, make_workspace, train_options as _opts


@pytest.fixture(scope="module")
def ws(tmp_path_factory, official_tiny) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train")
    return make_workspace(root, official_tiny / "checkpoint" / "tokenizer.model", n_images=16, n_text=8) | {"root": root}


@pytest.fixture(scope="module")
def stage1(ws):
    snap = Snapshot()
    result = train(_opts(ws, "pretrain", "s1", learning_rate=1e-2, num_train_epochs=3), callbacks=[snap])
    return result, snap


def test_stage1_trains_projector_and_table_only(stage1):
    result, snap = stage1
    losses = _losses(result)
    assert len(losses) == 12  # 16 samples / batch 4 x 3 epochs
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.3
    expected = {"mm_projector.0.weight", "mm_projector.0.bias", "mm_projector.2.weight", "mm_projector.2.bias",
                "align_indicators.indicator_embs"}
    assert snap.changed() == expected  # LLM, lm_head, tower and (unused) gate are bit-identical


def test_stage1_file_has_reference_keys_and_trained_values(stage1):
    result, snap = stage1
    state = torch.load(result.output_dir / STAGE1_FILE, weights_only=True)
    assert list(state) == ["mm_projector.0.weight", "mm_projector.0.bias", "mm_projector.2.weight",
                           "mm_projector.2.bias", "align_indicators.indicator_embs"]
    for key, value in state.items():
        torch.testing.assert_close(value.float(), snap.after[key], rtol=0, atol=0)
    config = json.loads((result.output_dir / "config.json").read_text())
    assert config["model_type"] == "aligngpt" and config["mm_projector_type"] == "mlp2x_gelu"
    assert config["tune_mm_mlp_adapter"] is True and config["image_aspect_ratio"] == "square"
    assert config["n_indicators"] == 8 and config["tokenizer_model_max_length"] == 2048


@pytest.fixture(scope="module")
def stage2(ws, stage1):
    snap = Snapshot()
    opts = _opts(ws, "finetune", "s2", learning_rate=2e-3, num_train_epochs=2,
                 pretrain_mm_mlp_align=str(stage1[0].output_dir / STAGE1_FILE))
    return train(opts, callbacks=[snap]), snap


def test_stage2_starts_from_the_stage1_file_and_trains_llm_projector_gate(stage1, stage2):
    _, snap1 = stage1
    result, snap = stage2
    for key in ("mm_projector.0.weight", "mm_projector.2.bias", "align_indicators.indicator_embs"):
        torch.testing.assert_close(snap.before[key], snap1.after[key], rtol=0, atol=0)
    changed = snap.changed()
    frozen = {k for k in snap.before if k.startswith(("vision_tower.", "align_indicators."))}
    trained = set(snap.before) - frozen
    assert changed == trained  # every LLM / lm_head / projector / gate tensor moved, nothing else
    assert any(k.startswith("gated_weight_layer.") for k in changed)
    losses = _losses(result)
    assert len(losses) == 12 and sum(losses[-3:]) / 3 < sum(losses[:3]) / 3


def test_stage2_output_loads_with_load_pretrained(stage2):
    result, snap = stage2
    model, processor = aligngpt.load_pretrained(result.output_dir, dtype=torch.float32)
    assert model.loading_info.missing_keys == [] and model.loading_info.unexpected_keys == []
    for key, value in model.state_dict().items():  # released key names, trained values
        torch.testing.assert_close(value, snap.after[key], rtol=0, atol=0)
    assert processor.image_aspect_ratio == "pad" and model.config.align_mode == "gated"
    batch = processor(["<image>\nWhat color is the shape?"], [__import__("PIL.Image").Image.new("RGB", (9, 5))])
    out = model(**batch)
    assert out.alignment_weights.shape == (1, 7) and torch.isfinite(out.logits).all()


@pytest.mark.parametrize("mode,gate_trains", [("global", False), ("local", True), ("fixed:2", False)])
def test_ablation_modes_train_that_way(ws, stage1, mode, gate_trains):
    snap = Snapshot()
    result = train(_opts(ws, "finetune", f"mode-{mode.replace(':', '')}", learning_rate=1e-3, max_steps=2,
                         align_mode=mode, gate_text="prompt",
                         pretrain_mm_mlp_align=str(stage1[0].output_dir / STAGE1_FILE)), callbacks=[snap])
    gate = {k for k in snap.before if k.startswith("gated_weight_layer.")}
    if gate_trains:
        assert gate and gate <= snap.changed()
    else:
        assert gate and not gate & snap.changed()  # no gradient reaches it: frozen
    config = json.loads((result.output_dir / "config.json").read_text())
    assert config["align_mode"] == mode and config["gate_text"] == "prompt"


def test_random_align_table_and_levels_knob(ws, stage1):
    snap = Snapshot()
    train(_opts(ws, "finetune", "random", learning_rate=1e-3, max_steps=1, random_align_table=True,
                pretrain_mm_mlp_align=str(stage1[0].output_dir / STAGE1_FILE)), callbacks=[snap])
    key = "align_indicators.indicator_embs"
    assert not torch.equal(snap.before[key], stage1[1].after[key])  # re-initialised, not loaded
    assert key not in snap.changed()  # and frozen like the learned one
    torch.testing.assert_close(snap.before["mm_projector.0.weight"], stage1[1].after["mm_projector.0.weight"])

    root = ws["root"]
    names = [f"sub/img{i}.png" for i in range(8)]
    data4 = make_pretrain_json(root / "pretrain4.json", names, levels=4)
    result = train(_opts(ws, "pretrain", "n4", data=str(data4), n_indicators=4, max_steps=1))
    state = torch.load(result.output_dir / STAGE1_FILE, weights_only=True)
    assert state["align_indicators.indicator_embs"].shape == (4, 32)
    with pytest.raises(ConfigError, match="--n-indicators 8 but the stage-1 file has 4"):
        train(_opts(ws, "finetune", "n4-bad", n_indicators=8, max_steps=1,
                    pretrain_mm_mlp_align=str(result.output_dir / STAGE1_FILE)))


def test_none_mode_is_llava_architecture(ws):
    result = train(_opts(ws, "pretrain", "none", align_mode="none", max_steps=1))
    state = torch.load(result.output_dir / STAGE1_FILE, weights_only=True)
    assert list(state) == ["mm_projector.0.weight", "mm_projector.0.bias", "mm_projector.2.weight", "mm_projector.2.bias"]
    with pytest.raises(ConfigError, match="no alignment table"):
        train(_opts(ws, "finetune", "none-bad", max_steps=1, pretrain_mm_mlp_align=str(result.output_dir / STAGE1_FILE)))
    snap = Snapshot()
    train(_opts(ws, "finetune", "none-s2", max_steps=1, align_mode="none",
                pretrain_mm_mlp_align=str(result.output_dir / STAGE1_FILE)), callbacks=[snap])
    assert not any(k.startswith(("align_indicators.", "gated_weight_layer.")) for k in snap.before)


def test_lora_trains_adapters_projector_and_gate(ws, stage1):
    pytest.importorskip("peft")
    from aligngpt.modeling.loading import read_weights, weight_files

    snap = Snapshot()
    result = train(_opts(ws, "finetune", "lora", learning_rate=1e-3, max_steps=2, lora_enable=True, lora_r=4,
                         lora_alpha=8, pretrain_mm_mlp_align=str(stage1[0].output_dir / STAGE1_FILE)), callbacks=[snap])
    assert (result.output_dir / "adapter" / "adapter_config.json").is_file()
    # While training, the LLM linears hold frozen base weights plus adapters; projector and gate
    # are peft "modules_to_save" copies.
    assert "model.layers.0.self_attn.q_proj.base_layer.weight" in snap.before
    changed = snap.changed()
    assert all(".lora_" in k or ".modules_to_save." in k for k in changed)
    assert any(k.startswith("gated_weight_layer.modules_to_save.") for k in changed)
    assert any(k.startswith("mm_projector.modules_to_save.") for k in changed)
    # The merged folder loads as a plain model: embeddings / lm_head untouched, adapted linears
    # moved, projector and gate trained in full.
    merged, _ = aligngpt.load_pretrained(result.output_dir, dtype=torch.float32)
    state = merged.state_dict()
    base = {}
    for f in weight_files(ws["base"]):
        base.update(read_weights(f))
    torch.testing.assert_close(state["model.embed_tokens.weight"], base["model.embed_tokens.weight"], rtol=0, atol=0)
    torch.testing.assert_close(state["lm_head.weight"], base["lm_head.weight"], rtol=0, atol=0)
    assert not torch.equal(state["model.layers.0.self_attn.q_proj.weight"], base["model.layers.0.self_attn.q_proj.weight"])
    assert not torch.equal(state["mm_projector.0.weight"], stage1[1].after["mm_projector.0.weight"])
    assert not torch.equal(state["gated_weight_layer.mlp.0.weight"], snap.before["gated_weight_layer.original_module.mlp.0.weight"])
    torch.testing.assert_close(state["gated_weight_layer.mlp.0.weight"], snap.after["gated_weight_layer.modules_to_save.default.mlp.0.weight"])
    # merge-lora rebuilds the model from the recorded options and merges the saved adapter: same weights.
    from aligngpt.training.merge import merge_lora

    again, _ = aligngpt.load_pretrained(merge_lora(result.output_dir, ws["root"] / "lora-merged"), dtype=torch.float32)
    for key, value in again.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=1e-6)


def test_projector_learning_rate_group(ws, stage1):
    from transformers import TrainerCallback

    class Groups(TrainerCallback):
        def on_train_begin(self, args, state, control, optimizer=None, model=None, **kw):
            projector = {id(p) for p in model.mm_projector.parameters()}
            self.seen = sorted(
                (g["initial_lr"], all(id(p) in projector for p in g["params"]), len(g["params"]))
                for g in optimizer.param_groups if g["params"]
            )

    groups = Groups()
    train(_opts(ws, "finetune", "mmlr", learning_rate=2e-5, mm_projector_lr=2e-4, max_steps=1,
                pretrain_mm_mlp_align=str(stage1[0].output_dir / STAGE1_FILE)), callbacks=[groups])
    # Groups split by (projector?, decayed?): the projector's 2 weights and 2 biases at 2e-4, every
    # other trainable tensor (LLM, lm_head, gate) at 2e-5.
    projector = [g for g in groups.seen if g[1]]
    assert [g[0] for g in projector] == [2e-4, 2e-4] and sum(g[2] for g in projector) == 4
    assert all(g[0] == 2e-5 for g in groups.seen if not g[1])


def test_bad_options_are_refused(ws):
    with pytest.raises(ConfigError, match="stage-2 input"):
        train(_opts(ws, "pretrain", "x", pretrain_mm_mlp_align="a.bin"))
    with pytest.raises(ConfigError, match="needs --lora-enable"):
        train(_opts(ws, "finetune", "x", bits=4))
    with pytest.raises(ConfigError, match="unknown align_mode|K must be"):
        train(_opts(ws, "pretrain", "x", align_mode="fixed:9"))
