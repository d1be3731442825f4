"""Append-only prediction journal: the crash-safe record of finished questions.

Each finished batch is appended as JSON lines, flushed and fsync-ed before the run moves on.
On resume a torn last line (the process died mid-write) is dropped and the file is rewritten
to its valid prefix before anything is appended, so nothing is lost or duplicated.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..io import atomic_write_text


class PredictionJournal:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.records: dict[str, dict] = {}
        self._recover()

    def _recover(self) -> None:
        if not self.path.exists():
            return
        good_lines: list[str] = []
        with open(self.path, "rb") as fh:
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break  # torn write
                try:
                    record = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    break
                key = str(record["key"])
                if key in self.records:
                    continue
                self.records[key] = record
                good_lines.append(raw.decode("utf-8"))
        atomic_write_text(self.path, "".join(good_lines))

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
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        for r in fresh:
            self.records[str(r["key"])] = r
