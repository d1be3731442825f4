"""The fast path: a metric written as a function of column sums of per-item features.

Because a resample's sums are ``counts @ cluster_sums``, all resamples are evaluated with one
matrix product, and clusters and strata cost nothing extra.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np


@dataclass
class SumStatistic:
    """A metric that is a function of column sums of per-item features (the fast path).

    ``features`` is ``(n_items, k)``; ``fn`` maps a ``(b, k)`` array of summed features (one row
    per resample) to ``(b,)`` metric values.  Summing is what makes clusters and strata free:
    a resample's sums are ``counts @ cluster_sums``.
    """

    features: np.ndarray
    fn: Callable[[np.ndarray], np.ndarray]
    name: str = "statistic"

    def __post_init__(self) -> None:
        feats = np.asarray(self.features, dtype=np.float64)
        if feats.ndim == 1:
            feats = feats[:, None]
        if feats.ndim != 2:
            raise ValueError(f"{self.name}: features must be 2-D (n_items, k), got shape {feats.shape}")
        if not np.all(np.isfinite(feats)):
            raise ValueError(f"{self.name}: features contain NaN/inf; drop missing items first")
        self.features = feats

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def evaluate(self, sums: np.ndarray) -> np.ndarray:
        sums = np.atleast_2d(np.asarray(sums, dtype=np.float64))
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.asarray(self.fn(sums), dtype=np.float64)
        if out.shape != (sums.shape[0],):
            raise ValueError(f"{self.name}: fn must return shape ({sums.shape[0]},), got {out.shape}")
        return out

    def point(self) -> float:
        return float(self.evaluate(self.features.sum(axis=0))[0])


def _finite_scores(scores: Iterable[float], what: str) -> np.ndarray:
    arr = np.asarray(list(scores) if not isinstance(scores, np.ndarray) else scores, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D sequence of per-item scores, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{what}: no items")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: per-item scores contain NaN/inf (missing judgements must be dropped first)")
    return arr


def mean_statistic(scores: Iterable[float], *, scale: float = 1.0) -> SumStatistic:
    """Mean of per-item scores times ``scale`` (use ``scale=100`` for percent)."""
    arr = _finite_scores(scores, "mean_statistic")
    feats = np.stack([arr, np.ones_like(arr)], axis=1)
    return SumStatistic(feats, lambda s: scale * s[:, 0] / s[:, 1], name="mean")


def ratio_statistic(numerator: Iterable[float], denominator: Iterable[float], *,
                    scale: float = 1.0) -> SumStatistic:
    """``scale * sum(numerator) / sum(denominator)``: e.g. LLaVA-Bench's relative score."""
    num = _finite_scores(numerator, "ratio_statistic numerator")
    den = _finite_scores(denominator, "ratio_statistic denominator")
    if num.shape != den.shape:
        raise ValueError(f"ratio_statistic: {num.size} numerators vs {den.size} denominators")
    return SumStatistic(np.stack([num, den], axis=1), lambda s: scale * s[:, 0] / s[:, 1], name="ratio")
