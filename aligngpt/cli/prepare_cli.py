"""``aligngpt-eval prepare``: its flags and the summary it prints (the work is in harness.prepare)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ..errors import ConfigError
from ..harness.prepare import MANIFEST, check_manifest, prepare, supported_tasks


def add_prepare_parser(subparsers) -> argparse.ArgumentParser:
    """``prepare --tasks T1,T2 --out DIR [--hf-path TASK=PATH ...] [--cache-dir D]``."""
    p = subparsers.add_parser(
        "prepare", help="convert lmms-lab HF copies into the LLaVA local layout (with a checksum manifest)",
        description="Download (hub id) or convert (local parquet folder) benchmarks into the LLaVA "
                    "playground/data/eval layout under --out, verified against the HF loader.")
    p.add_argument("--tasks", default=None, help=f"comma-separated: {', '.join(supported_tasks())}")
    p.add_argument("--out", required=True, help="output folder (becomes a --data-root)")
    p.add_argument("--hf-path", action="append", default=[], metavar="TASK=PATH",
                   help="hub id or local folder of the lmms-lab parquet files for TASK (repeatable)")
    p.add_argument("--cache-dir", default=None, help="datasets cache folder for hub downloads")
    p.add_argument("--strict-counts", action="store_true",
                   help="enforce the protocol's question counts for local copies too")
    p.add_argument("--no-verify", action="store_true",
                   help="skip re-loading the result with the local loader and comparing it to the HF copy")
    p.add_argument("--check", action="store_true",
                   help="only re-hash the files listed in --out/manifest.json and report differences")
    p.set_defaults(func=cmd_prepare)
    return p


def _parse_hf_paths(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        task, sep, path = item.partition("=")
        if not sep or not task or not path:
            raise ConfigError(f"--hf-path expects TASK=PATH, got {item!r}")
        out[task.strip()] = path
    return out


def cmd_prepare(args) -> int:
    out = Path(args.out)
    if args.check:
        problems = check_manifest(out)
        for line in problems:
            print(line, file=sys.stdout)
        if not problems:
            print(f"{out / MANIFEST}: every file matches its checksum")
        return 1 if problems else 0
    if not args.tasks:
        raise ConfigError("prepare needs --tasks (or --check)")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    manifest = prepare(tasks, out, hf_paths=_parse_hf_paths(args.hf_path), cache_dir=args.cache_dir,
                       strict_counts=args.strict_counts, verify=not args.no_verify)
    from tabulate import tabulate

    rows = []
    for task in tasks:
        e = manifest["tasks"][task]
        rows.append((task, e["questions"], len(e["files"]), e["count_check"]["status"],
                     "yes" if e["verified"].get("identical_to_hf") else "skipped"))
    print(tabulate(rows, headers=["task", "questions", "files", "count check", "verified"], tablefmt="github"))
    for task in tasks:
        for warning in manifest["tasks"][task]["warnings"]:
            print(f"warning: {task}: {warning}", file=sys.stderr)
        if manifest["tasks"][task]["count_check"]["status"] == "skipped":
            print(f"note: {task}: {manifest['tasks'][task]['count_check']['message']}", file=sys.stderr)
    print(f"data root: {out}  (run with --source local --data-root {out})")
    print(f"manifest: {out / MANIFEST}")
    return 0
