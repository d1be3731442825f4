"""The vectorised multimodal assembly equals the reference-style per-sample loop."""
from __future__ import annotations

import pytest
import torch

from aligngpt.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from aligngpt.engine.reference_assembly import assemble_per_sample

from .tiny_models import tiny_model


def _batch(seed: int, max_len: int):
    g = torch.Generator().manual_seed(seed)
    rows, labels = [], []
    for b in range(5):
        n = int(torch.randint(3, 30, (1,), generator=g))
        ids = torch.randint(3, 64, (n,), generator=g).tolist()
        ids[0] = 1
        if b != 2:  # row 2 is text-only
            ids[int(torch.randint(1, n, (1,), generator=g))] = IMAGE_TOKEN_INDEX
        lab = [t if (i > n // 2 and t != IMAGE_TOKEN_INDEX) else IGNORE_INDEX for i, t in enumerate(ids)]
        rows.append(ids)
        labels.append(lab)
    width = max(len(r) for r in rows)
    ids = torch.zeros(5, width, dtype=torch.long)
    lab = torch.full((5, width), IGNORE_INDEX)
    mask = torch.zeros(5, width, dtype=torch.long)
    for b, (r, l) in enumerate(zip(rows, labels)):
        ids[b, : len(r)] = torch.tensor(r)
        lab[b, : len(l)] = torch.tensor(l)
        mask[b, : len(r)] = 1
    return ids, mask, lab


@pytest.mark.parametrize("seed,max_len", [(0, None), (1, None), (2, 20), (3, 12)])
def test_vectorised_equals_per_sample(seed, max_len):
    model = tiny_model(seed=seed, tokenizer_model_max_length=max_len)
    ids, mask, labels = _batch(seed, max_len)
    n_images = int((ids == IMAGE_TOKEN_INDEX).sum())
    images = torch.randn(n_images, 3, 8, 8, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        mb, weights = model.prepare_multimodal_inputs(ids, mask, images, labels, align_mode="global", padding_side="right")
        feats = model.encode_images(images)
        slots = model.align_indicators.compose("global", None, ids.shape[0])
        ref = assemble_per_sample(model, ids, mask, feats, labels, slots)
    torch.testing.assert_close(mb.inputs_embeds, ref[0], atol=0, rtol=0)
    assert torch.equal(mb.attention_mask, ref[1])
    assert torch.equal(mb.position_ids * mb.attention_mask, ref[2])
    assert torch.equal(mb.labels, ref[3])
