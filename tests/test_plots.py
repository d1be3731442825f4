"""Alignment figures from hand-built run folders (the harness's results.json + samples.jsonl)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from aligngpt.cli.eval_cli import main as report_main
from aligngpt.errors import DataError
from aligngpt.report.plots import (
    fixed_level_series,
    gate_weight_means,
    plot_fixed_levels,
    plot_gate_heatmap,
    plot_radar,
    radar_data,
    radar_from_run_dirs,
)
from aligngpt.report.tables import TableRow


def _write_run(run_dir: Path, align_mode: str, tasks: dict[str, dict], weights: dict[str, list] | None = None,
               model: str = "m") -> Path:
    """A run folder as the harness writes it; ``weights[task]`` = alignment_weights per question."""
    weights = weights or {}
    for task in tasks:
        rows = [{"question_id": i, "prompt": f"q{i}", "prediction": "yes", "target": "yes", "alignment_weights": w,
                 "score": 1.0} for i, w in enumerate(weights.get(task, [None, None]))]
        (run_dir / task).mkdir(parents=True, exist_ok=True)
        # json.dumps writes NaN as the bare token NaN, which Python's reader (iter_jsonl) accepts
        (run_dir / task / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    results = {"model": {"name": model, "path": model, "bundled_toy_model": False, "align_mode": align_mode},
               "settings": {"model": model, "align_mode": align_mode, "seed": 0},
               "environment": {},
               "tasks": {t: {"metrics": m, "n": 2, "protocol": "llava15",
                             "data": {"source": "local", "fingerprint": "0" * 64}} for t, m in tasks.items()}}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps(results))
    return run_dir


def _check_files(paths, prefix: Path) -> None:
    assert [p.name for p in paths] == [prefix.name + ".png", prefix.name + ".pdf"]
    png, pdf = paths
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000


# --------------------------------------------------------------------------- gate heatmap


@pytest.fixture()
def gated_run(tmp_path):
    return _write_run(tmp_path / "gated", "gated", {"gqa": {"accuracy": 50.0}, "pope": {"f1": 80.0}}, weights={
        # gqa: two rows with weights, one text-only (null) and one without a slot (NaN) -> skipped
        "gqa": [[0.5, 0.25, 0.25], [0.3, 0.3, 0.4], None, [math.nan, math.nan, math.nan]],
        "pope": [[0.2, 0.2, 0.6], [0.2, 0.2, 0.6]],
    })


def test_gate_means_per_task_by_hand(gated_run):
    means = gate_weight_means(gated_run)
    assert [m.task for m in means] == ["gqa", "pope"]  # paper column order: GQA before POPE
    # gqa: ((0.5+0.3)/2, (0.25+0.3)/2, (0.25+0.4)/2) = (0.4, 0.275, 0.325) over n = 2 rows
    np.testing.assert_allclose(means[0].means, [0.4, 0.275, 0.325])
    assert means[0].n == 2
    np.testing.assert_allclose(means[1].means, [0.2, 0.2, 0.6])
    assert means[1].n == 2


def test_gate_heatmap_writes_png_and_pdf(gated_run, tmp_path):
    other = _write_run(tmp_path / "gated2", "gated", {"gqa": {"accuracy": 1.0}},
                       weights={"gqa": [[0.1, 0.1, 0.8], [0.1, 0.1, 0.8]]}, model="m2")
    prefix = tmp_path / "figs" / "gates"
    _check_files(plot_gate_heatmap([gated_run, other], prefix), prefix)


def test_gate_heatmap_pdf_is_reproducible(gated_run, tmp_path):
    a = plot_gate_heatmap([gated_run], tmp_path / "a")[1].read_bytes()
    b = plot_gate_heatmap([gated_run], tmp_path / "b")[1].read_bytes()
    assert a == b  # no creation date: regenerated figures change only when the numbers do


def test_gate_heatmap_refuses_runs_without_weights_and_bad_rows(tmp_path):
    none_run = _write_run(tmp_path / "none", "none", {"gqa": {"accuracy": 1.0}})
    with pytest.raises(DataError, match="no gate weights"):
        plot_gate_heatmap([none_run], tmp_path / "x")
    ragged = _write_run(tmp_path / "ragged", "gated", {"gqa": {"accuracy": 1.0}},
                        weights={"gqa": [[0.5, 0.5], [0.2, 0.3, 0.5]]})
    with pytest.raises(DataError, match=r"samples\.jsonl:2: 3 gate weights where earlier rows had 2"):
        gate_weight_means(ragged)
    bad = _write_run(tmp_path / "bad", "gated", {"gqa": {"accuracy": 1.0}}, weights={"gqa": [[0.5, 0.5], "x"]})
    with pytest.raises(DataError, match=r"samples\.jsonl:2: alignment_weights must be a list"):
        gate_weight_means(bad)


# --------------------------------------------------------------------------- fixed level


@pytest.fixture()
def level_runs(tmp_path):
    runs = [_write_run(tmp_path / f"k{k}", f"fixed:{k}", {"gqa": {"accuracy": acc}, "pope": {"f1": f1, "accuracy": pa}})
            for k, (acc, f1, pa) in enumerate([(10.0, 70.0, 60.0), (20.0, 75.0, 65.0), (15.0, 72.0, 61.0)])]
    runs.append(_write_run(tmp_path / "lv_gated", "gated", {"gqa": {"accuracy": 30.0}, "pope": {"f1": 80.0}}))
    runs.append(_write_run(tmp_path / "lv_none", "none", {"gqa": {"accuracy": 5.0}, "pope": {"f1": 60.0}}))
    return runs


def test_fixed_level_series_by_hand(level_runs):
    data = fixed_level_series(level_runs)
    assert data.tasks == ["gqa", "pope"]
    assert data.metric == {"gqa": "accuracy", "pope": "f1"}  # each task's headline
    assert data.levels["gqa"] == {0: 10.0, 1: 20.0, 2: 15.0}
    assert data.levels["pope"] == {0: 70.0, 1: 75.0, 2: 72.0}
    # labels collide on the model name "m", so the align mode is appended
    assert data.references["gqa"] == {"m/gated": 30.0, "m/none": 5.0}
    assert fixed_level_series(level_runs, metric="accuracy").levels["pope"] == {0: 60.0, 1: 65.0, 2: 61.0}


def test_fixed_level_plot_and_duplicate_level(level_runs, tmp_path):
    prefix = tmp_path / "levels"
    _check_files(plot_fixed_levels(level_runs, prefix), prefix)
    dup = _write_run(tmp_path / "dup", "fixed:1", {"gqa": {"accuracy": 1.0}})
    with pytest.raises(DataError, match="fixed:1 is also the mode of"):
        fixed_level_series(level_runs + [dup])
    with pytest.raises(DataError, match="no run in a fixed:K mode"):
        fixed_level_series(level_runs[3:])


# --------------------------------------------------------------------------- radar


def test_radar_normalisation_by_hand():
    rows = [TableRow("a", {"gqa": 60.0, "textvqa": 40.0, "pope": 80.0, "mme": 1500.0}),
            TableRow("b", {"gqa": 50.0, "textvqa": 40.0, "pope": 90.0, "mme": 1400.0}),
            TableRow("c", {"gqa": 55.0, "textvqa": 40.0, "pope": 85.0})]  # no MME -> that axis is dropped
    data = radar_data(rows, normalise="minmax")
    assert data.axes == ["gqa", "textvqa", "pope"]
    # minmax into [0.2, 1]: gqa 60 -> 1, 50 -> 0.2, 55 -> 0.2 + 0.8 * 5/10 = 0.6; TextVQA all tie -> 1;
    # pope 80 -> 0.2, 90 -> 1, 85 -> 0.6
    np.testing.assert_allclose(data.radii, [[1, 1, 0.2], [0.2, 1, 1], [0.6, 1, 0.6]])
    # max: value / best on the axis: gqa 50/60, 55/60; pope 80/90, 85/90
    np.testing.assert_allclose(radar_data(rows, normalise="max").radii,
                               [[1, 1, 80 / 90], [50 / 60, 1, 1], [55 / 60, 1, 85 / 90]])
    with pytest.raises(ValueError, match="at least 3 benchmarks"):
        radar_data([TableRow("a", {"gqa": 1.0, "pope": 2.0})])


def test_radar_axes_default_to_the_metrics_own_range():
    # one run: min-max scaling would put every axis, MMBench 0.0 included, on the outer ring
    rows = [TableRow("toy", {"gqa": 44.0, "pope": 64.2, "mme": 763.0, "mmbench": 0.0})]
    data = radar_data(rows)
    assert data.axes == ["gqa", "pope", "mme", "mmbench"]
    np.testing.assert_allclose(data.radii, [[0.44, 0.642, 763.0 / 2000, 0.0]])
    over = radar_data([TableRow("a", {"gqa": 50.0, "pope": 80.0, "llava_bench": 120.0}),
                       TableRow("b", {"gqa": 40.0, "pope": 90.0, "llava_bench": 60.0})])
    np.testing.assert_allclose(over.radii[:, -1], [1.0, 0.5])  # a relative score above 100 extends its axis


def test_radar_from_runs_and_published_rows(tmp_path):
    runs = [_write_run(tmp_path / name, mode, {"gqa": {"accuracy": g}, "textvqa": {"accuracy": t},
                                                "pope": {"f1": p, "accuracy": 0.0}})
            for name, mode, g, t, p in [("a", "gated", 60.0, 40.0, 80.0), ("b", "none", 50.0, 45.0, 85.0)]]
    prefix = tmp_path / "radar"
    _check_files(radar_from_run_dirs(runs, prefix, literature=["aligngpt-7b"]), prefix)
    # published rows alone: AlignGPT-7B vs LLaVA-1.5-7B on all 12 benchmarks (the paper's Fig. 1)
    rows = [TableRow.from_literature("aligngpt-7b"), TableRow.from_literature("llava-1.5-7b")]
    assert len(radar_data(rows).axes) == 12
    _check_files(plot_radar(rows, tmp_path / "fig1"), tmp_path / "fig1")


# --------------------------------------------------------------------------- CLI


def test_plot_cli_kinds(gated_run, level_runs, tmp_path, capsys):
    assert report_main(["plot", str(gated_run), "--kind", "gate-heatmap", "--out", str(tmp_path / "h")]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "h.png"), str(tmp_path / "h.pdf")]
    assert report_main(["plot", *map(str, level_runs), "--kind", "fixed-level", "--out", str(tmp_path / "f.png")]) == 0
    assert (tmp_path / "f.png").stat().st_size > 0 and (tmp_path / "f.pdf").stat().st_size > 0
    assert report_main(["plot", "--kind", "radar", "--literature", "aligngpt-7b,llava-1.5-7b",
                        "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r.pdf").stat().st_size > 0
    capsys.readouterr()
    assert report_main(["plot", "--kind", "radar"]) == 2
    assert "needs at least one RUN_DIR" in capsys.readouterr().err
    assert report_main(["plot", str(gated_run), "--kind", "radar", "--out", str(tmp_path / "x")]) == 2
    assert "at least 3 benchmarks" in capsys.readouterr().err
    assert report_main(["plot", str(level_runs[-1]), "--kind", "gate-heatmap", "--out", str(tmp_path / "y")]) == 2
    assert "no gate weights" in capsys.readouterr().err
