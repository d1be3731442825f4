"""From evaluators to statistics: read one metric from nested results, or score resamples with an evaluator."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np


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
        from ...evaluators.base import get_evaluator

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
