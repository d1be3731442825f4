"""The toy versions of the benchmarks: dispatch to each task folder's ``toy.py`` writer.

``write_benchmarks(root)`` lays the toy data out exactly like LLaVA-1.5's
``playground/data/eval`` (the "Data on disk" sections of docs/protocol/), so the local loaders,
the official scripts and ``aligngpt-eval --data-root root`` all read it unchanged.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

Writer = Callable[..., dict]


def _toy_specs():
    from ..harness.task_registry import ordered_specs

    return [s for s in ordered_specs() if s.toy is not None]


def toy_benchmarks() -> dict[str, tuple[Writer, tuple[str, ...], bool]]:
    """Toy folder writer name -> (writer, the tasks it provides, wide images), in paper order.

    Read from each task's ``toy`` section: the task naming a ``writer`` owns the folder, sibling
    tasks name the same ``benchmark``."""
    specs = _toy_specs()
    out: dict[str, tuple[Writer, tuple[str, ...], bool]] = {}
    for spec in specs:
        if spec.toy.writer is None:
            continue
        name = spec.toy.benchmark
        if name in out:
            raise ValueError(f"{spec.path}: toy benchmark {name!r} already has a writer")
        tasks = tuple(s.name for s in specs if s.toy.benchmark == name)
        out[name] = (spec.resolve(spec.toy.writer), tasks, spec.toy.wide_images)
    return out


def toy_tasks() -> tuple[str, ...]:
    """Every task the toy suite provides."""
    return tuple(t for _, ts, _ in toy_benchmarks().values() for t in ts)


def chance_table() -> dict[str, dict]:
    """What "chance" means for each task (``toy.chance`` / ``toy.chance_rule``), with the value
    where the toy design fixes it. None values depend on the generated questions;
    ``write_benchmarks`` computes them into ``toy_manifest.json`` (see :func:`chance_levels`)."""
    return {s.name: {"metrics": dict(s.toy.chance), "rule": s.toy.chance_rule} for s in _toy_specs()}


def __getattr__(name: str):
    # Module constants kept for callers; computed on access so plugin tasks are included.
    if name == "BENCHMARKS":
        return toy_benchmarks()
    if name == "TASKS":
        return toy_tasks()
    if name == "CHANCE_LEVELS":
        return chance_table()
    raise AttributeError(name)


MANIFEST = "toy_manifest.json"
Size = Union[int, Sequence[int]]


def _sizes(image_size: Size) -> tuple[Size, Size]:
    """(square size, wide size): wide tasks get 4:3 images so square padding matters."""
    if isinstance(image_size, int):
        return image_size, (image_size * 4 // 3, image_size)
    return tuple(image_size), tuple(image_size)  # type: ignore[return-value]


def _task_chance(provided: tuple[str, ...], stats: dict) -> dict[str, dict]:
    """Split a writer's chance numbers into per-task dicts."""
    chance = stats.get("chance", {})
    tasks = provided
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
    known = toy_benchmarks()
    names = list(known) if benchmarks is None else list(benchmarks)
    unknown = [b for b in names if b not in known]
    if unknown:
        raise ValueError(f"unknown toy benchmark(s) {unknown}; known: {', '.join(known)}")
    square, wide = _sizes(image_size)
    stats: dict[str, dict] = {}
    chance: dict[str, dict] = {}
    for name in names:
        writer, provided, is_wide = known[name]
        st = writer(root, seed, n_per_task, wide if is_wide else square)
        stats[name] = st
        chance.update(_task_chance(provided, st))
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
