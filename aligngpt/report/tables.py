"""Paper-layout result tables: booktabs LaTeX and GitHub Markdown.

Columns follow the AlignGPT paper: the academic VQA table (VQAv2, GQA, VizWiz, SQA-I,
TextVQA), the instruction-following table (POPE, MME, MMB, MMB-CN, SEED-I, LLaVA-W, MM-Vet),
both together, or the columns of its ablation Tables 3-4.  Rows are our runs (the
``tasks.{TASK}.metrics`` of ``results.json``) and optionally published rows.  Every number is
printed with one decimal, as the paper does (MME too).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import DataError
from ..io import read_json
from .literature import LiteratureRow, literature_row
from .stats import CI, load_records, metric_at, task_bootstrap_ci, task_paired_test


@dataclass(frozen=True)
class Column:
    """One benchmark column: which task/metric fills it and how its header reads."""

    key: str
    latex: str
    markdown: str
    metric: str
    fallbacks: tuple[tuple[str, str], ...] = ()
    """(task, metric) used when the row lacks the primary task, e.g. the local val split."""
    decimals: int = 1

    def candidates(self) -> tuple[tuple[str, str], ...]:
        return ((self.key, self.metric),) + self.fallbacks


def _column_specs():
    from ..harness.task_registry import ordered_specs

    return [s for s in ordered_specs() if s.column is not None]


def columns() -> dict[str, Column]:
    """Every table column in paper order, from the tasks' ``column`` sections; a task with
    ``fallback_for`` fills another task's column where a row lacks that task."""
    specs = _column_specs()
    out: dict[str, Column] = {}
    for spec in specs:
        c = spec.column
        if c.fallback_for:
            continue
        fallbacks = tuple((s.name, s.column.metric) for s in specs if s.column.fallback_for == spec.name)
        out[c.key] = Column(c.key, c.latex, c.markdown, c.metric, fallbacks)
    return out


def layouts() -> dict[str, tuple[str, ...]]:
    """Named column sets: the paper's two tables, both, and its ablation Tables 3-4."""
    specs = [s for s in _column_specs() if not s.column.fallback_for]
    academic = tuple(s.column.key for s in specs if s.column.group == "academic")
    instruction = tuple(s.column.key for s in specs if s.column.group == "instruction")
    return {
        "academic": academic,
        "instruction": instruction,
        "all": academic + instruction,
        "ablation": tuple(s.column.key for s in specs if s.column.ablation),
    }


def metric_notes() -> dict[str, str]:
    """What each column's number is, for the automatic footnote."""
    return {s.column.key: s.column.note for s in _column_specs() if s.column.note and not s.column.fallback_for}


def __getattr__(name: str):
    # The former constants, computed from the registry on access (plugin tasks included).
    if name == "COLUMNS":
        return columns()
    if name == "LAYOUTS":
        return layouts()
    if name in ("ACADEMIC", "INSTRUCTION"):
        return layouts()[name.lower()]
    raise AttributeError(name)


_FALLBACK_MARK = "§"
_UNRANKED_MARK = "‡"
_LATEX_MARKS = {"†": r"\dag{}", "‡": r"\ddag{}", "§": r"\S{}", "*": "*"}
_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                   "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}
_LATEX_UNICODE = {"±": r"$\pm$", "†": r"\dag{}", "‡": r"\ddag{}", "§": r"\S{}", "–": "--", "—": "---"}


def latex_escape(text: str) -> str:
    """Escape LaTeX specials in plain text (labels, notes)."""
    out = []
    for ch in str(text):
        out.append(_LATEX_SPECIALS.get(ch) or _LATEX_UNICODE.get(ch) or ch)
    return "".join(out)


def markdown_escape(text: str) -> str:
    """Escape what would break a pipe-table cell or turn into emphasis."""
    out = str(text).replace("\\", "\\\\").replace("|", r"\|").replace("*", r"\*").replace("_", r"\_")
    return out.replace("\n", " ")


# --------------------------------------------------------------------------- rows


