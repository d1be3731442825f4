"""The bundled toy model and toy benchmark data: what ``run`` uses with no model or data flags.

The toy data are generated deterministically on first use into a cache folder (offline);
``ALIGNGPT_CACHE`` moves the cache (default ``~/.cache/aligngpt``).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

TOY_DATA_VERSION = "v1"
TOY_QUESTIONS_PER_TASK = 300


def toy_model_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "toy_assets" / "model"


def cache_dir() -> Path:
    return Path(os.environ.get("ALIGNGPT_CACHE", Path.home() / ".cache" / "aligngpt"))


def _extra_suite_tag() -> str:
    """A short hash naming the toy writers of benchmarks outside the package (plugin task
    folders), so a suite that includes them is cached apart from the built-in one."""
    from .task_registry import ordered_specs

    extra = sorted(f"{s.name}:{s.path}" for s in ordered_specs()
                   if s.toy is not None and s.toy.writer and not s.package.startswith("aligngpt.tasks."))
    if not extra:
        return ""
    return "-" + hashlib.sha256("\n".join(extra).encode()).hexdigest()[:12]


def toy_data_root(seed: int = 0) -> Path:
    """The toy benchmark suite (every task with a toy writer, LLaVA local layout), generated once
    per version/seed (and set of plugin writers)."""
    target = cache_dir() / f"toy-data-{TOY_DATA_VERSION}-seed{seed}{_extra_suite_tag()}"
    if (target / ".complete").is_file():
        return target / "eval"
    from ..toy import write_benchmarks

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".toy-", dir=target.parent))
    try:
        write_benchmarks(tmp / "eval", seed=seed, n_per_task=TOY_QUESTIONS_PER_TASK)
        (tmp / ".complete").write_text("ok\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target / "eval"
