"""What a run is: the settings that define it and the name they give its folder.

The folder name hashes every setting that can change an answer (not the batch size, device or
process count: answers do not depend on them), so starting the same command again finds the
same folder and resumes it.
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .judging import JudgeSettings
from .tasks import TaskSpec


@dataclass
class RunSettings:
    model: str = "toy"
    data_root: str | None = None
    source: str = "toy"
    output_dir: str = "results/runs"
    batch_size: int | str = 8
    canary: str = "auto"  # auto (before runs of >= 64 questions) | always | never
    limit: int | None = None
    align_mode: str | None = None
    device: str = "cpu"
    dtype: str | None = None
    max_new_tokens: int | None = None
    seed: int = 0
    fresh: bool = False
    num_workers: int = 0
    image_cache: str | None = None  # folder of preprocessed images shared across runs (never changes an answer)
    hf_paths: dict = field(default_factory=dict)
    conv_mode: str | None = None  # None: each task's protocol template; "auto": the checkpoint's; or a name
    judge: "JudgeSettings" = field(default_factory=lambda: JudgeSettings())

    def identity(self) -> dict:
        """The settings that can change an answer (what the run name hashes; not the device
        index, batch size or process count)."""
        out = {
            "model": self.model,
            "data_root": str(Path(self.data_root).resolve()) if self.data_root else None,
            "source": self.source,
            "limit": self.limit,
            "align_mode": self.align_mode,
            "dtype": self.dtype,
            "max_new_tokens": self.max_new_tokens,
            "seed": self.seed,
        }
        if self.conv_mode is not None:  # only when set, so existing run names do not move
            out["conv_mode"] = self.conv_mode
        return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "model"


def run_name(settings: RunSettings, tasks: Sequence[TaskSpec]) -> str:
    digest = hashlib.sha256(json.dumps(settings.identity(), sort_keys=True).encode()).hexdigest()[:10]
    model = _slug(Path(settings.model).name if Path(settings.model).exists() else settings.model)
    return f"{model}__{'+'.join(t.name for t in tasks)}__{digest}"


def answer_id(run: str, key: str) -> str:
    """Deterministic (unlike the official shortuuid), so a resumed run writes identical files."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"aligngpt:{run}:{key}").hex
