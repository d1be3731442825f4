"""SIGKILL at random points of `run` and of `score-alignment`, then resume: identical answers.

A small count of dev/kill_resume_soak.py (the full 50-kill check is the script itself):
random batch counts, scoring, the results write and a wall-clock timer for ``run``; random
batch counts and the timer for ``score-alignment``. Each trial kills a real subprocess with
SIGKILL, resumes with the same command, and compares with an uninterrupted run. Fixed points
are covered by tests/test_harness_resume.py and tests/test_training_scoring.py.
"""
from __future__ import annotations

import pytest


def _soak():
    from dev import kill_resume_soak

    return kill_resume_soak


def test_kind_schedule_covers_every_kind_early():
    import random

    soak = _soak()
    schedule = soak._kind_schedule(random.Random(3), list(soak.KINDS), 10)
    assert len(schedule) == 10 and sorted(schedule[:4]) == sorted(soak.KINDS)
    args = soak.parse_args(["--kills", "3", "--kinds", "batch,results"])
    assert args.kinds == ["batch", "results"] and args.kills == 3
    with pytest.raises(SystemExit):
        soak.parse_args(["--kinds", "nonsense"])


def test_samples_comparison_tolerates_only_last_bit_weights():
    soak = _soak()
    row = b'{"question_id": 1, "prediction": "yes", "alignment_weights": [0.25, 0.75]}'
    assert soak._samples_equal(row, row.replace(b"0.25", b"0.2500000001"))
    assert not soak._samples_equal(row, row.replace(b"0.25", b"0.26"))
    assert not soak._samples_equal(row, row.replace(b'"yes"', b'"no"'))


@pytest.mark.slow  # 7 runs of the CLI + 4 of score-alignment in fresh interpreters: ~1.5-3 min on 2 cores
def test_random_sigkills_then_resume_give_identical_outputs(official_tiny, tmp_path, capsys):
    soak = _soak()
    code = soak.main(["--kills", "3", "--kinds", "batch,score,results", "--chain", "0", "--alignment-kills", "1",
                      "--tasks", "gqa,pope", "--n-per-task", "2", "--pairs", "10", "--seed", "7",
                      "--model", str(official_tiny / "checkpoint"), "--workdir", str(tmp_path / "soak")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "3 SIGKILLs in 3 trials; 3/3 resumed to identical output" in out, out
    assert "1 SIGKILLs in 1 trials; 1/1 resumed to identical output" in out, out
    for kind in ("batch", "score", "results"):
        assert f"| {kind} " in out  # each kill kind fired once (one shuffled block of the three)
    assert out.rstrip().endswith("PASS")
