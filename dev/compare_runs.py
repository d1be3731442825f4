"""Are two run folders the same evaluation? For refactors that must not change behaviour.

    python -m dev.compare_runs BEFORE_RUN_DIR AFTER_RUN_DIR

Compares ``results.json`` task by task (metrics, counts, protocol, data; wall-clock ``timing``
is expected to differ and is left out) and every per-task file byte for byte (answers, journal,
samples, submission files; ``timing.jsonl`` left out). Exit 0 when identical, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

UNTIMED = "timing"


def _task_entries(run_dir: Path) -> dict[str, dict]:
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    return {task: {k: v for k, v in entry.items() if k != UNTIMED} for task, entry in results["tasks"].items()}


def compare(before: Path, after: Path) -> list[str]:
    """One line per difference; empty when the runs agree."""
    problems: list[str] = []
    old, new = _task_entries(before), _task_entries(after)
    if set(old) != set(new):
        problems.append(f"tasks differ: {sorted(set(old) ^ set(new))}")
    for task in sorted(set(old) & set(new)):
        for key in sorted(set(old[task]) | set(new[task])):
            if old[task].get(key) != new[task].get(key):
                problems.append(f"{task}: results.json '{key}' differs")
        names = {p.name for p in (before / task).iterdir()} | {p.name for p in (after / task).iterdir()}
        for name in sorted(names - {f"{UNTIMED}.jsonl"}):
            a, b = before / task / name, after / task / name
            if not (a.is_file() and b.is_file()):
                problems.append(f"{task}/{name}: only in one run")
            elif a.read_bytes() != b.read_bytes():
                problems.append(f"{task}/{name}: bytes differ")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    problems = compare(args.before, args.after)
    for line in problems:
        print(line)
    tasks = _task_entries(args.before)
    files = sum(1 for t in tasks for p in (args.before / t).iterdir() if p.name != f"{UNTIMED}.jsonl")
    if not problems:
        print(f"identical: {len(tasks)} tasks (results.json without timing) and {files} per-task files byte for byte")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
