"""Ablation grids (spec, cells, kill + resume, statistics) and the ``table`` command."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aligngpt.cli.eval_cli import main as report_main
from aligngpt.errors import ConfigError, DataError
from aligngpt.harness.grid import (
    count_journaled,
    expand_align_modes,
    expand_cells,
    load_grid_spec,
    model_n_indicators,
    parse_grid_spec,
)
from aligngpt.report.runs import headline_metric, run_labels

ALL_MODES = ["gated", "local", "global", "average", "none", "fixed:*"]


def _write_spec(path: Path, **spec) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _fake_model(folder: Path, n_indicators: int | None) -> Path:
    """A checkpoint folder with only config.json (enough for fixed:* expansion; no weights)."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {"model_type": "aligngpt"}
    if n_indicators is not None:
        cfg["n_indicators"] = n_indicators
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


# --------------------------------------------------------------------------- spec and cells


def test_fixed_star_expands_from_config_without_weights(tmp_path):
    four = _fake_model(tmp_path / "n4", 4)
    released = _fake_model(tmp_path / "released", None)  # released configs carry no n_indicators -> 8
    assert model_n_indicators(str(four)) == 4
    assert model_n_indicators(str(released)) == 8
    assert model_n_indicators("toy") == 8  # the bundled config says n_indicators: 8
    # fixed:* -> fixed:0..N-1 in place; repeats (fixed:2 again, gated again) dropped, order kept
    assert expand_align_modes(["gated", "fixed:*", "fixed:2", "gated"], 4) == \
        ["gated", "fixed:0", "fixed:1", "fixed:2", "fixed:3"]
    with pytest.raises(ConfigError, match="only 4 levels"):
        expand_align_modes(["fixed:4"], 4)
    with pytest.raises(ConfigError, match="config.json"):
        model_n_indicators(str(tmp_path / "missing"))


