"""Errors users see. Each names the file (and line) at fault so a bad input is fixed in one look."""
from __future__ import annotations

from pathlib import Path


class AlignGPTError(Exception):
    """Base class: the CLI prints these as one line and exits non-zero."""


class DataError(AlignGPTError):
    """Bad or missing input data; ``path`` and ``line`` locate it."""

    def __init__(self, path: str | Path | None, message: str, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        self.message = message
        where = self.path or "<input>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")

    def __reduce__(self):  # picklable across DataLoader workers
        return (type(self), (self.path, self.message, self.line))


class ConfigError(AlignGPTError):
    """Bad option, unknown task/evaluator, or an unusable checkpoint."""
