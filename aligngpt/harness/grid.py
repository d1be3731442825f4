"""Declarative ablation grids: models x inference-time alignment modes x seeds, over a task list.

A grid spec is a YAML file::

    models:                      # a list of {label, path} (or bare paths); "toy" = bundled model
      - {label: toy, path: toy}
    align_modes: [gated, local, global, average, none, "fixed:*"]
    tasks: [pope, gqa]           # or "pope,gqa"
    seeds: [0]
    settings: {limit: 40, batch_size: 8, max_new_tokens: 4, source: toy}
    baseline: toy/none           # optional: paired tests of every row against this cell
    output_dir: grids/toy        # optional (the CLI's --output-dir wins)
    stats: {n_resamples: 1000, alpha: 0.05, seed: 0}
    table: {layout: auto, caption: "..."}

``"fixed:*"`` expands to ``fixed:0 .. fixed:N-1`` with ``N`` = ``n_indicators`` read from the
model's ``config.json`` (no weights are loaded).  ``null`` as a mode means the checkpoint's own
configured mode (label ``default``).  Relative paths in the spec (``data_root``,
``output_dir``, ``settings.output_dir``, model folders) are relative to the spec file.

**Cells.**  One cell = one model x one alignment mode x one seed, and it is exactly one
:func:`~aligngpt.harness.pipeline.execute_run` over *all* the grid's tasks: the model is loaded once
per cell, a cell is one run folder, and one run folder is one table row (so ``table RUN_DIR``
works on cells directly).  The cost of this choice: adding a task to a grid later makes new
run names, so finished cells are recomputed for the old tasks too.

**Dedupe and resume.**  Run folders go to ``OUTPUT_DIR/runs`` (or ``settings.output_dir``, which
can be shared by several grids) under the harness's stable run name; a cell whose
``results.json`` exists is skipped without loading the model.  A partial cell resumes through
the harness's per-task prediction journal, so a grid killed at any point and started again
recomputes no journaled question.  ``OUTPUT_DIR/grid_state.json`` (written atomically on every
change) lists the cells and their status.

**Outputs while running.**  After each cell a status table is printed (with ``quiet``: once, at the end), and the rows finished so
far are written as Markdown and LaTeX to ``OUTPUT_DIR/tables/grid.{md,tex}`` and, with their
statistics, to ``OUTPUT_DIR/grid_results.json``: per task and metric a 95% percentile
bootstrap CI over questions, and a paired bootstrap test against the baseline cell on the same
questions (:func:`~aligngpt.report.stats.task_bootstrap_ci` / ``task_paired_test``, which
resample MME image pairs, MMBench circular groups and POPE splits as their metrics need).
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, TextIO

import yaml

from ..errors import AlignGPTError, ConfigError, DataError
from ..io import atomic_write_json, atomic_write_text, read_json
from .settings import RunSettings, run_name
from .tasks import TaskSpec, load_task

#: Modes the model accepts besides ``fixed:K`` (interface.md, ``align_mode``).
NAMED_MODES = ("gated", "local", "global", "average", "none")
#: RunSettings fields a spec's ``settings`` may set; the rest are grid axes or per-invocation.
SETTING_KEYS = ("data_root", "source", "output_dir", "batch_size", "canary", "limit", "device", "dtype",
                "max_new_tokens", "num_workers", "image_cache", "hf_paths")
_AXIS_KEYS = {"model": "models", "align_mode": "align_modes", "seed": "seeds"}
_TOP_KEYS = {"models", "align_modes", "tasks", "seeds", "settings", "baseline", "output_dir", "stats", "table"}
STATE_FILE = "grid_state.json"
RESULTS_FILE = "grid_results.json"


# --------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class GridModel:
    label: str
    path: str
    """``toy`` or a checkpoint folder / hub id, as RunSettings.model takes it."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """Per-model overrides of the grid's settings."""
    align_modes: tuple[str | None, ...] | None = None
    """Per-model alignment modes (default: the grid's)."""


