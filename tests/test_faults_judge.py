"""Fault injection: a misbehaving LLM judge never becomes a score.

``aligngpt-eval score`` on the toy LLaVA-Bench and MM-Vet data against a stub judge on 127.0.0.1
that times out, answers 429/500/503 on every call, sends truncated, non-JSON, choice-less or
empty bodies, or drops the connection. Every judgement is then *missing*: the command exits 2
with one error line and prints no metrics; with ``--allow-missing-judgements`` it prints the
metrics with ``judge.missing`` and ``judge.coverage`` saying so, and no category gets a number
computed from a failed call. Failed calls are not cached, so the same command against a healthy
judge later scores everything. (Client-level retry rules: tests/test_judge.py.)
"""
from __future__ import annotations

import json

import pytest

from aligngpt.harness.settings import RunSettings
from aligngpt.harness.samples import load_samples
from aligngpt.harness.tasks import load_task

from .faults_support import StubJudge, one_error_line, run_cli

KEY_ENV = "ALIGNGPT_FAULT_JUDGE_KEY"
TASKS = ("llava_bench", "mmvet")
N = 2  # questions per task (toy data): one judgement each (MM-Vet: one grading run)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """Toy LLaVA-Bench + MM-Vet and an answer file for each (the LLaVA answer format)."""
    from aligngpt.toy import write_benchmarks

    base = tmp_path_factory.mktemp("judged")
    root = base / "eval"
    write_benchmarks(root, seed=11, n_per_task=N, benchmarks=list(TASKS))
    answers = {}
    for task in TASKS:
        samples = load_samples(load_task(task), RunSettings(data_root=str(root), source="local"))
        assert len(samples) == N
        path = base / f"{task}-answers.jsonl"
        path.write_text("".join(json.dumps({"question_id": s.question_id, "prompt": s.question, "text": "a red square",
                                            "answer_id": str(i), "model_id": "m", "metadata": {}}) + "\n"
                                for i, s in enumerate(samples)))
        answers[task] = path
    return root, answers


def _score(capsys, bench, task, url, cache, *extra):
    root, answers = bench
    return run_cli(capsys, ["score", "--task", task, "--answers", answers[task], "--data-root", root, "--json",
                            "--judge-base-url", url, "--judge-model", "judge-stub", "--judge-api-key-env", KEY_ENV,
                            "--judge-cache", cache, *extra])


@pytest.mark.parametrize("mode, retries", [
    ("timeout", 0), ("429", 1), ("500", 0), ("503", 1), ("truncated", 0), ("nonjson", 0), ("nochoices", 0),
    ("empty", 0), ("reset", 0),
])
def test_broken_judge_gives_missing_judgements_and_exit_2(bench, tmp_path, capsys, monkeypatch, mode, retries):
    monkeypatch.setenv(KEY_ENV, "sk-fault-test")
    cache = tmp_path / "cache.sqlite"
    with StubJudge(mode, sleep=1.0) as judge:
        for task in TASKS:
            calls_before = judge.calls
            code, out, err = _score(capsys, bench, task, judge.url, cache, "--judge-max-retries", retries,
                                    "--judge-timeout", "0.3")
            assert code == 2, err
            assert out == ""  # no number at all on stdout
            line = one_error_line(err)
            assert f"task {task}: {N} judgement(s) failed" in line, line
            # every judgement was attempted 1 + retries times (429/5xx storms are retried, then given up)
            assert judge.calls - calls_before == N * (1 + retries)

            code, out, err = _score(capsys, bench, task, judge.url, cache, "--judge-max-retries", "0",
                                    "--judge-timeout", "0.3", "--allow-missing-judgements")
            assert code == 0, err
            metrics = json.loads(out)["metrics"]
            assert metrics["judge"]["missing"] == N and metrics["judge"]["coverage"] == 0.0
            assert metrics["judge"]["n_cached"] == 0  # a failure is never cached
            headline = metrics["relative_score"] if task == "llava_bench" else metrics["total"]
            assert headline is None, metrics  # nothing judged -> no score (never 0 or -1 averaged in)
            cats = metrics["categories"] if task == "llava_bench" else metrics["capabilities"]
            assert all(v is None for v in cats.values()), cats


def test_storm_then_recovery_within_the_retries_scores_everything(bench, tmp_path, capsys, monkeypatch):
    """Two 503s, then a healthy judge: the retries absorb the storm and the scores are exact."""
    monkeypatch.setenv(KEY_ENV, "sk-fault-test")
    with StubJudge("flaky", fail_first=2) as judge:
        code, out, err = _score(capsys, bench, "llava_bench", judge.url, tmp_path / "c.sqlite", "--judge-max-retries", "3")
        assert code == 0, err
        metrics = json.loads(out)["metrics"]
        # every review "8 6": mean(model) 6 / mean(reference) 8 -> 75.0 (summarize_gpt_review.py)
        assert metrics["relative_score"] == pytest.approx(75.0)
        assert metrics["judge"]["missing"] == 0 and metrics["judge"]["coverage"] == 100.0
        assert judge.calls == N + 2 and metrics["judge"]["n_http_calls"] == N + 2


def test_failures_are_retried_by_the_next_run(bench, tmp_path, capsys, monkeypatch):
    """A storm leaves nothing in the cache; the same command later scores every question."""
    monkeypatch.setenv(KEY_ENV, "sk-fault-test")
    cache = tmp_path / "c.sqlite"
    with StubJudge("500") as judge:
        code, _, _ = _score(capsys, bench, "mmvet", judge.url, cache, "--judge-max-retries", "0")
        assert code == 2
    with StubJudge("ok") as judge:
        code, out, err = _score(capsys, bench, "mmvet", judge.url, cache, "--judge-max-retries", "0")
        assert code == 0, err
        assert judge.calls == N
        metrics = json.loads(out)["metrics"]
        assert metrics["total"] == pytest.approx(50.0)  # every grade 0.5 -> 50.0
        assert metrics["judge"]["missing"] == 0
