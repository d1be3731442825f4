"""Alignment figures from run folders: gate heatmap, accuracy vs forced level, radar chart.

All figures are drawn on a bare :class:`matplotlib.figure.Figure` with the Agg canvas (no
pyplot, no global backend switch, safe in servers and tests) and saved as PNG and PDF next to
each other (``PREFIX.png``, ``PREFIX.pdf``); the PDF carries no creation date, so regenerated
figures only differ when the numbers do.

Level numbering.  A gated model has ``N`` alignment embeddings; rows ``0..N-2`` are the local
levels the gate weighs and row ``N-1`` is the global one (``aligngpt.modeling.alignment``).
The ``N-1`` gate weights in ``samples.jsonl`` are therefore shown as the paper's levels
``1..N-1`` (weight ``i`` belongs to ``H_i`` = embedding row ``i-1`` = ``fixed:i-1``), while the
``fixed:K`` figure keeps the harness's 0-based ``K``.
"""
from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import DataError
from ..extras import import_optional
from ..io import atomic_write_bytes
from ..io import iter_jsonl
from .stats import metric_at
from .tables import columns, layouts

def _order() -> list[str]:
    """Every task in paper column order (``order`` in task.yaml), fallback tasks after their column's."""
    from ..harness.task_registry import ordered_specs

    return [s.name for s in ordered_specs()]


def task_title(task: str) -> str:
    """Short benchmark name as the tables print it (Markdown header)."""
    for col in columns().values():
        if task == col.key:
            return col.markdown
        if any(t == task for t, _ in col.fallbacks):
            return f"{col.markdown} (val)"
    return task


def _task_sort(tasks: Sequence[str]) -> list[str]:
    order = _order()
    return sorted(tasks, key=lambda t: (order.index(t) if t in order else len(order), t))


def _headline(task: str) -> str | None:
    from .runs import headline_metric

    return headline_metric(task)


# --------------------------------------------------------------------------- saving


def _figure(width: float, height: float):
    import_optional("matplotlib", "plotting")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, prefix: str | Path) -> list[Path]:
    """Write ``PREFIX.png`` and ``PREFIX.pdf``; returns both paths."""
    prefix = Path(prefix)
    if prefix.suffix.lower() in (".png", ".pdf"):
        prefix = prefix.with_suffix("")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = prefix.with_name(prefix.name + ".png"), prefix.with_name(prefix.name + ".pdf")
    for path, fmt, meta in ((png, "png", {"Software": None}), (pdf, "pdf", {"CreationDate": None, "ModDate": None})):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, bbox_inches="tight", metadata=meta)
        atomic_write_bytes(path, buf.getvalue())  # a killed plot never leaves half a figure
    return [png, pdf]


def _results(run_dir: Path) -> dict:
    from ..io import read_json

    res = read_json(run_dir / "results.json")
    if not isinstance(res, Mapping) or not isinstance(res.get("tasks"), Mapping):
        raise DataError(run_dir / "results.json", "results.json has no 'tasks' object")
    return res


def _labels(run_dirs: Sequence[Path], labels: Sequence[str] | None) -> list[str]:
    if labels is not None:
        if len(labels) != len(run_dirs):
            raise ValueError(f"{len(labels)} labels for {len(run_dirs)} runs")
        return list(labels)
    from .runs import run_labels

    return run_labels(run_dirs)


def _align_mode(res: Mapping[str, Any]) -> str | None:
    settings = res.get("settings") if isinstance(res.get("settings"), Mapping) else {}
    model = res.get("model") if isinstance(res.get("model"), Mapping) else {}
    return settings.get("align_mode") or model.get("align_mode")


# --------------------------------------------------------------------------- (a) gate heatmap


@dataclass
class GateMeans:
    """Mean gate weight per level over one task's questions."""

    task: str
    means: np.ndarray
    """(N-1,) mean weight of levels 1..N-1."""
    n: int
    """Questions with gate weights (text-only questions have none)."""


