"""Reading LLaVA-format training JSON (558K pretraining captions, mix665k conversations).

Both files are one JSON array of records ``{"id", "image"?, "conversations": [{"from",
"value"}, ...]}``; pretraining records may carry the integer ``similarity`` level. Problems
are reported as ``file: record k (id X): ...`` so a bad record is found in one look.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from aligngpt.errors import DataError
from aligngpt.io import read_json


def load_records(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(path, f"expected a JSON array of records, got {type(data).__name__}")
    for k, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise DataError(path, f"record {k}: expected an object, got {type(rec).__name__}")
        conv = rec.get("conversations")
        if not isinstance(conv, list) or not conv:
            raise DataError(path, f"{where(rec, k)}: 'conversations' must be a non-empty list")
        for t, turn in enumerate(conv):
            if not isinstance(turn, dict) or not isinstance(turn.get("value"), str) or "from" not in turn:
                raise DataError(path, f"{where(rec, k)}: turn {t} needs 'from' and a string 'value'")
        if "image" in rec and not isinstance(rec["image"], str):
            raise DataError(path, f"{where(rec, k)}: 'image' must be a string path")
    return data


def where(rec: dict[str, Any], k: int) -> str:
    return f"record {k} (id {rec.get('id')!r})" if "id" in rec else f"record {k}"


def caption_of(rec: dict[str, Any], k: int, path: Path) -> str:
    """The text of a caption pair: its first assistant (``gpt``) turn."""
    for turn in rec["conversations"]:
        if turn["from"] in ("gpt", "assistant"):
            return turn["value"]
    raise DataError(path, f"{where(rec, k)}: no gpt turn (the caption) in 'conversations'")


def file_fingerprint(path: str | Path) -> str:
    """``size:sha256`` of a file, to recognise the same data on resume."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return f"{size}:{digest.hexdigest()}"
