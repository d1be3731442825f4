"""Reading finished runs: the run and grid folders named on a command line, their row labels, their
``results.json``, and the headline metric a task's column shows.

The plots, the viewer and the ``table``/``plot``/``view`` commands read run and grid folders
through this module, so reports need nothing from the grid that may have produced them; the grid
takes its file names and its mode label from here, so what it writes is what these readers expect.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import ConfigError, DataError
from ..harness.tasks import load_task
from ..io import read_json

#: A grid folder's cell list and status (written by :func:`aligngpt.harness.grid.run_grid`).
STATE_FILE = "grid_state.json"
#: A grid folder's metrics, CIs and paired tests per cell.
RESULTS_FILE = "grid_results.json"


def mode_label(mode: str | None) -> str:
    """An alignment mode as labels show it (``default``: the checkpoint's own); shared with the grid's cells."""
    return "default" if mode is None else mode


@lru_cache(maxsize=None)
def headline_metric(task: str) -> str | None:
    """The metric a task's table column shows (the task spec's ``headline``)."""
    try:
        return load_task(task).headline
    except ConfigError:
        from .tables import columns

        for col in columns().values():
            for t, metric in col.candidates():
                if t == task:
                    return metric
    return None


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
