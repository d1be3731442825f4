"""What a grid prints and writes as tables: paper-layout rows of the finished cells, and the status table.

The paper layout is rendered by :mod:`aligngpt.report.tables`; this module turns cells and their
statistics into its rows.
"""
from __future__ import annotations

from typing import Any, Sequence

from ...errors import ConfigError
from ...report.runs import headline_metric
from .cells import GridCell, baseline_cell
from .spec import GridSpec, _where
from .statistics import GridStatistics


def table_layout(spec: GridSpec) -> str | tuple[str, ...]:
    """The spec's layout, or (``auto``) the paper columns of the grid's tasks in paper order."""
    if spec.layout != "auto":
        return spec.layout
    from ...report.tables import columns, layouts

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
    from ...report.tables import TableRow

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
    from ...report.tables import render_table

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


def _fmt(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "--"


def status_table(spec: GridSpec, cells: Sequence[GridCell]) -> str:
    """A plain-text table of every cell: status, headline metric per task, seconds."""
    from tabulate import tabulate

    from ...report.stats import metric_at

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