@dataclass
class TableRow:
    """One table row.

    ``metrics`` maps a task name to a number, to that task's metrics dict (``results.json``
    ``tasks.{TASK}.metrics``) or to the whole ``tasks.{TASK}`` entry.  ``ci`` maps a task to a
    :class:`~aligngpt.report.stats.CI`, a ``(low, high)`` pair or a half-width; ``significance``
    maps a task to a p-value (vs the baseline row) or a ready-made marker string.
    """

    label: str
    metrics: Mapping[str, Any]
    ci: Mapping[str, Any] = field(default_factory=dict)
    significance: Mapping[str, Any] = field(default_factory=dict)
    is_literature: bool = False
    citation: str = ""
    info: Mapping[str, str] = field(default_factory=dict)
    """Extra text columns picked by ``info_columns`` (e.g. ``{"LLM": "Vicuna-7B"}``)."""
    judges: Mapping[str, str] = field(default_factory=dict)
    protocols: Mapping[str, str] = field(default_factory=dict)
    notes: Mapping[str, str] = field(default_factory=dict)
    """Per-task caveats printed as footnotes."""
    caveat: str = ""
    """Why this run's numbers are not the benchmark's (e.g. "bundled toy data"): such a row is
    marked and never ranked (bolded) against published rows."""

    @classmethod
    def from_literature(cls, row: LiteratureRow | str, label: str | None = None) -> "TableRow":
        lit = literature_row(row) if isinstance(row, str) else row
        info = {"LLM": lit.llm, "Res.": "" if lit.resolution is None else str(lit.resolution)}
        return cls(label or lit.label, dict(lit.metrics), is_literature=True, citation=lit.citation,
                   info=info, notes=dict(lit.notes))

    @classmethod
    def from_results(cls, results: Mapping[str, Any] | str | Path, label: str | None = None) -> "TableRow":
        """A row from a ``results.json`` (dict or path); the label defaults to the model name."""
        source = None
        if not isinstance(results, Mapping):
            source = Path(results)
            results = read_json(source)
        tasks = results.get("tasks")
        if not isinstance(tasks, Mapping):
            raise DataError(source, "results.json has no 'tasks' object")
        metrics, judges, protocols = {}, {}, {}
        for task, entry in tasks.items():
            if not isinstance(entry, Mapping) or not isinstance(entry.get("metrics"), Mapping):
                raise DataError(source, f"tasks.{task} has no 'metrics' object")
            metrics[task] = entry["metrics"]
            judge = entry["metrics"].get("judge")
            if isinstance(judge, Mapping) and judge.get("model"):
                judges[task] = str(judge["model"])
            if entry.get("protocol"):
                protocols[task] = str(entry["protocol"])
        model = results.get("model") if isinstance(results.get("model"), Mapping) else {}
        name = label or model.get("name") or model.get("path") or (source.parent.name if source else "run")
        return cls(str(name), metrics, judges=judges, protocols=protocols, caveat=_caveat(tasks))


def _caveat(tasks: Mapping[str, Any]) -> str:
    """What makes a run's numbers incomparable with published ones: toy data, a --limit subset."""
    why = []
    if any(isinstance(e.get("data"), Mapping) and e["data"].get("source") == "toy" for e in tasks.values()):
        why.append("bundled toy data (synthetic)")
    if any("limited" in e for e in tasks.values()):
        why.append("a --limit subset of the questions")
    return " and ".join(why)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)) and math.isfinite(float(value)):
        return float(value)
    return None


def _cell_value(row: TableRow, col: Column) -> tuple[float | None, str | None]:
    """(value, task it came from), trying the primary task then the fallbacks."""
    for task, metric in col.candidates():
        if task not in row.metrics:
            continue
        entry = row.metrics[task]
        if isinstance(entry, Mapping):
            entry = entry.get("metrics", entry) if "metrics" in entry else entry
            try:
                return metric_at(entry, metric), task
            except (KeyError, TypeError):
                continue  # e.g. vqav2 test-dev: no local metrics, try the val split
        value = _number(entry)
        if value is not None:
            return value, task
    return None, None


def _half_width(ci: Any) -> float | None:
    if ci is None:
        return None
    if isinstance(ci, CI):
        return ci.half_width
    if isinstance(ci, (tuple, list)) and len(ci) == 2:
        return (float(ci[1]) - float(ci[0])) / 2.0
    return _number(ci)


def _marker(sig: Any, levels: Sequence[tuple[float, str]]) -> str:
    if sig is None:
        return ""
    if isinstance(sig, str):
        return sig
    p = _number(sig)
    if p is None:
        return ""
    for threshold, mark in sorted(levels):
        if p < threshold:
            return mark
    return ""


# --------------------------------------------------------------------------- rendering


@dataclass
class _Cell:
    text: str  # the number, formatted
    value: float | None
    pm: str = ""  # CI half-width, formatted
    marks: str = ""


