"""The recipe's evaluate and results stages report the evaluation just made, and only that."""
from __future__ import annotations

import argparse
import json

import pytest

from dev.toy_recipe import pipeline
from dev.toy_recipe.pipeline import Recipe, Work, run_stage
from dev.toy_recipe.results import write_results


def _run_dir(work: Work, name: str) -> None:
    run = work.stage("evaluate") / "runs" / name
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({"tasks": {}}))


def test_evaluate_stage_starts_without_earlier_runs(tmp_path, monkeypatch):
    work = Work(tmp_path)
    _run_dir(work, "zz_an_earlier_recipe")  # sorts after the new run: the old results stage took it
    made = []

    def fake_run(cmd, env, log_file):
        made.append(cmd)
        _run_dir(work, "model_out__gqa")

    monkeypatch.setattr(pipeline, "_run", fake_run)
    opts = argparse.Namespace(install_dir=str(tmp_path / "model_out"))
    run_stage("evaluate", work, Recipe(), {}, opts)
    assert made and [p.name for p in (work.stage("evaluate") / "runs").iterdir()] == ["model_out__gqa"]


def test_results_stage_refuses_to_choose_between_evaluations(tmp_path):
    work = Work(tmp_path)
    work.recipe_file.write_text("{}")
    _run_dir(work, "a")
    _run_dir(work, "b")
    with pytest.raises(FileNotFoundError, match="expected one evaluation.*runs/a.*runs/b"):
        write_results(work, tmp_path / "out", "cmd")
    assert not (tmp_path / "out").exists()


def test_device_flag_reaches_the_training_stages_and_the_base_lm_loop(tmp_path, monkeypatch):
    """``all --device cuda`` drops ``--use-cpu`` from the aligngpt-train stages and tells the base-LM
    loop where to train; the default stays the deterministic CPU path."""
    from dev.toy_recipe.loop import train_device

    work = Work(tmp_path)
    monkeypatch.setenv("ALIGNGPT_TOY_DEVICE", "cpu")  # restored after the test (run_all sets it)
    monkeypatch.delenv("ALIGNGPT_TOY_DEVICE")
    assert train_device() == "cpu"
    cpu = pipeline.train_commands(work, Recipe())
    assert "--use-cpu" in cpu["pretrain"] and "--use-cpu" in cpu["finetune"]
    seen = {}
    monkeypatch.setattr(pipeline, "run_stage", lambda name, w, r, env, o: seen.setdefault(
        name, (env.get("ALIGNGPT_TOY_DEVICE"), pipeline.train_commands(w, r)["finetune"])))
    opts = pipeline.build_parser().parse_args(["all", "--work", str(tmp_path), "--device", "cuda", "--until", "finetune"])
    pipeline.run_all(opts)
    device, finetune_argv = seen["finetune"]
    assert device == "cuda" and "--use-cpu" not in finetune_argv
    assert pipeline.build_parser().parse_args(["all", "--work", "w"]).device == "cpu"


def test_output_folders_are_only_those_the_command_line_names(tmp_path, monkeypatch):
    """The install, evaluate and results stages need their folders named; relative ones are taken
    from the current directory (the stage processes start elsewhere), and nothing defaults to a
    folder next to the recipe's source."""
    monkeypatch.setenv("ALIGNGPT_TOY_DEVICE", "cpu")
    monkeypatch.setattr(pipeline, "run_stage", lambda *a: None)
    parse = pipeline.build_parser().parse_args
    for argv, flag in ((["--until", "install"], "--install-to"), (["--from", "evaluate"], "--install-to"),
                       (["--install-to", "m"], "--results-dir")):
        with pytest.raises(SystemExit, match=f"needs {flag} DIR"):
            pipeline.run_all(parse(["all", "--work", str(tmp_path / "w"), *argv]))
    assert not (tmp_path / "w").exists()  # refused before anything was written
    pipeline.run_all(parse(["all", "--work", str(tmp_path / "w"), "--skip", "install", "--skip", "evaluate",
                            "--skip", "results"]))
    monkeypatch.chdir(tmp_path)
    opts = parse(["all", "--work", "w", "--install-to", "model", "--results-dir", "out/toy"])
    pipeline.run_all(opts)
    assert opts.install_dir == str(tmp_path / "model") and opts.results_dir == str(tmp_path / "out" / "toy")
