"""Paper-layout tables (aligngpt.report.tables) and the published rows (literature)."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from aligngpt.errors import DataError
from aligngpt.report import literature as L
from aligngpt.report.stats import CI
from aligngpt.report.tables import (COLUMNS, LAYOUTS, TableRow, latex_escape, markdown_escape, render_table,
                                    rows_from_run_dirs)


def _run(label="ours", **metrics):
    return TableRow(label, metrics)


# ----------------------------------------------------------------------------- markdown


def test_markdown_exact_small_table():
    rows = [TableRow("LLaVA-1.5-7B", {"gqa": 62.0, "vqav2": 78.5}, is_literature=True),
            TableRow("run_a", {"gqa": {"accuracy": 62.96, "binary": 80.0}, "vizwiz_val": {"accuracy": 50.04}})]
    out = render_table(rows, "academic", "markdown", auto_notes=False)
    # GQA: 62.0 vs 63.0 (62.96 rounded) -> run_a bold; VQAv2 only one value -> no bold;
    # VizWiz from the val fallback -> § mark; missing cells "--".
    assert out == (
        "| Method | VQAv2 | GQA | VizWiz | SQA-I | TextVQA |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: |\n"
        "| LLaVA-1.5-7B | 78.5 | 62.0 | -- | -- | -- |\n"
        "| run\\_a | -- | **63.0** | 50.0§ | -- | -- |\n"
    )


def test_markdown_ci_significance_and_notes():
    rows = [TableRow("base", {"pope": {"f1": 85.0}}),
            TableRow("new|model", {"pope": {"f1": 86.04}}, ci={"pope": CI(86.04, 85.0, 87.0, 0.5)},
                     significance={"pope": 0.01})]
    out = render_table(rows, ["pope"], "markdown", baseline="base", show_ci=True, notes=["My note"])
    lines = out.splitlines()
    # half-width (87 - 85)/2 = 1.0; p = 0.01 < 0.05 -> †; '|' in the label escaped
    assert lines[3] == "| new\\|model | **86.0**±1.0† |"
    assert lines[2] == "| base | 85.0 |"
    assert "- Metrics: POPE: F1 averaged over the random, popular and adversarial splits." in lines
    assert "- ± half-width of the 95% bootstrap confidence interval over questions (percentile method; " \
           "clusters and splits resampled as the metric requires)." in lines
    assert "- † p < 0.05 vs. base (paired test on the same questions)." in lines
    assert lines[-1] == "- My note"


# ----------------------------------------------------------------------------- LaTeX


def test_latex_booktabs_bold_and_escaping():
    rows = [TableRow.from_literature("llava-1.5-7b"), TableRow.from_literature("aligngpt-7b"),
            TableRow("ours_v2 & 50% data", {"mme": {"perception": 1530.04, "cognition": 300.0},
                                             "mmbench": {"circular_accuracy": 60.0}})]
    tex = render_table(rows, "instruction", "latex", caption="Results (100% data)", label="tab:main")
    for cmd in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lccccccc}", r"\begin{table}[t]",
                r"\caption{Results (100\% data)}", r"\label{tab:main}", r"\end{table}"):
        assert cmd in tex
    assert r"ours\_v2 \& 50\% data" in tex
    # MME: 1530.0 beats 1527.4 and 1510.7 -> bold on our run only, one decimal like the paper
    assert r"\textbf{1530.0}" in tex and r"\textbf{1527.4}" not in tex
    # MMB: AlignGPT 67.3 is best
    assert r"\textbf{67.3}" in tex
    # a \midrule separates the literature block from our runs (header rule + block rule)
    assert tex.count(r"\midrule") == 2
    header = [ln for ln in tex.splitlines() if ln.startswith("Method")][0]
    assert header == (r"Method & POPE & MME & MMB & MMB\textsuperscript{CN} & SEED\textsuperscript{I} & "
                      r"LLaVA\textsuperscript{W} & MM-Vet \\")
    ours = [ln for ln in tex.splitlines() if ln.startswith("ours")][0]
    assert ours.endswith(r"& -- & -- & -- & -- \\") and ours.count("--") == 5
    # footnotes: citations and the GPT-4 judge of the published numbers
    assert "arXiv:2405.14129" in tex and "arXiv:2310.03744" in tex
    assert "gpt-4-0314" in tex and "gpt-4-0613" in tex
    assert r"LLaVA-1.5-7B, SEED-I: SEED-I baseline taken from ShareGPT4V" in tex


def test_latex_ci_marks_and_levels():
    rows = [TableRow("base", {"gqa": 60.0, "textvqa": 50.0}),
            TableRow("a", {"gqa": 61.0, "textvqa": 49.0}, ci={"gqa": (60.0, 62.2), "textvqa": 0.84},
                     significance={"gqa": 0.004, "textvqa": 0.2}),
            TableRow("b", {"gqa": 61.0}, significance={"gqa": "*"})]
    tex = render_table(rows, ["gqa", "textvqa"], "latex", baseline="base", show_ci=True, environment=False,
                       sig_levels=((0.01, "‡"), (0.05, "†")))
    line_a = [ln for ln in tex.splitlines() if ln.startswith("a &")][0]
    # (62.2 - 60.0)/2 = 1.1; p = 0.004 < 0.01 -> ‡; textvqa p = 0.2 -> no mark; half-width 0.84 -> 0.8
    assert line_a == r"a & \textbf{61.0}$\pm$1.1\textsuperscript{\ddag{}} & 49.0$\pm$0.8 \\"
    line_b = [ln for ln in tex.splitlines() if ln.startswith("b &")][0]
    assert line_b == r"b & \textbf{61.0}\textsuperscript{*} & -- \\"  # tie at 61.0: both bold
    assert r"\begin{table}" not in tex and tex.startswith(r"\begin{tabular}")
    assert r"\ddag{} p \textless{} 0.01, \dag{} p \textless{} 0.05 vs. base" in tex
    # without show_ci no ± is printed
    assert r"$\pm$" not in render_table(rows, ["gqa"], "latex", auto_notes=False)


def test_bold_scope_runs_and_single_value_columns():
    rows = [TableRow.from_literature("aligngpt-13b"), _run("r1", gqa=62.0), _run("r2", gqa=61.0)]
    md = render_table(rows, ["gqa", "mmvet"], "markdown", bold_scope="runs", auto_notes=False)
    assert "| AlignGPT-13B | 63.6 | 35.6 |" in md  # literature excluded from the best-of comparison
    assert "| r1 | **62.0** | -- |" in md
    md_all = render_table(rows, ["gqa", "mmvet"], "markdown", auto_notes=False)
    assert "| AlignGPT-13B | **63.6** | 35.6 |" in md_all  # MM-Vet: a single value is not bolded
    assert "**" not in render_table(rows, ["gqa"], "markdown", bold_best=False, auto_notes=False)


def test_info_columns_and_layout_orders():
    rows = [TableRow.from_literature("aligngpt-7b"), _run("x", gqa=1.0)]
    md = render_table(rows, "academic", "markdown", info_columns=["LLM", "Res."], auto_notes=False)
    assert md.splitlines()[0] == "| Method | LLM | Res. | VQAv2 | GQA | VizWiz | SQA-I | TextVQA |"
    assert md.splitlines()[2] == "| AlignGPT-7B | Vicuna-7B | 336 | 79.1 | **62.9** | 54.2 | 68.5 | 58.4 |"
    assert md.splitlines()[3] == "| x | -- | -- | -- | 1.0 | -- | -- | -- |"
    inst = render_table(rows, "instruction", "markdown", auto_notes=False).splitlines()[0]
    assert inst == "| Method | POPE | MME | MMB | MMB-CN | SEED-I | LLaVA-W | MM-Vet |"
    assert LAYOUTS["all"] == LAYOUTS["academic"] + LAYOUTS["instruction"] and len(LAYOUTS["all"]) == 12
    assert [COLUMNS[k].metric for k in LAYOUTS["all"]] == [
        "accuracy", "accuracy", "accuracy", "img_accuracy", "accuracy", "f1", "perception",
        "circular_accuracy", "circular_accuracy", "image_accuracy", "relative_score", "total"]


def test_argument_errors():
    rows = [_run(gqa=1.0)]
    with pytest.raises(ValueError, match="unknown layout"):
        render_table(rows, "nope")
    with pytest.raises(ValueError, match="unknown column"):
        render_table(rows, ["gqa", "coco"])
    with pytest.raises(ValueError, match="baseline row"):
        render_table(rows, baseline="missing")
    with pytest.raises(ValueError, match="fmt"):
        render_table(rows, fmt="html")
    with pytest.raises(ValueError, match="no rows"):
        render_table([])


def test_escape_helpers():
    assert latex_escape("a_b %c &d $e #f {g} ~ ^ \\") == \
        r"a\_b \%c \&d \$e \#f \{g\} \textasciitilde{} \textasciicircum{} \textbackslash{}"
    assert markdown_escape("a|b*c_d") == r"a\|b\*c\_d"


# ----------------------------------------------------------------------------- results.json rows


def _results(judge=None):
    mmvet = {"total": 31.0, "capabilities": {"rec": 30.0}}
    if judge:
        mmvet["judge"] = {"model": judge, "base_url": "http://x", "missing": 0}
    return {"model": {"name": "toy-model"}, "settings": {}, "environment": {},
            "tasks": {"gqa": {"metrics": {"accuracy": 55.55, "binary": 70.0, "open": 40.0}, "n": 10,
                              "protocol": "llava15_official", "data": {"source": "local", "fingerprint": "ab"}},
                      "vqav2": {"metrics": {}, "n": 10, "protocol": "llava15_official",
                                "data": {"source": "local", "fingerprint": "cd"}},
                      "mmvet": {"metrics": mmvet, "n": 3, "protocol": "llava15_official",
                                "data": {"source": "local", "fingerprint": "ef"}}}}


def test_row_from_results_dict_and_path(tmp_path):
    row = TableRow.from_results(_results(judge="gpt-4-0613"))
    assert row.label == "toy-model" and row.judges == {"mmvet": "gpt-4-0613"}
    md = render_table([row], "all", "markdown")
    # vqav2 has no local metrics (server split) and no vqav2_val -> '--'; gqa printed with 1 decimal
    assert f"| toy-model | -- | {55.55:.1f} | -- |" in md
    assert "- Protocol: llava15_official." in md
    assert "- MM-Vet judged by gpt-4-0613." in md
    assert "LLaVA-W and MM-Vet" not in md  # only MM-Vet carries a judge record
    both = _results(judge="gpt-4-0613")
    both["tasks"]["llava_bench"] = {"metrics": {"relative_score": 60.0, "judge": {"model": "gpt-4o"}}}
    md2 = render_table([TableRow.from_results(both)], "instruction", "markdown")
    assert "- LLaVA-W judged by gpt-4o; MM-Vet judged by gpt-4-0613." in md2
    path = tmp_path / "run1" / "results.json"
    path.parent.mkdir()
    path.write_text(json.dumps(_results()))
    assert TableRow.from_results(path, label="mine").label == "mine"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": {}}))
    with pytest.raises(DataError, match="no 'tasks'"):
        TableRow.from_results(bad)
    bad.write_text(json.dumps({"tasks": {"gqa": {"n": 1}}}))
    with pytest.raises(DataError, match="tasks.gqa has no 'metrics'"):
        TableRow.from_results(bad)


def _write_run(root, name, scores, model):
    d = root / name
    (d / "gqa").mkdir(parents=True)
    acc = 100.0 * sum(scores) / len(scores)
    (d / "results.json").write_text(json.dumps(
        {"model": {"name": model}, "tasks": {"gqa": {"metrics": {"accuracy": acc}, "n": len(scores),
                                                      "protocol": "llava15_official"}}}))
    with open(d / "gqa" / "samples.jsonl", "w") as fh:
        for i, s in enumerate(scores):
            fh.write(json.dumps({"question_id": f"q{i}", "prediction": "x", "target": "y", "score": s}) + "\n")
    return d


def test_rows_from_run_dirs_with_ci_and_significance(tmp_path):
    base = _write_run(tmp_path, "base", [1.0] * 100 + [0.0] * 100, "base")   # 50%
    good = _write_run(tmp_path, "good", [1.0] * 160 + [0.0] * 40, "good")   # 80%
    rows = rows_from_run_dirs([base, good], ci=True, baseline=0, n_resamples=300)
    assert [r.label for r in rows] == ["base", "good"]
    ci = rows[1].ci["gqa"]
    # Bernoulli(0.8), n=200: half-width ~ 1.96 * sqrt(.16/200) * 100 = 5.5
    assert ci.point == pytest.approx(80.0) and 4.0 < ci.half_width < 7.0
    assert rows[1].significance["gqa"] < 0.05 and rows[0].significance == {}
    md = render_table(rows, ["gqa"], "markdown", baseline="base", show_ci=True, auto_notes=False)
    assert "| good | **80.0**±" in md and "†" in md
    plain = rows_from_run_dirs([base], labels=["B"])
    assert plain[0].label == "B" and plain[0].ci == {}
    with pytest.raises(ValueError, match="labels"):
        rows_from_run_dirs([base], labels=["a", "b"])


# ----------------------------------------------------------------------------- literature data


def test_literature_rows_match_the_paper_tables():
    a7 = L.literature_row("aligngpt-7b")
    assert [a7.metrics[t] for t in L.TASK_ORDER] == [79.1, 62.9, 54.2, 68.5, 58.4, 86.0, 1527.4, 67.3, 59.9,
                                                     66.5, 68.4, 30.8]
    assert L.literature_row("aligngpt-13b").metrics["mme"] == 1572.0
    assert L.literature_row("llava-1.5-7b").metrics["seed_image"] == 66.2
    assert L.literature_row("llava-1.5-13b").metrics["llava_bench"] == 70.7
    # the model-zoo SEED is all-dimension, so it is not in the SEED-I column
    zoo = L.literature_row("llava-1.5-7b-zoo")
    assert "seed_image" not in zoo.metrics and zoo.extra["seed_all"] == 58.6 and zoo.metrics["mmvet"] == 31.1
    # the full model appears identically in Table 3 (N=8), Table 4 (d) and the main table
    for key in ("aligngpt-7b-n8", "aligngpt-7b-gated"):
        row = L.literature_row(key)
        assert set(row.metrics) == set(L.ABLATION_TASKS)
        assert all(row.metrics[t] == a7.metrics[t] for t in L.ABLATION_TASKS)
    for row in L.ALL_ROWS:
        assert row.citation and row.source and set(row.metrics) <= set(L.TASK_ORDER)
    assert len(L.MAIN_ROWS) == 4 and all(len(r.metrics) == 12 for r in L.MAIN_ROWS)
    with pytest.raises(KeyError, match="unknown literature row"):
        L.literature_row("gpt-5")


def test_ablation_layout_reproduces_table_4():
    rows = [TableRow.from_literature(k) for k in
            ("aligngpt-7b-local", "aligngpt-7b-global", "aligngpt-7b-average", "aligngpt-7b-gated")]
    md = render_table(rows, "ablation", "markdown", auto_notes=False).splitlines()
    assert md[0] == "| Method | VQAv2 | GQA | VizWiz | SQA-I | TextVQA | POPE | MME | MMB | SEED-I |"
    # Table 4 (a): local only is the best row on TextVQA (58.6); VQAv2 79.1 ties three rows
    assert md[2] == ("| AlignGPT-7B ((a) local) | **79.1** | 62.7 | 53.3 | 67.9 | **58.6** | 85.9 | 1467.1 | "
                     "66.9 | 66.3 |")
    assert md[5] == ("| AlignGPT-7B ((d) gated) | **79.1** | **62.9** | **54.2** | 68.5 | 58.4 | **86.0** | "
                     "**1527.4** | **67.3** | **66.5** |")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not on PATH")
def test_latex_compiles(tmp_path):
    rows = [TableRow.from_literature("aligngpt-7b"),
            TableRow("ours_1 & 100%", {"gqa": 63.0}, ci={"gqa": 0.5}, significance={"gqa": 0.01})]
    table = render_table(rows, "all", "latex", baseline="AlignGPT-7B", show_ci=True, caption="Main results")
    doc = "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n" + table + "\\end{document}\n"
    (tmp_path / "t.tex").write_text(doc, encoding="utf-8")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_toy_or_limited_runs_are_marked_and_never_ranked_against_published_rows():
    toy = TableRow.from_results({"model": {"name": "toy"}, "tasks": {
        "vizwiz_val": {"metrics": {"accuracy": 60.5}, "data": {"source": "toy", "fingerprint": "x"}}}})
    assert toy.caveat == "bundled toy data (synthetic)"
    limited = TableRow.from_results({"model": {"name": "mine"}, "tasks": {
        "vizwiz_val": {"metrics": {"accuracy": 70.0}, "data": {"source": "local"}, "limited": {"limit": 5}}}})
    assert limited.caveat == "a --limit subset of the questions"
    lit = [TableRow.from_literature("aligngpt-7b"), TableRow.from_literature("llava-1.5-7b")]
    md = render_table(lit + [toy, limited], ["vizwiz"], "markdown")
    lines = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    assert "**54.2**" in lines["AlignGPT-7B"]  # the published best, not the toy 60.5 or the partial 70.0
    assert "**" not in lines["toy‡"] and "**" not in lines["mine‡"]
    assert "- ‡ a --limit subset of the questions; bundled toy data (synthetic): not comparable to the published " \
           "rows, and left out of the bold ranking." in md
    assert r"toy\ddag{}" in render_table(lit + [toy], ["vizwiz"], "latex")
    # among runs alone (an ablation on toy data) the best run is still bold
    other = TableRow("other", {"vizwiz_val": {"accuracy": 50.0}}, caveat=toy.caveat)
    assert "**60.5**" in render_table([toy, other], ["vizwiz"], "markdown") and "‡" not in render_table([toy, other], ["vizwiz"], "markdown")
