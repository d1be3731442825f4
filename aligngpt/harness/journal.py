"""Append-only prediction journals: the crash-safe record of finished questions.

Each process appends its finished batches to its own file (``journal.jsonl``, or
``journal.rank{R}.jsonl`` under data parallelism), flushed and fsync-ed before it moves on. A
reader takes the union of every journal file in the task folder, so a run resumes with any
number of processes. A torn last line (the process died mid-write) is dropped and the file is
rewritten to its valid prefix before anything is appended: nothing lost, nothing duplicated.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..io import atomic_write_text, with_filename


def _read_valid(path: Path, records: dict[str, dict], repair: bool) -> None:
    good_lines: list[str] = []
    torn = False
    with open(path, "rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                torn = True
                break
            try:
                record = json.loads(raw.decode("utf-8"))
                key = str(record["key"])
            except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
                torn = True
                break
            good_lines.append(raw.decode("utf-8"))
            records.setdefault(key, record)
    if torn and repair:
        atomic_write_text(path, "".join(good_lines))


class PredictionJournal:
    def __init__(self, path: str | Path, *, shared_folder: bool = False):
        """``path`` is the file this process appends to; with ``shared_folder`` the records of
        every ``journal*.jsonl`` beside it are read too (other ranks, earlier runs)."""
        self.path = Path(path)
        self.shared_folder = shared_folder
        self.records: dict[str, dict] = {}
        self.reload()

    def reload(self) -> None:
        self.records = {}
        if self.path.exists():
            _read_valid(self.path, self.records, repair=True)
        if self.shared_folder and self.path.parent.is_dir():
            for other in sorted(self.path.parent.glob("journal*.jsonl")):
                if other != self.path:
                    _read_valid(other, self.records, repair=False)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def append(self, records: list[dict]) -> None:
        fresh = [r for r in records if str(r["key"]) not in self.records]
        if not fresh:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in fresh)
        try:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:  # a full disk: name the journal; a torn tail is cut on resume
            raise with_filename(exc, self.path) from None
        for r in fresh:
            self.records[str(r["key"])] = r
