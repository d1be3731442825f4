"""Writers for the toy versions of the 12 benchmarks, and their chance levels.

``write_benchmarks(root)`` lays the toy data out exactly like LLaVA-1.5's
``playground/data/eval`` (interface.md, "Task names and metric keys"), so the local loaders,
the official scripts and ``aligngpt-eval --data-root root`` all read it unchanged.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

from .bench_judge import write_llava_bench, write_mmvet
from .bench_mc import write_mmbench, write_scienceqa, write_seed
from .bench_vqa import write_gqa, write_textvqa, write_vizwiz, write_vqav2
from .bench_yesno import write_mme, write_pope

Writer = Callable[..., dict]

#: benchmark folder writer -> the evaluation tasks (interface.md names) it provides.
BENCHMARKS: dict[str, tuple[Writer, tuple[str, ...], bool]] = {
    # name: (writer, tasks, wide images)
    "vqav2": (write_vqav2, ("vqav2", "vqav2_val"), False),
    "gqa": (write_gqa, ("gqa",), False),
    "vizwiz": (write_vizwiz, ("vizwiz", "vizwiz_val"), False),
    "scienceqa": (write_scienceqa, ("scienceqa_img",), False),
    "textvqa": (write_textvqa, ("textvqa",), True),
    "pope": (write_pope, ("pope",), False),
    "mme": (write_mme, ("mme",), False),
    "mmbench": (write_mmbench, ("mmbench", "mmbench_cn"), False),
    "seed": (write_seed, ("seed_image",), False),
    "llava_bench": (write_llava_bench, ("llava_bench",), True),
    "mmvet": (write_mmvet, ("mmvet",), True),
}
TASKS: tuple[str, ...] = tuple(t for _, tasks, _ in BENCHMARKS.values() for t in tasks)

#: What "chance" means for each task, with the value where the toy design fixes it. Values
#: marked None depend on the generated questions; ``write_benchmarks`` computes them and stores
#: them in ``toy_manifest.json`` under ``chance`` (see :func:`chance_levels`).
CHANCE_LEVELS: dict[str, dict] = {
    "vqav2": {"metrics": {}, "rule": "server-scored (test-dev); no local metric"},
    "vqav2_val": {"metrics": {"accuracy": None},
                  "rule": "blind prior: the most common gold answer of each answer type (yes/no, number, other), "
                          "counted as exact matches with the canonical answer"},
    "gqa": {"metrics": {"accuracy": None, "binary": 50.0, "open": None},
            "rule": "binary questions: random of two answers (50%); open questions: the most common answer"},
    "vizwiz": {"metrics": {}, "rule": "server-scored (test); no local metric"},
    "vizwiz_val": {"metrics": {"accuracy": None, "unanswerable": 100.0},
                   "rule": "always answering 'unanswerable' (the VizWiz prior): accuracy = share of unanswerable"},
    "scienceqa_img": {"metrics": {"img_accuracy": None, "accuracy": None},
                      "rule": "uniform random letter: mean of 1/len(choices) over the questions"},
    "textvqa": {"metrics": {"accuracy": None}, "rule": "always giving the most common answer"},
    "pope": {"metrics": {"f1": 50.0, "accuracy": 50.0},
             "rule": "uniform random yes/no on balanced labels: accuracy, precision, recall 50 and F1 of the "
                     "expected counts 50; "
                     "always 'yes' gives F1 66.7 and accuracy 50"},
    "mme": {"metrics": {"perception": 750.0, "cognition": 300.0},
            "rule": "uniform random yes/no: acc 50 + acc+ 25 = 75 per subtask; 10 perception, 4 cognition subtasks"},
    "mmbench": {"metrics": {"circular_accuracy": None},
                "rule": "uniform random letter on every circular pass: mean of (1/N)^N over questions with N options"},
    "mmbench_cn": {"metrics": {"circular_accuracy": None}, "rule": "as mmbench, over the translated questions"},
    "seed_image": {"metrics": {"image_accuracy": 25.0}, "rule": "uniform random letter of 4 options"},
    "llava_bench": {"metrics": {"relative_score": None}, "rule": "judge-scored; no chance level"},
    "mmvet": {"metrics": {"total": None}, "rule": "judge-scored; no chance level"},
}

MANIFEST = "toy_manifest.json"
Size = Union[int, Sequence[int]]


def _sizes(image_size: Size) -> tuple[Size, Size]:
    """(square size, wide size): wide tasks get 4:3 images so square padding matters."""
    if isinstance(image_size, int):
        return image_size, (image_size * 4 // 3, image_size)
    return tuple(image_size), tuple(image_size)  # type: ignore[return-value]


def _task_chance(name: str, stats: dict) -> dict[str, dict]:
    """Split a writer's chance numbers into per-task dicts."""
    chance = stats.get("chance", {})
    tasks = BENCHMARKS[name][1]
    if len(tasks) == 1:
        return {tasks[0]: chance}
    out = {}
    for t in tasks:
        out[t] = chance.get(t, {})
    return out


def write_benchmarks(root: Union[str, Path], seed: int = 0, n_per_task: int = 300, *, image_size: Size = 48,
                     benchmarks: Optional[Sequence[str]] = None) -> dict:
    """Write the toy benchmarks under ``root`` (an evaluation root) and return the manifest.

    ``n_per_task`` is the number of questions per task (per split for POPE; main questions for
    MMBench, whose TSV also holds their circular copies). Same arguments -> same bytes.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    names = list(BENCHMARKS) if benchmarks is None else list(benchmarks)
    unknown = [b for b in names if b not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown toy benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}")
    square, wide = _sizes(image_size)
    stats: dict[str, dict] = {}
    chance: dict[str, dict] = {}
    for name in names:
        writer, _tasks, is_wide = BENCHMARKS[name]
        st = writer(root, seed, n_per_task, wide if is_wide else square)
        stats[name] = st
        chance.update(_task_chance(name, st))
    manifest = {
        "generator": "aligngpt.toy",
        "seed": seed,
        "n_per_task": n_per_task,
        "image_size": list(square) if not isinstance(square, int) else square,
        "benchmarks": {k: {kk: vv for kk, vv in v.items() if kk != "chance"} for k, v in stats.items()},
        "chance": chance,
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def chance_levels(root: Union[str, Path]) -> dict[str, dict]:
    """Computed chance levels of a generated toy root (task -> metric -> percent)."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        # Also accept the output folder of generate_toy_data, whose eval root is ``eval/``.
        path = Path(root) / "eval" / MANIFEST
    return json.loads(path.read_text(encoding="utf-8"))["chance"]