def gate_weight_means(run_dir: str | Path) -> list[GateMeans]:
    """Per task of a run, the mean of ``alignment_weights`` over its questions.

    Questions whose weights are null (text-only, or a non-gated mode) are skipped; a row with
    a different number of weights than the others is a DataError naming file and line.
    """
    run_dir = Path(run_dir)
    res = _results(run_dir)
    out = []
    for task in _task_sort(list(res["tasks"])):
        path = run_dir / task / "samples.jsonl"
        if not path.is_file():
            continue
        total, n, width = None, 0, None
        for line, rec in iter_jsonl(path):
            w = rec.get("alignment_weights") if isinstance(rec, Mapping) else None
            if w is None:
                continue
            if not isinstance(w, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in w):
                raise DataError(path, "alignment_weights must be a list of numbers or null", line=line)
            arr = np.asarray(w, dtype=np.float64)
            if not np.all(np.isfinite(arr)):
                continue  # a row without an alignment slot
            if width is None:
                width, total = arr.size, np.zeros(arr.size)
            elif arr.size != width:
                raise DataError(path, f"{arr.size} gate weights where earlier rows had {width}", line=line)
            total += arr
            n += 1
        if n:
            out.append(GateMeans(task, total / n, n))
    return out


def plot_gate_heatmap(run_dirs: Sequence[str | Path], out_prefix: str | Path, *,
                      labels: Sequence[str] | None = None, annotate: bool = True) -> list[Path]:
    """Heatmap per gated run: rows = tasks, columns = levels 1..N-1, colour = mean gate weight.

    Several runs give side-by-side panels on one colour scale; the colour-bar label gives the
    uniform weight 1/(N-1) for reference.
    """
    dirs = [Path(d) for d in run_dirs]
    if not dirs:
        raise ValueError("no run folders given")
    names = _labels(dirs, labels)
    panels = []
    for d, name in zip(dirs, names):
        means = gate_weight_means(d)
        if not means:
            raise DataError(d, "no gate weights in any TASK/samples.jsonl (was the run gated or local?)")
        widths = {m.means.size for m in means}
        if len(widths) != 1:
            raise DataError(d, f"tasks have different numbers of gate weights: {sorted(widths)}")
        panels.append((name, means))
    lo = min(float(m.means.min()) for _, ms in panels for m in ms)
    hi = max(float(m.means.max()) for _, ms in panels for m in ms)
    if hi - lo < 1e-12:
        lo, hi = lo - 1e-3, hi + 1e-3
    n_levels = max(ms[0].means.size for _, ms in panels)
    n_rows = max(len(ms) for _, ms in panels)
    same_rows = len({tuple(m.task for m in ms) for _, ms in panels}) == 1
    fig = _figure(1.6 + (0.55 * n_levels + 0.4) * len(panels), 1.3 + 0.42 * n_rows)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    image = None
    for i, (ax, (name, means)) in enumerate(zip(axes, panels)):
        grid = np.stack([m.means for m in means])
        image = ax.imshow(grid, cmap="viridis", vmin=lo, vmax=hi, aspect="auto")
        ax.set_xticks(range(grid.shape[1]), [str(j + 1) for j in range(grid.shape[1])])
        if i == 0 or not same_rows:  # panels over the same tasks share the row labels
            ax.set_yticks(range(len(means)), [f"{task_title(m.task)} (n={m.n})" for m in means])
        else:
            ax.set_yticks(range(len(means)), [""] * len(means))
        ax.set_xlabel("alignment level i (gate weight of $H_i$)")
        ax.set_title(name)
        if annotate and grid.size <= 160:
            mid = (lo + hi) / 2
            for (r, c), v in np.ndenumerate(grid):
                ax.text(c, r, f"{v:.3f}", ha="center", va="center", fontsize=6,
                        color="black" if v > mid else "white")
    uniform = 1.0 / n_levels
    fig.colorbar(image, ax=list(axes), label=f"mean gate weight (uniform = {uniform:.3f})")
    return save_figure(fig, out_prefix)


# --------------------------------------------------------------------------- (b) fixed level


_FIXED = re.compile(r"^fixed:(\d+)$")


@dataclass
class FixedLevelData:
    tasks: list[str]
    metric: dict[str, str]
    """Task -> the metric plotted."""
    levels: dict[str, dict[int, float]]
    """Task -> {K: value of fixed:K}."""
    references: dict[str, dict[str, float]]
    """Task -> {run label: value} for runs in other modes (gated, none, ...)."""


