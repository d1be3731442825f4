"""Statistics of finished cells: bootstrap CIs and paired tests, and the ``grid_results.json`` object.

Resampling itself is :mod:`aligngpt.report.stats`; this module only decides which metrics of
which cells are compared with which baseline, and caches the results per run folder.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from ...errors import ConfigError
from ...report.runs import headline_metric
from ..tasks import load_task
from .cells import GridCell, baseline_cell
from .spec import GridSpec


def stat_metrics(task: str) -> tuple[str, ...]:
    """Metrics of a task that the fast bootstrap path reproduces (headline first): the task's
    ``resampling.metrics``."""
    try:
        plan = load_task(task).resampling
    except ConfigError:
        plan = None
    head = headline_metric(task)
    out = list(plan.metrics) if plan is not None else []
    if head and head not in out:
        out.insert(0, head)
    return tuple(out)


class GridStatistics:
    """Bootstrap CIs and paired tests of finished cells, cached per run folder and task."""

    def __init__(self, n_resamples: int = 1000, alpha: float = 0.05, seed: int = 0):
        self.n_resamples, self.alpha, self.seed = n_resamples, alpha, seed
        self._records: dict[tuple[Path, str], list[dict] | None] = {}
        self._ci: dict[tuple[Path, str, str], Any] = {}
        self._paired: dict[tuple[Path, Path, str, str], Any] = {}

    def records(self, run_dir: Path, task: str) -> list[dict] | None:
        key = (run_dir, task)
        if key not in self._records:
            from ...report.stats import load_records

            path = run_dir / task / "samples.jsonl"
            self._records[key] = load_records(path) if path.is_file() else None
        return self._records[key]

    def ci(self, run_dir: Path, task: str, metric: str):
        """A CI, or the reason there is none (a string)."""
        key = (run_dir, task, metric)
        if key not in self._ci:
            from ...report.stats import task_bootstrap_ci

            recs = self.records(run_dir, task)
            try:
                self._ci[key] = ("no samples.jsonl" if recs is None else
                                 task_bootstrap_ci(task, recs, metric, n_resamples=self.n_resamples,
                                                   alpha=self.alpha, seed=self.seed))
            except ValueError as exc:
                self._ci[key] = str(exc)
        return self._ci[key]

    def paired(self, run_dir: Path, base_dir: Path, task: str, metric: str):
        """metric(run) - metric(baseline) on the same questions, or the reason it is missing."""
        key = (run_dir, base_dir, task, metric)
        if key not in self._paired:
            from ...report.stats import task_paired_test

            a, b = self.records(run_dir, task), self.records(base_dir, task)
            try:
                self._paired[key] = ("no samples.jsonl" if a is None or b is None else
                                     task_paired_test(task, a, b, metric, n_resamples=self.n_resamples,
                                                      alpha=self.alpha, seed=self.seed))
            except ValueError as exc:
                self._paired[key] = str(exc)
        return self._paired[key]


def _json_safe(value: Any) -> Any:
    """NaN/inf -> None, so grid_results.json stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path.resolve())


def grid_results(spec: GridSpec, cells: Sequence[GridCell], output_dir: Path, stats: GridStatistics) -> dict:
    """The ``grid_results.json`` object (complete cells carry metrics, CIs and paired tests)."""
    out_cells = []
    for cell in cells:
        entry: dict[str, Any] = {
            "label": cell.label, "model": cell.model_label, "model_path": cell.settings.model,
            "align_mode": cell.align_mode, "seed": cell.seed, "run_name": cell.run_name,
            "run_dir": _rel(cell.run_dir, output_dir), "status": cell.status,
        }
        base = None
        if spec.baseline is not None:
            base = baseline_cell(cells, spec.baseline, cell)
            entry["baseline"] = base.label
            if base is cell or base.status != "complete":
                base = None
        if cell.status == "complete" and cell.results:
            tasks = {}
            for task in spec.tasks:
                t_res = cell.results.get("tasks", {}).get(task)
                if t_res is None:
                    continue
                t_out: dict[str, Any] = {"n": t_res.get("n"), "metrics": t_res.get("metrics"), "ci": {},
                                         "vs_baseline": {}, "notes": {}}
                for metric in stat_metrics(task):
                    ci = stats.ci(cell.run_dir, task, metric)
                    if isinstance(ci, str):
                        t_out["notes"][metric] = ci
                        continue
                    t_out["ci"][metric] = ci.as_dict()
                    if base is not None:
                        pr = stats.paired(cell.run_dir, base.run_dir, task, metric)
                        if isinstance(pr, str):
                            t_out["notes"][metric] = f"paired test: {pr}"
                        else:
                            t_out["vs_baseline"][metric] = pr.as_dict()
                tasks[task] = t_out
            entry["tasks"] = tasks
        elif cell.error:
            entry["error"] = cell.error
        out_cells.append(entry)
    return _json_safe({
        "spec": None if spec.source is None else str(spec.source.resolve()),
        "tasks": list(spec.tasks),
        "baseline": spec.baseline,
        "complete": all(c.status == "complete" for c in cells),
        "statistics": {
            "ci": f"{100 * (1 - spec.alpha):g}% percentile bootstrap over questions",
            "paired": "paired bootstrap of metric(cell) - metric(baseline) on the same questions; "
                      "two-sided p from the centred bootstrap distribution",
            "n_resamples": spec.n_resamples, "alpha": spec.alpha, "seed": spec.stats_seed,
        },
        "cells": out_cells,
    })
