"""A crash-safe journal of finished scoring batches, so a killed run resumes where it stopped.

One JSON line per finished batch (``{"chunk": k, "ids": [...], "scores": [...]}``), written
with one ``write`` and fsynced before the next batch starts. A batch is thus either fully in
the journal or absent; a line torn by a kill (no final newline, or unparsable at the end of the
file) is cut off on reopening and that batch is simply scored again. Batches are fixed index
ranges of the data file, so a re-scored batch has exactly the same composition as before and
gives bit-identical scores.

The first line is a header naming the data (size + SHA-256), the CLIP model and the batch size;
a journal written for other inputs is refused rather than silently mixed in.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aligngpt.errors import ConfigError, DataError

JOURNAL_KIND = "aligngpt-score-alignment"
JOURNAL_VERSION = 1


class ScoreJournal:
    def __init__(self, path: Path, header: dict[str, Any]):
        self.path = Path(path)
        self.header = {"journal": JOURNAL_KIND, "version": JOURNAL_VERSION, **header}
        self.chunks: dict[int, tuple[list[Any], list[float]]] = {}
        self._fh = None

    # ------------------------------------------------------------------ reading
    def open(self, fresh: bool = False) -> "ScoreJournal":
        """Load finished batches (cutting a torn tail), or start a new journal."""
        if fresh and self.path.exists():
            self.path.unlink()
        if self.path.exists():
            self._load()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "wb") as fh:
                fh.write((json.dumps(self.header, sort_keys=True) + "\n").encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
        self._fh = open(self.path, "ab")
        return self

    def _load(self) -> None:
        data = self.path.read_bytes()
        good_end = 0
        lineno = 0
        pos = 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            lineno += 1
            if nl < 0:  # no newline: the last write was torn
                break
            raw = data[pos:nl]
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                if data[nl + 1 :].strip():
                    raise DataError(self.path, "corrupt journal line (not at the end of the file)", line=lineno) from None
                break  # torn tail that happened to contain a newline byte
            if lineno == 1:
                self._check_header(obj)
            else:
                self._add(obj, lineno)
            pos = nl + 1
            good_end = pos
        if good_end == 0:
            raise DataError(self.path, "journal has no complete header line; delete it or pass --fresh", line=1)
        if good_end < len(data):
            with open(self.path, "r+b") as fh:
                fh.truncate(good_end)
                fh.flush()
                os.fsync(fh.fileno())

    def _check_header(self, obj: Any) -> None:
        if not isinstance(obj, dict) or obj.get("journal") != JOURNAL_KIND:
            raise DataError(self.path, "not a score-alignment journal", line=1)
        diffs = [k for k in self.header if obj.get(k) != self.header[k]]
        if diffs:
            details = ", ".join(f"{k}: journal {obj.get(k)!r} vs now {self.header[k]!r}" for k in diffs)
            raise ConfigError(
                f"{self.path}: the journal was written for other inputs ({details}); "
                "pass --fresh to start over or use another --out"
            )

    def _add(self, obj: Any, lineno: int) -> None:
        try:
            chunk, ids, scores = int(obj["chunk"]), list(obj["ids"]), [float(s) for s in obj["scores"]]
        except (KeyError, TypeError, ValueError):
            raise DataError(self.path, "journal line lacks chunk/ids/scores", line=lineno) from None
        if len(ids) != len(scores):
            raise DataError(self.path, "journal line has unequal ids and scores", line=lineno)
        self.chunks[chunk] = (ids, scores)

    # ------------------------------------------------------------------ writing
    def append(self, chunk: int, ids: list[Any], scores: list[float]) -> None:
        """Record one finished batch durably (one write, then fsync)."""
        line = json.dumps({"chunk": chunk, "ids": ids, "scores": scores}) + "\n"
        self._fh.write(line.encode("utf-8"))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.chunks[chunk] = (ids, scores)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "ScoreJournal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
