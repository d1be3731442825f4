"""What the statistics return: a CI, a paired difference with its p-value, a McNemar test."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CI:
    """A point estimate with a bootstrap confidence interval (same units as the metric)."""

    point: float
    low: float
    high: float
    se: float
    alpha: float = 0.05
    n_resamples: int = 0
    """Resamples whose metric was finite (the others are dropped)."""
    method: str = "percentile"

    @property
    def half_width(self) -> float:
        """Half the interval width: what a table prints after ``±``."""
        return (self.high - self.low) / 2.0

    def as_dict(self) -> dict[str, Any]:
        return {"point": self.point, "low": self.low, "high": self.high, "se": self.se,
                "alpha": self.alpha, "n_resamples": self.n_resamples, "method": self.method}


@dataclass(frozen=True)
class PairedResult:
    """Difference ``metric(A) - metric(B)`` on the same questions, with a two-sided p-value."""

    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    se: float = math.nan
    n_resamples: int = 0
    method: str = "paired-bootstrap"

    def as_dict(self) -> dict[str, Any]:
        return {"diff": self.diff, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "p_value": self.p_value, "se": self.se, "n_resamples": self.n_resamples,
                "method": self.method}


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test on per-question correctness of two systems."""

    a_only: int
    """Questions A got right and B got wrong."""
    b_only: int
    """Questions B got right and A got wrong."""
    n: int
    """All paired questions (concordant ones included)."""
    p_value: float

    def as_dict(self) -> dict[str, Any]:
        return {"a_only": self.a_only, "b_only": self.b_only, "n": self.n, "p_value": self.p_value}
