"""A deterministic synthetic "toy world" and toy versions of the benchmarks.

``generate_toy_data(out_dir)`` writes, from one seed and in seconds on a CPU:

- ``out_dir/eval/``: all 12 benchmarks in LLaVA-1.5's ``playground/data/eval`` layout and file
  formats (use it as ``--data-root``), plus ``toy_manifest.json`` (counts, chance levels);
- ``out_dir/LLaVA-Pretrain/``: caption pairs for alignment pretraining (full / partial / wrong
  captions; truth in the ``toy_alignment.json`` sidecar);
- ``out_dir/llava_v1_5_mix665k.json`` + ``out_dir/toy_instruct/images/``: instruction data;
- ``out_dir/toy_manifest.json``: everything above in one summary.

The same arguments give byte-identical files. See ``world`` (scenes and rendering), ``text``
(captions and question families), ``benchmarks`` (dispatch to each task folder's ``toy.py``) and ``training_data``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence, Union

from . import benchmarks as _benchmarks
from .benchmarks import MANIFEST, chance_levels, chance_table, toy_benchmarks, toy_tasks, write_benchmarks
from .training_data import write_instruct, write_pretrain
from .world import Scene, ToyObject, ToyText, render_scene, rng_for, sample_scene

__all__ = [
    "BENCHMARKS", "CHANCE_LEVELS", "TASKS", "Scene", "ToyObject", "ToyText", "chance_levels", "chance_table",
    "toy_benchmarks", "toy_tasks",
    "generate_toy_data", "render_scene", "rng_for", "sample_scene", "write_benchmarks", "write_instruct",
    "write_pretrain",
]


def __getattr__(name: str):
    # BENCHMARKS / TASKS / CHANCE_LEVELS are read from the task registry on each access.
    if name in ("BENCHMARKS", "TASKS", "CHANCE_LEVELS"):
        return getattr(_benchmarks, name)
    raise AttributeError(name)


def generate_toy_data(
    out_dir: Union[str, Path],
    seed: int = 0,
    n_per_task: int = 300,
    *,
    image_size: Union[int, Sequence[int]] = 48,
    benchmarks: Optional[Sequence[str]] = None,
    n_pretrain: int = 2000,
    n_instruct: int = 2000,
) -> dict:
    """Write the whole toy suite under ``out_dir`` and return its manifest (also saved as JSON).

    ``n_per_task`` questions per benchmark task; ``n_pretrain`` / ``n_instruct`` training
    records (0 skips that part); ``benchmarks`` restricts the benchmark folders written
    (names of :data:`BENCHMARKS`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict = {
        "generator": "aligngpt.toy", "seed": seed, "n_per_task": n_per_task,
        "eval_root": "eval",
        "eval": write_benchmarks(out / "eval", seed, n_per_task, image_size=image_size, benchmarks=benchmarks),
    }
    if n_pretrain > 0:
        manifest["pretrain"] = write_pretrain(out, seed, n_pretrain, image_size=image_size)
    if n_instruct > 0:
        manifest["instruct"] = write_instruct(out, seed, n_instruct, image_size=image_size)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest
