"""Acceptance: a 2-process gloo run equals the 1-process run, and resumes with 1 process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TASKS = "pope,gqa,seed_image"


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    from aligngpt.toy import write_benchmarks

    root = tmp_path_factory.mktemp("toy") / "eval"
    write_benchmarks(root, seed=5, n_per_task=12, benchmarks=["pope", "gqa", "seed"])
    return root


def _run(model, root, out, *, processes=1, fault=None):
    env = {k: v for k, v in os.environ.items() if k not in ("ALIGNGPT_FAULT", "WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    if fault:
        env["ALIGNGPT_FAULT"] = fault
    cmd = [sys.executable, "-m", "aligngpt.cli.eval_cli", "run", "--tasks", TASKS, "--model", str(model),
           "--data-root", str(root), "--output-dir", str(out), "--max-new-tokens", "3", "--batch-size", "3",
           "--num-processes", str(processes)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def _outputs(out: Path):
    (run_dir,) = [d for d in out.iterdir() if d.is_dir()]
    answers = {t: (run_dir / t / "answers.jsonl").read_text() for t in TASKS.split(",")}
    results = json.loads((run_dir / "results.json").read_text())
    metrics = {t: v["metrics"] for t, v in results["tasks"].items()}
    return answers, metrics


def test_two_processes_equal_one_and_resume_with_one(official_tiny, toy_root, tmp_path):
    model = official_tiny / "checkpoint"
    one = _run(model, toy_root, tmp_path / "one")
    assert one.returncode == 0, one.stderr[-2000:]
    two = _run(model, toy_root, tmp_path / "two", processes=2)
    assert two.returncode == 0, two.stderr[-3000:]
    assert _outputs(tmp_path / "two") == _outputs(tmp_path / "one")
    (run_dir,) = [d for d in (tmp_path / "two").iterdir() if d.is_dir()]
    assert sorted(p.name for p in (run_dir / "pope").glob("journal*.jsonl")) == ["journal.rank0.jsonl", "journal.rank1.jsonl"]
    # killed mid-way with 2 processes, finished with 1
    killed = _run(model, toy_root, tmp_path / "resume", processes=2, fault="batch:4")
    assert killed.returncode != 0
    assert not list((tmp_path / "resume").rglob("results.json"))
    resumed = _run(model, toy_root, tmp_path / "resume", processes=1)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _outputs(tmp_path / "resume") == _outputs(tmp_path / "one")
