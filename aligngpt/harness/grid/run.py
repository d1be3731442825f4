"""Running a grid: every unfinished cell in turn, with ``grid_state.json`` and the outputs rewritten as it goes."""
from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, TextIO

from ...errors import AlignGPTError
from ...io import atomic_write_json, atomic_write_text
from ...report.runs import RESULTS_FILE, STATE_FILE
from ..tasks import TaskSpec, load_task
from .cells import GridCell, _runs_dir, expand_cells
from .spec import GridSpec
from .statistics import GridStatistics, _rel, grid_results
from .tables import render_grid_tables, status_table


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
    """Run every unfinished cell (see :mod:`aligngpt.harness.grid`); returns the cells and statistics.

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
        from ..pipeline import execute_run  # imports torch: only when there is something to run
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