@dataclass(frozen=True)
class GridSpec:
    models: tuple[GridModel, ...]
    align_modes: tuple[str | None, ...]
    tasks: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    settings: Mapping[str, Any] = field(default_factory=dict)
    baseline: str | None = None
    output_dir: Path | None = None
    n_resamples: int = 1000
    alpha: float = 0.05
    stats_seed: int = 0
    layout: str | tuple[str, ...] = "auto"
    caption: str | None = None
    source: Path | None = None
    """The YAML file the spec came from (for messages and relative paths)."""


def _where(source: Path | None) -> str:
    return f"{source}: " if source else ""


def _mode_text(mode: Any, source: Path | None) -> str | None:
    if mode is None:
        return None
    if not isinstance(mode, str):
        raise ConfigError(f"{_where(source)}align mode {mode!r} must be a string (quote fixed:K)")
    mode = mode.strip()
    if mode in NAMED_MODES or mode == "fixed:*":
        return mode
    if mode.startswith("fixed:"):
        k = mode[len("fixed:"):]
        if k.isdigit():
            return f"fixed:{int(k)}"
    raise ConfigError(f"{_where(source)}unknown align mode {mode!r}; use {', '.join(NAMED_MODES)}, fixed:K, "
                      "fixed:* or null (the checkpoint's own mode)")


def _as_list(value: Any, what: str, source: Path | None) -> list:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise ConfigError(f"{_where(source)}{what} must be a list, got {type(value).__name__}")


def _resolve(path: Any, base: Path | None) -> str:
    p = Path(str(path)).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    return str(p)


def _check_settings(raw: Any, what: str, source: Path | None, base: Path | None) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{_where(source)}{what} must be a mapping")
    out = {}
    for key, value in raw.items():
        if key in _AXIS_KEYS:
            raise ConfigError(f"{_where(source)}{what}.{key}: set it with the grid's '{_AXIS_KEYS[key]}' list")
        if key == "fresh":
            raise ConfigError(f"{_where(source)}{what}.fresh: a grid always resumes; delete the run folder instead")
        if key not in SETTING_KEYS:
            raise ConfigError(f"{_where(source)}{what}: unknown setting {key!r}; allowed: {', '.join(SETTING_KEYS)}")
        if key in ("data_root", "output_dir") and value is not None:
            value = _resolve(value, base)
        out[key] = _checked_setting(key, value, f"{_where(source)}{what}.{key}")
    return out


def _checked_setting(key: str, value: Any, where: str) -> Any:
    """The value ``aligngpt-eval run --KEY`` would accept, checked the same way (one-line error)."""
    import argparse

    from ..cli import checks as C

    types = {"limit": C.integer(1), "batch_size": C.integer(1, also=("auto",)), "max_new_tokens": C.integer(1),
             "num_workers": C.integer(0), "seed": C.integer(0, 2**63 - 1), "device": C.device}
    choices = {"dtype": C.DTYPES, "canary": ("auto", "always", "never"), "source": ("local", "hf", "toy")}
    if value is None:
        return value
    if isinstance(value, bool) and key in types:
        raise ConfigError(f"{where}: expected a value, got {value}")
    if key in types:
        try:
            return types[key](str(value))
        except argparse.ArgumentTypeError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if key in choices and value not in choices[key]:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(choices[key])}")
    return value


def _model(entry: Any, i: int, source: Path | None, base: Path | None) -> GridModel:
    if isinstance(entry, str):
        entry = {"path": entry}
    if not isinstance(entry, Mapping) or not entry.get("path"):
        raise ConfigError(f"{_where(source)}models[{i}] needs a 'path' (toy, a checkpoint folder or a hub id)")
    unknown = set(entry) - {"label", "path", "settings", "align_modes"}
    if unknown:
        raise ConfigError(f"{_where(source)}models[{i}]: unknown key(s) {sorted(unknown)}")
    path = str(entry["path"])
    if path != "toy" and base is not None and not Path(path).is_absolute() and (base / path).exists():
        path = str((base / path).resolve())
    label = str(entry.get("label") or ("toy" if path == "toy" else Path(path).name))
    modes = None
    if entry.get("align_modes") is not None:
        modes = tuple(_mode_text(m, source) for m in _as_list(entry["align_modes"], f"models[{i}].align_modes", source))
    return GridModel(label, path, _check_settings(entry.get("settings"), f"models[{i}].settings", source, base), modes)


