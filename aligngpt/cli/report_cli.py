"""``aligngpt-eval grid | table | plot``: ablation grids, paper tables and alignment figures.

``add_report_parsers(subparsers)`` adds the three subcommands to the ``aligngpt-eval`` parser
(each sets ``func``); ``cmd_grid``/``cmd_table``/``cmd_plot`` run them and return an exit code.

RUN_DIR arguments are run folders (``results.json`` inside) or grid output folders
(``grid_state.json`` inside), which stand for their finished cells.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ConfigError
from .checks import integer

PLOT_KINDS = ("gate-heatmap", "fixed-level", "radar")


def add_report_parsers(subparsers) -> None:
    """Register ``grid``, ``table`` and ``plot`` on an argparse subparsers object."""
    grid = subparsers.add_parser("grid", help="run a declarative ablation grid (resumable, deduplicated)")
    grid.add_argument("spec", metavar="SPEC.yaml", help="grid spec (models, align_modes, tasks, seeds, settings)")
    grid.add_argument("--output-dir", default=None,
                      help="grid folder (default: the spec's output_dir, else results/grids/SPEC_NAME)")
    grid.add_argument("--dry-run", action="store_true", help="list the cells and their status; run nothing")
    grid.add_argument("--quiet", action="store_true", help="no progress bars or per-cell tables: one status table at the end")
    grid.set_defaults(func=cmd_grid)

    table = subparsers.add_parser("table", help="LaTeX/Markdown table in the paper's layouts from run folders")
    table.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    table.add_argument("--format", choices=["latex", "markdown"], default="markdown")
    table.add_argument("--layout", default="auto",
                       help="academic | instruction | all | ablation | comma-separated columns | auto "
                            "(the runs' tasks in the paper's order; default)")
    table.add_argument("--baseline", default=None, metavar="LABEL",
                       help="row (label or run folder) the others are tested against (paired test; † p < 0.05)")
    table.add_argument("--ci", action="store_true", help="± half-width of the 95%% bootstrap CI")
    table.add_argument("--out", default=None, metavar="FILE", help="write here instead of stdout")
    table.add_argument("--labels", default=None, help="comma-separated row labels, one per run")
    table.add_argument("--literature", default="", metavar="KEYS",
                       help="published rows to add, e.g. aligngpt-7b,llava-1.5-7b (see report.literature)")
    table.add_argument("--caption", default=None)
    table.add_argument("--standalone", action="store_true", help="LaTeX: a complete document (pdflatex-ready)")
    table.add_argument("--n-resamples", type=integer(1), default=1000, help="bootstrap resamples for --ci/--baseline")
    table.set_defaults(func=cmd_table)

    plot = subparsers.add_parser("plot", help="gate heatmap, accuracy vs fixed:K, or radar chart (PNG + PDF)")
    plot.add_argument("run_dirs", nargs="*", metavar="RUN_DIR")
    plot.add_argument("--kind", choices=PLOT_KINDS, required=True)
    plot.add_argument("--out", default=None, metavar="PREFIX",
                      help="writes PREFIX.png and PREFIX.pdf (default: results/figures/KIND)")
    plot.add_argument("--labels", default=None, help="comma-separated labels, one per run")
    plot.add_argument("--metric", default=None, help="fixed-level: metric key instead of each task's headline")
    plot.add_argument("--literature", default="", metavar="KEYS", help="radar: published rows to add")
    plot.add_argument("--normalise", choices=["range", "minmax", "max"], default="range",
                      help="radar axes: the metric's own range (default), min..max of the runs, or value / best")
    plot.set_defaults(func=cmd_plot)


# --------------------------------------------------------------------------- grid


def cmd_grid(args) -> int:
    from ..harness.grid import load_grid_spec, run_grid

    spec = load_grid_spec(args.spec)
    result = run_grid(spec, args.output_dir, dry_run=args.dry_run, quiet=getattr(args, "quiet", False))
    if args.dry_run:
        return 0
    print(f"grid: {result.output_dir} (grid_state.json, grid_results.json, tables/grid.md, tables/grid.tex)")
    if result.failed:
        print(f"grid: {len(result.failed)} cell(s) failed: {', '.join(c.label for c in result.failed)}",
              file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------- table


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _runs(paths, labels_text):
    """(run folders, labels) from CLI arguments, grid folders expanded."""
    from ..report.runs import expand_run_dirs, run_labels

    pairs = expand_run_dirs(paths)
    given = _split(labels_text)
    if given and len(given) != len(pairs):
        raise ConfigError(f"--labels gives {len(given)} labels for {len(pairs)} runs")
    dirs = [d for d, _ in pairs]
    labels = run_labels(dirs, given or [lab for _, lab in pairs])
    return dirs, labels


def _baseline_index(baseline: str, dirs: list[Path], labels: list[str]) -> int:
    if baseline in labels:
        return labels.index(baseline)
    for i, d in enumerate(dirs):
        if d.name == baseline or (Path(baseline).exists() and d.resolve() == Path(baseline).resolve()):
            return i
    raise ConfigError(f"--baseline {baseline!r} matches no run; labels: {', '.join(labels)}")


def auto_layout(rows) -> tuple[str, ...]:
    """The paper columns that any of the rows fills, in the paper's order."""
    from ..report.tables import columns, layouts

    cols = columns()
    keys = tuple(k for k in layouts()["all"]
                 if any(t in r.metrics for r in rows for t, _ in cols[k].candidates()))
    if not keys:
        raise ConfigError("none of the runs has a task with a table column")
    return keys


