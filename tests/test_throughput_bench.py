"""The throughput bench: its arithmetic, its score check on the toy suite, and the GPU script's dry run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from aligngpt.engine import throughput
from aligngpt.engine.bench import random_7b_model

REPO = Path(__file__).resolve().parents[1]


def test_question_flops_of_the_7b_shape_match_the_hand_arithmetic():
    model = random_7b_model("meta", torch.float16)  # shapes only
    prefill = throughput.question_flops(model, 650, 1)
    # 7B prefill of about 650 tokens ~ 8.5 TFLOP, CLIP-L/336 ~ 0.4 TFLOP
    assert 8.7e12 < prefill < 9.1e12
    decode = throughput.question_flops(model, 650, 16) - prefill
    assert 15 * 2 * 6.7e9 < decode < 15 * 2 * 7.0e9  # 15 steps over ~6.7B weights (+ attention)


def test_toy_suite_run_answers_do_not_move_with_the_new_batching(tmp_path):
    """``aligngpt-eval run`` at batch 1 against token-budget batches with fixed-shape decoding
    (forced on the CPU through the environment), fp32: identical answers and metrics."""
    env = {"ALIGNGPT_DECODE": "static", "ALIGNGPT_TOKEN_BUDGET": "1500"}
    result = throughput.toy_score_check("cpu", "float32", "gqa,pope,textvqa,scienceqa_img", 8, tmp_path, env)
    assert result["answers"] >= 32  # 8 questions per task (TextVQA's toy split answers one more)
    assert result["changed"] == 0 and result["metric_deltas"] == {}
    assert "ALIGNGPT_DECODE" not in os.environ  # restored


def test_run_comparison_reports_a_changed_answer_and_its_metric_delta(tmp_path):
    def make(folder: Path, text: str, acc: float) -> Path:
        (folder / "pope").mkdir(parents=True)
        rows = [{"question_id": 1, "text": "yes"}, {"question_id": 2, "text": text}]
        (folder / "pope" / "answers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (folder / "results.json").write_text(json.dumps({"tasks": {"pope": {"metrics": {"accuracy": acc, "n": 2}}}}))
        return folder

    a, b = make(tmp_path / "a", "no", 50.0), make(tmp_path / "b", "yes", 100.0)
    out = throughput.compare_run_dirs(a, b)
    assert out["changed"] == 1 and out["changed_fraction"] == 0.5
    assert out["metric_deltas"] == {"pope.accuracy": 50.0}
    assert throughput.compare_run_dirs(a, a)["changed"] == 0


def test_gpu_bench_script_dry_run(tmp_path):
    """``DRY_RUN=1 bash results/bench/gpu_bench.sh``: every step of the GPU script, on a CPU."""
    env = dict(os.environ, DRY_RUN="1", OUT_DIR=str(tmp_path), SCORE_TASKS="gqa", PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(REPO / "results/bench/gpu_bench.sh")], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads((tmp_path / "gpu_7b_throughput.json").read_text())
    assert [r["mode"].split(":")[0] for r in report["rows"]] == [
        "baseline engine", "token-budget batches, static decode, padded SDPA prefill"]
    for row in report["rows"]:
        # (the CPU "peak" is a small GEMM measured on a shared host: only its sign is checked)
        assert row["questions"] == 24 and row["questions_per_s"] > 0 and row["flop_fraction"] > 0
        assert row["changed_vs_batch1"] == 0.0  # fp32 on a CPU: the batch-1 answers
    assert sum(report["batch_rows"]) == 24 and len(report["batch_rows"]) > 1  # the token budget split them
    assert report["profile"]["prefill_s"] > 0 and report["profile"]["decode_s"] > 0
    assert report["scores"][0]["changed"] == 0 and report["scores"][0]["answers"] == 6
    text = (tmp_path / "gpu_7b_throughput.txt").read_text()
    assert "questions/s" in text and "FLOP roofline" in text and "outside the model" in text


@pytest.mark.parametrize("flag", ["--questions", "--new-tokens"])
def test_throughput_cli_rejects_bad_numbers(flag):
    with pytest.raises(SystemExit):
        throughput.main([flag, "many"])
