"""Acceptance: LLaVA-1.5 checkpoints load into the same class as the no-alignment baseline."""
from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

import aligngpt


@pytest.fixture(scope="module")
def loaded(llava15_tiny):
    model, processor = aligngpt.load_pretrained(llava15_tiny / "checkpoint", dtype=torch.float32)
    return model, processor, json.loads((llava15_tiny / "reference.json").read_text())


def test_llava_checkpoint_is_the_none_baseline(loaded):
    model, _, _ = loaded
    assert model.config.align_mode == "none" and model.align_indicators is None
    assert model.loading_info.missing_keys == [] and model.loading_info.unexpected_keys == []


@pytest.mark.parametrize("index", range(4))
def test_llava_inference_matches_reference(loaded, llava15_tiny, index):
    model, processor, reference = loaded
    ref = reference["inference"][index]
    prompt = processor.build_prompt(ref["question"], has_image=ref["image"] is not None)
    assert prompt == ref["prompt"]
    assert processor.tokenize(prompt) == ref["input_ids"]
    image = Image.open(llava15_tiny / "images" / ref["image"]) if ref["image"] else None
    batch = processor([prompt], [image])
    if image is not None:
        assert batch["images"].sum().item() == pytest.approx(ref["pixel_values_sum"], abs=1e-3)
    with torch.no_grad():
        out = model(**batch)
    assert out.logits.shape[1] == ref["seq_len_with_image"]
    torch.testing.assert_close(out.logits[0, -1], torch.tensor(ref["last_logits"]), atol=1e-4, rtol=0)
    assert model.generate(**batch, max_new_tokens=12)[0].tolist() == ref["greedy_new_ids"]


def test_llava_batched_generation_equals_batch_one(loaded, llava15_tiny):
    model, processor, reference = loaded
    refs = reference["inference"]
    images = [Image.open(llava15_tiny / "images" / r["image"]) if r["image"] else None for r in refs]
    batch = processor([r["prompt"] for r in refs], images)
    rows = model.generate(**batch, max_new_tokens=12).tolist()
    assert rows == [r["greedy_new_ids"] for r in refs]
