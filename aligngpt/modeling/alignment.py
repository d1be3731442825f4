"""Alignment levels: the N level embeddings and the gate that mixes them.

Released key names (``align_indicators.indicator_embs``, ``gated_weight_layer.mlp.{0,2}``) are
kept so released state dicts load without renaming. Row N-1 is the "global" level H_N; rows
0..N-2 are the local levels the gate weighs.
"""
from __future__ import annotations

import torch
from torch import nn


class AlignIndicator(nn.Module):
    def __init__(self, n_indicators: int, hidden_size: int):
        super().__init__()
        self.indicator_embs = nn.Parameter(torch.empty(n_indicators, hidden_size))
        nn.init.xavier_uniform_(self.indicator_embs)

    @property
    def n_levels(self) -> int:
        return self.indicator_embs.shape[0]

    def lookup(self, align_ids: torch.Tensor) -> torch.Tensor:
        """Pretraining: the embedding of each sample's level, [B, H]."""
        return self.indicator_embs[align_ids]

    def compose(self, kind: str, weights: torch.Tensor | None, batch: int, level: int | None = None) -> torch.Tensor:
        """The alignment vector of each row, [B, H], for an inference-time mode.

        gated: w @ E[:-1] + E[-1]; local: w @ E[:-1]; global: E[-1];
        average: mean(E[:-1]) + E[-1]; fixed: E[level].
        """
        emb = self.indicator_embs
        if kind == "gated":
            return weights.to(emb.dtype) @ emb[:-1] + emb[-1]
        if kind == "local":
            return weights.to(emb.dtype) @ emb[:-1]
        if kind == "global":
            return emb[-1].expand(batch, -1)
        if kind == "average":
            return (emb[:-1].mean(dim=0) + emb[-1]).expand(batch, -1)
        if kind == "fixed":
            return emb[level].expand(batch, -1)
        raise ValueError(f"no alignment vector for mode {kind!r}")


class GatedWeightLayer(nn.Module):
    """softmax(MLP(dots)) where dots[i] = <image token i, mean prompt word embedding>.

    The input width is the vision tower's patch count (576 for CLIP-336), not a constant.
    """

    def __init__(self, num_image_tokens: int, n_outputs: int, hidden: int = 256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(num_image_tokens, hidden), nn.GELU(), nn.Linear(hidden, n_outputs))

    def forward(self, image_embeds: torch.Tensor, text_sum: torch.Tensor, text_count: torch.Tensor) -> torch.Tensor:
        # Same order of operations as the reference (mm_align.py L31-40): count cast to the text
        # dtype, mean = sum / (count + 1e-8), per-patch dot product, MLP, softmax.
        scale = text_count.to(text_sum.dtype).unsqueeze(-1)
        avg = text_sum / (scale + 1e-8)
        dots = torch.sum(image_embeds * avg[:, None, :], dim=-1)
        return torch.softmax(self.mlp(dots), dim=-1)
