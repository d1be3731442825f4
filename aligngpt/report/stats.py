"""Uncertainty for benchmark scores: bootstrap CIs, paired tests, McNemar.

Benchmark numbers of two ablation rows often differ by a few tenths of a point, so every
comparison needs an error bar that respects how the metric is built:

* **clusters** are resampled whole (MME: the two questions of one image, because acc+ needs
  both; MMBench: a question and all its circular copies; POPE: the questions about one image);
* **strata** keep their size in every resample (POPE: each of the three splits; MME: each
  subtask), so a metric defined per stratum is always computed over as many units as in the
  real benchmark.

Two paths compute the metric on a resample:

* the *fast path*, a :class:`SumStatistic`: the metric is a function of column sums of a
  per-item feature matrix (a mean is ``sum(score) / sum(1)``; POPE F1 is a function of
  TP/FP/FN sums; MME is a function of per-image counts).  All resamples are evaluated at once
  with one matrix product;
* the *general path*: any ``metric_fn(items_subset)`` (or ``metric_fn(items_subset,
  predictions)``), for example an evaluator's ``score`` followed by a key path (see
  :func:`evaluator_metric`).

Both paths draw the same resamples for the same ``seed``, so they agree exactly on a mean.
Confidence intervals use the **percentile method**: the ``alpha/2`` and ``1 - alpha/2``
quantiles (numpy's linear interpolation) of the bootstrap distribution of the metric; ``se`` is
the standard deviation of that distribution.  Everything is deterministic given ``seed`` (and
``block``, the number of resamples drawn per batch).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Iterator, Mapping, Sequence, Union

import numpy as np

from ..io import iter_jsonl

# --------------------------------------------------------------------------- results


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


# --------------------------------------------------------------------------- fast statistics


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


# --------------------------------------------------------------------------- resampling plan

KeySpec = Union[None, Callable[[Any], Hashable], Sequence[Hashable]]


def _labels(items: Sequence[Any] | None, n: int, key: KeySpec, what: str) -> list[Hashable] | None:
    if key is None:
        return None
    if callable(key):
        if items is None:
            raise ValueError(f"{what} is a function but no items were given to apply it to")
        return [key(it) for it in items]
    labels = list(key)
    if len(labels) != n:
        raise ValueError(f"{what}: {len(labels)} labels for {n} items")
    return labels


@dataclass
class _Plan:
    """Which items form each cluster and which clusters form each stratum."""

    n_items: int
    cluster_of: np.ndarray  # (n_items,) cluster code
    members: list[np.ndarray]  # cluster code -> item indices, original order
    strata: list[np.ndarray]  # stratum -> cluster codes

    @property
    def n_clusters(self) -> int:
        return len(self.members)


def _make_plan(items: Sequence[Any] | None, n: int, cluster_key: KeySpec, strata_key: KeySpec) -> _Plan:
    if n <= 0:
        raise ValueError("bootstrap needs at least one item")
    c_labels = _labels(items, n, cluster_key, "cluster_key")
    s_labels = _labels(items, n, strata_key, "strata_key")
    if c_labels is None:
        cluster_of = np.arange(n)
    else:
        codes: dict[Hashable, int] = {}
        cluster_of = np.fromiter((codes.setdefault(lab, len(codes)) for lab in c_labels), dtype=np.int64, count=n)
    m = int(cluster_of.max()) + 1
    order = np.argsort(cluster_of, kind="stable")
    bounds = np.searchsorted(cluster_of[order], np.arange(m + 1))
    members = [order[bounds[c]:bounds[c + 1]] for c in range(m)]
    if s_labels is None:
        strata = [np.arange(m)]
    else:
        s_codes: dict[Hashable, int] = {}
        stratum_of = np.full(m, -1, dtype=np.int64)
        for i, lab in enumerate(s_labels):
            code = s_codes.setdefault(lab, len(s_codes))
            c = cluster_of[i]
            if stratum_of[c] == -1:
                stratum_of[c] = code
            elif stratum_of[c] != code:
                raise ValueError(
                    f"cluster of item {i} spans strata {list(s_codes)[stratum_of[c]]!r} and {lab!r}; "
                    "clusters must be nested in strata")
        strata = [np.flatnonzero(stratum_of == s) for s in range(len(s_codes))]
    return _Plan(n, cluster_of, members, strata)


def _draw_blocks(plan: _Plan, n_resamples: int, seed: int, block: int) -> Iterator[np.ndarray]:
    """Yield ``(b, n_clusters)`` arrays of sampled cluster codes, sorted within each row.

    Each stratum is resampled with replacement to its own size; sorting keeps a resample in the
    benchmark's original order (repeats adjacent), which order-dependent scorers need.
    """
    if n_resamples < 1:
        raise ValueError("n_resamples must be >= 1")
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_resamples:
        b = min(block, n_resamples - done)
        parts = [s[rng.integers(0, s.size, size=(b, s.size))] for s in plan.strata]
        yield np.sort(np.concatenate(parts, axis=1), axis=1)
        done += b


def _counts(idx: np.ndarray, m: int) -> np.ndarray:
    b = idx.shape[0]
    flat = (idx + (np.arange(b, dtype=np.int64) * m)[:, None]).ravel()
    return np.bincount(flat, minlength=b * m).reshape(b, m).astype(np.float64)


def _cluster_sums(stat: SumStatistic, plan: _Plan) -> np.ndarray:
    sums = np.zeros((plan.n_clusters, stat.features.shape[1]))
    np.add.at(sums, plan.cluster_of, stat.features)
    return sums


def _subset(items: Sequence[Any], plan: _Plan, row: np.ndarray) -> list[Any]:
    return [items[i] for c in row for i in plan.members[c]]


def _call(metric_fn: Callable[..., float], subset: list[Any], predictions: Any) -> float:
    value = metric_fn(subset) if predictions is None else metric_fn(subset, predictions)
    return float(value)


def _percentile_ci(point: float, boot: np.ndarray, alpha: float, method: str) -> CI:
    good = boot[np.isfinite(boot)]
    if good.size < max(2, boot.size // 2):
        raise ValueError(f"metric is undefined (NaN/inf) in {boot.size - good.size} of {boot.size} resamples")
    low, high = np.quantile(good, [alpha / 2.0, 1.0 - alpha / 2.0])
    return CI(float(point), float(low), float(high), float(good.std(ddof=1)), alpha, int(good.size), method)


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


# --------------------------------------------------------------------------- public API


def bootstrap_ci(items: Sequence[Any] | None, metric_fn: Callable[..., float] | SumStatistic | None = None,
                 *, predictions: Any = None, cluster_key: KeySpec = None, strata_key: KeySpec = None,
                 n_resamples: int = 1000, alpha: float = 0.05, seed: int = 0, block: int = 256) -> CI:
    """Percentile bootstrap CI of a metric over questions.

    * ``metric_fn=None``: ``items`` are per-item numeric scores and the metric is their mean
      (fast path);
    * ``metric_fn`` a :class:`SumStatistic`: fast path; ``items`` may be None (then keys must be
      label sequences);
    * otherwise ``metric_fn(subset)`` -- or ``metric_fn(subset, predictions)`` when
      ``predictions`` is given -- is called once per resample (general path).

    ``cluster_key``/``strata_key``: a function of an item or a sequence of labels (one per item).
    """
    _check_alpha(alpha)
    if metric_fn is None:
        if items is None:
            raise ValueError("bootstrap_ci: give items (scores) or a metric")
        metric_fn = mean_statistic(items)
    if isinstance(metric_fn, SumStatistic):
        stat = metric_fn
        n = len(stat)
        if items is not None and len(items) != n:
            raise ValueError(f"bootstrap_ci: {len(items)} items but the statistic has {n} rows")
        plan = _make_plan(items, n, cluster_key, strata_key)
        csum = _cluster_sums(stat, plan)
        boot = np.concatenate([stat.evaluate(_counts(idx, plan.n_clusters) @ csum)
                               for idx in _draw_blocks(plan, n_resamples, seed, block)])
        return _percentile_ci(stat.point(), boot, alpha, "percentile")
    if items is None:
        raise ValueError("bootstrap_ci: the general path needs items")
    items = list(items)
    plan = _make_plan(items, len(items), cluster_key, strata_key)
    point = _call(metric_fn, items, predictions)
    boot = np.array([_call(metric_fn, _subset(items, plan, row), predictions)
                     for idx in _draw_blocks(plan, n_resamples, seed, block) for row in idx])
    return _percentile_ci(point, boot, alpha, "percentile")


def _as_statistic(x: Any, n: int | None, what: str) -> SumStatistic | None:
    if isinstance(x, SumStatistic):
        return x
    if callable(x) or x is None:
        return None
    stat = mean_statistic(x)
    if n is not None and len(stat) != n:
        raise ValueError(f"{what}: {len(stat)} per-item scores for {n} items")
    return stat


def _paired_p(diff: float, boot: np.ndarray) -> float:
    """Two-sided p from the bootstrap distribution shifted to the null (centred at 0)."""
    extreme = np.abs(boot - diff) >= abs(diff) - 1e-12 * max(1.0, abs(diff))
    return float((1 + int(extreme.sum())) / (boot.size + 1))


def paired_test(items: Sequence[Any] | None, a: Any, b: Any = None, *, predictions_a: Any = None,
                predictions_b: Any = None, method: str = "bootstrap", cluster_key: KeySpec = None,
                strata_key: KeySpec = None, n_resamples: int = 1000, alpha: float = 0.05, seed: int = 0,
                block: int = 256) -> PairedResult:
    """Compare two systems on the SAME questions: ``diff = metric(A) - metric(B)``.

    ``a``/``b`` are each per-item scores (aligned with ``items``), a :class:`SumStatistic`, or a
    metric function.  With one function and ``b=None`` the same function scores
    ``predictions_a`` and ``predictions_b`` (the usual "same evaluator, two runs" case).

    ``method="bootstrap"``: paired bootstrap -- every resample draws the same clusters for both
    systems; CI = percentile interval of the resampled differences; p-value = share of centred
    resampled differences at least as far from 0 as the observed one ((1+k)/(B+1)).
    ``method="permutation"``: :func:`sign_flip_test` on per-item scores.
    """
    _check_alpha(alpha)
    n = None if items is None else len(items)
    if b is None:
        if not callable(a) or isinstance(a, SumStatistic):
            raise ValueError("paired_test: b may be omitted only when a is a metric function")
        b = a
    sa, sb = _as_statistic(a, n, "a"), _as_statistic(b, n, "b")
    if method == "permutation":
        if sa is None or sb is None or sa.name != "mean" or sb.name != "mean":
            raise ValueError("the sign-flip permutation test needs per-item scores for both systems")
        clusters = _labels(items, len(sa), cluster_key, "cluster_key")
        return sign_flip_test(sa.features[:, 0], sb.features[:, 0], clusters=clusters,
                              n_permutations=n_resamples, seed=seed)
    if method != "bootstrap":
        raise ValueError(f"unknown method {method!r}; use 'bootstrap' or 'permutation'")
    if (sa is None) != (sb is None):
        raise TypeError("paired_test: a and b must both be metric functions or both be scores/statistics")
    if sa is not None:
        if len(sa) != len(sb):
            raise ValueError(f"paired_test: {len(sa)} items for A but {len(sb)} for B")
        plan = _make_plan(items, len(sa), cluster_key, strata_key)
        ca, cb = _cluster_sums(sa, plan), _cluster_sums(sb, plan)
        diff = sa.point() - sb.point()
        parts = []
        for idx in _draw_blocks(plan, n_resamples, seed, block):
            counts = _counts(idx, plan.n_clusters)
            parts.append(sa.evaluate(counts @ ca) - sb.evaluate(counts @ cb))
        boot = np.concatenate(parts)
    else:
        if items is None:
            raise ValueError("paired_test: metric functions need items")
        items = list(items)
        plan = _make_plan(items, len(items), cluster_key, strata_key)
        diff = _call(a, items, predictions_a) - _call(b, items, predictions_b)
        vals = []
        for idx in _draw_blocks(plan, n_resamples, seed, block):
            for row in idx:
                sub = _subset(items, plan, row)
                vals.append(_call(a, sub, predictions_a) - _call(b, sub, predictions_b))
        boot = np.array(vals)
    ci = _percentile_ci(diff, boot, alpha, "paired-bootstrap")
    good = boot[np.isfinite(boot)]
    return PairedResult(float(diff), ci.low, ci.high, _paired_p(diff, good), ci.se, ci.n_resamples,
                        "paired-bootstrap")


def sign_flip_test(scores_a: Iterable[float], scores_b: Iterable[float], *,
                   clusters: Sequence[Hashable] | None = None, n_permutations: int = 10000,
                   exact_max_clusters: int = 16, seed: int = 0, scale: float = 1.0) -> PairedResult:
    """Paired permutation test: under H0 the A/B labels of each cluster are exchangeable.

    The statistic is ``|sum of per-cluster sums of (a - b)|``; flipping the sign of a cluster's
    difference swaps A and B on all its questions.  With at most ``exact_max_clusters`` clusters
    whose difference is non-zero all ``2^m`` flips are enumerated (exact p-value); otherwise
    ``n_permutations`` random flips give ``(1+k)/(R+1)``.  ``diff`` = mean(a) - mean(b), times
    ``scale``; there is no CI (NaN).
    """
    a = _finite_scores(scores_a, "sign_flip_test A")
    b = _finite_scores(scores_b, "sign_flip_test B")
    if a.shape != b.shape:
        raise ValueError(f"sign_flip_test: {a.size} scores for A but {b.size} for B")
    d = a - b
    plan = _make_plan(None, d.size, clusters, None)
    dc = np.zeros(plan.n_clusters)
    np.add.at(dc, plan.cluster_of, d)
    dc = dc[np.abs(dc) > 1e-12]
    diff = float(scale * d.mean())
    observed = abs(float(dc.sum()))
    tol = 1e-9 * max(1.0, observed)
    m = dc.size
    if m == 0:
        return PairedResult(diff, math.nan, math.nan, 1.0, math.nan, 0, "sign-flip exact")
    if m <= exact_max_clusters:
        codes = np.arange(2 ** m, dtype=np.int64)
        signs = 1.0 - 2.0 * ((codes[:, None] >> np.arange(m)) & 1)
        hits = int((np.abs(signs @ dc) >= observed - tol).sum())
        return PairedResult(diff, math.nan, math.nan, hits / float(2 ** m), math.nan, 2 ** m, "sign-flip exact")
    rng = np.random.default_rng(seed)
    hits, done = 0, 0
    while done < n_permutations:
        r = min(2048, n_permutations - done)
        signs = rng.integers(0, 2, size=(r, m)) * 2.0 - 1.0
        hits += int((np.abs(signs @ dc) >= observed - tol).sum())
        done += r
    return PairedResult(diff, math.nan, math.nan, (1 + hits) / (n_permutations + 1.0), math.nan,
                        n_permutations, "sign-flip monte-carlo")


def _binom_cdf_half(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), exact for moderate n, log-space beyond."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if n <= 20000:
        term, total = 1, 1
        for i in range(k):
            term = term * (n - i) // (i + 1)
            total += term
        return total / (1 << n)
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2.0)
            for i in range(k + 1)]
    top = max(logs)
    return math.exp(top) * math.fsum(math.exp(v - top) for v in logs)


def mcnemar_exact(correct_a: Iterable[Any], correct_b: Iterable[Any]) -> McNemarResult:
    """Exact (binomial) McNemar test for binary per-question correctness.

    Only discordant questions matter: with ``a_only`` and ``b_only`` of them, under H0 each is
    A's with probability 1/2, so ``p = min(1, 2 * P(Bin(a_only + b_only, 1/2) <= min))``.
    """
    a = np.asarray(list(correct_a) if not isinstance(correct_a, np.ndarray) else correct_a)
    b = np.asarray(list(correct_b) if not isinstance(correct_b, np.ndarray) else correct_b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"mcnemar_exact: shapes {a.shape} and {b.shape} must be equal and 1-D")
    for name, arr in (("A", a), ("B", b)):
        vals = set(np.unique(arr.astype(np.float64)).tolist()) if arr.size else set()
        if not vals <= {0.0, 1.0}:
            raise ValueError(f"mcnemar_exact: correctness of {name} must be 0/1, got values {sorted(vals)[:5]}")
    a, b = a.astype(bool), b.astype(bool)
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    n_disc = a_only + b_only
    p = 1.0 if n_disc == 0 else min(1.0, 2.0 * _binom_cdf_half(min(a_only, b_only), n_disc))
    return McNemarResult(a_only, b_only, int(a.size), p)


# --------------------------------------------------------------------------- evaluator bridge


def metric_at(metrics: Mapping[str, Any], path: str | Sequence[str]) -> float:
    """Read ``"splits.random.f1"`` (or ``("splits", "random", "f1")``) from nested metrics."""
    parts = path.split(".") if isinstance(path, str) else list(path)
    node: Any = metrics
    for depth, part in enumerate(parts):
        if not isinstance(node, Mapping) or part not in node:
            where = ".".join(parts[:depth]) or "<top>"
            keys = sorted(node) if isinstance(node, Mapping) else type(node).__name__
            raise KeyError(f"metric {'.'.join(parts)!r}: no {part!r} under {where} (has {keys})")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, (int, float, np.integer, np.floating)):
        raise TypeError(f"metric {'.'.join(parts)!r} is {type(node).__name__}, not a number")
    return float(node)


def evaluator_metric(evaluator: Any, path: str | Sequence[str], *, relabel: bool = False
                     ) -> Callable[[Sequence[Any], Mapping[str, str]], float]:
    """``metric_fn(samples, predictions)`` that scores with an evaluator and reads one key.

    ``evaluator`` is an :class:`~aligngpt.evaluators.base.Evaluator` or its registered name.
    A resample repeats some clusters.  With ``relabel=False`` the repeats are passed as they
    are (same ``question_id``): right for evaluators that loop over the sample list.  With
    ``relabel=True`` the k-th repeat of a sample gets id ``"<id>#k"`` (and the prediction is
    copied), which evaluators that index by question id need -- but not ones that parse ids as
    numbers (MMBench groups circular copies by ``index % 1e6``); use :func:`task_statistic`
    for MME, MMBench and POPE.
    """
    if isinstance(evaluator, str):
        from ..evaluators.base import get_evaluator

        evaluator = get_evaluator(evaluator)

    def fn(samples: Sequence[Any], predictions: Mapping[str, str]) -> float:
        samples = list(samples)
        if relabel:
            seen: dict[str, int] = {}
            fresh, preds = [], dict(predictions)
            for s in samples:
                k = seen.get(s.key, 0)
                seen[s.key] = k + 1
                if k:
                    new_id = f"{s.key}#{k}"
                    preds[new_id] = predictions[s.key]
                    s = replace(s, question_id=new_id)
                fresh.append(s)
            samples, predictions = fresh, preds
        return metric_at(evaluator.score(samples, predictions).metrics, path)

    return fn


# --------------------------------------------------------------------------- task presets

#: MME subtasks (official calculation.py's eval_type_dict); names compared case-insensitively.
MME_PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene",
                  "landmark", "artwork", "ocr")
MME_COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")
POPE_SPLITS = ("random", "popular", "adversarial")


@dataclass
class TaskResampling:
    """What :func:`bootstrap_ci` / :func:`paired_test` need for one task's headline metric."""

    statistic: SumStatistic
    clusters: list[Hashable]
    strata: list[Hashable] | None
    question_ids: list[str] = field(default_factory=list)


