"""The score-alignment report: bucket edges and counts (JSON) and a score histogram (PNG)."""
from __future__ import annotations

import io
import logging
import statistics
from pathlib import Path
from typing import Any, Protocol, Sequence

from aligngpt.extras import available, install_hint
from aligngpt.io import atomic_write_bytes, atomic_write_json

from .bucketing import Bucketing

log = logging.getLogger(__name__)


class ScoreRun(Protocol):
    """What the report reads from a scoring run (``scoring.ScoreOptions`` satisfies it; naming the
    fields here keeps this module from importing the scorer that imports it)."""

    data: Any
    out: Any
    clip: Any

    @property
    def histogram_path(self) -> Path: ...

    @property
    def report_path(self) -> Path: ...


def build_report(opts: ScoreRun, buckets: Bucketing, scores: Sequence[float]) -> dict[str, Any]:
    return {
        "data": str(opts.data),
        "output": str(opts.out),
        "clip": str(opts.clip),
        "pairs": len(scores),
        "levels": buckets.n_levels,
        "bucketing": buckets.method,
        "edges": buckets.edges,
        "counts": {str(level): count for level, count in enumerate(buckets.counts)},
        "per_level": [
            {"level": level, "count": c, "min": lo, "max": hi, "mean": mean}
            for level, (c, lo, hi, mean) in enumerate(
                zip(buckets.counts, buckets.level_min, buckets.level_max, buckets.level_mean)
            )
        ],
        "score": {
            "min": min(scores),
            "max": max(scores),
            "mean": statistics.fmean(scores),
            "median": statistics.median(scores),
        },
        "histogram": str(opts.histogram_path),
    }


def histogram_png(scores: Sequence[float], buckets: Bucketing, title: str) -> bytes:
    """Histogram of raw cosine similarities with the level boundaries drawn (the paper's Fig. 3)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.hist(list(scores), bins=min(100, max(10, len(scores) // 20)), color="#4c72b0")
    for edge in buckets.edges[1:-1]:
        if edge is not None:
            ax.axvline(edge, color="#c44e52", linestyle="--", linewidth=0.8)
    ax.set_xlabel("CLIP image-text cosine similarity")
    ax.set_ylabel("pairs")
    ax.set_title(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_report(opts: ScoreRun, buckets: Bucketing, scores: Sequence[float]) -> dict[str, Any]:
    """The JSON report, and the histogram when matplotlib is installed (an optional figure)."""
    report = build_report(opts, buckets, scores)
    if available("matplotlib"):
        title = f"{len(scores)} pairs, {buckets.n_levels} levels ({buckets.method})"
        atomic_write_bytes(opts.histogram_path, histogram_png(scores, buckets, title))
    else:
        report["histogram"] = None
        log.warning("score-alignment: histogram not drawn, matplotlib is not installed (%s)", install_hint("matplotlib"))
    atomic_write_json(opts.report_path, report)
    return report
