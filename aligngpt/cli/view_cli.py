"""``aligngpt-eval view``: the self-contained HTML report (``aligngpt.report.viewer``).

Kept apart from the report package so that building the CLI parser imports nothing heavy.
"""
from __future__ import annotations

import sys

from .checks import integer


def add_view_parser(subparsers) -> None:
    """Register ``view`` on the ``aligngpt-eval`` subparsers."""
    p = subparsers.add_parser("view", help="self-contained HTML report of a run, a comparison or a grid folder")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders, or a grid folder (its finished cells)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="default: RUN_DIR/report.html for one folder, ./report-compare.html for several")
    p.add_argument("--baseline", default=None, metavar="LABEL",
                   help="run (label or folder name) that deltas and flips are taken against "
                        "(default: the grid's baseline, else the first run)")
    p.add_argument("--no-images", action="store_true", help="no thumbnails (smaller file; the data is not reloaded)")
    p.add_argument("--thumb-size", type=integer(16, 1024), default=160, help="longest side of the embedded thumbnails in px")


def cmd_view(args) -> int:
    """Write the report and say where, how big, and which images could not be found."""
    from ..report.viewer import write_report

    path, payload = write_report(args.run_dirs, args.out, baseline=args.baseline,
                                 with_images=not args.no_images, thumb_size=args.thumb_size)
    for note in payload["notes"]:
        print(f"view: {note}", file=sys.stderr)
    n = sum(len(s["qid"]) for s in payload["samples"].values())
    print(f"view: {path} ({len(payload['runs'])} run(s), {n} questions, {len(payload['images'])} thumbnails, "
          f"{path.stat().st_size / 1e6:.1f} MB)")
    return 0