def image_id(image: Any) -> str | None:
    """A stable id for an image reference: the path string, or a hash of encoded bytes."""
    if image is None:
        return None
    if isinstance(image, (bytes, bytearray)):
        return "sha1:" + hashlib.sha1(bytes(image)).hexdigest()
    return str(image)


def records_from_result(samples: Sequence[Any], result: Any) -> list[dict[str, Any]]:
    """One flat dict per sample: its meta, ``question_id``, ``image`` id, ``has_image``, and the
    evaluator's per-sample fields (``score``, ``target``, ...) -- the input of the task presets."""
    out = []
    for s in samples:
        per = result.per_sample.get(s.key)
        if per is None:
            raise KeyError(f"question {s.key!r} has no per-sample entry in the score result")
        rec = dict(s.meta)
        rec.update(question_id=s.question_id, image=image_id(s.image), has_image=s.has_image)
        rec.update(per)
        out.append(rec)
    return out


def load_records(samples_jsonl: str | Path) -> list[dict[str, Any]]:
    """Read a run's ``TASK/samples.jsonl`` (DataError names file and line on bad input)."""
    return [obj for _, obj in iter_jsonl(samples_jsonl)]


def _field(rec: Mapping[str, Any], names: Sequence[str], task: str, i: int) -> Any:
    for name in names:
        if name in rec and rec[name] is not None:
            return rec[name]
        meta = rec.get("meta")
        if isinstance(meta, Mapping) and meta.get(name) is not None:
            return meta[name]
    raise ValueError(f"{task}: record {i} (question {rec.get('question_id')!r}) lacks any of {list(names)}")


