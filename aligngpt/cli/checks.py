"""Flag checking shared by ``aligngpt-eval`` and ``aligngpt-train``: every user mistake is one
line on stderr and exit status 2, found before any model is loaded or any folder is created.

Two layers. Argument *types* (``integer``, ``number``, ``device`` ...) reject a malformed or
out-of-range value while argparse parses, and :class:`OneLineParser` prints argparse's own
errors as one line instead of the whole usage text. Checks that need several flags or the
filesystem (a data root that exists, an alignment mode the checkpoint has levels for) are
helpers called by each command's ``validate`` step, and raise :class:`ConfigError`.
"""
from __future__ import annotations

import argparse
import errno
import json
import math
import os
from pathlib import Path
from typing import Callable

from ..errors import ConfigError


class OneLineParser(argparse.ArgumentParser):
    """argparse prints its usage before the error; a user who typed ``--batch-size big`` needs
    the error, and where the rest is (``--help``)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _range_text(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f" in {lo}..{hi}"
    if lo is not None:
        return f" >= {lo}"
    return f" <= {hi}" if hi is not None else ""


def integer(lo: int | None = None, hi: int | None = None, *, also: tuple[str, ...] = ()) -> Callable[[str], int | str]:
    """An argparse type: an integer in [lo, hi], or one of the words in ``also`` (e.g. 'auto')."""
    words = f" or {' / '.join(repr(w) for w in also)}" if also else ""

    def parse(text: str):
        if text in also:
            return text
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer{_range_text(lo, hi)}{words}, got {text!r}") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be an integer{_range_text(lo, hi)}{words}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def number(lo: float | None = None, hi: float | None = None, *, above: float | None = None) -> Callable[[str], float]:
    """An argparse type: a finite number in [lo, hi] (``above``: strictly greater than)."""
    bound = f" > {above}" if above is not None else _range_text(lo, hi)

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number{bound}, got {text!r}") from None
        if (not math.isfinite(value) or (lo is not None and value < lo) or (hi is not None and value > hi)
                or (above is not None and value <= above)):
            raise argparse.ArgumentTypeError(f"must be a finite number{bound}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


def device(text: str) -> str:
    """An argparse type: ``cpu``, ``cuda``, ``cuda:N`` or ``mps``, and present in this build."""
    if text == "cpu":
        return text
    kind, _, index = text.partition(":")
    if kind not in ("cuda", "mps") or (index and not index.isdigit()) or (kind == "mps" and index):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or mps, got {text!r}")
    import torch

    if kind == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise argparse.ArgumentTypeError("mps is not available here; use --device cpu")
        return text
    if not torch.cuda.is_available():
        why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise argparse.ArgumentTypeError(f"{text}: {why} (torch {torch.__version__}); use --device cpu, "
                                         "or install a CUDA build of torch on a GPU machine")
    if index and int(index) >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"{text}: only {torch.cuda.device_count()} CUDA device(s) visible")
    return text


def conv_mode(text: str) -> str:
    """An argparse type: a known conversation template, ``chat_template`` or ``auto``."""
    from ..processing.conversation import CHAT_TEMPLATE, TEMPLATE_ALIASES, TEMPLATES

    known = ["auto", CHAT_TEMPLATE, *TEMPLATES, *TEMPLATE_ALIASES]
    if text not in known:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(dict.fromkeys(known))}, got {text!r}")
    return text


def csv_integers(lo: int = 1) -> Callable[[str], list[int]]:
    """An argparse type: comma-separated integers >= lo (``1,8,16``)."""
    one = integer(lo)

    def parse(text: str) -> list[int]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers >= {lo}, got {text!r}")
        return [one(t) for t in items]

    parse.__name__ = "csv_integers"
    return parse


DTYPES = ("float32", "float16", "bfloat16", "auto")


# ---------------------------------------------------------------------------- filesystem checks
def _nonempty(flag: str, value: str | None) -> None:
    if value is not None and not value.strip():
        raise ConfigError(f"{flag}: empty path")


def existing_file(flag: str, value: str | None) -> None:
    _nonempty(flag, value)
    if value is not None and not Path(value).is_file():
        raise ConfigError(f"{flag} {value}: no such file")


def existing_dir(flag: str, value: str | None) -> None:
    _nonempty(flag, value)
    if value is not None and not Path(value).is_dir():
        raise ConfigError(f"{flag} {value}: no such folder")


def writable_dir(flag: str, value: str | None) -> None:
    """A folder we may create later: it must not be a file, nor sit under one."""
    if value is None:
        return
    _nonempty(flag, value)
    for p in (Path(value), *Path(value).parents):
        if p.exists():
            if not p.is_dir():
                raise ConfigError(f"{flag} {value}: {p} is a file, not a folder")
            if not os.access(p, os.W_OK | os.X_OK):
                read_only = os.statvfs(p).f_flag & os.ST_RDONLY
                raise ConfigError(f"{flag} {value}: cannot write in {p}: "
                                  f"{os.strerror(errno.EROFS if read_only else errno.EACCES)}")
            return


def file_target(flag: str, value: str | None) -> None:
    """A file we may write later: not a folder, and its folder can be made."""
    if value is None:
        return
    if value == "" or Path(value).is_dir():
        raise ConfigError(f"{flag} {value!r}: expected a file path, not a folder")
    writable_dir(flag, str(Path(value).parent))


def local_or_hub(flag: str, value: str, *, words: tuple[str, ...] = ()) -> Path | None:
    """A checkpoint named by a local folder or a hub id; returns the folder when local."""
    if value in words:
        return None
    _nonempty(flag, value)
    path = Path(value).expanduser()
    if path.is_dir():
        return path
    from ..modeling.loading import _looks_like_hub_id

    if path.exists():
        raise ConfigError(f"{flag} {value}: a file, expected a checkpoint folder")
    if value.startswith((".", "/", "~")) or not _looks_like_hub_id(value):
        extra = f"{', '.join(repr(w) for w in words)}, " if words else ""
        raise ConfigError(f"{flag} {value}: no such folder (expected {extra}a checkpoint folder or a hub id owner/name)")
    return None


def align_mode(flag: str, mode: str | None, checkpoint: Path | None, n_levels: int | None = None) -> None:
    """``gated | local | global | average | none | fixed:K``, K within the checkpoint's levels."""
    if mode is None:
        return
    from ..modeling.configuration import parse_align_mode

    if n_levels is None:
        n_levels = 8  # the reference's count, what released configs without n_indicators mean
        if checkpoint is not None and (checkpoint / "config.json").is_file():
            try:
                raw = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
                n_levels = int(raw.get("n_indicators", 8))
            except (ValueError, TypeError, OSError):
                pass  # the loader names a broken config properly
    try:
        parse_align_mode(mode, n_levels)
    except ValueError as exc:
        where = f" ({checkpoint} has {n_levels} levels: fixed:0..fixed:{n_levels - 1})" if mode.startswith("fixed:") else ""
        raise ConfigError(f"{flag}: {exc}{where}") from None


def known_tasks(flag: str, text: str | None) -> None:
    if text is None:
        return
    from ..harness.tasks import parse_task_list

    try:
        parse_task_list(text)
    except ConfigError as exc:
        raise ConfigError(f"{flag}: {exc}") from None

