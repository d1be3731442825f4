"""A task's questions as a run sees them: loaded, checked, limited, fingerprinted."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

from ..data.base import Sample, get_loader
from ..errors import ConfigError, DataError
from .settings import RunSettings
from .tasks import TaskSpec


def load_samples(spec: TaskSpec, settings: RunSettings, sizes: dict[str, int] | None = None) -> list[Sample]:
    """The task's questions (``--limit``: a structured subset; ``sizes`` gets the full count)."""
    source = settings.source
    if source in ("local", "toy"):
        if not settings.data_root:
            raise ConfigError("--data-root is required with --source local")
        root = Path(settings.data_root)
        if not root.is_dir():
            raise DataError(root, "data root not found")
        samples = get_loader(spec.name, "local")(root)
    elif source == "hf":
        loader = get_loader(spec.name, "hf")
        path = settings.hf_paths.get(spec.name)
        samples = loader(path) if path else loader()
    else:
        raise ConfigError(f"unknown --source {source!r} (local, hf, toy)")
    check_unique_ids(samples, spec.name)
    if sizes is not None:
        sizes[spec.name] = len(samples)
    if settings.limit is not None:
        samples = apply_limit(samples, settings.limit)
    return samples


def _unit(sample: Sample) -> str:
    """The questions scored together, which a limit keeps whole: MME's two questions per image,
    MMBench's circular copies of one question."""
    if "answer_question_id" in sample.meta:
        return f"pair:{sample.meta['answer_question_id']}"
    if "group" in sample.meta:
        return f"group:{sample.meta['group']}"
    return f"key:{sample.key}"


def apply_limit(samples: Sequence[Sample], limit: int) -> list[Sample]:
    """About ``limit`` questions, spread over the task's parts and keeping scoring units whole.

    Parts are the ``category`` a loader records (POPE's three splits, MME's 14 subtasks, ...):
    units are taken from each part in turn, in file order, until ``limit`` questions are in, so a
    small limit still covers every part it can instead of only the first. A unit (see
    :func:`_unit`) is never cut, so the result can exceed ``limit`` by less than one unit.
    Samples keep their original order."""
    units: dict[str, list[int]] = {}
    parts: dict[object, list[str]] = {}
    for i, s in enumerate(samples):
        unit = _unit(s)
        if unit not in units:
            units[unit] = []
            parts.setdefault(repr(s.meta.get("category")), []).append(unit)
        units[unit].append(i)
    queues = [list(reversed(q)) for q in parts.values()]
    chosen: list[int] = []
    while len(chosen) < limit and any(queues):
        for q in queues:
            if q and len(chosen) < limit:
                chosen.extend(units[q.pop()])
    return [samples[i] for i in sorted(chosen)]


def check_unique_ids(samples: Sequence[Sample], task: str) -> None:
    seen: set[str] = set()
    for s in samples:
        if s.key in seen:
            raise DataError(None, f"task {task}: duplicate question id {s.question_id!r} in the question file")
        seen.add(s.key)


def fingerprint(samples: Sequence[Sample]) -> str:
    """Hash of question ids, texts, targets and image identities (path + size, or bytes digest)."""
    h = hashlib.sha256()
    for s in samples:
        if isinstance(s.image, (bytes, bytearray)):
            image = hashlib.sha256(s.image).hexdigest()
        elif s.image is not None:
            p = Path(s.image)
            image = f"{p.name}:{p.stat().st_size if p.exists() else -1}"
        else:
            image = None
        h.update(json.dumps([s.key, s.question, s.target, image], sort_keys=True, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()
