"""Acceptance: the trainer callback logs toy metrics during a tiny CPU training run."""
from __future__ import annotations

from aligngpt.training import STAGE1_FILE, train

from .test_training_fixtures import make_workspace, train_options


def test_callback_logs_toy_metrics_during_training(tmp_path, official_tiny):
    from aligngpt.toy import write_benchmarks

    ws = make_workspace(tmp_path, official_tiny / "checkpoint" / "tokenizer.model", n_images=8, n_text=4) | {"root": tmp_path}
    toy = tmp_path / "toy" / "eval"
    write_benchmarks(toy, seed=1, n_per_task=4, benchmarks=["pope", "gqa"])
    s1 = train(train_options(ws, "pretrain", "s1", learning_rate=1e-2, max_steps=2))
    result = train(train_options(ws, "finetune", "s2", learning_rate=1e-3, max_steps=4,
                                 pretrain_mm_mlp_align=str(s1.output_dir / STAGE1_FILE),
                                 eval_tasks="pope,gqa", eval_every=2, eval_limit=6, eval_data_root=str(toy),
                                 eval_max_new_tokens=3))
    logged = [h for h in result.log_history if any(k.startswith("eval/") for k in h)]
    assert [h["step"] for h in logged] == [2, 4]
    for h in logged:
        assert 0.0 <= h["eval/pope/f1"] <= 100.0 and 0.0 <= h["eval/gqa/accuracy"] <= 100.0