def _score(rec: Mapping[str, Any], task: str, i: int) -> float:
    value = _field(rec, ("score",), task, i)
    if isinstance(value, bool):
        return float(value)
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{task}: record {i} has a non-finite score")
    return value


def _one_hot_blocks(block_of: np.ndarray, values: np.ndarray, n_blocks: int) -> np.ndarray:
    """Place each item's k features into the column block of its group: (n, n_blocks*k)."""
    n, k = values.shape
    out = np.zeros((n, n_blocks * k))
    cols = block_of[:, None] * k + np.arange(k)[None, :]
    out[np.arange(n)[:, None], cols] = values
    return out


def _pope(records: Sequence[Mapping[str, Any]], task: str, metric: str) -> TaskResampling:
    split_names, feats, clusters = [], [], []
    for i, rec in enumerate(records):
        split = str(_field(rec, ("split", "category"), task, i)).lower()
        if split not in POPE_SPLITS:
            raise ValueError(f"{task}: record {i} has split {split!r}; expected one of {POPE_SPLITS}")
        gold_yes = str(_field(rec, ("label", "target"), task, i)) != "no"  # eval_pope.py: only "no" is negative
        right = _score(rec, task, i) >= 0.5
        parsed = rec.get("parsed")
        # LLaVA's POPE parser maps every answer to yes or no, so the score alone fixes the prediction
        pred_yes = parsed == "yes" if parsed in ("yes", "no") else gold_yes == right
        feats.append([gold_yes and pred_yes, (not gold_yes) and pred_yes, gold_yes and not pred_yes, right, 1.0])
        split_names.append(split)
        clusters.append((split, rec.get("image") if rec.get("image") is not None else rec.get("question_id")))
    present = [s for s in POPE_SPLITS if s in split_names]
    block = np.array([present.index(s) for s in split_names])
    k = 5
    x = _one_hot_blocks(block, np.asarray(feats, dtype=np.float64), len(present))

    def fn(s: np.ndarray) -> np.ndarray:
        per = []
        for j in range(len(present)):
            tp, fp, fn_, right, tot = (s[:, j * k + c] for c in range(k))
            if metric == "accuracy":
                per.append(right / tot)
            else:  # F1 = 2TP / (2TP + FP + FN); 0 when the split has no TP at all
                den = 2 * tp + fp + fn_
                per.append(np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), 0.0))
        return 100.0 * np.mean(per, axis=0)

    return TaskResampling(SumStatistic(x, fn, name=f"pope.{metric}"), clusters, split_names)


