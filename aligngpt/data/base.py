"""The one record every benchmark source produces, and the loader registry.

A loader turns one benchmark's files (LLaVA-1.5 local layout, or the lmms-lab HF copy) into a
list of :class:`Sample`. Both sources of the same split must give identical ``question_id`` and
``question`` strings: the question text is exactly what follows ``<image>\\n`` in the user turn,
task suffix included, so prompts never depend on where the data came from.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Union

from ..errors import ConfigError, DataError

#: An image is a file on disk or encoded bytes (base64-decoded TSV cell, parquet cell); None = text only.
ImageRef = Union[Path, bytes, None]


@dataclass
class Sample:
    question_id: Any
    """As in the official files (int or str); joins use ``str(question_id)``."""
    question: str
    """The user text after ``<image>\\n`` (task suffix included), exactly as the official driver sent it."""
    image: ImageRef = None
    target: Any = None
    """JSON-serialisable ground truth the task's evaluator needs (None where scored remotely)."""
    meta: dict = field(default_factory=dict)
    """Everything else an evaluator or answer file needs (category, options, split, ...)."""

    @property
    def key(self) -> str:
        return str(self.question_id)

    @property
    def has_image(self) -> bool:
        return self.image is not None


# Loaders registered in code (``@register_loader``); task folders declare theirs in task.yaml.
_LOADERS: dict[str, dict[str, Callable[..., list[Sample]]]] = {}


def register_loader(task: str, source: str):
    """Decorator: ``@register_loader("mytask", "local")`` (task.yaml's ``loader`` is preferred)."""

    def deco(fn: Callable[..., list[Sample]]):
        _LOADERS.setdefault(task, {})[source] = fn
        return fn

    return deco


def get_loader(task: str, source: str) -> Callable[..., list[Sample]]:
    """The loader a task's spec names for ``source`` (or one registered in code)."""
    from ..harness.task_registry import all_specs

    specs = all_specs()
    if task in _LOADERS and source in _LOADERS[task]:
        return _LOADERS[task][source]
    if task not in specs:
        known = sorted(set(specs) | set(_LOADERS))
        raise ConfigError(f"unknown task {task!r}; known: {', '.join(known)}")
    return specs[task].loader(source)


def available_loaders() -> dict[str, list[str]]:
    """task -> data sources it can be loaded from."""
    from ..harness.task_registry import all_specs

    found = {name: set(spec.loaders) for name, spec in all_specs().items()}
    for task, sources in _LOADERS.items():
        found.setdefault(task, set()).update(sources)
    return {t: sorted(s) for t, s in sorted(found.items())}


def resolve_image_path(root: Path, relative: str, *, source_file: Path | None = None, line: int | None = None) -> Path:
    """Join an image path from a data file onto its folder, refusing anything that escapes it.

    Data files come from outside; ``../`` or absolute paths must not reach the rest of the disk.
    """
    if not isinstance(relative, str) or not relative:
        raise DataError(source_file, f"image path must be a non-empty string, got {relative!r}", line=line)
    rel = Path(relative)
    if rel.is_absolute() or ".." in rel.parts:
        raise DataError(source_file, f"image path {relative!r} escapes the data folder; refused", line=line)
    root_resolved = root.resolve()
    full = (root / rel).resolve()
    if root_resolved != full and root_resolved not in full.parents:
        raise DataError(source_file, f"image path {relative!r} escapes the data folder (symlink); refused", line=line)
    return root / rel