def _columns(layout: str | Sequence[str]) -> list[Column]:
    named, cols = layouts(), columns()
    keys = named.get(layout) if isinstance(layout, str) else tuple(layout)
    if keys is None:
        raise ValueError(f"unknown layout {layout!r}; use one of {', '.join(named)} or a list of tasks")
    unknown = [k for k in keys if k not in cols]
    if unknown:
        raise ValueError(f"unknown column(s) {unknown}; known: {', '.join(cols)}")
    return [cols[k] for k in keys]


def render_table(rows: Sequence[TableRow], layout: str | Sequence[str] = "all", fmt: str = "latex",
                 baseline: str | None = None, show_ci: bool = False, notes: Sequence[str] = (), *,
                 caption: str | None = None, label: str | None = None, bold_best: bool = True,
                 bold_scope: str = "all", sig_levels: Sequence[tuple[float, str]] = ((0.05, "†"),),
                 info_columns: Sequence[str] = (), environment: bool = True, auto_notes: bool = True,
                 label_header: str = "Method") -> str:
    """Render rows in one of the paper's layouts as booktabs LaTeX or a GitHub Markdown table.

    * best value per column (compared as printed, ties all bold) in bold, among all rows or
      only our runs (``bold_scope="runs"``); needs at least two values in the column;
    * ``show_ci``: ``±`` the CI half-width after each value that has one;
    * ``baseline``: label of the row the significance marks compare against; a row's p-value
      below a ``sig_levels`` threshold gets that mark (default † for p < 0.05);
    * a value taken from a fallback task (e.g. ``vqav2_val`` for VQAv2) is marked §;
    * missing cells print ``--``; ``notes`` are appended after the automatic footnotes.
    """
    if fmt not in ("latex", "markdown"):
        raise ValueError(f"fmt must be 'latex' or 'markdown', got {fmt!r}")
    if bold_scope not in ("all", "runs"):
        raise ValueError(f"bold_scope must be 'all' or 'runs', got {bold_scope!r}")
    cols = _columns(layout)
    rows = list(rows)
    if not rows:
        raise ValueError("no rows to render")
    if baseline is not None and baseline not in [r.label for r in rows]:
        raise ValueError(f"baseline row {baseline!r} is not among the rows {[r.label for r in rows]}")

    grid: list[list[_Cell]] = []
    used_fallback = False
    any_ci, any_sig = False, False
    for row in rows:
        cells = []
        for col in cols:
            value, task = _cell_value(row, col)
            if value is None:
                cells.append(_Cell("--", None))
                continue
            cell = _Cell(f"{value:.{col.decimals}f}", value)
            if task != col.key:
                cell.marks += _FALLBACK_MARK
                used_fallback = True
            if show_ci:
                hw = _half_width(row.ci.get(task, row.ci.get(col.key)))
                if hw is not None and math.isfinite(hw):
                    cell.pm = f"{hw:.{col.decimals}f}"
                    any_ci = True
            if row.label != baseline:
                mark = _marker(row.significance.get(task, row.significance.get(col.key)), sig_levels)
                if mark:
                    cell.marks += mark
                    any_sig = True
            cells.append(cell)
        grid.append(cells)

    bold = [[False] * len(cols) for _ in rows]
    published = any(r.is_literature for r in rows)
    if bold_best:
        for j in range(len(cols)):
            cand = [(i, float(grid[i][j].text)) for i, r in enumerate(rows)
                    if grid[i][j].value is not None and (bold_scope == "all" or not r.is_literature)
                    and not (published and r.caveat)]  # toy or partial runs are not ranked against papers
            if len(cand) >= 2:
                best = max(v for _, v in cand)
                for i, v in cand:
                    bold[i][j] = v == best

    foot = _footnotes(rows, cols, fmt, baseline, sig_levels, used_fallback, any_ci, any_sig, notes,
                      auto_notes) if (auto_notes or notes) else []
    if auto_notes and not published and any(r.caveat for r in rows):
        foot.append((latex_escape if fmt == "latex" else str)(
            "Not the benchmarks' numbers: " + "; ".join(sorted({r.caveat for r in rows if r.caveat})) + "."))
    if published and any(r.caveat for r in rows):
        rows = [replace(r, label=r.label + _UNRANKED_MARK) if r.caveat else r for r in rows]
        esc = latex_escape if fmt == "latex" else (lambda t: t)
        foot.insert(0, esc(f"{_UNRANKED_MARK} " + "; ".join(sorted({r.caveat for r in rows if r.caveat}))
                           + ": not comparable to the published rows, and left out of the bold ranking."))
    if fmt == "markdown":
        return _markdown(rows, cols, grid, bold, info_columns, label_header, foot, caption)
    return _latex(rows, cols, grid, bold, info_columns, label_header, foot, caption, label, environment)


