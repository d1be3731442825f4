"""Acceptance: a run SIGKILLed at any point and restarted ends with exactly the uninterrupted answers."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TASKS = "gqa,pope,mme,scienceqa_img,textvqa,seed_image"


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    from aligngpt.toy import write_benchmarks

    root = tmp_path_factory.mktemp("toy") / "eval"
    write_benchmarks(root, seed=3, n_per_task=10)
    return root


def _run(model, root, out, fault=None):
    env = dict(os.environ)
    env.pop("ALIGNGPT_FAULT", None)
    if fault:
        env["ALIGNGPT_FAULT"] = fault
    cmd = [sys.executable, "-m", "aligngpt.cli.eval_cli", "run", "--tasks", TASKS, "--model", str(model),
           "--data-root", str(root), "--output-dir", str(out), "--max-new-tokens", "4", "--batch-size", "4"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def _answers(out: Path) -> dict[str, str]:
    (run_dir,) = [d for d in out.iterdir() if d.is_dir()]
    return {t: (run_dir / t / "answers.jsonl").read_text() for t in TASKS.split(",")}


@pytest.fixture(scope="module")
def uninterrupted(official_tiny, toy_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    proc = _run(official_tiny / "checkpoint", toy_root, out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return _answers(out)


@pytest.mark.parametrize("fault", ["batch:3", "batch:11", "score:4", "results:1"])
def test_sigkill_then_resume_gives_identical_answers(official_tiny, toy_root, tmp_path, uninterrupted, fault):
    out = tmp_path / "runs"
    killed = _run(official_tiny / "checkpoint", toy_root, out, fault=fault)
    assert killed.returncode == -9, f"the fault hook did not fire: {killed.stderr[-500:]}"
    assert not list(out.rglob("results.json"))
    resumed = _run(official_tiny / "checkpoint", toy_root, out)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _answers(out) == uninterrupted
    # nothing duplicated in the journals either
    for journal in out.rglob("journal.jsonl"):
        lines = journal.read_text().splitlines()
        assert len(lines) == len(set(lines))
