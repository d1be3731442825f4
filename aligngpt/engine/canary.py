"""Batch-invariance canary: the same questions at batch size 1 and at the run's batch size.

Batched greedy decoding must not change an answer. Before a long run (and on demand) a spread of
questions — short and long prompts, so rows get padded — is generated both ways; any difference
stops the run with a report instead of silently changing scores (lmms-eval's failure mode).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..data.base import Sample
from ..errors import AlignGPTError
from .batched import InferenceEngine


class BatchInvarianceError(AlignGPTError):
    pass


@dataclass
class CanaryReport:
    checked: int
    mismatches: list[dict]

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def describe(self) -> str:
        lines = [f"batch-invariance canary: {len(self.mismatches)} of {self.checked} answers differ between batch size 1 and the run's batch size"]
        for m in self.mismatches[:5]:
            lines.append(f"  question {m['question_id']!r}: bs=1 {m['batch_1']!r} vs bs={m['batch_size']} {m['batched']!r}")
        return "\n".join(lines)


def pick_canary_samples(samples: Sequence[Sample], count: int) -> list[Sample]:
    """Evenly spaced over the list (deterministic), so lengths and image/text rows mix."""
    if len(samples) <= count:
        return list(samples)
    step = len(samples) / count
    return [samples[int(i * step)] for i in range(count)]


def run_canary(
    engine: InferenceEngine,
    samples: Sequence[Sample],
    *,
    template: str,
    max_new_tokens: int,
    pad_to_square: bool,
    count: int = 8,
) -> CanaryReport:
    size = max(2, min(engine.batch_size, count))
    chosen = pick_canary_samples(samples, size)
    single, _ = engine.generate(chosen, template=template, max_new_tokens=max_new_tokens,
                                pad_to_square=pad_to_square, batch_size=1)
    batched, _ = engine.generate(chosen, template=template, max_new_tokens=max_new_tokens,
                                 pad_to_square=pad_to_square, batch_size=size)
    by_key = {p.key: p.text for p in batched}
    mismatches = [
        {"question_id": p.question_id, "batch_1": p.text, "batched": by_key.get(p.key), "batch_size": size}
        for p in single
        if by_key.get(p.key) != p.text
    ]
    return CanaryReport(len(single), mismatches)
