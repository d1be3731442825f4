"""CI regression check: the bundled toy model on every locally scored toy task.

``test_bundled_model_has_not_regressed`` evaluates the bundled model (``--model toy``) on the
bundled toy data (300 questions per task, batch size 16) exactly as ``aligngpt-eval run`` does
and fails when any metric that ``results/toy/metrics.json`` lists -- headlines, splits, subtasks,
dimensions -- differs from it by more than the stated tolerance (headlines 3 points, 40 for MME's
sums out of 2000 / 800; the breakdowns, over fewer questions, ``breakdown_tolerance_points``). A
change that breaks the model, the processor, the prompts, the engine, a loader or an evaluator
shows up there; so does a committed file that no longer matches the committed model (MME
cognition was once recorded 50 points above what the model answers). When a change is meant to
move the numbers, ``python -m dev.refresh_toy_metrics --results-dir results/toy`` rewrites the values
(or retrain with ``python -m dev.train_toy_model``).

The cheaper tests check the committed file itself: every locally scored task is present, the
acceptance bar (halfway from chance to perfect) is recorded -- and, while the bundled model stays
below it, known not to be met (a strict xfail) -- and the comparison logic flags a drop just past
the tolerance.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
METRICS = REPO / "results" / "toy" / "metrics.json"
MODEL_DIR = REPO / "aligngpt" / "toy_assets" / "model"
EVAL_BATCH_SIZE = 16


def committed() -> dict:
    return json.loads(METRICS.read_text(encoding="utf-8"))


def local_toy_tasks() -> list[str]:
    """The locally scored tasks that have a toy version (all but the judge/server-scored ones)."""
    from aligngpt.harness.tasks import available_tasks, load_task
    from aligngpt.toy import TASKS

    return [t for t in available_tasks() if t in TASKS and load_task(t).scoring.startswith("local")]


def tolerance(task: str, reference: dict) -> float:
    tol = reference["tolerance_points"]
    return float(tol.get(task, tol["default"]))


def flatten(metrics: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


def mismatches(results: dict, reference: dict) -> list[str]:
    """Every committed metric (headline or breakdown) the new evaluation misses by more than its
    tolerance, in either direction: the committed file must describe the committed model."""
    out = []
    for task, row in reference["tasks"].items():
        if task not in results["tasks"]:
            out.append(f"{task}: no score")
            continue
        current = flatten(results["tasks"][task]["metrics"])
        headline_keys = {row["headline"], *row.get("also", {})}
        for key, want in flatten(row["metrics"]).items():
            table = reference["tolerance_points"] if key in headline_keys else reference["breakdown_tolerance_points"]
            tol = float(table.get(task, table["default"]))
            got = current.get(key)
            if got is None:
                out.append(f"{task}.{key}: missing (committed {want:.2f})")
            elif abs(got - want) > tol:
                out.append(f"{task}.{key}: {got:.2f} vs committed {want:.2f} (tolerance {tol:g})")
    return out


def regressions(current: dict[str, float], reference: dict) -> list[str]:
    """Tasks whose headline fell more than the tolerance below the committed value (or is missing)."""
    out = []
    for task, row in reference["tasks"].items():
        if task not in current:
            out.append(f"{task}: no score")
            continue
        floor = row["value"] - tolerance(task, reference)
        if current[task] < floor:
            out.append(f"{task}: {row['headline']} {current[task]:.2f} < {floor:.2f} "
                       f"(committed {row['value']:.2f} - tolerance {tolerance(task, reference):g})")
    return out


def headlines(results: dict, reference: dict) -> dict[str, float]:
    out = {}
    for task, res in results["tasks"].items():
        value = res["metrics"]
        for part in reference["tasks"][task]["headline"].split("."):
            value = value[part]
        out[task] = float(value)
    return out


# ---------------------------------------------------------------------------- the committed file
def test_committed_results_cover_every_local_toy_task():
    ref = committed()
    assert sorted(ref["tasks"]) == sorted(local_toy_tasks())
    for task, row in ref["tasks"].items():
        from aligngpt.harness.tasks import load_task

        assert row["headline"] == load_task(task).headline, task


@pytest.mark.xfail(strict=True, reason="acceptance bar not met: the bundled model is below halfway "
                                       "on the toy tasks (results/toy/README.md, recipe_sweep.md, mc_probe*.md); "
                                       "strict, so meeting the bar fails this marker")
def test_committed_scores_are_at_least_halfway_from_chance_to_perfect():
    # The acceptance bar of the bundled model: e.g. POPE F1 >= (50 + 100) / 2 = 75,
    # SEED (4 options, chance 25) >= 62.5, MME perception (chance 750 of 2000) >= 1375.
    ref = committed()
    for task, row in ref["tasks"].items():
        assert row["chance"] is not None, task
        assert row["halfway"] == pytest.approx((row["chance"] + row["max"]) / 2), task
        assert row["value"] >= row["halfway"], f"{task}: {row['value']:.2f} < halfway {row['halfway']:.2f}"


def test_regression_check_flags_a_drop_past_the_tolerance():
    ref = {"tolerance_points": {"default": 3.0, "mme": 40.0},
           "tasks": {"pope": {"headline": "f1", "value": 80.0}, "mme": {"headline": "perception", "value": 1500.0}}}
    # 80 - 3 = 77 is the floor: 77.0 passes, 76.99 fails; MME: 1500 - 40 = 1460.
    assert regressions({"pope": 77.0, "mme": 1460.0}, ref) == []
    assert regressions({"pope": 95.0, "mme": 1900.0}, ref) == []
    bad = regressions({"pope": 76.99, "mme": 1459.0}, ref)
    assert len(bad) == 2 and bad[0].startswith("pope: f1 76.99 < 77.00") and bad[1].startswith("mme:")
    assert regressions({"pope": 80.0}, ref) == ["mme: no score"]


def test_every_metric_check_flags_a_stale_breakdown_either_way():
    ref = {"tolerance_points": {"default": 3.0, "mme": 40.0},
           "breakdown_tolerance_points": {"default": 7.0, "mme": 50.0},
           "tasks": {"mme": {"headline": "perception", "also": {"perception": {}, "cognition": {}},
                             "metrics": {"perception": 763.05, "cognition": 283.33,
                                         "subtasks": {"code_reasoning": 83.33, "OCR": 150.0}}},
                     "pope": {"headline": "f1", "metrics": {"f1": 64.2, "splits": {"random": {"f1": 63.6}}}}}}
    same = {"tasks": {t: {"metrics": r["metrics"]} for t, r in ref["tasks"].items()}}
    assert mismatches(same, ref) == []
    # the stale file once committed: cognition 233.33 answered, 283.33 recorded (a sum: tolerance 40)
    stale = json.loads(json.dumps(same))
    stale["tasks"]["mme"]["metrics"]["cognition"] = 233.33
    stale["tasks"]["pope"]["metrics"]["splits"]["random"]["f1"] = 71.0  # a breakdown 7.4 above
    assert [m.split(":")[0] for m in mismatches(stale, ref)] == ["mme.cognition", "pope.splits.random.f1"]
    del stale["tasks"]["mme"]["metrics"]["subtasks"]["OCR"]
    assert "mme.subtasks.OCR: missing (committed 150.00)" in mismatches(stale, ref)


def test_committed_file_gives_every_metric_a_tolerance():
    ref = committed()
    assert {"default"} <= set(ref["tolerance_points"]) and {"default"} <= set(ref["breakdown_tolerance_points"])
    assert sum(len(flatten(row["metrics"])) for row in ref["tasks"].values()) > 3 * len(ref["tasks"])


def test_bundled_checkpoint_is_a_small_safetensors_model():
    names = {p.name for p in MODEL_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.model", "preprocessor_config.json"} <= names
    assert not any(n.endswith((".bin", ".pt")) for n in names)
    total = sum(p.stat().st_size for p in MODEL_DIR.iterdir())
    assert total < 12 * 2**20, f"bundled model is {total / 2**20:.1f} MiB"
    config = json.loads((MODEL_DIR / "config.json").read_text())
    assert config["model_type"] == "aligngpt" and config["use_alignment"] is True
    assert not str(config["mm_vision_tower"]).startswith("/"), "the config must not name a local path"


# ---------------------------------------------------------------------------- the evaluation
@pytest.mark.slow
def test_bundled_model_has_not_regressed(tmp_path):
    import torch

    from aligngpt.cli.eval_cli import main as eval_main

    ref = committed()
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, int(os.environ.get("ALIGNGPT_TEST_THREADS", "2"))))
    try:
        rc = eval_main(["run", "--tasks", ",".join(ref["tasks"]), "--model", "toy",
                        "--batch-size", str(EVAL_BATCH_SIZE), "--output-dir", str(tmp_path), "--fresh"])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    (results_file,) = tmp_path.glob("*/results.json")
    results = json.loads(results_file.read_text())
    assert results["model"]["bundled_toy_model"] is True
    assert not [t for t, r in results["tasks"].items() if "limited" in r]  # whole benchmarks only
    current = headlines(results, ref)
    problems = regressions(current, ref) + mismatches(results, ref)
    summary = ", ".join(f"{t} {v:.1f}" for t, v in current.items())
    assert not problems, ("toy regression (python -m dev.refresh_toy_metrics --results-dir results/toy rewrites "
                          "the committed values when a change is meant to move them):\n  " + "\n  ".join(problems) + f"\nall scores: {summary}")


def test_refresh_rewrites_only_the_values_that_changed(tmp_path):
    from dev.toy_recipe.results import refresh_results

    (tmp_path / "metrics.json").write_text(METRICS.read_text())
    ref = committed()
    results = {"tasks": {t: {"metrics": json.loads(json.dumps(r["metrics"])), "n": r["n"]} for t, r in ref["tasks"].items()}}
    assert refresh_results(tmp_path, results) == []
    results["tasks"]["mme"]["metrics"]["subtasks"]["code_reasoning"] = 83.0
    assert refresh_results(tmp_path, results) == ["mme.metrics.subtasks.code_reasoning: 33.33333333333333 -> 83.0"]
    new = json.loads((tmp_path / "metrics.json").read_text())
    assert new["training"] == ref["training"] and new["tasks"]["gqa"] == ref["tasks"]["gqa"]
    assert (tmp_path / "README.md").read_text().startswith("# Toy results")