def fixed_level_series(run_dirs: Sequence[str | Path], labels: Sequence[str] | None = None,
                       metric: str | None = None) -> FixedLevelData:
    """Headline metric (or ``metric``) per task and forced level from runs in ``fixed:K`` modes.

    Runs in other modes are kept as reference values.  Two runs with the same ``fixed:K`` are
    ambiguous and refused.
    """
    dirs = [Path(d) for d in run_dirs]
    names = _labels(dirs, labels)
    levels: dict[str, dict[int, float]] = {}
    refs: dict[str, dict[str, float]] = {}
    used: dict[str, str] = {}
    seen_k: dict[int, Path] = {}
    for d, name in zip(dirs, names):
        res = _results(d)
        mode = _align_mode(res)
        m = _FIXED.match(mode or "")
        if m:
            k = int(m.group(1))
            if k in seen_k:
                raise DataError(d, f"fixed:{k} is also the mode of {seen_k[k]}; give one run per level")
            seen_k[k] = d
        for task, entry in res["tasks"].items():
            key = metric or _headline(task)
            if key is None or not isinstance(entry, Mapping):
                continue
            try:
                value = metric_at(entry.get("metrics") or {}, key)
            except (KeyError, TypeError):
                continue
            if not math.isfinite(value):
                continue
            used[task] = key
            if m:
                levels.setdefault(task, {})[int(m.group(1))] = value
            else:
                refs.setdefault(task, {})[name] = value
    tasks = _task_sort([t for t in levels])
    if not tasks:
        raise DataError(None, "no run in a fixed:K mode with a readable metric among the run folders")
    return FixedLevelData(tasks, {t: used[t] for t in tasks}, {t: levels[t] for t in tasks},
                          {t: refs.get(t, {}) for t in tasks})


