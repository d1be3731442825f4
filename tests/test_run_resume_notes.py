"""A resumed run says what it reuses and keeps the timings of the sessions that did the work; a
run stopped by SIGTERM or Ctrl-C records itself as ``interrupted`` (resumable), not ``running``."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aligngpt.cli.eval_cli import main as eval_main

ARGS = ["run", "--tasks", "gqa", "--limit", "4", "--batch-size", "2"]


def _run(out: Path, capsys) -> tuple[str, dict, Path]:
    assert eval_main([*ARGS, "--output-dir", str(out)]) == 0
    err = capsys.readouterr().err
    (results,) = out.glob("*/results.json")
    return err, json.loads(results.read_text())["tasks"]["gqa"]["timing"], results.parent


def test_rerun_of_a_finished_run_says_it_reuses_everything_and_keeps_the_timing(tmp_path, capsys):
    err, first, run_dir = _run(tmp_path, capsys)
    assert "resuming" not in err
    assert first["generated"] == 4 and first["reused"] == 0 and "earlier" not in first
    err, again, _ = _run(tmp_path, capsys)
    assert "resuming: 4 of 4 gqa answers from the journal (nothing left to generate)" in err
    assert again["generated"] == 0 and again["reused"] == 4
    assert again["earlier"] == [first]  # the session that generated the answers, wall time included


def test_partial_journal_resume_counts_what_it_reuses(tmp_path, capsys):
    _, first, run_dir = _run(tmp_path, capsys)
    journal = run_dir / "gqa" / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(lines[:2]))  # as if killed after the first batch
    err, second, _ = _run(tmp_path, capsys)
    assert "resuming: 2 of 4 gqa answers from the journal (2 to generate)" in err
    assert second["generated"] == 2 and second["reused"] == 2 and second["earlier"] == [first]
    _, third, _ = _run(tmp_path, capsys)
    assert third["earlier"] == [first, {k: v for k, v in second.items() if k != "earlier"}]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_records_interrupted_not_running(tmp_path, sig):
    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "aligngpt.cli.eval_cli", "run", "--tasks", "gqa", "--limit", "40", "--batch-size", "1",
           "--canary", "never", "--output-dir", str(out)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    journal = None
    while time.monotonic() < deadline and proc.poll() is None:  # wait for the first answered batch
        found = list(out.glob("*/gqa/journal.jsonl"))
        if found and found[0].stat().st_size > 0:
            journal = found[0]
            break
        time.sleep(0.05)
    assert journal is not None and proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    state = json.loads((journal.parent.parent / "run_state.json").read_text())
    assert proc.returncode == 130, err
    assert state["status"] == "interrupted" and state["signal"] == sig.name, state
    assert err.strip().splitlines()[-1] == "aligngpt-eval: interrupted; run the same command again to resume"
    assert "Traceback" not in err
    assert not (journal.parent.parent / "results.json").exists()


def test_every_file_of_a_run_folder_has_the_same_mode(tmp_path, capsys):
    """Atomic writers (mkstemp: 0600) and appending writers (open: 0666 less the umask) agree."""
    _run(tmp_path, capsys)
    modes = {p.relative_to(tmp_path).as_posix(): oct(p.stat().st_mode & 0o777) for p in tmp_path.rglob("*") if p.is_file()}
    mask = os.umask(0)
    os.umask(mask)
    assert set(modes.values()) == {oct(0o666 & ~mask)}, modes
    assert {"results.json", "run_state.json", "journal.jsonl", "samples.jsonl"} <= {Path(k).name for k in modes}