def parse_grid_spec(raw: Any, source: Path | None = None) -> GridSpec:
    """Validate a spec mapping (see the module docstring); ConfigError names the spec file."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{_where(source)}a grid spec must be a YAML mapping")
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{_where(source)}unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    base = source.parent.resolve() if source else None
    for key in ("models", "align_modes", "tasks"):
        if not raw.get(key):
            raise ConfigError(f"{_where(source)}'{key}' is required and must not be empty")
    models = tuple(_model(e, i, source, base) for i, e in enumerate(_as_list(raw["models"], "models", source)))
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{_where(source)}model labels must be unique, got {labels}")
    modes = tuple(dict.fromkeys(_mode_text(m, source) for m in _as_list(raw["align_modes"], "align_modes", source)))
    tasks = tuple(dict.fromkeys(str(t) for t in _as_list(raw["tasks"], "tasks", source)))
    for t in tasks:
        try:
            load_task(t)
        except ConfigError as exc:
            raise ConfigError(f"{_where(source)}{exc}") from None
    seeds_raw = _as_list(raw.get("seeds", [0]), "seeds", source)
    try:
        seeds = tuple(dict.fromkeys(int(s) for s in seeds_raw))
    except (TypeError, ValueError):
        raise ConfigError(f"{_where(source)}seeds must be integers, got {seeds_raw}") from None
    if not seeds:
        raise ConfigError(f"{_where(source)}seeds must not be empty")
    stats = raw.get("stats") or {}
    table = raw.get("table") or {}
    if not isinstance(stats, Mapping) or not isinstance(table, Mapping):
        raise ConfigError(f"{_where(source)}'stats' and 'table' must be mappings")
    bad = (set(stats) - {"n_resamples", "alpha", "seed"}) | {f"table.{k}" for k in set(table) - {"layout", "caption"}}
    if bad:
        raise ConfigError(f"{_where(source)}unknown key(s) {sorted(bad)} (stats: n_resamples, alpha, seed; "
                          "table: layout, caption)")
    n_resamples, alpha = int(stats.get("n_resamples", 1000)), float(stats.get("alpha", 0.05))
    if n_resamples < 1 or not 0 < alpha < 1:
        raise ConfigError(f"{_where(source)}stats: need n_resamples >= 1 and 0 < alpha < 1")
    layout = table.get("layout", "auto")
    layout = tuple(layout) if isinstance(layout, (list, tuple)) else str(layout)
    out_dir = raw.get("output_dir")
    return GridSpec(
        models=models, align_modes=modes, tasks=tasks, seeds=seeds,
        settings=_check_settings(raw.get("settings"), "settings", source, base),
        baseline=None if raw.get("baseline") is None else str(raw["baseline"]),
        output_dir=None if out_dir is None else Path(_resolve(out_dir, base)),
        n_resamples=n_resamples, alpha=alpha, stats_seed=int(stats.get("seed", 0)),
        layout=layout, caption=table.get("caption"), source=source,
    )


def load_grid_spec(path: str | Path) -> GridSpec:
    """Read and validate a grid YAML; malformed YAML is a DataError naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "grid spec not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise DataError(path, f"malformed YAML: {problem}", line=None if mark is None else mark.line + 1) from None
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason})") from None
    return parse_grid_spec(raw, source=path)


# --------------------------------------------------------------------------- cells


def model_dir(model: str) -> Path:
    """Local folder of a model name as RunSettings takes it (``toy`` = the bundled model)."""
    if model == "toy":
        from .toy import toy_model_dir

        return toy_model_dir()
    return Path(model)


