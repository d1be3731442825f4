"""Optional packages: import them where they are used, and say which extra installs them.

The base install (``pip install aligngpt``) evaluates and scores; figures, the HF data source,
LoRA and the MMBench upload file need packages from an extra. A command that reaches one without
it stops with one line naming the extra, never with a raw ``ModuleNotFoundError``.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from .errors import ConfigError

#: Top-level module -> the extra of ``pyproject.toml`` that installs it.
#: ``tests/test_dependency_lock.py`` checks each entry against ``pyproject.toml``.
EXTRA_OF = {
    "datasets": "hf",
    "pyarrow": "hf",
    "matplotlib": "plots",
    "openpyxl": "xlsx",
    "peft": "train",
    "lmms_eval": "lmms",
}


class MissingExtraError(ConfigError):
    """An optional package is not installed; the message names the extra that brings it."""


def install_hint(module: str) -> str:
    top = module.split(".")[0]
    extra = EXTRA_OF.get(top)
    return f"pip install 'aligngpt[{extra}]'" if extra else f"pip install {top}"


def import_optional(module: str, purpose: str) -> ModuleType:
    """``import module``, or a one-line :class:`MissingExtraError` saying what to install."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.split(".")[0]
        if exc.name is not None and exc.name.split(".")[0] != top:
            raise  # the package is there but broken: show the real cause
        raise MissingExtraError(f"{purpose} needs the `{top}` package: {install_hint(top)}") from None


def available(module: str) -> bool:
    """Whether ``module`` imports (for optional outputs that are skipped with a notice)."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError:
        return False
    return True
