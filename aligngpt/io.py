"""Reading and writing the JSON/JSONL files of the benchmarks and of our runs.

Readers raise :class:`DataError` naming the file and line; writers are atomic (write to a
temporary file in the same folder, fsync, rename), so a crash never leaves a half file.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import DataError


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        with open(path, "r", encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"malformed JSON: {exc.msg}", line=exc.lineno) from None
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason})") from None


def iter_text_lines(path: str | Path, *, universal_newlines: bool = False) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` of a UTF-8 file; a line that is not UTF-8 is a DataError naming it.

    Lines end at ``\n`` (with the end kept), as JSONL readers count them; ``universal_newlines``
    breaks them where Python's text mode would (``\n``, ``\r``, ``\r\n``, ends dropped), as
    scripts that read with ``open(path)`` count them.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    with open(path, "rb") as fh:
        raws = fh.read().splitlines() if universal_newlines else fh
        for lineno, raw in enumerate(raws, start=1):
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(path, f"not UTF-8 text ({exc.reason})", line=lineno) from None


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, object)`` for each non-blank line."""
    for lineno, text in iter_text_lines(path):
        if not text.strip():
            continue
        try:
            yield lineno, json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(path, f"malformed JSON line: {exc.msg}", line=lineno) from None


def with_filename(exc: OSError, path: str | Path) -> OSError:
    """``exc`` naming ``path`` when it names no file (write and fsync errors such as a full disk
    carry none), so the one-line error tells the user which output could not be written."""
    if exc.filename is None and exc.errno is not None:
        return type(exc)(exc.errno, exc.strerror, str(path))
    return exc


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _file_mode() -> int:
    """What ``open(path, "w")`` would give a new file (0o666 less the umask): mkstemp's temporary
    files are 0600, and a run folder should not mix 0600 and 0644 files by writer."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to a temporary sibling, then rename it over ``path``: readers see the old
    file or the new one, never a part. ``durable=False`` skips the fsync, for files that are
    cheap to recompute (caches), where a torn file after a power cut is detected and redone."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), _file_mode())
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            named = with_filename(exc, path)
            if named is not exc:
                raise named from None
        raise


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[Any]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