def _mme(records: Sequence[Mapping[str, Any]], task: str, metric: str) -> tuple[TaskResampling, list[int]]:
    wanted = MME_PERCEPTION if metric == "perception" else MME_COGNITION
    cats, rows, clusters, keep = [], [], [], []
    for i, rec in enumerate(records):
        cat = str(_field(rec, ("category",), task, i)).lower()
        if cat not in MME_PERCEPTION + MME_COGNITION:
            raise ValueError(f"{task}: record {i} has unknown subtask {cat!r}")
        if cat not in wanted:
            continue
        img = rec.get("image")
        if img is None:
            img = rec.get("answer_question_id")
        if img is None:  # the MME loader's question ids are "<image>#k"
            img = str(_field(rec, ("question_id",), task, i)).split("#")[0]
        keep.append(i)
        cats.append(cat)
        rows.append(_score(rec, task, i) >= 0.5)
        clusters.append((cat, str(img)))
    if not rows:
        raise ValueError(f"{task}: no {metric} questions in the records")
    present = [c for c in wanted if c in cats]
    # Feature per question: [correct, 1, 0, 0]; the first question of each image also carries
    # [.., .., all questions of the image correct, 1] so acc+ sums per image.
    first: dict[tuple, int] = {}
    feats = np.zeros((len(rows), 4))
    for j, (cl, ok) in enumerate(zip(clusters, rows)):
        feats[j, 0], feats[j, 1] = float(ok), 1.0
        first.setdefault(cl, j)
    all_ok: dict[tuple, bool] = {}
    for cl, ok in zip(clusters, rows):
        all_ok[cl] = all_ok.get(cl, True) and ok
    for cl, j in first.items():
        feats[j, 2], feats[j, 3] = float(all_ok[cl]), 1.0
    block = np.array([present.index(c) for c in cats])
    x = _one_hot_blocks(block, feats, len(present))

    def fn(s: np.ndarray) -> np.ndarray:
        total = np.zeros(s.shape[0])
        for j in range(len(present)):
            c, q, a, im = (s[:, j * 4 + t] for t in range(4))
            total = total + 100.0 * c / q + 100.0 * a / im  # official: score = acc + acc+ (x100)
        return total

    return TaskResampling(SumStatistic(x, fn, name=f"mme.{metric}"), clusters, cats), keep