def _ci_level(rows: Sequence[TableRow]) -> str:
    alphas = {round(1 - ci.alpha, 6) for r in rows for ci in r.ci.values() if isinstance(ci, CI)}
    if len(alphas) == 1:
        return f"{100 * alphas.pop():g}%"
    return ""


def _footnotes(rows, cols, fmt, baseline, sig_levels, used_fallback, any_ci, any_sig, notes, auto) -> list[str]:
    """Footnote lines, already in the output format."""
    tex = fmt == "latex"
    esc = latex_escape if tex else (lambda s: s)
    out: list[str] = []
    if auto:
        keys = [c.key for c in cols]
        meaning = metric_notes()
        defs = [meaning[k] for k in keys if k in meaning]
        if defs:
            out.append(esc("Metrics: " + "; ".join(defs) + "."))
        if used_fallback:
            out.append(esc(f"{_FALLBACK_MARK} scored locally on the validation split "
                           "(published numbers are from the evaluation server)."))
        if any_ci:
            level = _ci_level(rows)
            out.append(esc(f"± half-width of the {level + ' ' if level else ''}bootstrap confidence interval "
                           "over questions (percentile method; clusters and splits resampled as the metric "
                           "requires)."))
        if any_sig:
            vs = f"vs. {baseline}" if baseline else "vs. the baseline"
            marks = ", ".join(f"{m} p < {t:g}" for t, m in sorted(sig_levels))
            out.append(esc(f"{marks} {vs} (paired test on the same questions)."))
        protocols = sorted({p for r in rows if not r.is_literature for p in r.protocols.values()})
        if protocols:
            out.append(esc("Protocol: " + ", ".join(protocols) + "."))
        judge_scored = {s.column.key: s for s in _column_specs() if s.scoring == "judge" and not s.column.fallback_for}
        judged = [k for k in judge_scored if k in keys]
        if judged:
            names = {k: c.markdown for k, c in columns().items()}
            by_judges: dict[str, list[str]] = {}
            for k in judged:
                used = sorted({r.judges[k] for r in rows if not r.is_literature and k in r.judges})
                if used:
                    by_judges.setdefault(", ".join(used), []).append(names[k])
            if by_judges:
                out.append(esc("; ".join(f"{' and '.join(t)} judged by {j}" for j, t in by_judges.items()) + "."))
            pinned = {k: f"{names[k]} {judge_scored[k].resolve(judge_scored[k].evaluator_ref).official_judge_model}"
                      for k in judged}
            lit = [k for k in judged if any(r.is_literature and k in r.metrics for r in rows)]
            if lit:
                out.append(esc("Published numbers were judged by GPT-4 (the official scripts pin "
                               + ", ".join(pinned[k] for k in lit) + ")."))
        cites: dict[str, list[str]] = {}
        for r in rows:
            if r.is_literature and r.citation:
                cites.setdefault(r.citation, []).append(r.label)
        for citation, labels in cites.items():
            out.append(esc(f"{', '.join(labels)}: {citation}."))
        for r in rows:
            for task, note in r.notes.items():
                if task in keys:
                    out.append(esc(f"{r.label}, {columns()[task].markdown}: {note}."))
    out.extend(esc(n) for n in notes)
    return out


def _fmt_cell(cell: _Cell, is_bold: bool, tex: bool) -> str:
    if tex:
        text = rf"\textbf{{{cell.text}}}" if is_bold else cell.text
        if cell.pm:
            text += rf"$\pm${cell.pm}"
        if cell.marks:
            text += r"\textsuperscript{" + "".join(_LATEX_MARKS.get(m, latex_escape(m)) for m in cell.marks) + "}"
        return text
    text = f"**{cell.text}**" if is_bold else cell.text
    if cell.pm:
        text += f"±{cell.pm}"
    return text + markdown_escape(cell.marks) if cell.marks else text


