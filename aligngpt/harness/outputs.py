"""The files a run leaves per task and for itself: answer files in the official format, per-question
rows for the viewer and statistics, the environment record and the run state.
"""
from __future__ import annotations

import hashlib
import platform
import time
from pathlib import Path
from typing import Sequence

from .. import __version__
from ..data.base import Sample
from ..io import atomic_write_json
from .journal import PredictionJournal
from .settings import answer_id


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
