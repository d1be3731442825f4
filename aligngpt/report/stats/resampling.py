"""Resampling questions: the cluster/strata plan, bootstrap CIs, paired tests, sign-flip and McNemar tests.

The plan and the resample draws are shared by the fast path (:class:`SumStatistic`) and the
general path (a metric function), so both agree exactly for the same ``seed``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterable, Iterator, Sequence, Union

import numpy as np

from .results import CI, McNemarResult, PairedResult
from .sum_statistic import SumStatistic, _finite_scores, mean_statistic


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
