"""The harness core: run -> journal -> answers/samples/results, score, resume, clear errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from aligngpt.cli.eval_cli import main

from .builders_gqa_pope_mme import build_gqa_local, build_pope_local


@pytest.fixture()
def data_root(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    build_gqa_local(root)
    build_pope_local(root)
    return root


def _run(args, capsys=None):
    code = main(args)
    out = capsys.readouterr() if capsys else None
    return code, out


def _run_dir(out_dir: Path) -> Path:
    dirs = [d for d in out_dir.iterdir() if d.is_dir()]
    assert len(dirs) == 1
    return dirs[0]


def test_run_writes_results_answers_samples_and_score_agrees(official_tiny, data_root, tmp_path, capsys):
    out_dir = tmp_path / "runs"
    code, out = _run(["run", "--tasks", "gqa,pope", "--model", str(official_tiny / "checkpoint"),
                      "--data-root", str(data_root), "--output-dir", str(out_dir), "--max-new-tokens", "4",
                      "--batch-size", "4", "--json"], capsys)
    assert code == 0, out.err
    results = json.loads(out.out)
    run_dir = _run_dir(out_dir)
    assert json.loads((run_dir / "results.json").read_text()) == results
    assert set(results) == {"model", "settings", "environment", "tasks"}
    pope = results["tasks"]["pope"]
    assert pope["protocol"] == "llava15" and pope["data"]["source"] == "local" and len(pope["data"]["fingerprint"]) == 64
    assert set(pope["metrics"]["splits"]) == {"random", "popular", "adversarial"}
    answers = [json.loads(l) for l in (run_dir / "pope" / "answers.jsonl").read_text().splitlines()]
    assert pope["n"] == len(answers)
    assert set(answers[0]) >= {"question_id", "prompt", "text", "answer_id", "model_id", "metadata"}
    samples = [json.loads(l) for l in (run_dir / "pope" / "samples.jsonl").read_text().splitlines()]
    assert set(samples[0]) >= {"question_id", "prompt", "prediction", "target", "alignment_weights", "score"}
    assert len(samples[0]["alignment_weights"]) == 7
    # `score` on our own answer file gives the run's metrics
    code, out = _run(["score", "--task", "pope", "--answers", str(run_dir / "pope" / "answers.jsonl"),
                      "--data-root", str(data_root), "--json"], capsys)
    assert code == 0
    assert json.loads(out.out)["metrics"] == pope["metrics"]


def test_second_run_resumes_without_generating(official_tiny, data_root, tmp_path, capsys, monkeypatch):
    args = ["run", "--tasks", "pope", "--model", str(official_tiny / "checkpoint"), "--data-root", str(data_root),
            "--output-dir", str(tmp_path / "runs"), "--max-new-tokens", "3"]
    assert _run(args, capsys)[0] == 0
    run_dir = _run_dir(tmp_path / "runs")
    first = (run_dir / "pope" / "answers.jsonl").read_text()

    import aligngpt.engine.batched as batched

    def boom(*a, **k):
        raise AssertionError("a finished run must not generate again")

    monkeypatch.setattr(batched.InferenceEngine, "generate", lambda self, samples, **k: ([], None) if not samples else boom())
    assert _run(args, capsys)[0] == 0
    assert (run_dir / "pope" / "answers.jsonl").read_text() == first


def test_torn_journal_line_is_dropped_on_resume(tmp_path):
    from aligngpt.harness.journal import PredictionJournal

    path = tmp_path / "journal.jsonl"
    path.write_text('{"key": "1", "text": "yes"}\n{"key": "2", "text": "n')  # killed mid-write
    journal = PredictionJournal(path)
    assert list(journal.records) == ["1"]
    journal.append([{"key": "2", "text": "no"}, {"key": "1", "text": "dup"}])
    lines = path.read_text().splitlines()
    assert [json.loads(l)["key"] for l in lines] == ["1", "2"]
    assert PredictionJournal(path).records["2"]["text"] == "no"


def _fails_cleanly(args, capsys, expect):
    code, out = _run(args, capsys)
    assert code == 2
    errors = [l for l in out.err.strip().splitlines() if "error" in l]
    assert len(errors) == 1 and errors[0].startswith("aligngpt-eval: error: ") and expect in errors[0], out.err
    return errors[0]


def test_bad_inputs_give_one_line_errors_and_no_results(official_tiny, data_root, tmp_path, capsys):
    out_dir = tmp_path / "runs"
    base = ["run", "--model", str(official_tiny / "checkpoint"), "--output-dir", str(out_dir), "--max-new-tokens", "2"]
    _fails_cleanly(base + ["--tasks", "nope", "--data-root", str(data_root)], capsys, "unknown task 'nope'")
    # malformed JSONL line: the message names the file and the line
    qfile = data_root / "pope" / "llava_pope_test.jsonl"
    lines = qfile.read_text().splitlines()
    lines[2] = '{"question_id": 3, "image": '
    qfile.write_text("\n".join(lines) + "\n")
    msg = _fails_cleanly(base + ["--tasks", "pope", "--data-root", str(data_root)], capsys, "llava_pope_test.jsonl:3")
    assert "malformed" in msg
    qfile.unlink()
    _fails_cleanly(base + ["--tasks", "pope", "--data-root", str(data_root)], capsys, "llava_pope_test.jsonl")
    assert not out_dir.exists()  # bad input data is found before a run folder is made


def test_score_rejects_mismatched_answer_ids(data_root, tmp_path, capsys):
    answers = tmp_path / "answers.jsonl"
    answers.write_text(json.dumps({"question_id": 1, "text": "yes"}) + "\n")
    _fails_cleanly(["score", "--task", "pope", "--answers", str(answers), "--data-root", str(data_root)],
                   capsys, "have no answer")
    answers.write_text(json.dumps({"question_id": "zzz", "text": "yes"}) + "\n")
    _fails_cleanly(["score", "--task", "pope", "--answers", str(answers), "--data-root", str(data_root)],
                   capsys, "answers.jsonl:1: answer for unknown question id 'zzz'")
    answers.write_text("not json\n")
    _fails_cleanly(["score", "--task", "pope", "--answers", str(answers), "--data-root", str(data_root)],
                   capsys, "answers.jsonl:1: malformed")


def test_canary_stops_a_batch_dependent_bug(official_tiny, data_root, tmp_path, capsys, monkeypatch):
    """Plant a bug that changes answers only when rows share a batch: the canary must stop the run."""
    from aligngpt.modeling import AlignGPTForCausalLM

    real = AlignGPTForCausalLM.generate

    def buggy(self, input_ids, *args, **kwargs):
        out = real(self, input_ids, *args, **kwargs)
        if input_ids.shape[0] > 1:
            out.sequences[:, 0] = 7  # batch-dependent corruption
        return out

    monkeypatch.setattr(AlignGPTForCausalLM, "generate", buggy)
    code, out = _run(["run", "--tasks", "pope", "--model", str(official_tiny / "checkpoint"), "--data-root",
                      str(data_root), "--output-dir", str(tmp_path / "runs"), "--max-new-tokens", "3",
                      "--batch-size", "4", "--canary", "always"], capsys)
    assert code == 2 and "batch-invariance canary" in out.err
    assert "this should not happen in float32" in out.err  # CPU float32: a real bug, and what to do
    assert not list((tmp_path / "runs").rglob("results.json"))
    # and the real engine passes the same canary
    monkeypatch.setattr(AlignGPTForCausalLM, "generate", real)
    code, out = _run(["run", "--tasks", "pope", "--model", str(official_tiny / "checkpoint"), "--data-root",
                      str(data_root), "--output-dir", str(tmp_path / "runs2"), "--max-new-tokens", "3",
                      "--batch-size", "4", "--canary", "always"], capsys)
    assert code == 0, out.err