def _mmbench(records: Sequence[Mapping[str, Any]], task: str) -> tuple[TaskResampling, list[int]]:
    groups: dict[int, bool] = {}
    clusters, keep = [], []
    for i, rec in enumerate(records):
        if rec.get("orphan") or ("score" in rec and rec["score"] is None):
            continue  # a copy without its main row, or a question whose judgement is missing
        try:
            idx = int(_field(rec, ("index", "question_id"), task, i))
        except (TypeError, ValueError):
            raise ValueError(f"{task}: record {i} question id is not an MMBench integer index") from None
        g = idx % 1_000_000  # circular copies: index + k * 1e6 (opencompass eval_mmbench.py)
        clusters.append(g)
        keep.append(i)
        groups[g] = groups.get(g, True) and _score(rec, task, i) >= 0.5
    # Feature on the first row of each group: [hit, 1]; later copies carry zeros.
    seen: set[int] = set()
    feats = np.zeros((len(clusters), 2))
    for j, g in enumerate(clusters):
        if g not in seen:
            seen.add(g)
            feats[j] = (float(groups[g]), 1.0)
    if not clusters:
        raise ValueError(f"{task}: no scored rows")
    stat = SumStatistic(feats, lambda s: 100.0 * s[:, 0] / s[:, 1], name="mmbench.circular_accuracy")
    return TaskResampling(stat, clusters, None), keep


