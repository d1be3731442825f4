"""``--batch-size auto``: the largest batch of the longest prompts that fits, with headroom."""
from __future__ import annotations

from typing import Sequence

import torch

from ..data.base import Sample
from .batched import InferenceEngine

CPU_DEFAULT = 8
CANDIDATES = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def auto_batch_size(engine: InferenceEngine, samples: Sequence[Sample], *, template: str, max_new_tokens: int,
                    pad_to_square: bool, headroom: float = 0.8) -> int:
    """On CUDA, probe doubling batch sizes on the longest prompts (full answer budget) until OOM,
    then keep ``headroom`` of the last size that fitted. On CPU, memory is not the limit: 8."""
    if engine.device.type != "cuda" or not samples:
        return CPU_DEFAULT
    lengths = sorted(samples, key=lambda s: -len(engine.processor.tokenize(engine.prompt_for(s, template))))
    best = 1
    for size in CANDIDATES:
        probe = (lengths * ((size // max(len(lengths), 1)) + 1))[:size]
        try:
            engine.generate(probe, template=template, max_new_tokens=max_new_tokens,
                            pad_to_square=pad_to_square, batch_size=size)
            best = size
        except torch.cuda.OutOfMemoryError:
            break
        finally:
            torch.cuda.empty_cache()
        if size >= len(samples):
            break
    return max(1, int(best * headroom)) if best > 1 else 1
