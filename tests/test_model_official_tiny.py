"""Acceptance: our model reproduces what the published AlignGPT code computed on official-tiny."""
from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

import aligngpt
from aligngpt.processing.training_preprocess import collate, preprocess_sample


@pytest.fixture(scope="module")
def loaded(official_tiny):
    model, processor = aligngpt.load_pretrained(official_tiny / "checkpoint", dtype=torch.float32)
    reference = json.loads((official_tiny / "reference.json").read_text())
    return model, processor, reference


def _image(folder, name):
    return Image.open(folder / "images" / name) if name else None


def test_loading_reports_only_legacy_buffers(loaded):
    model, _, _ = loaded
    info = model.loading_info
    assert info.missing_keys == [] and info.unexpected_keys == []
    assert info.ignored_legacy_keys and all(k.endswith("rotary_emb.inv_freq") for k in info.ignored_legacy_keys)


@pytest.mark.parametrize("index", range(5))
def test_inference_matches_reference(loaded, official_tiny, index):
    model, processor, reference = loaded
    ref = reference["inference"][index]
    prompt = processor.build_prompt(ref["question"], has_image=ref["image"] is not None, template="vicuna_v1")
    assert prompt == ref["prompt"]
    assert processor.tokenize(prompt) == ref["input_ids"]
    image = _image(official_tiny, ref["image"])
    batch = processor([prompt], [image])
    if image is not None:
        assert list(batch["images"].shape) == ref["pixel_values_shape"]
        assert batch["images"].sum().item() == pytest.approx(ref["pixel_values_sum"], abs=1e-3)
    with torch.no_grad():
        out = model(**batch)
    assert out.logits.shape[1] == ref["seq_len_with_image_and_indicator"]
    torch.testing.assert_close(out.logits[0, -1], torch.tensor(ref["last_logits"]), atol=1e-4, rtol=0)
    assert out.logits.abs().mean().item() == pytest.approx(ref["logits_mean_abs"], abs=1e-5)
    if ref["gate_weights"] is None:
        assert out.alignment_weights is None
    else:
        torch.testing.assert_close(out.alignment_weights[0], torch.tensor(ref["gate_weights"]), atol=1e-5, rtol=0)
    new_ids = model.generate(**batch, max_new_tokens=12, do_sample=False)
    assert new_ids[0].tolist() == ref["greedy_new_ids"]


@pytest.mark.parametrize("stage,template,extra", [("pretrain", "plain", "align_ids"), ("finetune", "vicuna_v1", None)])
def test_training_losses_match_reference(loaded, official_tiny, stage, template, extra):
    model, processor, reference = loaded
    ref = reference[stage]
    examples = [
        preprocess_sample(src, processor.tokenizer, template, has_image=img is not None)
        for src, img in zip(ref["sources"], ref["images"])
    ]
    input_ids, labels, mask = collate(examples, processor.tokenizer.pad_token_id)
    assert input_ids.tolist() == ref["input_ids"]
    assert labels.tolist() == ref["labels"]
    # The fixture's config says image_aspect_ratio "pad": both stages were preprocessed with padding.
    pixels = processor.preprocess_images([_image(official_tiny, i) for i in ref["images"] if i], pad_to_square=True)
    kwargs = {"align_ids": torch.tensor(ref["align_ids"])} if extra else {}
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=mask, images=pixels, labels=labels, **kwargs)
    assert out.loss.item() == pytest.approx(ref["loss"], abs=1e-4)


def test_batched_generation_equals_batch_one(loaded, official_tiny):
    model, processor, reference = loaded
    prompts = [r["prompt"] for r in reference["inference"]]
    images = [_image(official_tiny, r["image"]) for r in reference["inference"]]
    batch = processor(prompts, images)  # left padding, mixed image and text-only rows
    assert (batch["attention_mask"] == 0).any(), "the batch must actually be padded"
    out = model.generate(**batch, max_new_tokens=12, return_dict=True)
    for row, ref in zip(out.sequences.tolist(), reference["inference"]):
        assert row == ref["greedy_new_ids"]
    assert torch.isnan(out.alignment_weights[4]).all()  # the text-only row has no gate


def test_right_padded_forward_equals_left_padded(loaded, official_tiny):
    model, processor, reference = loaded
    prompts = [r["prompt"] for r in reference["inference"][:3]]
    images = [_image(official_tiny, r["image"]) for r in reference["inference"][:3]]
    left = processor(prompts, images, padding_side="left")
    right = processor(prompts, images, padding_side="right")
    with torch.no_grad():
        a, b = model(**left), model(**right)
    for i in range(3):
        la = a.logits[i][a.attention_mask[i].bool()]
        lb = b.logits[i][b.attention_mask[i].bool()]
        torch.testing.assert_close(la, lb, atol=1e-4, rtol=0)


@pytest.mark.parametrize("select_layer", [-2, -1, 1])
def test_vision_tower_stops_after_selected_layer_without_changing_features(loaded, select_layer):
    """The truncated tower pass (layers after ``select_layer`` skipped) equals the reference's
    full ``output_hidden_states`` pass bit for bit, for the released -2 and other choices."""
    model, _, _ = loaded
    tower = model.vision_tower
    saved = tower.select_layer
    pixels = torch.randn(2, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    try:
        tower.select_layer = select_layer
        tower.skip_unused_layers = True
        fast = tower(pixels)
        tower.skip_unused_layers = False
        full = tower(pixels)
    finally:
        tower.select_layer, tower.skip_unused_layers = saved, True
    assert fast.shape == full.shape == (2, 576, 32)
    assert torch.equal(fast, full)