def _llava_bench(records: Sequence[Mapping[str, Any]], task: str) -> tuple[TaskResampling, list[int]]:
    num, den, clusters, keep = [], [], [], []
    for i, rec in enumerate(records):
        ref = rec.get("reference_score", rec.get("gpt4_score"))
        mod = rec.get("model_score")
        if (ref is None or mod is None) and isinstance(rec.get("scores"), (list, tuple)) and len(rec["scores"]) == 2:
            ref, mod = rec["scores"]  # LLaVA review order: [reference (GPT-4 answer), model]
        if ref is None or mod is None:
            continue  # a missing judgement is excluded, as in the evaluator
        keep.append(i)
        den.append(float(ref))
        num.append(float(mod))
        clusters.append(rec.get("question_id", i))
    if not num:
        raise ValueError(f"{task}: no record has both reference and model judge scores "
                         "(fields reference_score/gpt4_score + model_score, or scores=[ref, model])")
    return TaskResampling(ratio_statistic(num, den, scale=100.0), clusters, None), keep


def _split_image(recs: Sequence[Mapping[str, Any]], task: str, metric: str) -> tuple[TaskResampling, list[int]]:
    return _pope(recs, task, metric), list(range(len(recs)))


#: ``resampling.scheme`` of a task.yaml -> (records, task, metric) -> (statistic, kept rows).
_SCHEMES = {
    "split_image": _split_image,
    "subtask_image": _mme,
    "circular_group": lambda recs, task, metric: _mmbench(recs, task),
    "judge_ratio": lambda recs, task, metric: _llava_bench(recs, task),
}

