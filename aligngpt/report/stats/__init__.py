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

**Layout.**  :mod:`.results` (what the functions return), :mod:`.sum_statistic` (the fast
path), :mod:`.resampling` (the cluster/strata plan and the generic tests),
:mod:`.evaluator_bridge` (metrics read from, or computed by, an evaluator) and
:mod:`.task_presets` (how each benchmark's official metric is resampled, from a run's
``samples.jsonl``).  Each module imports only ones listed before it; everything is
re-exported here, so ``from aligngpt.report.stats import ...`` works as before.
"""
from __future__ import annotations

from .evaluator_bridge import evaluator_metric, metric_at
from .resampling import KeySpec, bootstrap_ci, mcnemar_exact, paired_test, sign_flip_test
from .results import CI, McNemarResult, PairedResult
from .sum_statistic import SumStatistic, mean_statistic, ratio_statistic
from .task_presets import (MME_COGNITION, MME_PERCEPTION, POPE_SPLITS, TaskResampling, image_id, load_records,
                           records_from_result, task_bootstrap_ci, task_paired_test, task_statistic)

__all__ = [
    "CI", "McNemarResult", "PairedResult",
    "KeySpec", "SumStatistic", "mean_statistic", "ratio_statistic",
    "bootstrap_ci", "mcnemar_exact", "paired_test", "sign_flip_test",
    "evaluator_metric", "metric_at",
    "MME_COGNITION", "MME_PERCEPTION", "POPE_SPLITS", "TaskResampling", "image_id", "load_records",
    "records_from_result", "task_bootstrap_ci", "task_paired_test", "task_statistic",
]
