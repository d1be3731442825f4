"""Verbatim protocol texts of the official judge scorers (see README.md for sources)."""
from __future__ import annotations

import json
from importlib import resources
from typing import Any


def read_text(name: str) -> str:
    """Exact text of a bundled protocol file (no newline translation)."""
    data = resources.files(__name__).joinpath(name).read_bytes()
    return data.decode("utf-8")


def read_json(name: str) -> Any:
    return json.loads(read_text(name))
