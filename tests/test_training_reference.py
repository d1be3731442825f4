"""The check of tests/test_model_official_tiny.py, repeated through the training path: the
official-tiny fixture, split back into what the reference training started from (a Llama base, the
CLIP tower, a stage-1 ``mm_projector_align.bin``), rebuilt by our builder, fed by our dataset +
collator from the fixture's ``sources``, gives the reference's ``input_ids``, ``labels`` and losses
(within 1e-4)."""
from __future__ import annotations

import json
from collections import OrderedDict

import pytest
import torch
from safetensors.torch import save_file

from aligngpt.modeling.loading import read_weights, weight_files
from aligngpt.training.builder import ModelSpec, build_model
from aligngpt.training.data import TrainingCollator, TrainingDataset

MM_FIELDS = ("mm_", "use_mm_proj", "tune_mm", "freeze_mm", "image_aspect_ratio", "tokenizer_")


@pytest.fixture(scope="module")
def split(tmp_path_factory, official_tiny) -> dict:
    """The fixture checkpoint taken apart into reference training inputs (real on-disk formats)."""
    root = tmp_path_factory.mktemp("ref")
    ckpt = official_tiny / "checkpoint"
    weights = {}
    for f in weight_files(ckpt):
        weights.update(read_weights(f))
    base = root / "vicuna-tiny"
    base.mkdir()
    config = json.loads((ckpt / "config.json").read_text())
    llama = {k: v for k, v in config.items() if not k.startswith(MM_FIELDS)}
    llama.update(model_type="llama", architectures=["LlamaForCausalLM"])
    (base / "config.json").write_text(json.dumps(llama))
    llm = {k: v.contiguous() for k, v in weights.items() if k.startswith(("model.", "lm_head.")) and "rotary_emb" not in k}
    save_file(llm, base / "model.safetensors", metadata={"format": "pt"})
    (base / "tokenizer.model").write_bytes((ckpt / "tokenizer.model").read_bytes())
    stage1 = OrderedDict((k, v) for k, v in weights.items() if k.startswith("mm_projector.") or k.endswith("indicator_embs"))
    torch.save(stage1, root / "mm_projector_align.bin")
    # As released: bf16 tensors in an OrderedDict with the reference key names.
    torch.save(OrderedDict((k, v.to(torch.bfloat16)) for k, v in stage1.items()), root / "released_bf16.bin")
    reference = json.loads((official_tiny / "reference.json").read_text())
    for stage in ("pretrain", "finetune"):
        ref = reference[stage]
        records = []
        for i, (src, image) in enumerate(zip(ref["sources"], ref["images"])):
            rec = {"id": f"{stage}-{i}", "conversations": src}
            if image:
                rec["image"] = image
            if stage == "pretrain":
                rec["similarity"] = ref["align_ids"][i]
            records.append(rec)
        (root / f"{stage}.json").write_text(json.dumps(records))
    return {"root": root, "base": base, "tower": official_tiny / "clip-vision-tiny", "images": official_tiny / "images",
            "weights": weights, "reference": reference}


def _build(split, stage1: str):
    spec = ModelSpec(base=split["base"], vision_tower=split["tower"], image_aspect_ratio="pad", stage="finetune",
                     pretrain_mm_mlp_align=split["root"] / stage1, attn_implementation="eager")
    return build_model(spec)


def test_builder_reassembles_the_checkpoint(split):
    model, _ = _build(split, "mm_projector_align.bin")
    own = model.state_dict()
    for key, value in split["weights"].items():
        if "rotary_emb" in key or key.startswith("gated_weight_layer."):
            continue  # legacy buffer; the gate is fresh at stage 2 (reference behaviour)
        torch.testing.assert_close(own[key], value, rtol=0, atol=0, msg=key)
    assert model.config.num_image_tokens == 576 and model.config.n_indicators == 8


def test_released_bf16_stage1_file_loads(split):
    model, _ = _build(split, "released_bf16.bin")
    for key in ("mm_projector.0.weight", "mm_projector.2.bias", "align_indicators.indicator_embs"):
        expected = split["weights"][key].to(torch.bfloat16).float()
        torch.testing.assert_close(model.state_dict()[key], expected, rtol=0, atol=0)


@pytest.mark.parametrize("stage,template", [("pretrain", "plain"), ("finetune", "vicuna_v1")])
def test_dataset_and_collator_rebuild_the_batch_and_loss(split, stage, template):
    model, processor = _build(split, "mm_projector_align.bin")
    with torch.no_grad():  # the reference checkpoint's trained gate, for the stage-2 loss
        for key in ("mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"):
            model.gated_weight_layer.state_dict()[key].copy_(split["weights"]["gated_weight_layer." + key])
    ref = split["reference"][stage]
    ds = TrainingDataset(split["root"] / f"{stage}.json", split["images"], processor.tokenizer, template,
                         processor.image_settings, "pad", n_levels=8 if stage == "pretrain" else None)
    collator = TrainingCollator(processor.tokenizer.pad_token_id, 2048, model.config.num_image_tokens,
                                tokenizer_model_max_length=model.config.tokenizer_model_max_length)
    batch = collator([ds[i] for i in range(len(ds))])
    assert batch["input_ids"].tolist() == ref["input_ids"]
    assert batch["labels"].tolist() == ref["labels"]
    if stage == "pretrain":
        assert batch["align_ids"].tolist() == ref["align_ids"]
    else:
        assert "align_ids" not in batch and batch["images"].shape[0] == 2  # the text-only row takes none
    model.eval()
    with torch.no_grad():
        out = model(**batch)
    assert out.loss.item() == pytest.approx(ref["loss"], abs=1e-4)
