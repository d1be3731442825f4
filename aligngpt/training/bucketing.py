"""Turning CLIP similarities into N discrete alignment levels (paper Eq. 1, ``l = bucket(s)``).

The paper says pairs are ranked and put into "one of N equally spaced intervals" without saying
whether the intervals are equal in score (``width``) or in rank (``quantile``); no script was
released (docs/reference-code.md, quirk 21). Both are offered; ``quantile`` is the default
because the reference indexes level N-1 as the "global" level and equal-count levels make every
level trained on the same number of pairs.

Levels are 0-based (0 = least aligned, N-1 = most aligned), as the reference's ``similarity``
field (it indexes ``indicator_embs[similarity]`` directly).
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Sequence

from aligngpt.errors import ConfigError

BUCKETINGS = ("quantile", "width")


@dataclass
class Bucketing:
    """Levels of every pair plus what the report shows about the buckets."""

    method: str
    n_levels: int
    levels: list[int]
    edges: list[float | None]
    """N+1 boundaries. width: lo + k*(hi-lo)/N. quantile: [min, lowest score of level 1, ...,
    lowest score of level N-1, max] (None where a level is empty)."""
    counts: list[int] = field(default_factory=list)
    level_min: list[float | None] = field(default_factory=list)
    level_max: list[float | None] = field(default_factory=list)
    level_mean: list[float | None] = field(default_factory=list)


def quantile_levels(scores: Sequence[float], n_levels: int) -> list[int]:
    """Equal counts after ranking: the pair of rank r (0 = lowest) gets level floor(r*N/M).

    Ranking is by (score, position in the data file), so ties are broken by file order: of two
    equal scores the earlier record ranks lower. Tied scores may therefore straddle a level
    boundary; that is the price of exactly balanced counts. Level sizes differ by at most one:
    level l holds ceil((l+1)M/N) - ceil(lM/N) pairs.
    """
    m = len(scores)
    order = sorted(range(m), key=lambda i: (scores[i], i))
    levels = [0] * m
    for rank, index in enumerate(order):
        levels[index] = rank * n_levels // m
    return levels


def width_edges(lo: float, hi: float, n_levels: int) -> list[float]:
    return [lo + (hi - lo) * k / n_levels for k in range(n_levels + 1)]


def width_levels(scores: Sequence[float], n_levels: int) -> tuple[list[int], list[float]]:
    """Equal-width intervals over [min, max]: level = number of interior edges <= score.

    A score exactly on an interior edge goes to the upper level; the maximum score lands in
    level N-1. If every score is equal there is no interval to split: all pairs get level 0.
    """
    lo, hi = min(scores), max(scores)
    edges = width_edges(lo, hi, n_levels)
    if hi == lo:
        return [0] * len(scores), edges
    interior = edges[1:-1]
    return [bisect.bisect_right(interior, s) for s in scores], edges


def bucketize(scores: Sequence[float], n_levels: int, method: str = "quantile") -> Bucketing:
    if n_levels < 2:
        raise ConfigError(f"--levels must be at least 2, got {n_levels}")
    if method not in BUCKETINGS:
        raise ConfigError(f"--bucketing must be one of {', '.join(BUCKETINGS)}, got {method!r}")
    if not scores:
        raise ConfigError("no scores to bucket (empty data)")
    bad = [i for i, s in enumerate(scores) if not math.isfinite(s)]
    if bad:
        raise ConfigError(f"{len(bad)} non-finite similarity scores, e.g. at record {bad[0]}")
    if method == "quantile":
        levels = quantile_levels(scores, n_levels)
        edges: list[float | None] = []
    else:
        levels, width = width_levels(scores, n_levels)
        edges = list(width)
    result = Bucketing(method, n_levels, levels, edges)
    _summarise(result, scores)
    if method == "quantile":
        result.edges = [min(scores)] + result.level_min[1:] + [max(scores)]
    return result


def _summarise(result: Bucketing, scores: Sequence[float]) -> None:
    n = result.n_levels
    groups: list[list[float]] = [[] for _ in range(n)]
    for level, score in zip(result.levels, scores):
        groups[level].append(score)
    result.counts = [len(g) for g in groups]
    result.level_min = [min(g) if g else None for g in groups]
    result.level_max = [max(g) if g else None for g in groups]
    result.level_mean = [sum(g) / len(g) if g else None for g in groups]
