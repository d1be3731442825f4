"""Task specs: one declarative YAML per benchmark (package data in ``aligngpt.tasks``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

import yaml

from ..errors import ConfigError

PROTOCOLS = ("llava15",)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    title: str
    protocol: str
    evaluator: str
    scoring: str
    template: str
    max_new_tokens: int
    image_handling: str  # config | pad | crop
    headline: str
    sources: dict = field(default_factory=dict)

    def pad_to_square(self, checkpoint_aspect_ratio: str) -> bool:
        if self.image_handling == "pad":
            return True
        if self.image_handling == "crop":
            return False
        return checkpoint_aspect_ratio == "pad"


def _spec_files() -> dict[str, str]:
    root = resources.files("aligngpt.tasks")
    return {p.name[:-5]: p.read_text(encoding="utf-8") for p in root.iterdir() if p.name.endswith(".yaml")}


def available_tasks() -> list[str]:
    return sorted(_spec_files())


def load_task(name: str, protocol: str = "llava15") -> TaskSpec:
    files = _spec_files()
    if name not in files:
        raise ConfigError(f"unknown task {name!r}; known: {', '.join(sorted(files))}")
    raw = yaml.safe_load(files[name])
    if protocol != raw.get("protocol", "llava15"):
        raise ConfigError(f"task {name!r} has no protocol {protocol!r} (available: {raw.get('protocol')})")
    fields = TaskSpec.__dataclass_fields__
    return TaskSpec(**{k: v for k, v in raw.items() if k in fields})


def parse_task_list(text: str) -> list[TaskSpec]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ConfigError("--tasks is empty")
    seen = []
    for n in names:
        if n not in seen:
            seen.append(n)
    return [load_task(n) for n in seen]
