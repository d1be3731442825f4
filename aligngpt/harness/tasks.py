"""Task specs: one folder per benchmark (``task.yaml`` + its code), found by the registry."""
from __future__ import annotations

from ..errors import ConfigError
from .task_registry import add_include_path, all_specs, get_spec, ordered_specs
from .task_spec import PROTOCOLS, TaskSpec

__all__ = ["PROTOCOLS", "TaskSpec", "add_include_path", "available_tasks", "load_task", "ordered_specs",
           "parse_task_list"]


def available_tasks() -> list[str]:
    return sorted(all_specs())


def load_task(name: str, protocol: str = "llava15") -> TaskSpec:
    spec = get_spec(name)
    if protocol != spec.protocol:
        raise ConfigError(f"task {name!r} has no protocol {protocol!r} (available: {spec.protocol})")
    return spec


def parse_task_list(text: str) -> list[TaskSpec]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ConfigError("--tasks is empty")
    seen = []
    for n in names:
        if n not in seen:
            seen.append(n)
    return [load_task(n) for n in seen]
