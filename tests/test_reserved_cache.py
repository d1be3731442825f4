"""The decode cache writes in place and hands attention exactly what concatenation would."""
from __future__ import annotations

import pytest
import torch
from PIL import Image
from transformers.cache_utils import DynamicCache

import aligngpt
import aligngpt.modeling.modeling_aligngpt as modeling
from aligngpt.modeling.reserved_cache import ReservedLayer, reserved_cache


def _chunks(seed: int, lengths: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(3, 2, n, 4, generator=g), torch.randn(3, 2, n, 4, generator=g)) for n in lengths]


@pytest.mark.parametrize("reserve", [0, 2, 5, 9])
def test_layer_matches_concatenation_within_and_past_the_reserve(reserve):
    layer = ReservedLayer(reserve=reserve)
    expected_k = expected_v = None
    for k, v in _chunks(0, [6, 1, 1, 1, 1, 1]):
        got_k, got_v = layer.update(k, v)
        expected_k = k if expected_k is None else torch.cat([expected_k, k], dim=-2)
        expected_v = v if expected_v is None else torch.cat([expected_v, v], dim=-2)
        assert torch.equal(got_k, expected_k) and torch.equal(got_v, expected_v)
        assert layer.get_seq_length() == expected_k.shape[-2]


def test_steps_inside_the_reserve_do_not_reallocate():
    layer = ReservedLayer(reserve=4)
    chunks = _chunks(1, [5, 1, 1, 1, 1])
    layer.update(*chunks[0])
    storage = layer.keys.untyped_storage().data_ptr()
    for k, v in chunks[1:]:
        layer.update(k, v)
        assert layer.keys.untyped_storage().data_ptr() == storage
    assert layer.keys.shape[-2] == 9


def test_batch_selection_drops_the_buffer_and_keeps_working():
    layer = ReservedLayer(reserve=4)
    chunks = _chunks(2, [5, 1, 1])
    layer.update(*chunks[0])
    layer.update(*chunks[1])
    layer.batch_select_indices(torch.tensor([2, 0]))
    k, v = chunks[2]
    got_k, _ = layer.update(k[[2, 0]], v[[2, 0]])
    expected = torch.cat([chunks[0][0], chunks[1][0], k], dim=-2)[[2, 0]]
    assert torch.equal(got_k, expected)


@pytest.fixture(scope="module")
def loaded(official_tiny):
    return aligngpt.load_pretrained(official_tiny / "checkpoint", dtype=torch.float32)


def test_cache_has_one_reserved_layer_per_decoder_layer(loaded):
    model, _ = loaded
    cache = reserved_cache(model.config, reserve=7)
    assert len(cache.layers) == model.config.num_hidden_layers
    assert all(isinstance(layer, ReservedLayer) and layer.reserve == 7 for layer in cache.layers)


def test_generate_gives_the_same_tokens_as_with_the_concatenating_cache(loaded, official_tiny, monkeypatch):
    model, processor = loaded
    images = sorted((official_tiny / "images").glob("*.png"))
    questions = ["What is in the image?", "Describe the colours.", "Is there a shape?", "Count the objects."]
    prompts = [processor.build_prompt(q, has_image=True, template="vicuna_v1") for q in questions]
    batch = processor(prompts, [Image.open(p) for p in images[: len(prompts)]])
    reserved = model.generate(**batch, max_new_tokens=12, do_sample=False)
    monkeypatch.setattr(modeling, "reserved_cache", lambda config, reserve: DynamicCache(config=config))
    plain = model.generate(**batch, max_new_tokens=12, do_sample=False)
    assert reserved.shape[1] > 1
    assert torch.equal(reserved, plain)