def model_n_indicators(model: str) -> int:
    """``n_indicators`` from ``config.json`` without loading weights.

    Released AlignGPT configs carry no ``n_indicators``; like the loader, 8 is assumed then.
    """
    config = model_dir(model) / "config.json"
    if not config.is_file():
        raise ConfigError(f"fixed:* needs the model's config.json to read n_indicators, and {config} does not exist "
                          "(list fixed:K modes explicitly for hub ids)")
    raw = read_json(config)
    n = raw.get("n_indicators", 8) if isinstance(raw, Mapping) else None
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise DataError(config, f"n_indicators must be a positive integer, got {n!r}")
    return n


def expand_align_modes(modes: Iterable[str | None], n_indicators: int | None) -> list[str | None]:
    """Replace ``fixed:*`` by ``fixed:0 .. fixed:N-1``; drop repeats, keep order."""
    out: list[str | None] = []
    for mode in modes:
        if mode == "fixed:*":
            if n_indicators is None:
                raise ConfigError("fixed:* needs the model's number of alignment levels")
            expanded = [f"fixed:{k}" for k in range(n_indicators)]
        else:
            if mode and mode.startswith("fixed:") and n_indicators is not None and int(mode[6:]) >= n_indicators:
                raise ConfigError(f"align mode {mode}: the model has only {n_indicators} levels (0..{n_indicators - 1})")
            expanded = [mode]
        out.extend(m for m in expanded if m not in out)
    return out


@dataclass
class GridCell:
    """One run of the grid (a row of its tables)."""

    label: str
    model_label: str
    align_mode: str | None
    seed: int
    settings: RunSettings
    run_name: str
    run_dir: Path
    status: str = "pending"
    """pending | partial (journal present) | running | complete | failed | interrupted."""
    reused: bool = False
    """Complete before this invocation: skipped, nothing recomputed."""
    journaled_before: int = 0
    seconds: float | None = None
    error: str | None = None
    results: dict | None = None

    @property
    def base_label(self) -> str:
        return f"{self.model_label}/{mode_label(self.align_mode)}"


def mode_label(mode: str | None) -> str:
    return "default" if mode is None else mode


def count_journaled(run_dir: Path, tasks: Sequence[str]) -> int:
    """Questions already journaled in a (partial) run folder: distinct keys on complete lines of
    every ``TASK/journal*.jsonl`` (one file per process of a data-parallel run)."""
    total = 0
    for task in tasks:
        keys: set[str] = set()
        folder = run_dir / task
        for path in sorted(folder.glob("journal*.jsonl")) if folder.is_dir() else []:
            with open(path, "rb") as fh:
                for raw in fh:
                    if not raw.endswith(b"\n"):
                        break  # torn last line: the harness drops it on resume
                    try:
                        keys.add(str(json.loads(raw)["key"]))
                    except (ValueError, KeyError, TypeError):
                        break
        total += len(keys)
    return total


def _runs_dir(spec: GridSpec, output_dir: Path) -> Path:
    return Path(spec.settings["output_dir"]) if spec.settings.get("output_dir") else output_dir / "runs"


def _run_settings(spec: GridSpec, model: GridModel, output_dir: Path, mode: str | None, seed: int,
                  toy_root: list) -> RunSettings:
    merged = {**spec.settings, **model.settings}
    merged.setdefault("output_dir", str(_runs_dir(spec, output_dir)))
    source = merged.get("source") or ("local" if merged.get("data_root") else "toy")
    merged["source"] = source
    if source == "toy":
        if merged.get("data_root"):
            raise ConfigError(f"{_where(spec.source)}source toy uses the bundled toy data; drop data_root "
                              "(or use source local)")
        if not toy_root:
            from .toy import toy_data_root

            toy_root.append(str(toy_data_root()))
        merged["data_root"] = toy_root[0]  # as the CLI does, so grid and `run` share run names
    names = {f.name for f in fields(RunSettings)}
    return RunSettings(model=model.path, align_mode=mode, seed=seed,
                       **{k: v for k, v in merged.items() if k in names})


