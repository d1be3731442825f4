"""``results/toy/``: the bundled model's scores on every locally scored toy task, with chance levels.

``metrics.json`` is what the CI regression test (``tests/test_toy_regression.py``) compares
against; ``README.md`` is the same table for people, with the commands that made it.
"""
from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import torch

#: The regression test fails when a headline metric falls more than this many points below the
#: committed value (MME perception / cognition are sums over subtasks, in points out of 2000 /
#: 800, so they get a proportionally wider margin).
TOLERANCE = {"default": 3.0, "mme": 40.0}
#: Secondary metrics (a split, subtask or dimension) average fewer questions, so one answer moves
#: them further: a 33-question SEED dimension by 3.03 points, MME's 6-question code subtask by 50.
BREAKDOWN_TOLERANCE = {"default": 7.0, "mme": 50.0}
EVAL_COMMAND = "aligngpt-eval run --tasks {tasks} --model toy --batch-size {batch} --fresh"
BACKBONE_EVAL_COMMAND = "aligngpt-eval run --tasks {tasks} --model WORK/model --batch-size {batch} --fresh --conv-mode auto"


def _chance(task: str) -> dict:
    from aligngpt.harness.toy import toy_data_root
    from aligngpt.toy import chance_levels

    return chance_levels(toy_data_root()).get(task, {})


def _get(metrics: dict, dotted: str) -> Any:
    value: Any = metrics
    for part in dotted.split("."):
        value = value[part]
    return value


def headline_rows(results: dict) -> dict[str, dict]:
    """task -> headline metric, its value, chance, the halfway target and the secondary metrics."""
    from aligngpt.harness.tasks import load_task

    rows = {}
    for task, res in results["tasks"].items():
        spec = load_task(task)
        key = spec.headline
        metrics = res["metrics"]
        chance = _chance(task)
        extra = {}
        if task == "mme":
            key_max = {"perception": 2000.0, "cognition": 800.0}
            for k in ("perception", "cognition"):
                extra[k] = {"value": metrics[k], "chance": chance.get(k), "max": key_max[k]}
        value = _get(metrics, key)
        top = 2000.0 if (task == "mme" and key == "perception") else 100.0
        c = chance.get(key)
        rows[task] = {
            "headline": key, "value": value, "chance": c, "max": top,
            "halfway": None if c is None else (c + top) / 2, "n": res["n"], "metrics": metrics,
            **({"also": extra} if extra else {}),
        }
    return rows


def write_results(work, results_dir: Path, command: str) -> dict:
    runs = list((Path(work.stage("evaluate")) / "runs").glob("*/results.json"))
    if len(runs) != 1:
        found = ", ".join(sorted(str(r.parent) for r in runs)) or "none"
        raise FileNotFoundError(f"expected one evaluation under {work.stage('evaluate')}/runs, found: {found}")
    results = json.loads(runs[0].read_text())
    timings_file = Path(work.root) / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.is_file() else {}
    recipe = json.loads(Path(work.recipe_file).read_text())
    rows = headline_rows(results)
    tasks = ",".join(rows)
    out = {
        "model": ("bundled toy model (aligngpt/toy_assets/model)" if "backbone" not in recipe
                  else f"toy model, backbone {recipe['backbone']} (WORK/model; evaluated with --conv-mode auto)"),
        "data": "bundled toy benchmark data (aligngpt.harness.toy.toy_data_root(), seed 0, 300 questions per task)",
        "train_command": command,
        "eval_command": (EVAL_COMMAND.format(tasks=tasks, batch=recipe.get("eval_batch_size", 16)) if "backbone" not in recipe
                         else BACKBONE_EVAL_COMMAND.format(tasks=tasks, batch=recipe.get("eval_batch_size", 16))),
        "tolerance_points": TOLERANCE,
        "breakdown_tolerance_points": BREAKDOWN_TOLERANCE,
        "tasks": rows,
        "training": {"stage_seconds": {k: v for k, v in timings.items()},
                     "recipe": recipe},
        "environment": {"torch": torch.__version__, "python": platform.python_version(),
                        "machine": platform.machine(), "threads": torch.get_num_threads()},
    }
    _write(Path(results_dir), out)
    return out


def _write(results_dir: Path, out: dict) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "metrics.json").write_text(json.dumps(out, indent=2, sort_keys=False) + "\n")
    (results_dir / "README.md").write_text(render_readme(out))


def refresh_results(results_dir: Path, results: dict) -> list[str]:
    """Re-derive the task rows of a committed ``metrics.json`` from a new evaluation's
    ``results.json`` (training record and environment kept) and re-render its README; returns
    one line per value that changed. For a stale file: the model did not change, its record did."""
    results_dir = Path(results_dir)
    out = json.loads((results_dir / "metrics.json").read_text())
    new_rows = headline_rows(results)
    changes = [f"{task}.{key}: {old!r} -> {new!r}" for task in out["tasks"]
               for key, old, new in _diff(out["tasks"][task], new_rows.get(task, {}))]
    out["tasks"] = {task: new_rows[task] for task in out["tasks"]}
    out.setdefault("breakdown_tolerance_points", BREAKDOWN_TOLERANCE)
    _write(results_dir, out)
    return changes


def _diff(old: dict, new: dict, prefix: str = ""):
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            yield from _diff(a, b, f"{prefix}{key}.")
        elif a != b:
            yield f"{prefix}{key}", a, b


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.1f}"


