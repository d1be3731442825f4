"""The bundled toy model and toy benchmark data: what ``run`` uses with no model or data flags.

The toy data are generated deterministically on first use into a cache folder (offline);
``ALIGNGPT_CACHE`` moves the cache (default ``~/.cache/aligngpt``).
"""
from __future__ import annotations

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


def toy_data_root(seed: int = 0) -> Path:
    """The toy benchmark suite (all 12 tasks, LLaVA local layout), generated once per version/seed."""
    target = cache_dir() / f"toy-data-{TOY_DATA_VERSION}-seed{seed}"
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
