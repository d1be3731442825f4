"""The toy ablation driver: which variants it trains, with which aligngpt-train flags, resuming,
and the significance summary it writes (the training itself is the recipe's, tested elsewhere)."""
from __future__ import annotations

import json

from dev.toy_recipe import ablation as ab
from dev.toy_recipe import pipeline
from dev.toy_recipe.pipeline import Recipe, Work


def test_variants_cover_tables_3_and_4_the_baseline_and_the_random_table():
    vs = {v.name: v for v in ab.variants(8)}
    assert list(vs) == ["N=4", "N=6", "N=8", "N=10", "local", "global", "average", "none", "random"]
    assert {v.stage1_key for v in vs.values()} == {"N4", "N6", "N8", "N10", "none"}
    assert [vs[m].mode for m in ("local", "global", "average")] == ["local", "global", "average"]
    assert vs["random"].random_table and vs["random"].stage1_key == "N8" and vs["random"].mode == "gated"
    assert vs["none"].mode == "none" and vs["N=8"].mode == "gated"


def _fake_work(tmp_path) -> Work:
    work = Work(tmp_path / "w")
    for stage in ("data", "clip", "base_lm"):
        work.done(stage).parent.mkdir(parents=True, exist_ok=True)
        work.done(stage).write_text("ok\n")
    return work


def test_training_commands_and_resume(tmp_path, monkeypatch):
    calls: list[list[str]] = []

    def fake_run(cmd, env, log_file):
        calls.append(cmd)
        log_file.write_text("ok\n")

    monkeypatch.setattr(ab, "_run", fake_run)
    monkeypatch.setattr(pipeline, "_run", fake_run)  # the training stages run through pipeline.train_into
    work = _fake_work(tmp_path)
    runner = ab.Ablation(work, Recipe(), threads=2, device="cuda")
    runner.train(jobs=3)
    argvs = [c[c.index("aligngpt.cli.train_cli") + 1:] for c in calls]
    by_stage: dict[str, list[list[str]]] = {}
    for a in argvs:
        by_stage.setdefault(a[0], []).append(a)
    assert len(by_stage["score-alignment"]) == 4  # N = 4, 6, 8, 10 (none needs no scores)
    assert len(by_stage["pretrain"]) == 5 and len(by_stage["finetune"]) == 9

    def flag(a, name):
        return a[a.index(name) + 1]

    levels = sorted(int(flag(a, "--levels")) for a in by_stage["score-alignment"])
    assert levels == [4, 6, 8, 10]
    none_pretrain = next(a for a in by_stage["pretrain"] if "--align-mode" in a)
    assert flag(none_pretrain, "--align-mode") == "none" and flag(none_pretrain, "--data").endswith("blip_laion_cc_sbu_558k.json")
    finetunes = {flag(a, "--output-dir").rsplit("/", 1)[-1]: a for a in by_stage["finetune"]}
    assert sorted(finetunes) == sorted(["N4", "N6", "N8", "N10", "local", "global", "average", "none", "random"])
    assert flag(finetunes["local"], "--pretrain-mm-mlp-align").endswith("stage1/N8/mm_projector_align.bin")
    assert flag(finetunes["N6"], "--pretrain-mm-mlp-align").endswith("stage1/N6/mm_projector_align.bin")
    assert "--random-align-table" in finetunes["random"] and "--random-align-table" not in finetunes["N8"]
    assert flag(finetunes["global"], "--align-mode") == "global"
    assert all("--use-cpu" not in a for a in argvs if a[0] != "score-alignment")  # cuda training
    provenance = json.loads((work.root / "ablation" / "provenance.json").read_text())
    assert provenance["train_device"] == "cuda" and provenance["jobs"] == 3

    calls.clear()
    runner.train(jobs=3)  # every stage left its .done marker: nothing is retrained
    assert calls == []
    cpu = ab.Ablation(work, Recipe(), threads=2)
    assert "--use-cpu" in cpu._common(Recipe().stage2)


def test_significance_summary_lists_only_headline_differences_below_005(tmp_path):
    grid = {"baseline": "none/default", "cells": [
        {"model": "none", "align_mode": None, "status": "complete", "run_dir": "runs/a", "tasks": {
            "pope": {"vs_baseline": {}}}},
        {"model": "N=8", "align_mode": None, "status": "complete", "run_dir": "runs/b", "tasks": {
            "pope": {"vs_baseline": {"f1": {"diff": -2.1, "ci_low": -4.2, "ci_high": -0.1, "p_value": 0.043},
                                     "accuracy": {"diff": -9.0, "ci_low": -12, "ci_high": -6, "p_value": 0.001}}},
            "gqa": {"vs_baseline": {"accuracy": {"diff": 1.0, "ci_low": -3, "ci_high": 5, "p_value": 0.6}}}}},
    ]}
    path = tmp_path / "grid_results.json"
    path.write_text(json.dumps(grid))
    text = ab.significance_summary(ab.load_grid(tmp_path))
    assert "**N=8** on `pope` (f1): -2.10 (95% CI -4.20 .. -0.10), p = 0.043" in text
    assert "accuracy): -9.00" not in text  # POPE's headline is F1; other metrics are not listed
    assert "1 significant and 1 not significant" in text
    cells = ab._cells(tmp_path, ab.load_grid(tmp_path))
    assert cells == {"none": tmp_path / "runs/a", "N=8": tmp_path / "runs/b"}
