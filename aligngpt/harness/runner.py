"""``aligngpt-eval run``: task spec -> samples -> prompts -> engine -> journal -> evaluator -> results.

A run directory is named from the model, the tasks and every setting that can change an answer
(not the batch size: answers do not depend on it), so starting the same command again resumes
it. Predictions are journaled per batch; ``results.json`` is written once, atomically, after
every task has been scored, so a failed or killed run never leaves one behind.
"""
from __future__ import annotations

import hashlib
import json
import platform
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .. import __version__
from ..data.base import Sample, get_loader
from ..errors import ConfigError, DataError
from ..io import atomic_write_json, atomic_write_jsonl
from .journal import PredictionJournal
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


# ---------------------------------------------------------------------------- data
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


# ---------------------------------------------------------------------------- naming
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "model"


def run_name(settings: RunSettings, tasks: Sequence[TaskSpec]) -> str:
    digest = hashlib.sha256(json.dumps(settings.identity(), sort_keys=True).encode()).hexdigest()[:10]
    model = _slug(Path(settings.model).name if Path(settings.model).exists() else settings.model)
    return f"{model}__{'+'.join(t.name for t in tasks)}__{digest}"


def answer_id(run: str, key: str) -> str:
    """Deterministic (unlike the official shortuuid), so a resumed run writes identical files."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"aligngpt:{run}:{key}").hex


# ---------------------------------------------------------------------------- outputs
def answer_rows(samples: Sequence[Sample], journal: PredictionJournal, model_id: str, run: str) -> list[dict]:
    rows = []
    for s in samples:
        rec = journal.records[s.key]
        row = {
            # the official id where ours had to be made unique (MME: two questions per image)
            "question_id": s.meta.get("answer_question_id", s.question_id),
            # what the official driver wrote (SQA: with "<image>\n", which its scorer looks for)
            "prompt": s.meta.get("answer_prompt", s.question),
            "text": rec["text"],
            "answer_id": answer_id(run, s.key),
            "model_id": model_id,
            "metadata": {},
        }
        for extra in ("round_id", "options", "option_char"):
            if extra in s.meta:
                row[extra] = s.meta[extra]
        rows.append(row)
    return rows


def _json_safe(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (bytes, bytearray)):
        return "sha1:" + hashlib.sha1(value).hexdigest()
    if isinstance(value, Path):
        return value.name
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return str(value)


def image_identity(sample: Sample) -> str | None:
    """A short stable name for the sample's image (clusters questions on one image in bootstraps)."""
    if sample.image is None:
        return None
    if isinstance(sample.image, (bytes, bytearray)):
        return "sha1:" + hashlib.sha1(sample.image).hexdigest()
    parts = Path(sample.image).parts
    return "/".join(parts[-2:])


def sample_rows(samples: Sequence[Sample], journal: PredictionJournal, per_sample: dict) -> list[dict]:
    rows = []
    for s in samples:
        rec = journal.records[s.key]
        row = {
            "question_id": s.question_id,
            "prompt": rec["prompt"],
            "prediction": rec["text"],
            "target": s.target,
            "alignment_weights": rec.get("alignment_weights"),
            "image": image_identity(s),
            "meta": _json_safe({k: v for k, v in s.meta.items() if k != "row"}),
        }
        for k, v in per_sample.get(s.key, {}).items():
            row.setdefault(k, v) if k != "target" else row.__setitem__("target", v)
        rows.append(row)
    return rows


def environment() -> dict:
    import torch
    import transformers

    env = {
        "aligngpt": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "platform": platform.platform(),
    }
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def write_state(run_dir: Path, status: str, **extra) -> None:
    atomic_write_json(run_dir / "run_state.json", {"status": status, "time": time.time(), **extra})