def expand_cells(spec: GridSpec, output_dir: str | Path) -> list[GridCell]:
    """All cells of the grid, in model, mode, seed order, with their run folders and status on disk."""
    output_dir = Path(output_dir)
    task_specs = [load_task(t) for t in spec.tasks]
    toy_root: list = []
    cells: list[GridCell] = []
    seen: dict[str, str] = {}
    for model in spec.models:
        raw_modes = model.align_modes or spec.align_modes
        n = None
        if "fixed:*" in raw_modes or (any(m and m.startswith("fixed:") for m in raw_modes)
                                      and (model_dir(model.path) / "config.json").is_file()):
            n = model_n_indicators(model.path)  # explicit fixed:K are checked when the config is at hand
        for mode in expand_align_modes(raw_modes, n):
            for seed in spec.seeds:
                settings = _run_settings(spec, model, output_dir, mode, seed, toy_root)
                name = run_name(settings, task_specs)
                label = f"{model.label}/{mode_label(mode)}"
                if len(spec.seeds) > 1:
                    label += f"/seed{seed}"
                if name in seen:
                    raise ConfigError(f"{_where(spec.source)}cells {seen[name]!r} and {label!r} are the same run; "
                                      "give the models different paths or settings")
                seen[name] = label
                cell = GridCell(label, model.label, mode, seed, settings, name, Path(settings.output_dir) / name)
                refresh_status(cell, spec.tasks)
                cells.append(cell)
    if spec.baseline is not None:
        for cell in cells:
            baseline_cell(cells, spec.baseline, cell)  # fails early on a baseline matching nothing
    return cells


def refresh_status(cell: GridCell, tasks: Sequence[str]) -> None:
    """Status from disk: a results.json means complete; journal lines mean partial."""
    if (cell.run_dir / "results.json").is_file():
        cell.status, cell.reused = "complete", True
        cell.results = read_json(cell.run_dir / "results.json")
    else:
        cell.journaled_before = count_journaled(cell.run_dir, tasks)
        cell.status = "partial" if cell.journaled_before else "pending"


def baseline_cell(cells: Sequence[GridCell], baseline: str, cell: GridCell) -> GridCell:
    """The baseline a cell is compared with: the cell labelled ``baseline``, or -- with several
    seeds and a seedless label such as ``toy/none`` -- that model/mode cell of the same seed."""
    exact = [c for c in cells if c.label == baseline]
    if exact:
        return exact[0]
    same_seed = [c for c in cells if c.base_label == baseline and c.seed == cell.seed]
    if same_seed:
        return same_seed[0]
    raise ConfigError(f"baseline {baseline!r} matches no cell; cells: {', '.join(c.label for c in cells)}")


# --------------------------------------------------------------------------- statistics


@lru_cache(maxsize=None)
def headline_metric(task: str) -> str | None:
    """The metric a task's table column shows (the task spec's ``headline``)."""
    try:
        return load_task(task).headline
    except ConfigError:
        from ..report.tables import columns

        for col in columns().values():
            for t, metric in col.candidates():
                if t == task:
                    return metric
    return None


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
            from ..report.stats import load_records

            path = run_dir / task / "samples.jsonl"
            self._records[key] = load_records(path) if path.is_file() else None
        return self._records[key]

    def ci(self, run_dir: Path, task: str, metric: str):
        """A CI, or the reason there is none (a string)."""
        key = (run_dir, task, metric)
        if key not in self._ci:
            from ..report.stats import task_bootstrap_ci

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
            from ..report.stats import task_paired_test

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


# --------------------------------------------------------------------------- tables


def table_layout(spec: GridSpec) -> str | tuple[str, ...]:
    """The spec's layout, or (``auto``) the paper columns of the grid's tasks in paper order."""
    if spec.layout != "auto":
        return spec.layout
    from ..report.tables import columns, layouts

    wanted = []
    cols = columns()
    for key in layouts()["all"]:
        if any(t in spec.tasks for t, _ in cols[key].candidates()):
            wanted.append(key)
    if not wanted:
        raise ConfigError(f"{_where(spec.source)}none of the tasks {list(spec.tasks)} has a table column")
    return tuple(wanted)


