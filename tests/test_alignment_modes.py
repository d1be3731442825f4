"""Each alignment mode computes its formula (hand-set embeddings and gate), and ``none`` is LLaVA."""
from __future__ import annotations

import pytest
import torch

from aligngpt.constants import IMAGE_TOKEN_INDEX
from aligngpt.modeling.configuration import parse_align_mode

from .tiny_models import tiny_model

N = 5  # levels in the tiny config
H = 16


def _setup(model):
    """Embeddings E[k] = (k+1) * e_k-ish, and a gate whose softmax is known: MLP weights 0, bias b."""
    with torch.no_grad():
        emb = torch.zeros(N, H)
        for k in range(N):
            emb[k, k] = float(k + 1)
            emb[k, -1] = 0.5 * k
        model.align_indicators.indicator_embs.copy_(emb)
        gate = model.gated_weight_layer.mlp
        gate[0].weight.zero_(); gate[0].bias.zero_()
        gate[2].weight.zero_(); gate[2].bias.copy_(torch.tensor([0.0, 1.0, 2.0, 3.0]))
    return emb, torch.softmax(torch.tensor([0.0, 1.0, 2.0, 3.0]), dim=0)


def _captured_slot(model, mode, align_ids=None):
    seen = {}

    def hook(_module, _args, kwargs):
        seen["embeds"] = kwargs["inputs_embeds"].detach().clone()

    handle = model.model.register_forward_pre_hook(hook, with_kwargs=True)
    ids = torch.tensor([[1, 5, 6, IMAGE_TOKEN_INDEX, 7, 8]])
    images = torch.randn(1, 3, 8, 8)
    try:
        out = model(input_ids=ids, images=images, align_mode=mode, align_ids=align_ids)
    finally:
        handle.remove()
    return seen["embeds"], out


@pytest.mark.parametrize(
    "mode,formula",
    [
        ("gated", lambda E, w: w @ E[:-1] + E[-1]),
        ("local", lambda E, w: w @ E[:-1]),
        ("global", lambda E, w: E[-1]),
        ("average", lambda E, w: E[:-1].mean(0) + E[-1]),
        ("fixed:0", lambda E, w: E[0]),
        ("fixed:3", lambda E, w: E[3]),
    ],
)
def test_mode_formula(mode, formula):
    model = tiny_model()
    emb, weights = _setup(model)
    embeds, out = _captured_slot(model, mode)
    # sequence: BOS, slot, 5, 6, 16 image tokens, 7, 8
    assert embeds.shape[1] == 1 + 1 + 2 + 16 + 2
    torch.testing.assert_close(embeds[0, 1], formula(emb, weights), atol=1e-6, rtol=0)
    if mode in ("gated", "local"):
        torch.testing.assert_close(out.alignment_weights[0], weights, atol=1e-6, rtol=0)
    else:
        assert out.alignment_weights is None


def test_pretraining_align_ids_look_up_the_level():
    model = tiny_model()
    emb, _ = _setup(model)
    embeds, out = _captured_slot(model, None, align_ids=torch.tensor([2]))
    torch.testing.assert_close(embeds[0, 1], emb[2])
    assert out.alignment_weights is None


def test_none_is_plain_llava_forward():
    model = tiny_model()
    ids = torch.tensor([[1, 5, 6, IMAGE_TOKEN_INDEX, 7, 8]])
    images = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        out = model(input_ids=ids, images=images, align_mode="none")
        feats = model.encode_images(images)
        text = model.model.embed_tokens(torch.tensor([[1, 5, 6, 7, 8]]))
        embeds = torch.cat([text[:, :3], feats, text[:, 3:]], dim=1)
        plain = model.lm_head(model.model(inputs_embeds=embeds).last_hidden_state)
    assert out.logits.shape[1] == 5 + 16  # no alignment token
    torch.testing.assert_close(out.logits, plain, atol=1e-5, rtol=0)


def test_gate_uses_mean_prompt_embedding_without_bos():
    """dots[i] = <image token i, mean(word embeddings of non-image tokens except BOS)>."""
    model = tiny_model()
    ids = torch.tensor([[1, 5, 6, IMAGE_TOKEN_INDEX, 7, 8]])
    images = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        out = model(input_ids=ids, images=images, align_mode="gated")
        feats = model.encode_images(images)[0]
        avg = model.model.embed_tokens(torch.tensor([5, 6, 7, 8])).mean(0)
        expected = torch.softmax(model.gated_weight_layer.mlp(feats @ avg), dim=-1)
    torch.testing.assert_close(out.alignment_weights[0], expected, atol=1e-6, rtol=0)


def test_text_only_rows_get_no_alignment_token():
    model = tiny_model()
    with torch.no_grad():
        out = model(input_ids=torch.tensor([[1, 5, 6, 7]]))
    assert out.logits.shape[1] == 4


@pytest.mark.parametrize("bad", ["fixed:5", "fixed:-1", "fixed:x", "gate", ""])
def test_bad_modes_are_rejected(bad):
    with pytest.raises(ValueError):
        parse_align_mode(bad, N)


def test_gate_width_follows_the_vision_tower():
    model = tiny_model()
    assert model.gated_weight_layer.mlp[0].in_features == 16  # (8 px / patch 2)^2
    assert model.gated_weight_layer.mlp[2].out_features == N - 1
