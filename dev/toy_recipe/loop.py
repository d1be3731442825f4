"""The plain training-loop pieces the recipe's own trainers (tiny CLIP, base LM) share.

The AlignGPT stages go through ``aligngpt-train`` (the HF Trainer); these two models are trained
before that exists, with a loop small enough to read in one screen, and these helpers keep the
two loops' schedules, batch order and optimiser step identical by construction.
"""
from __future__ import annotations

import math
import os
from typing import Iterable, Iterator

import torch


def train_device() -> str:
    """Where the recipe's own loops train: ``ALIGNGPT_TOY_DEVICE`` (``cpu`` unless set). Only the
    CPU is deterministic across machines; a GPU run is for exploring recipes quickly."""
    return os.environ.get("ALIGNGPT_TOY_DEVICE", "cpu")


def warmup_cosine(step: int, *, peak: float, warmup: int, total: int, floor: float = 0.0) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from ``peak`` down to ``floor * peak``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def seeded_batches(n: int, batch: int, generator: torch.Generator) -> Iterator[list[int]]:
    """Endless batches of ``batch`` indices of ``range(n)``: one seeded permutation at a time, a
    fresh one when the rest of the current one cannot fill a batch (its tail is skipped)."""
    order, cursor = torch.randperm(n, generator=generator), 0
    while True:
        if cursor + batch > len(order):
            order, cursor = torch.randperm(n, generator=generator), 0
        yield order[cursor: cursor + batch].tolist()
        cursor += batch


#: AdamW's betas of the language-model loops (base LM, drills; LLaMA's pretraining choice). The tiny
#: CLIP keeps torch's defaults.
BETAS = (0.9, 0.95)


def adamw(params, lr: float, weight_decay: float = 0.0) -> torch.optim.AdamW:
    """The optimiser of the language-model loops; ``params`` may be parameter groups."""
    return torch.optim.AdamW(params, lr=lr, betas=BETAS, weight_decay=weight_decay)


def optimizer_step(opt: torch.optim.Optimizer, loss: torch.Tensor, lr: float,
                   clipped: Iterable[torch.nn.Parameter], max_norm: float = 1.0) -> None:
    """Set the learning rate, back-propagate, clip ``clipped`` to ``max_norm``, step."""
    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(clipped, max_norm)
    opt.step()
