"""``--batch-size auto``: on a GPU, batches sized by a KV-memory token budget; on a CPU, 8.

The budget is arithmetic, not a probe: the device's free memory (after the weights are loaded)
times a headroom, divided by what one padded token costs (its keys and values in every layer
plus one layer's prefill activations). Batches then hold up to ``MAX_GPU_BATCH`` questions, as
many as the budget allows for their length (``planner.plan_batches``).
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..data.base import Sample
from .batched import InferenceEngine
from .planner import MAX_GPU_BATCH, token_budget_for_memory

CPU_DEFAULT = 8


def gpu_token_budget(engine: InferenceEngine, headroom: float = 0.8) -> int:
    """Padded tokens per batch that fit in the engine device's free memory."""
    device = engine.device
    free, _ = torch.cuda.mem_get_info(device)
    free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)  # our cached blocks
    dtype = next(engine.model.parameters()).dtype
    return token_budget_for_memory(engine.model.config, dtype, free, headroom)


def auto_batch_size(engine: InferenceEngine, samples: Sequence[Sample], *, template: str, max_new_tokens: int,
                    pad_to_square: bool, headroom: float = 0.8) -> int:
    """The row cap for ``engine``; on CUDA it also sets ``engine.token_budget`` (the real bound)."""
    if engine.device.type != "cuda" or not samples:
        return CPU_DEFAULT
    engine.token_budget = gpu_token_budget(engine, headroom)
    return MAX_GPU_BATCH
