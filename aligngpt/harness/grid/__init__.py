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

**Layout.**  One module per stage, in the order a grid goes through them, so each can be read
(and imported) alone: :mod:`.spec` (the YAML spec and its validation), :mod:`.cells` (cells,
run folders and their status on disk), :mod:`.statistics` (CIs, paired tests,
``grid_results.json``), :mod:`.tables` (paper-layout and status tables) and :mod:`.run`
(:func:`run_grid`).  Reading finished run and grid folders is not the grid's job: it lives in
:mod:`aligngpt.report.runs`, which the tables, plots and viewer use without the grid.
"""
from __future__ import annotations

from .cells import GridCell, baseline_cell, count_journaled, expand_align_modes, expand_cells, model_n_indicators
from .run import GridResult, run_grid
from .spec import NAMED_MODES, GridModel, GridSpec, load_grid_spec, parse_grid_spec
from .statistics import GridStatistics, grid_results, stat_metrics
from .tables import render_grid_tables, status_table, table_layout, table_rows

__all__ = [
    "GridCell", "GridModel", "GridResult", "GridSpec", "GridStatistics", "NAMED_MODES", "baseline_cell",
    "count_journaled", "expand_align_modes", "expand_cells", "grid_results", "load_grid_spec",
    "model_n_indicators", "parse_grid_spec", "render_grid_tables", "run_grid", "stat_metrics", "status_table",
    "table_layout", "table_rows",
]