#: ``question_mean`` record filters: which records a metric averages over.
_KEEP = {
    "all": lambda r, task, i: True,
    "has_image": lambda r, task, i: bool(_field(r, ("has_image",), task, i)),
    "scored": lambda r, task, i: r.get("score") is not None,  # a missing judgement is left out
    "balanced": lambda r, task, i: r.get("balanced", True) is not False,  # GQA's eval.py: balanced only
}


def _resampling_of(task: str):
    """The task's ``resampling`` section, or None (unknown task, or no local metric)."""
    from ..harness.task_registry import all_specs

    spec = all_specs().get(task)
    return None if spec is None else spec.resampling


def task_statistic(task: str, records: Sequence[Mapping[str, Any]], metric: str | None = None) -> TaskResampling:
    """Fast-path statistic, clusters and strata that reproduce a task's headline metric.

    Records are :func:`records_from_result` dicts or ``samples.jsonl`` lines; all need a numeric
    ``score`` (1 right / 0 wrong; soft for VQA-style and MM-Vet). The task's ``task.yaml``
    ``resampling`` section picks the scheme and, per metric, the records kept (the first metric
    listed is the default):

    * ``question_mean``: ``100 * mean(score)``, one cluster per question, over the records the
      metric's filter keeps (``all``; ``has_image``; ``scored``: ``score`` not None, i.e. a
      judgement is not missing; ``balanced``: ``balanced`` not False, as GQA's eval.py);
    * ``split_image`` (POPE ``f1``/``accuracy``): mean over splits of the per-split metric,
      strata = split (``split`` or ``category``), clusters = (split, image); gold =
      ``label``/``target`` (only ``"no"`` is negative, as eval_pope.py), prediction = ``parsed``
      or implied by ``score``;
    * ``subtask_image`` (MME ``perception``/``cognition``): sum over subtasks of
      ``100*acc + 100*acc+``, strata = subtask (``category``), clusters = (subtask, image), the
      image taken from ``image``, ``answer_question_id`` or the loader's ``"<image>#k"`` id;
    * ``circular_group`` (MMBench ``circular_accuracy``): cluster = ``index % 1e6``, hit = every
      copy right; orphan copies and questions with a missing judgement are left out;
    * ``judge_ratio`` (LLaVA-W ``relative_score``): ``100 * sum(model) / sum(reference)``.

    ``question_ids`` of the result lists the records the statistic uses, in row order.
    """
    recs = list(records)
    if not recs:
        raise ValueError(f"{task}: no records")
    qids = [str(r.get("question_id", i)) for i, r in enumerate(recs)]
    plan = _resampling_of(task)
    if plan is None:
        raise ValueError(f"no fast statistic for task {task!r}; use bootstrap_ci with evaluator_metric")
    metric = metric or next(iter(plan.metrics))
    if metric not in plan.metrics:
        raise ValueError(f"{task}: no fast statistic for {metric!r} (have {', '.join(plan.metrics)}); "
                         "use bootstrap_ci with evaluator_metric")
    if plan.scheme == "question_mean":
        keep = [i for i, r in enumerate(recs) if _KEEP[plan.metrics[metric]](r, task, i)]
        if not keep:
            raise ValueError(f"{task}: no scored records for {metric}")
        stat = mean_statistic([_score(recs[i], task, i) for i in keep], scale=100.0)
        out = TaskResampling(stat, [qids[i] for i in keep], None)
    else:
        out, keep = _SCHEMES[plan.scheme](recs, task, metric)
    out.question_ids = [qids[i] for i in keep]
    return out


