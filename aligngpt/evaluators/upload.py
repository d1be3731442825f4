"""Checking an EvalAI upload before it is sent: the server rejects malformed files after the fact."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from aligngpt.errors import DataError
from aligngpt.io import read_json


def validate_upload(path: str | Path, id_field: str, expected_ids: Iterable, *, id_is_valid: Callable[[object], bool],
                    id_kind: str, universe: str, item: str = "question", key_label: str = "") -> int:
    """A JSON list of objects with exactly ``id_field`` and ``answer`` (str); every expected id
    exactly once and no other. Returns the number of entries; raises :class:`DataError` naming
    the file and the entry."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(path, f"expected a JSON list, got {type(data).__name__}")
    expected = set(expected_ids)
    seen: set = set()
    for i, entry in enumerate(data):
        where = f"entry {i}: "
        if not isinstance(entry, dict) or set(entry) != {id_field, "answer"}:
            raise DataError(path, f"{where}expected an object with exactly '{id_field}' and 'answer'")
        key, answer = entry[id_field], entry["answer"]
        if not id_is_valid(key):
            raise DataError(path, f"{where}{id_field} {key!r} is not {id_kind}")
        if not isinstance(answer, str):
            raise DataError(path, f"{where}answer for {key_label}{key} is not a string")
        if key in seen:
            raise DataError(path, f"{where}{id_field} {key} appears twice")
        if key not in expected:
            raise DataError(path, f"{where}{id_field} {key} is not a {universe} {item}")
        seen.add(key)
    missing = expected - seen
    if missing:
        sample = ", ".join(map(str, sorted(missing)[:3]))
        raise DataError(path, f"{len(missing)} {universe} {item}(s) have no entry (e.g. {sample})")
    return len(data)