def latex_document(body: str) -> str:
    """Wrap a table in a minimal article so pdflatex compiles it."""
    return ("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n"
            "\\usepackage[margin=1.5cm,landscape]{geometry}\n\\begin{document}\n" + body + "\\end{document}\n")


def cmd_table(args) -> int:
    from ..io import atomic_write_text
    from ..report.tables import TableRow, layouts, render_table, rows_from_run_dirs

    dirs, labels = _runs(args.run_dirs, args.labels)
    base = None if args.baseline is None else _baseline_index(args.baseline, dirs, labels)
    try:
        rows = rows_from_run_dirs(dirs, labels, ci=args.ci, baseline=base, n_resamples=args.n_resamples)
        lit = [TableRow.from_literature(k) for k in _split(args.literature)]
    except KeyError as exc:
        raise ConfigError(str(exc.args[0]) if exc.args else str(exc)) from None
    if args.layout == "auto":
        layout = auto_layout(rows)
    elif args.layout in layouts():
        layout = args.layout
    else:
        layout = tuple(_split(args.layout))
    try:
        text = render_table(lit + rows, layout=layout, fmt=args.format,
                            baseline=None if base is None else labels[base], show_ci=args.ci,
                            caption=args.caption)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if args.standalone and args.format == "latex":
        text = latex_document(text)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"table: {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


# --------------------------------------------------------------------------- plot


def cmd_plot(args) -> int:
    from ..extras import import_optional
    from ..report import plots

    import_optional("matplotlib", "aligngpt-eval plot")  # before any work

    out = args.out or str(Path("results") / "figures" / args.kind.replace("-", "_"))
    literature = _split(args.literature)
    if not args.run_dirs and not (args.kind == "radar" and literature):
        raise ConfigError("plot needs at least one RUN_DIR (radar: or --literature rows)")
    dirs, labels = _runs(args.run_dirs, args.labels) if args.run_dirs else ([], [])
    try:
        if args.kind == "gate-heatmap":
            keep = [i for i, d in enumerate(dirs) if plots.gate_weight_means(d)]
            if keep and len(keep) < len(dirs):  # e.g. a grid folder: only its gated/local cells have weights
                skipped = [labels[i] for i in range(len(dirs)) if i not in keep]
                print(f"plot: no gate weights in {', '.join(skipped)}; left out", file=sys.stderr)
                dirs, labels = [dirs[i] for i in keep], [labels[i] for i in keep]
            paths = plots.plot_gate_heatmap(dirs, out, labels=labels)
        elif args.kind == "fixed-level":
            paths = plots.plot_fixed_levels(dirs, out, labels=labels, metric=args.metric)
        else:
            paths = plots.radar_from_run_dirs(dirs, out, labels=labels, literature=literature,
                                              normalise=args.normalise)
    except (ValueError, KeyError) as exc:
        raise ConfigError(str(exc.args[0]) if exc.args else str(exc)) from None
    for p in paths:
        print(p)
    return 0