def table_rows(spec: GridSpec, cells: Sequence[GridCell], stats: GridStatistics) -> list:
    """TableRows of the complete cells with headline CIs and p-values vs the baseline."""
    from ..report.tables import TableRow

    rows = []
    for cell in cells:
        if cell.status != "complete" or not cell.results:
            continue
        row = TableRow.from_results(cell.results, label=cell.label)
        base = baseline_cell(cells, spec.baseline, cell) if spec.baseline else None
        cis, sig = {}, {}
        for task in spec.tasks:
            metric = headline_metric(task)
            if task not in row.metrics or metric is None:
                continue
            ci = stats.ci(cell.run_dir, task, metric)
            if not isinstance(ci, str):
                cis[task] = ci
            if base is not None and base is not cell and base.status == "complete":
                pr = stats.paired(cell.run_dir, base.run_dir, task, metric)
                if not isinstance(pr, str):
                    sig[task] = pr.p_value
        row.ci, row.significance = cis, sig
        rows.append(row)
    return rows


def render_grid_tables(spec: GridSpec, cells: Sequence[GridCell], stats: GridStatistics) -> dict[str, str]:
    """``{"markdown": ..., "latex": ...}`` of the finished rows (empty when none has finished)."""
    from ..report.tables import render_table

    rows = table_rows(spec, cells, stats)
    if not rows:
        return {}
    labels = [r.label for r in rows]
    # The baseline mark needs the baseline row; with several seeds each row has its own, so the
    # marks are shown only when one baseline row serves all.
    baseline = spec.baseline if spec.baseline in labels else None
    pending = [c.label for c in cells if c.status != "complete"]
    notes = [f"Partial grid: {len(pending)} of {len(cells)} cells not finished."] if pending else []
    if spec.baseline and baseline is None and any(r.significance for r in rows):
        # several seeds: each row was tested against the baseline cell of its own seed
        notes.append(f"Baseline: the {spec.baseline} row of the same seed.")
    common = dict(layout=table_layout(spec), baseline=baseline, show_ci=True, notes=notes,
                  caption=spec.caption, label_header="Model / alignment")
    return {"markdown": render_table(rows, fmt="markdown", **common),
            "latex": render_table(rows, fmt="latex", **common)}


# --------------------------------------------------------------------------- running