def plot_fixed_levels(run_dirs: Sequence[str | Path], out_prefix: str | Path, *,
                      labels: Sequence[str] | None = None, metric: str | None = None) -> list[Path]:
    """One panel per task: metric vs forced level ``K`` (fixed:K), other modes as dashed lines."""
    data = fixed_level_series(run_dirs, labels, metric)
    n = len(data.tasks)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = _figure(3.6 * cols, 2.8 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    styles = ["--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1))]
    ref_names = sorted({r for t in data.tasks for r in data.references[t]})
    colors = {r: f"C{(i + 1) % 10}" for i, r in enumerate(ref_names)}
    for ax, task in zip(axes, data.tasks):
        ks = sorted(data.levels[task])
        ax.plot(ks, [data.levels[task][k] for k in ks], marker="o", color="C0", label="fixed:K")
        for i, (name, value) in enumerate(sorted(data.references[task].items())):
            ax.axhline(value, color=colors[name], linestyle=styles[i % len(styles)], linewidth=1, label=name)
        ax.set_xticks(ks)
        ax.set_xlabel("forced level K (fixed:K)")
        ax.set_ylabel(data.metric[task])
        ax.set_title(task_title(task))
        ax.grid(alpha=0.3)
    for ax in axes[n:]:
        ax.set_visible(False)
    handles, names = [], []
    for ax in axes[:n]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in names:
                handles.append(h)
                names.append(lab)
    fig.legend(handles, names, loc="outside lower center", ncol=min(len(names), 4), frameon=False)
    return save_figure(fig, out_prefix)


# --------------------------------------------------------------------------- (c) radar


def _row_value(row: Any, col: Any) -> float | None:
    """A table row's number for a column: the primary task, else a fallback (e.g. vqav2_val)."""
    for task, metric in col.candidates():
        entry = row.metrics.get(task)
        if isinstance(entry, Mapping):
            try:
                value = metric_at(entry.get("metrics", entry), metric)
            except (KeyError, TypeError):
                continue
        elif isinstance(entry, (int, float)) and not isinstance(entry, bool):
            value = float(entry)
        else:
            continue
        if math.isfinite(value):
            return value
    return None


@dataclass
class RadarData:
    axes: list[str]
    """Column keys (:func:`~aligngpt.report.tables.columns`) in paper order."""
    labels: list[str]
    values: np.ndarray
    """(runs, axes) raw values."""
    radii: np.ndarray
    """(runs, axes) normalised to [inner, 1] per axis."""


def axis_max() -> dict[str, float]:
    """Top of each radar axis under ``normalise="range"``: the metric's own maximum (the
    column's ``max`` in task.yaml; percentages 100)."""
    from ..harness.task_registry import ordered_specs

    return {s.column.key: s.column.axis_max for s in ordered_specs()
            if s.column is not None and not s.column.fallback_for and s.column.axis_max != 100.0}


def radar_data(rows: Sequence[Any], *, normalise: str = "range", inner: float = 0.2) -> RadarData:
    """Headline values of table rows per paper column, normalised per axis.

    ``range`` (default): each axis spans its metric's own range, 0 at the centre and the
    metric's maximum (100, MME 2000; higher when a value exceeds it, as LLaVA-W's relative score
    can) on the outer ring, so one run's 0.0 is drawn as 0, not as its best.
    ``minmax``: the best run on an axis sits on the outer ring (1), the worst on ``inner``
    (so small differences are visible, as in the paper's Fig. 1); an axis where all runs tie
    puts everyone at 1.  ``max``: value / best value.  Only columns every row has are used.
    """
    if normalise not in ("range", "minmax", "max"):
        raise ValueError(f"normalise must be 'range', 'minmax' or 'max', got {normalise!r}")
    rows = list(rows)
    if not rows:
        raise ValueError("no rows for the radar chart")
    keys, table = [], []
    cols = columns()
    for key in layouts()["all"]:
        vals = [_row_value(r, cols[key]) for r in rows]
        if all(v is not None for v in vals):
            keys.append(key)
            table.append(vals)
    if len(keys) < 3:
        raise ValueError(f"a radar chart needs at least 3 benchmarks every run has; common: {keys}")
    values = np.asarray(table, dtype=np.float64).T
    radii = np.ones_like(values)
    tops = axis_max()
    for j in range(values.shape[1]):
        col = values[:, j]
        if normalise == "range":
            radii[:, j] = np.clip(col, 0, None) / max(tops.get(keys[j], 100.0), col.max())
        elif normalise == "max":
            top = col.max()
            radii[:, j] = col / top if top > 0 else 1.0
        elif col.max() - col.min() > 1e-12:
            radii[:, j] = inner + (1 - inner) * (col - col.min()) / (col.max() - col.min())
    return RadarData(keys, [r.label for r in rows], values, radii)


def plot_radar(rows: Sequence[Any], out_prefix: str | Path, *, normalise: str = "range",
               title: str | None = None) -> list[Path]:
    """Radar chart of several rows (runs and/or published rows), one polygon each; each axis
    label carries the best value on it."""
    data = radar_data(rows, normalise=normalise)
    n = len(data.axes)
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    fig = _figure(6.0, 6.0)
    ax = fig.add_subplot(projection="polar")
    ax.set_theta_offset(np.pi / 2)
    ax.set_theta_direction(-1)
    closed = np.append(angles, angles[0])
    for i, label in enumerate(data.labels):
        r = np.append(data.radii[i], data.radii[i, 0])
        ax.plot(closed, r, color=f"C{i % 10}", linewidth=1.5, label=label)
        ax.fill(closed, r, color=f"C{i % 10}", alpha=0.08)
    ticks = []
    cols = columns()
    for j, key in enumerate(data.axes):
        col = cols[key]
        best = data.values[:, j].max()
        ticks.append(f"{col.markdown}\n{best:.{col.decimals}f}")
    ax.set_xticks(angles, ticks, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_yticklabels([])
    ax.grid(alpha=0.4)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=min(len(data.labels), 3), frameon=False,
              fontsize=8)
    ax.set_title(title or {"range": "each axis from 0 (centre) to the metric's maximum",
                           "minmax": "normalised per axis (best = outer ring)",
                           "max": "value / best value per axis"}[normalise], fontsize=9, pad=18)
    return save_figure(fig, out_prefix)


def radar_from_run_dirs(run_dirs: Sequence[str | Path], out_prefix: str | Path, *,
                        labels: Sequence[str] | None = None, literature: Sequence[str] = (),
                        normalise: str = "range") -> list[Path]:
    """Radar chart of runs' headline metrics, optionally with published rows (literature keys)."""
    from .tables import TableRow, load_run_row

    dirs = [Path(d) for d in run_dirs]
    names = _labels(dirs, labels) if dirs else []
    rows = [load_run_row(d, name) for d, name in zip(dirs, names)]
    rows += [TableRow.from_literature(key) for key in literature]
    return plot_radar(rows, out_prefix, normalise=normalise)


__all__ = [
    "FixedLevelData", "GateMeans", "RadarData", "fixed_level_series", "gate_weight_means", "plot_fixed_levels",
    "plot_gate_heatmap", "plot_radar", "radar_data", "radar_from_run_dirs", "save_figure", "task_title",
]
