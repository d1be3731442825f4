"""Vision-to-language projectors, with the released key layout (``mm_projector.0/.2``)."""
from __future__ import annotations

import re

from torch import nn


class IdentityProjector(nn.Module):
    def forward(self, x):
        return x


def build_projector(projector_type: str, vision_hidden: int, hidden: int) -> nn.Module:
    if projector_type == "linear":
        return nn.Linear(vision_hidden, hidden)
    if projector_type == "identity":
        return IdentityProjector()
    match = re.fullmatch(r"mlp(\d+)x_gelu", projector_type)
    if match:
        depth = int(match.group(1))
        layers: list[nn.Module] = [nn.Linear(vision_hidden, hidden)]
        for _ in range(1, depth):
            layers += [nn.GELU(), nn.Linear(hidden, hidden)]
        return nn.Sequential(*layers)
    raise ValueError(f"unknown mm_projector_type {projector_type!r} (linear, identity, mlpNx_gelu)")
