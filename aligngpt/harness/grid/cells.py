"""The cells of a grid: one run per model x alignment mode x seed, with its run folder and status on disk.

Expanding a spec into cells is where ``fixed:*`` becomes concrete modes, where run names (and so
dedupe and resume) are fixed, and where a baseline that matches no cell is caught.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ...errors import ConfigError, DataError
from ...io import read_json
from ...report.runs import mode_label
from ..settings import RunSettings, run_name
from ..tasks import load_task
from .spec import GridModel, GridSpec, _where


def model_dir(model: str) -> Path:
    """Local folder of a model name as RunSettings takes it (``toy`` = the bundled model)."""
    if model == "toy":
        from ..toy import toy_model_dir

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
            from ..toy import toy_data_root

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