def render_readme(out: dict) -> str:
    backbone = out["training"]["recipe"].get("backbone")
    if backbone:  # another backbone's run: no bundled model, no CI bar, no links to the bundled diagnosis
        return _render_backbone(out, backbone)
    lines = [
        "# Toy results: the bundled model on the bundled toy data",
        "",
        "Scores of the bundled tiny AlignGPT (`aligngpt/toy_assets/model/`, trained by the recipe in",
        "`dev/toy_recipe/`) on every locally scored toy task (300 questions per task; POPE 300 per",
        "split, MMBench with its circular copies). Synthetic data: these numbers say the pipeline works",
        "and catch regressions; they are not comparable to the paper's. `halfway` is the midpoint between",
        "chance and a perfect score, the acceptance bar of the bundled model.",
        "",
        "| task | headline metric | score | chance | halfway | n |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for task, row in out["tasks"].items():
        lines.append(f"| {task} | {row['headline']} | {_fmt(row['value'])} | {_fmt(row['chance'])} | "
                     f"{_fmt(row['halfway'])} | {row['n']} |")
        for k, sub in row.get("also", {}).items():
            if k != row["headline"]:
                half = None if sub["chance"] is None else (sub["chance"] + sub["max"]) / 2
                lines.append(f"| {task} | {k} (of {sub['max']:.0f}) | {_fmt(sub['value'])} | {_fmt(sub['chance'])} | "
                             f"{_fmt(half)} | |")
    stages = out["training"]["stage_seconds"]
    train_total = sum(v for k, v in stages.items() if k not in ("evaluate", "results"))
    lines += [
        "",
        "MME perception is out of 2000 (10 subtasks x 200), cognition out of 800 (4 x 200).",
        "",
        "## How these numbers were made",
        "",
        "Training (data, tokenizer, CLIP, base LM, `aligngpt-train score-alignment` / `pretrain` /",
        "`finetune`, install into the package, evaluation, this file):",
        "",
        "```bash",
        out["train_command"],
        "```",
        "",
        "Evaluation alone (what `tests/test_toy_regression.py` reruns):",
        "",
        "```bash",
        out["eval_command"],
        "```",
        "",
        f"Stage wall times of the committed run (seconds, {out['environment']['machine']}, "
        f"torch {out['environment']['torch']}):",
        "",
        "| stage | seconds |",
        "| --- | ---: |",
    ]
    for k, v in stages.items():
        lines.append(f"| {k} | {v:.0f} |")
    lines += [f"| training total (data .. install) | {train_total:.0f} |", ""]
    tol = out["tolerance_points"]
    lines += [
        "## Regression tolerance",
        "",
        f"The CI check fails when a headline metric differs by more than {tol['default']:g} points from the value",
        f"above ({tol['mme']:g} points for MME, whose scores are sums over subtasks), and checks every other",
        "metric in `metrics.json` (splits, subtasks, dimensions) the same way with the wider",
        "`breakdown_tolerance_points` (fewer questions each).",
        "",
    ]
    below = [t for t, row in out["tasks"].items() if row["halfway"] is not None and row["value"] < row["halfway"]]
    if below:
        lines += [
            "## Below the halfway bar",
            "",
            f"{len(below)} of {len(out['tasks'])} headline metrics are below halfway from chance to perfect "
            f"({', '.join(below)}).",
            "[`lm_reading.md`](lm_reading.md) records where the chain image -> projector -> language model",
            "breaks for one recipe run, [`recipe_sweep.md`](recipe_sweep.md) trains longer variants of the recipe",
            "on a GPU, and [`mc_probe_chat.md`](mc_probe_chat.md) and [`mc_probe.md`](mc_probe.md) time how long",
            "a model of the base LM's shape takes to learn to answer with an option's letter, and",
            "[`drill_probe.md`](drill_probe.md) shows that a short option-letter drill first gets there sooner",
            "(69% in 13 min of CPU against 58% after 39 min without it), and",
            "[`reading_drills.md`](reading_drills.md) tries reading drills (a description, a question, the answer)",
            "on top: the base LM's 300 text steps erased every drilled skill, and drills after the text (presence,",
            "then captions copied from a description) gave a model that uses its image (20 points own vs other image);",
            "each record names the script that made it and the commit that holds it.",
            "",
        ]
    return "\n".join(lines)


def _render_backbone(out: dict, backbone: str) -> str:
    """The results page of a ``--backbone`` recipe run: scores and how they were made."""
    text = render_readme({**out, "training": {**out["training"], "recipe": {}}})
    head, _, rest = text.partition("| task | headline metric |")
    intro = [
        f"# Toy results: the `{backbone}` backbone on the bundled toy data",
        "",
        f"The toy recipe run with `--backbone {backbone}` (see `dev/toy_recipe/backbones.py`): same data,",
        "sizes and stages as the bundled model, on a Qwen2-shaped base LM and a SigLIP-shaped tower, evaluated",
        "with `--conv-mode auto` (ChatML prompts). Not the bundled model, not checked by CI, and no target is set",
        "for these scores; synthetic data, not comparable to the paper's.",
        "",
    ]
    body = "| task | headline metric |" + rest
    body = body.replace("Evaluation alone (what `tests/test_toy_regression.py` reruns):", "Evaluation alone:")
    body = body.split("## Regression tolerance")[0].rstrip() + "\n"
    return "\n".join(intro) + "\n" + body