def test_cells_labels_run_dirs_and_baseline_per_seed(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    spec = parse_grid_spec({
        "models": [{"label": "n4", "path": str(_fake_model(tmp_path / "n4", 4))},
                   {"label": "n6", "path": str(_fake_model(tmp_path / "n6", 6)), "align_modes": ["gated", "fixed:*"]}],
        "align_modes": ["gated", "none", "fixed:*"],
        "tasks": "pope, gqa",
        "seeds": [0, 1],
        "settings": {"limit": 5, "data_root": str(data), "source": "local"},
        "baseline": "n4/none",
    })
    cells = expand_cells(spec, tmp_path / "grid")
    # n4: (gated, none, fixed:0..3) = 6 modes x 2 seeds; n6: (gated, fixed:0..5) = 7 modes x 2 seeds
    assert len(cells) == 6 * 2 + 7 * 2
    assert [c.label for c in cells[:4]] == ["n4/gated/seed0", "n4/gated/seed1", "n4/none/seed0", "n4/none/seed1"]
    assert cells[-1].label == "n6/fixed:5/seed1"
    assert len({c.run_dir for c in cells}) == len(cells)
    assert all(c.run_dir.parent == tmp_path / "grid" / "runs" and c.status == "pending" for c in cells)
    first = cells[0]
    assert (first.settings.align_mode, first.settings.seed, first.settings.limit) == ("gated", 0, 5)
    # a seedless baseline label pairs every cell with the baseline cell of its own seed
    from aligngpt.harness.grid import baseline_cell

    assert baseline_cell(cells, "n4/none", cells[-1]).label == "n4/none/seed1"
    assert baseline_cell(cells, "n4/none", cells[0]).label == "n4/none/seed0"


def test_spec_paths_are_relative_to_the_spec_file(tmp_path):
    (tmp_path / "specs" / "data").mkdir(parents=True)
    path = _write_spec(tmp_path / "specs" / "g.yaml", models=["toy"], align_modes=["gated"], tasks=["gqa"],
                       settings={"data_root": "data", "source": "local"}, output_dir="out")
    spec = load_grid_spec(path)
    assert spec.settings["data_root"] == str(tmp_path / "specs" / "data")
    assert spec.output_dir == tmp_path / "specs" / "out"
    assert spec.models[0].label == "toy" and spec.align_modes == ("gated",) and spec.seeds == (0,)


@pytest.mark.parametrize("spec, message", [
    ({"align_modes": ["gated"], "tasks": ["gqa"]}, "'models' is required"),
    ({"models": ["toy"], "align_modes": ["gated"], "tasks": ["gqa"], "extra": 1}, "unknown key"),
    ({"models": ["toy"], "align_modes": ["sideways"], "tasks": ["gqa"]}, "unknown align mode 'sideways'"),
    ({"models": ["toy"], "align_modes": ["fixed:x"], "tasks": ["gqa"]}, "unknown align mode"),
    ({"models": ["toy"], "align_modes": ["gated"], "tasks": ["nope"]}, "unknown task 'nope'"),
    ({"models": ["toy"], "align_modes": ["gated"], "tasks": ["gqa"], "settings": {"align_mode": "x"}},
     "align_modes"),
    ({"models": ["toy"], "align_modes": ["gated"], "tasks": ["gqa"], "settings": {"fresh": True}}, "resumes"),
    ({"models": ["toy"], "align_modes": ["gated"], "tasks": ["gqa"], "settings": {"colour": 1}}, "unknown setting"),
    ({"models": ["toy", "toy"], "align_modes": ["gated"], "tasks": ["gqa"]}, "unique"),
    ({"models": ["toy"], "align_modes": ["gated"], "tasks": ["gqa"], "seeds": ["a"]}, "integers"),
])
def test_bad_specs_name_the_file(tmp_path, spec, message):
    path = _write_spec(tmp_path / "bad.yaml", **spec)
    with pytest.raises(ConfigError) as err:
        load_grid_spec(path)
    assert message in str(err.value) and "bad.yaml" in str(err.value)


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("models: [toy]\ntasks: [gqa\nalign_modes: [gated]\n")
    with pytest.raises(DataError) as err:
        load_grid_spec(path)
    assert re.search(r"broken\.yaml:\d+: malformed YAML", str(err.value))


def test_baseline_matching_no_cell_fails_before_running(tmp_path):
    spec = parse_grid_spec({"models": ["toy"], "align_modes": ["gated"], "tasks": ["gqa"], "baseline": "toy/none",
                            "settings": {"data_root": str(tmp_path), "source": "local"}})
    with pytest.raises(ConfigError, match="baseline 'toy/none' matches no cell"):
        expand_cells(spec, tmp_path / "g")


# --------------------------------------------------------------------------- kill + resume (subprocess)

# Instrumented grid entry: logs every question the engine is asked to generate and every
# question journaled, per journal file, so the test can prove nothing journaled is redone.
_WRAPPER = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    from aligngpt.engine import batched
    from aligngpt.harness import journal

    LOG = os.environ["GRID_TEST_LOG"]
    current = {}

    def log(kind, path, keys):
        with open(LOG, "a") as fh:
            fh.write(json.dumps({"pid": os.getpid(), "kind": kind, "journal": path, "keys": keys}) + "\\n")

    init, append, generate = journal.PredictionJournal.__init__, journal.PredictionJournal.append, batched.InferenceEngine.generate

    def new_init(self, path, *args, **kwargs):
        init(self, path, *args, **kwargs)
        current["path"] = str(Path(path).resolve())

    def new_append(self, records):
        fresh = [str(r["key"]) for r in records if str(r["key"]) not in self.records]
        append(self, records)
        log("journaled", str(self.path.resolve()), fresh)

    def new_generate(self, samples, **kw):
        if samples:
            log("requested", current["path"], [s.key for s in samples])
        return generate(self, samples, **kw)

    journal.PredictionJournal.__init__ = new_init
    journal.PredictionJournal.append = new_append
    batched.InferenceEngine.generate = new_generate

    from aligngpt.cli.eval_cli import main
    sys.exit(main(sys.argv[1:]))
""")

N_Q = 4  # questions per task
BATCH = 2  # -> 2 batches per task, 4 per cell (2 tasks)
KILL_AT = 10  # the 10th batch: cells 1-2 done (8 batches), cell 3 has journaled pope's first batch


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    from aligngpt.harness.toy import toy_data_root

    toy_data_root()  # generate the toy data once, outside the timed subprocesses
    root = tmp_path_factory.mktemp("grid")
    spec = _write_spec(root / "toy_grid.yaml", models=[{"label": "toy", "path": "toy"}], align_modes=ALL_MODES,
                       tasks=["pope", "gqa"], seeds=[0], baseline="toy/none",
                       settings={"limit": N_Q, "batch_size": BATCH, "max_new_tokens": 4, "source": "toy"},
                       stats={"n_resamples": 200})
    (root / "wrapper.py").write_text(_WRAPPER)
    log = root / "events.jsonl"
    out = root / "out"
    env = {k: v for k, v in os.environ.items() if k != "ALIGNGPT_FAULT"}
    env.update(GRID_TEST_LOG=str(log), OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(root / "wrapper.py"), "grid", str(spec), "--output-dir", str(out), "--quiet"]
    first = subprocess.run(cmd, env={**env, "ALIGNGPT_FAULT": f"batch:{KILL_AT}"}, capture_output=True, text=True,
                           timeout=300)
    state_after_kill = json.loads((out / "grid_state.json").read_text())
    table_after_kill = (out / "tables" / "grid.md").read_text()
    done_mtimes = {c["label"]: (out / c["run_dir"] / "results.json").stat().st_mtime_ns
                   for c in state_after_kill["cells"] if c["status"] == "complete"}
    partial_after_kill = {}
    for c in state_after_kill["cells"]:
        if c["status"] == "running":
            d = out / c["run_dir"]
            partial_after_kill = {"label": c["label"], "results": (d / "results.json").exists(),
                                  "pope": count_journaled(d, ["pope"]), "gqa": count_journaled(d, ["gqa"]),
                                  "run_state": json.loads((d / "run_state.json").read_text())["status"]}
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    events = [json.loads(l) for l in log.read_text().splitlines()]
    return dict(root=root, out=out, spec=spec, first=first, second=second, state_after_kill=state_after_kill,
                table_after_kill=table_after_kill, done_mtimes=done_mtimes, partial=partial_after_kill, events=events)


def test_grid_killed_mid_cell_records_partial_state(killed_and_resumed):
    r = killed_and_resumed
    assert r["first"].returncode == -signal.SIGKILL, r["first"].stderr[-2000:]
    cells = r["state_after_kill"]["cells"]
    # gated, local, global, average, none + fixed:0..7 (toy n_indicators = 8) = 13 cells
    assert len(cells) == 13
    assert [c["status"] for c in cells[:3]] == ["complete", "complete", "running"]
    assert all(c["status"] == "pending" for c in cells[3:])
    assert r["state_after_kill"]["status"] == "running"
    partial = r["partial"]
    assert partial["label"] == "toy/global" and partial["results"] is False and partial["run_state"] == "running"
    # batch 9 (pope of cell 3, its first BATCH questions) was journaled; batch 10 died before its
    # journal write
    assert (partial["pope"], partial["gqa"]) == (BATCH, 0)
    # partial tables hold the two finished rows and say the grid is partial
    assert "| toy/gated |" in r["table_after_kill"] and "| toy/local |" in r["table_after_kill"]
    assert "toy/global" not in r["table_after_kill"] and "Partial grid: 11 of 13" in r["table_after_kill"]


def test_restart_completes_without_recomputing_anything_journaled(killed_and_resumed):
    r = killed_and_resumed
    assert r["second"].returncode == 0, r["second"].stderr[-3000:]
    state = json.loads((r["out"] / "grid_state.json").read_text())
    assert state["status"] == "complete" and all(c["status"] == "complete" for c in state["cells"])
    assert [c["reused"] for c in state["cells"][:3]] == [True, True, False]
    assert state["cells"][2]["journaled_before"] == BATCH
    pids = sorted({e["pid"] for e in r["events"]}, key=[e["pid"] for e in r["events"]].index)
    assert len(pids) == 2
    first_pid, second_pid = pids
    journaled: dict[tuple[str, str], int] = {}
    for e in r["events"]:
        if e["kind"] == "journaled":
            for k in e["keys"]:
                journaled[(e["journal"], k)] = journaled.get((e["journal"], k), 0) + 1
    # every question of every cell journaled exactly once over both processes: 13 cells x 2 tasks x 8
    assert len(journaled) == 13 * 2 * N_Q and set(journaled.values()) == {1}
    done_first = {key for e in r["events"] if e["kind"] == "journaled" and e["pid"] == first_pid
                  for key in [(e["journal"], k) for k in e["keys"]]}
    asked_second = {key for e in r["events"] if e["kind"] == "requested" and e["pid"] == second_pid
                    for key in [(e["journal"], k) for k in e["keys"]]}
    assert len(done_first) == 9 * BATCH  # 9 batches journaled before the kill
    assert not done_first & asked_second, "a question journaled before the kill was generated again"
    # the restart asked for exactly the rest: all questions minus those journaled before the kill
    assert len(asked_second) == 13 * 2 * N_Q - 9 * BATCH
    # finished cells were not touched at all (no generation, results.json not rewritten)
    for c in state["cells"][:2]:
        assert (r["out"] / c["run_dir"] / "results.json").stat().st_mtime_ns == r["done_mtimes"][c["label"]]
        assert not any(str((r["out"] / c["run_dir"]).resolve()) in j for j, _ in asked_second)
    for c in state["cells"]:
        for task in ("pope", "gqa"):
            lines = [l for j in (r["out"] / c["run_dir"] / task).glob("journal*.jsonl")
                     for l in j.read_text().splitlines()]
            assert len(lines) == N_Q and len({json.loads(l)["key"] for l in lines}) == N_Q


def test_grid_results_hold_cis_and_paired_tests(killed_and_resumed):
    from aligngpt.report.stats import load_records, task_bootstrap_ci, task_paired_test

    r = killed_and_resumed
    res = json.loads((r["out"] / "grid_results.json").read_text())
    assert res["complete"] is True and res["baseline"] == "toy/none" and res["statistics"]["n_resamples"] == 200
    by_label = {c["label"]: c for c in res["cells"]}
    assert "toy/fixed:7" in by_label and "toy/fixed:8" not in by_label
    base_dir = r["out"] / by_label["toy/none"]["run_dir"]
    for cell in res["cells"]:
        run_dir = r["out"] / cell["run_dir"]
        results = json.loads((run_dir / "results.json").read_text())
        assert results["settings"]["align_mode"] == cell["align_mode"]
        for task, metric in (("pope", "f1"), ("pope", "accuracy"), ("gqa", "accuracy")):
            entry = cell["tasks"][task]
            assert entry["metrics"] == results["tasks"][task]["metrics"]
            recs = load_records(run_dir / task / "samples.jsonl")
            # the grid's statistics are exactly the report.stats presets on the run's samples.jsonl
            ci = task_bootstrap_ci(task, recs, metric, n_resamples=200)
            assert entry["ci"][metric]["point"] == pytest.approx(entry["metrics"][metric])
            assert (entry["ci"][metric]["low"], entry["ci"][metric]["high"]) == pytest.approx((ci.low, ci.high))
            if cell["label"] == "toy/none":
                assert entry["vs_baseline"] == {}
            else:
                pt = task_paired_test(task, recs, load_records(base_dir / task / "samples.jsonl"), metric,
                                      n_resamples=200)
                assert entry["vs_baseline"][metric]["p_value"] == pytest.approx(pt.p_value)
                assert entry["vs_baseline"][metric]["diff"] == pytest.approx(
                    entry["metrics"][metric] - by_label["toy/none"]["tasks"][task]["metrics"][metric])


def test_rerunning_a_finished_grid_runs_nothing(killed_and_resumed, monkeypatch, capsys):
    import aligngpt.harness.pipeline as run_mod

    def boom(*a, **k):
        raise AssertionError("a finished cell must be skipped")

    monkeypatch.setattr(run_mod, "execute_run", boom)
    code = report_main(["grid", str(killed_and_resumed["spec"]), "--output-dir", str(killed_and_resumed["out"]),
                        "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "13 cells (13 already complete)" in out and out.count("complete (reused)") == 13


def test_table_from_grid_folder_markdown_and_latex(killed_and_resumed, capsys, tmp_path):
    out = killed_and_resumed["out"]
    assert report_main(["table", str(out), "--format", "markdown", "--ci", "--baseline", "toy/none"]) == 0
    md = capsys.readouterr().out
    rows = [l for l in md.splitlines() if l.startswith("| toy/")]
    assert len(rows) == 13
    assert md.splitlines()[0] == "| Method | GQA | POPE |"  # auto layout: the grid's tasks, paper order
    res = json.loads((out / "grid_results.json").read_text())
    gated = next(c for c in res["cells"] if c["label"] == "toy/gated")
    assert f"{gated['tasks']['gqa']['metrics']['accuracy']:.1f}" in rows[0]
    tex_file = tmp_path / "t.tex"
    assert report_main(["table", str(out), "--format", "latex", "--ci", "--out", str(tex_file), "--standalone"]) == 0
    tex = tex_file.read_text()
    assert r"\begin{tabular}{lcc}" in tex and r"\toprule" in tex and r"\bottomrule" in tex
    assert tex.count(r"\\") >= 14 and tex.count("{") == tex.count("}")
    assert "toy/fixed:7" in tex and r"\usepackage{booktabs}" in tex


def test_dry_run_lists_cells_and_writes_nothing(tmp_path, capsys):
    from aligngpt.harness.toy import toy_data_root

    toy_data_root()
    spec = _write_spec(tmp_path / "g.yaml", models=["toy"], align_modes=["gated", "fixed:*"], tasks=["gqa"],
                       settings={"limit": 2, "source": "toy"})
    assert report_main(["grid", str(spec), "--output-dir", str(tmp_path / "out"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "9 cells" in out and "toy/fixed:7" in out and out.count("pending") == 9  # gated + fixed:0..7
    assert not (tmp_path / "out").exists()


def test_a_failing_cell_is_recorded_and_the_grid_goes_on(tmp_path, capsys):
    from aligngpt.harness.toy import toy_data_root

    toy_data_root()
    broken = _fake_model(tmp_path / "broken", 4)  # config only: loading it fails with ConfigError
    spec = _write_spec(tmp_path / "g.yaml", models=[{"label": "broken", "path": str(broken)}, "toy"],
                       align_modes=["global"], tasks=["gqa"], settings={"limit": 1, "batch_size": 1,
                                                                        "max_new_tokens": 1, "source": "toy"})
    code = report_main(["grid", str(spec), "--output-dir", str(tmp_path / "out"), "--quiet"])
    assert code == 1
    state = json.loads((tmp_path / "out" / "grid_state.json").read_text())
    assert [c["status"] for c in state["cells"]] == ["failed", "complete"]
    assert "no weights" in state["cells"][0]["error"] and state["status"] == "failed"
    assert "broken/global" in capsys.readouterr().err


# --------------------------------------------------------------------------- table on hand-built runs


def _write_run(run_dir: Path, model: str, align_mode: str, tasks: dict[str, tuple[dict, list[float]]]) -> Path:
    """A run folder in the harness's format: results.json + TASK/samples.jsonl (one row per score)."""
    for task, (metrics, scores) in tasks.items():
        rows = [{"question_id": i, "prompt": f"q{i}", "prediction": "x", "target": "y", "alignment_weights": None,
                 "score": s} for i, s in enumerate(scores)]
        (run_dir / task).mkdir(parents=True, exist_ok=True)
        (run_dir / task / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    results = {"model": {"name": model, "path": model, "bundled_toy_model": False, "align_mode": align_mode},
               "settings": {"model": model, "align_mode": align_mode, "seed": 0},
               "environment": {},
               "tasks": {t: {"metrics": m, "n": len(s), "protocol": "llava15",
                             "data": {"source": "local", "fingerprint": "0" * 64}} for t, (m, s) in tasks.items()}}
    (run_dir / "results.json").write_text(json.dumps(results))
    return run_dir


@pytest.fixture()
def two_runs(tmp_path):
    # GQA: A right on 3 of 4 -> accuracy 75.0; B right on none -> 0.0.
    # TextVQA: both runs have soft scores 1, 0.6, 0.3, 0 -> mean 1.9/4 = 47.5.
    soft = [1.0, 0.6, 0.3, 0.0]
    a = _write_run(tmp_path / "a", "m", "gated", {"gqa": ({"accuracy": 75.0}, [1, 1, 1, 0]),
                                                  "textvqa": ({"accuracy": 47.5}, soft)})
    b = _write_run(tmp_path / "b", "m", "none", {"gqa": ({"accuracy": 0.0}, [0, 0, 0, 0]),
                                                 "textvqa": ({"accuracy": 47.5}, soft)})
    return a, b


def test_run_labels_disambiguate_by_mode_then_seed_then_folder(two_runs, tmp_path):
    a, b = two_runs
    assert run_labels([a, b]) == ["m/gated", "m/none"]  # same model name -> add the align mode
    c = tmp_path / "c"
    shutil.copytree(a, c)
    assert run_labels([a, c]) == ["m/a", "m/c"]  # same mode and seed -> the folder name
    assert run_labels([a, b], ["A", None]) == ["A", "m"]


def test_table_markdown_ci_and_significance_on_hand_built_runs(two_runs, capsys):
    a, b = two_runs
    assert report_main(["table", str(a), str(b), "--format", "markdown", "--ci", "--baseline", "m/none"]) == 0
    md = capsys.readouterr().out
    lines = md.splitlines()
    assert lines[0] == "| Method | GQA | TextVQA |"
    row_a = next(l for l in lines if l.startswith("| m/gated |"))
    row_b = next(l for l in lines if l.startswith("| m/none |"))
    # GQA: 75.0 is the best value (bold).  Paired bootstrap vs B: the resampled difference is 0
    # only when all 4 draws hit A's one miss (prob 1/4^4 = 1/256), so about 4 of 1000 resamples
    # reach |d - 75| >= 75 -> p ~ 5/1001 < 0.05 -> dagger.  TextVQA: identical scores -> diff 0,
    # p = 1 -> no mark; both 47.5 -> both bold (ties).
    assert re.match(r"\| m/gated \| \*\*75\.0\*\*±\d+\.\d† \| \*\*47\.5\*\*±\d+\.\d \|$", row_a), row_a
    # B's GQA scores are all 0: every resample is 0 -> CI [0, 0] -> ± 0.0; B is the baseline: no mark.
    assert re.match(r"\| m/none \| 0\.0±0\.0 \| \*\*47\.5\*\*±\d+\.\d \|$", row_b), row_b
    assert "p < 0.05 vs. m/none" in md


def test_table_latex_with_literature_rows(two_runs, tmp_path, capsys):
    a, b = two_runs
    out = tmp_path / "table.tex"
    assert report_main(["table", str(a), str(b), "--format", "latex", "--literature", "aligngpt-7b",
                        "--labels", "ours (gated),ours (none)", "--out", str(out), "--standalone"]) == 0
    tex = out.read_text()
    # AlignGPT-7B (paper Table 2): GQA 62.9, TextVQA 58.4.  GQA best = our 75.0; TextVQA best = 58.4.
    assert r"AlignGPT-7B & 62.9 & \textbf{58.4} \\" in tex
    assert r"ours (gated) & \textbf{75.0} & 47.5 \\" in tex
    assert r"ours (none) & 0.0 & 47.5 \\" in tex
    # published rows first, a rule between them and ours, the citation as a footnote
    assert tex.index("AlignGPT-7B &") < tex.index(r"\midrule", tex.index("AlignGPT-7B &")) < tex.index("ours (gated)")
    assert "arXiv:2405.14129" in tex
    assert tex.startswith(r"\documentclass") and tex.rstrip().endswith(r"\end{document}")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not on PATH")
def test_latex_tables_compile_with_pdflatex(two_runs, killed_and_resumed, tmp_path):
    a, b = two_runs
    jobs = {"hand": [str(a), str(b), "--ci", "--baseline", "m/none", "--literature", "aligngpt-7b,llava-1.5-7b"],
            "grid": [str(killed_and_resumed["out"]), "--ci", "--baseline", "toy/none"]}
    for name, args in jobs.items():
        tex_file = tmp_path / f"{name}.tex"
        assert report_main(["table", *args, "--format", "latex", "--standalone", "--out", str(tex_file)]) == 0
        proc = subprocess.run([shutil.which("pdflatex"), "-interaction=nonstopmode", "-halt-on-error", tex_file.name],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert tex_file.with_suffix(".pdf").stat().st_size > 0


def test_table_errors_are_one_line(two_runs, tmp_path, capsys):
    a, b = two_runs
    assert report_main(["table", str(a), str(b), "--baseline", "nope"]) == 2
    assert "aligngpt-eval: error: --baseline 'nope' matches no run" in capsys.readouterr().err
    assert report_main(["table", str(tmp_path / "missing")]) == 2
    assert "not a finished run folder" in capsys.readouterr().err
    assert report_main(["table", str(a), "--layout", "gqa,bogus"]) == 2
    assert "unknown column" in capsys.readouterr().err
    assert report_main(["table", str(a), "--literature", "no-such-row"]) == 2
    assert "unknown literature row" in capsys.readouterr().err


def test_headline_metric_follows_task_specs():
    assert headline_metric("pope") == "f1" and headline_metric("mme") == "perception"
    assert headline_metric("vqav2_val") == "accuracy"  # no task spec: the table column's fallback metric