def _markdown(rows, cols, grid, bold, info_columns, label_header, foot, caption) -> str:
    header = [markdown_escape(label_header)] + [markdown_escape(i) for i in info_columns] + [c.markdown for c in cols]
    align = ["---"] + ["---"] * len(info_columns) + ["---:"] * len(cols)
    lines = []
    if caption:
        lines += [f"**{markdown_escape(caption)}**", ""]
    lines += ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    for i, row in enumerate(rows):
        cells = [markdown_escape(row.label)] + [markdown_escape(row.info.get(k, "")) or "--" for k in info_columns]
        cells += [_fmt_cell(grid[i][j], bold[i][j], False) for j in range(len(cols))]
        lines.append("| " + " | ".join(cells) + " |")
    if foot:
        lines.append("")
        lines += [f"- {n}" for n in foot]
    return "\n".join(lines) + "\n"


def _latex(rows, cols, grid, bold, info_columns, label_header, foot, caption, label, environment) -> str:
    spec = "l" * (1 + len(info_columns)) + "c" * len(cols)
    body = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    header = [latex_escape(label_header)] + [latex_escape(i) for i in info_columns] + [c.latex for c in cols]
    body.append(" & ".join(header) + r" \\")
    body.append(r"\midrule")
    for i, row in enumerate(rows):
        if i > 0 and row.is_literature != rows[i - 1].is_literature:
            body.append(r"\midrule")
        cells = [latex_escape(row.label)] + [latex_escape(row.info.get(k, "")) or "--" for k in info_columns]
        cells += [_fmt_cell(grid[i][j], bold[i][j], True) for j in range(len(cols))]
        body.append(" & ".join(cells) + r" \\")
    body += [r"\bottomrule", r"\end{tabular}"]
    notes = []
    if foot:
        notes = [r"\par\smallskip", r"{\footnotesize"] + [n + r"\par" for n in foot] + ["}"]
    if not environment:
        return "\n".join(body + notes) + "\n"
    out = [r"\begin{table}[t]", r"\centering"]
    if caption:
        out.append(rf"\caption{{{latex_escape(caption)}}}")
    if label:
        out.append(rf"\label{{{label}}}")
    out += body + notes + [r"\end{table}"]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- from run folders


def load_run_row(run_dir: str | Path, label: str | None = None) -> TableRow:
    """A row from ``RUN_DIR/results.json``."""
    return TableRow.from_results(Path(run_dir) / "results.json", label=label)


def _column_for_task(task: str) -> tuple[str, str] | None:
    for col in columns().values():
        for t, metric in col.candidates():
            if t == task:
                return col.key, metric
    return None


def rows_from_run_dirs(run_dirs: Sequence[str | Path], labels: Sequence[str] | None = None, *,
                       ci: bool = False, baseline: int | None = None, n_resamples: int = 1000,
                       alpha: float = 0.05, seed: int = 0) -> list[TableRow]:
    """Rows for several runs; optionally with bootstrap CIs and paired p-values vs one of them.

    CIs and p-values come from ``RUN_DIR/TASK/samples.jsonl`` through
    :func:`~aligngpt.report.stats.task_bootstrap_ci` / ``task_paired_test``; ``baseline`` is the
    index of the baseline run.  A task whose samples lack the fields its statistic needs gets
    no CI (its value is still printed).
    """
    dirs = [Path(d) for d in run_dirs]
    if labels is not None and len(labels) != len(dirs):
        raise ValueError(f"{len(labels)} labels for {len(dirs)} runs")
    rows = [load_run_row(d, None if labels is None else labels[i]) for i, d in enumerate(dirs)]
    if not ci and baseline is None:
        return rows
    if baseline is not None and not 0 <= baseline < len(dirs):
        raise ValueError(f"baseline index {baseline} out of range for {len(dirs)} runs")

    def records(d: Path, task: str) -> list[dict] | None:
        path = d / task / "samples.jsonl"
        return load_records(path) if path.is_file() else None

    for i, (d, row) in enumerate(zip(dirs, rows)):
        cis, sig = {}, {}
        for task in row.metrics:
            colmetric = _column_for_task(task)
            recs = records(d, task) if colmetric else None
            if not recs:
                continue
            try:
                if ci:
                    cis[task] = task_bootstrap_ci(task, recs, colmetric[1], n_resamples=n_resamples,
                                                  alpha=alpha, seed=seed)
                if baseline is not None and i != baseline:
                    base = records(dirs[baseline], task)
                    if base:
                        sig[task] = task_paired_test(task, recs, base, colmetric[1], n_resamples=n_resamples,
                                                     alpha=alpha, seed=seed).p_value
            except ValueError:
                continue  # the records lack what this task's statistic needs
        row.ci, row.significance = cis, sig
    return rows