def _fmt(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "--"


def status_table(spec: GridSpec, cells: Sequence[GridCell]) -> str:
    """A plain-text table of every cell: status, headline metric per task, seconds."""
    from tabulate import tabulate

    from ..report.stats import metric_at

    heads = [(t, headline_metric(t)) for t in spec.tasks]
    rows = []
    for i, cell in enumerate(cells, 1):
        status = cell.status
        if cell.status == "complete" and cell.reused:
            status = "complete (reused)"
        elif cell.status == "partial":
            status = f"partial ({cell.journaled_before} journaled)"
        elif cell.status == "failed" and cell.error:
            status = "failed: " + cell.error.splitlines()[0][:60]
        values = []
        for task, metric in heads:
            try:
                values.append(_fmt(metric_at(cell.results["tasks"][task]["metrics"], metric)))
            except (KeyError, TypeError):
                values.append("--")
        secs = "" if cell.seconds is None else f"{cell.seconds:.1f}"
        rows.append([i, cell.label, status, *values, secs])
    headers = ["#", "cell", "status", *[f"{t} {m}" for t, m in heads], "s"]
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


@dataclass
class GridResult:
    output_dir: Path
    cells: list[GridCell]
    results: dict | None
    """The grid_results.json object (None on a dry run)."""

    @property
    def failed(self) -> list[GridCell]:
        return [c for c in self.cells if c.status == "failed"]


def _state(spec: GridSpec, cells: Sequence[GridCell], output_dir: Path, status: str) -> dict:
    return {
        "spec": None if spec.source is None else str(spec.source.resolve()),
        "status": status,
        "updated": time.time(),
        "tasks": list(spec.tasks),
        "baseline": spec.baseline,
        "runs_dir": _rel(_runs_dir(spec, output_dir), output_dir),
        "cells": [{
            "label": c.label, "model": c.model_label, "model_path": c.settings.model, "align_mode": c.align_mode,
            "seed": c.seed, "run_name": c.run_name, "run_dir": _rel(c.run_dir, output_dir), "status": c.status,
            "reused": c.reused, "journaled_before": c.journaled_before, "seconds": c.seconds, "error": c.error,
        } for c in cells],
    }


def _write_outputs(spec: GridSpec, cells: Sequence[GridCell], output_dir: Path, stats: GridStatistics) -> dict:
    results = grid_results(spec, cells, output_dir, stats)
    atomic_write_json(output_dir / RESULTS_FILE, results)
    for fmt, text in render_grid_tables(spec, cells, stats).items():
        atomic_write_text(output_dir / "tables" / ("grid.md" if fmt == "markdown" else "grid.tex"), text)
    return results


def run_grid(spec: GridSpec, output_dir: str | Path | None = None, *, dry_run: bool = False, quiet: bool = False,
             stream: TextIO | None = None) -> GridResult:
    """Run every unfinished cell (see the module docstring); returns the cells and statistics.

    A failing cell is recorded (status ``failed``, its error in grid_state.json) and the grid
    goes on with the next; an interrupt marks the running cell ``interrupted`` and re-raises.
    Under ``torchrun`` every process runs the cells (each run is data-parallel) and only rank 0
    writes the grid's files and prints.
    """
    stream = stream or sys.stdout
    out = Path(output_dir) if output_dir is not None else spec.output_dir
    if out is None:
        stem = spec.source.stem if spec.source else "grid"
        out = Path("results") / "grids" / stem
    cells = expand_cells(spec, out)
    if dry_run:
        print(f"grid: {len(cells)} cells x {len(spec.tasks)} tasks -> {out} (dry run)", file=stream)
        print(status_table(spec, cells), file=stream, flush=True)
        return GridResult(out, cells, None)
    main = os.environ.get("RANK", "0") == "0"
    stats = GridStatistics(spec.n_resamples, spec.alpha, spec.stats_seed)
    state_path = out / STATE_FILE
    results: dict | None = None

    def save(status: str, outputs: bool = False) -> None:
        nonlocal results
        if main:
            atomic_write_json(state_path, _state(spec, cells, out, status))
            if outputs:
                results = _write_outputs(spec, cells, out, stats)

    def say(text: str) -> None:
        if main:
            print(text, file=stream, flush=True)

    if main:
        out.mkdir(parents=True, exist_ok=True)
    task_specs: list[TaskSpec] = [load_task(t) for t in spec.tasks]
    todo = [c for c in cells if c.status != "complete"]
    say(f"grid: {len(cells)} cells ({len(cells) - len(todo)} already complete) x {len(spec.tasks)} tasks -> {out}")
    save("running", outputs=True)
    if todo:
        from .pipeline import execute_run  # imports torch: only when there is something to run
    for cell in todo:
        cell.status, cell.error = "running", None
        save("running")
        start = time.perf_counter()
        try:
            run = execute_run(task_specs, cell.settings, quiet=quiet)
            cell.results, cell.status = run.results, "complete"
        except KeyboardInterrupt:
            cell.status, cell.seconds = "interrupted", time.perf_counter() - start
            save("interrupted")
            raise
        except AlignGPTError as exc:
            cell.status, cell.error = "failed", str(exc)
        except Exception as exc:  # a crash in one cell must not lose the others
            cell.status, cell.error = "failed", f"{type(exc).__name__}: {exc}"
            if not quiet and main:
                traceback.print_exc()
        cell.seconds = time.perf_counter() - start
        save("running", outputs=True)
        if not quiet:
            say(status_table(spec, cells))
    save("failed" if any(c.status == "failed" for c in cells) else "complete")
    if quiet or not todo:  # --quiet: one summary at the end
        say(status_table(spec, cells))
    return GridResult(out, cells, results)


# --------------------------------------------------------------------------- run folders


def _label_for(results: Mapping[str, Any], fallback: str) -> str:
    model = results.get("model") if isinstance(results.get("model"), Mapping) else {}
    return str(model.get("name") or fallback)


def expand_run_dirs(paths: Sequence[str | Path]) -> list[tuple[Path, str | None]]:
    """Run folders from CLI arguments: a run folder as is; a grid output folder (it has
    grid_state.json) becomes its complete cells, labelled as in the grid."""
    out: list[tuple[Path, str | None]] = []
    for p in map(Path, paths):
        state = p / STATE_FILE
        if state.is_file() and not (p / "results.json").is_file():
            raw = read_json(state)
            cells = raw.get("cells") if isinstance(raw, Mapping) else None
            if not isinstance(cells, list):
                raise DataError(state, "no 'cells' list")
            found = 0
            for c in cells:
                run_dir = Path(c.get("run_dir", ""))
                run_dir = run_dir if run_dir.is_absolute() else p / run_dir
                if (run_dir / "results.json").is_file():
                    out.append((run_dir, c.get("label")))
                    found += 1
            if not found:
                raise DataError(state, "the grid has no finished cell yet")
            continue
        if not (p / "results.json").is_file():
            raise DataError(p / "results.json", "not a finished run folder (no results.json) nor a grid folder")
        out.append((p, None))
    return out


def run_labels(run_dirs: Sequence[Path], given: Sequence[str | None] | None = None) -> list[str]:
    """Readable, unique row labels: the given one, else the model name, extended by the
    alignment mode, then the seed, then the run folder name while labels collide."""
    given = list(given) if given is not None else [None] * len(run_dirs)
    infos = []
    for d in run_dirs:
        res = read_json(Path(d) / "results.json")
        if not isinstance(res, Mapping):
            raise DataError(Path(d) / "results.json", "not a JSON object")
        settings = res.get("settings") if isinstance(res.get("settings"), Mapping) else {}
        model = res.get("model") if isinstance(res.get("model"), Mapping) else {}
        infos.append((_label_for(res, Path(d).name), mode_label(settings.get("align_mode") or model.get("align_mode")),
                      settings.get("seed"), Path(d).name))
    labels = [g or info[0] for g, info in zip(given, infos)]
    for level in (1, 2, 3):
        dupes = {lab for lab in labels if labels.count(lab) > 1}
        if not dupes:
            break
        for i, lab in enumerate(labels):
            if lab in dupes and given[i] is None:
                name, mode, seed, folder = infos[i]
                labels[i] = {1: f"{name}/{mode}", 2: f"{name}/{mode}/seed{seed}", 3: f"{name}/{folder}"}[level]
    return labels


def load_runs(paths: Sequence[str | Path]) -> list[tuple[Path, str, dict]]:
    """(run folder, label, results.json) for CLI arguments (run or grid folders)."""
    pairs = expand_run_dirs(paths)
    labels = run_labels([d for d, _ in pairs], [lab for _, lab in pairs])
    return [(d, lab, read_json(d / "results.json")) for (d, _), lab in zip(pairs, labels)]


__all__ = [
    "GridCell", "GridModel", "GridResult", "GridSpec", "GridStatistics", "NAMED_MODES", "RESULTS_FILE",
    "STATE_FILE", "baseline_cell", "count_journaled", "expand_align_modes", "expand_cells", "expand_run_dirs",
    "grid_results", "headline_metric", "load_grid_spec", "load_runs", "model_n_indicators", "parse_grid_spec",
    "render_grid_tables", "run_grid", "run_labels", "stat_metrics", "status_table", "table_layout", "table_rows",
]