def task_bootstrap_ci(task: str, records: Sequence[Mapping[str, Any]], metric: str | None = None, *,
                      n_resamples: int = 1000, alpha: float = 0.05, seed: int = 0) -> CI:
    """Bootstrap CI of a task's headline metric from per-sample records (see :func:`task_statistic`)."""
    tr = task_statistic(task, records, metric)
    return bootstrap_ci(None, tr.statistic, cluster_key=tr.clusters, strata_key=tr.strata,
                        n_resamples=n_resamples, alpha=alpha, seed=seed)


def task_paired_test(task: str, records_a: Sequence[Mapping[str, Any]], records_b: Sequence[Mapping[str, Any]],
                     metric: str | None = None, *, n_resamples: int = 1000, alpha: float = 0.05,
                     seed: int = 0) -> PairedResult:
    """Paired bootstrap of ``metric(A) - metric(B)``; both runs must cover the same questions.

    B's records are re-ordered to A's question order so the same clusters are drawn for both.
    Questions one run could not score (a missing judgement) are dropped from both runs.
    """
    ids_a = [str(r.get("question_id")) for r in records_a]
    by_id = {str(r.get("question_id")): r for r in records_b}
    if len(by_id) != len(records_b) or len(set(ids_a)) != len(ids_a):
        raise ValueError(f"{task}: duplicate question ids; cannot pair")
    if set(ids_a) != set(by_id):
        only_a, only_b = set(ids_a) - set(by_id), set(by_id) - set(ids_a)
        raise ValueError(f"{task}: runs cover different questions ({len(only_a)} only in A, "
                         f"{len(only_b)} only in B, e.g. {sorted(only_a | only_b)[:3]})")
    records_b = [by_id[q] for q in ids_a]
    ta, tb = task_statistic(task, records_a, metric), task_statistic(task, records_b, metric)
    if ta.question_ids != tb.question_ids:
        # Judge-scored tasks: a question missing in either run is dropped from both.
        common = set(ta.question_ids) & set(tb.question_ids)
        pairs = [(ra, rb) for ra, rb in zip(records_a, records_b) if str(ra.get("question_id")) in common]
        ta = task_statistic(task, [ra for ra, _ in pairs], metric)
        tb = task_statistic(task, [rb for _, rb in pairs], metric)
    return paired_test(None, ta.statistic, tb.statistic, cluster_key=ta.clusters, strata_key=ta.strata,
                       n_resamples=n_resamples, alpha=alpha, seed=seed)
