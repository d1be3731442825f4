#!/usr/bin/env python
"""Kill-and-resume soak: SIGKILL ``aligngpt-eval run`` (and ``aligngpt-train score-alignment``)
at random points, resume each time, and check the answers equal an uninterrupted run.

Why: the harness promises that a run killed at any point and started again ends with exactly
the predictions of an uninterrupted run (none lost, none duplicated, no half ``results.json``).
This script checks that promise many times over on toy data, offline, on a CPU.

Kill points (chosen at random per trial, every kind in each block of trials):

* ``batch:K``   the harness hook ``ALIGNGPT_FAULT`` kills after the K-th generated batch, before
                it is journaled (K random over the run's batches);
* ``score:K``   before the K-th task is scored;
* ``results:1`` just before ``results.json`` is written;
* ``timer:T``   the parent sends SIGKILL after T seconds (random, anywhere: loading, generating,
                journaling, scoring, writing).

A trial sometimes chains a second kill into its first resume. After the kills, the same command
runs to completion and the trial passes when every task's ``answers.jsonl`` and ``samples.jsonl``
are byte-identical to the uninterrupted run's (alignment weights in samples.jsonl: within 1e-6,
see ``_samples_equal``), the metrics are equal, each journal holds every
question exactly once, and no ``results.json`` existed while the run was incomplete.

``--alignment-kills N`` adds N trials of ``score-alignment`` (tiny random CLIP, toy caption
pairs) killed after a random number of batches (its hook ``ALIGNGPT_TEST_KILL_AFTER_BATCHES``)
or by the timer; its output JSON must be byte-identical to an uninterrupted scoring.

Usage::

    python dev/kill_resume_soak.py                 # 50 run kills + 10 score-alignment kills
    python dev/kill_resume_soak.py --kills 3 --alignment-kills 0 --kinds batch,score,results

Exit status 0 when every trial passes, 1 otherwise; a summary table goes to stdout.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO.parent / "shared" / "fixtures" / "official-tiny" / "checkpoint"
KINDS = ("batch", "score", "results", "timer")
#: task -> toy benchmark folder that provides it (aligngpt.toy.BENCHMARKS)
TASK_BENCHMARK = {"vqav2": "vqav2", "vqav2_val": "vqav2", "gqa": "gqa", "vizwiz": "vizwiz", "vizwiz_val": "vizwiz",
                  "scienceqa_img": "scienceqa", "textvqa": "textvqa", "pope": "pope", "mme": "mme",
                  "mmbench": "mmbench", "mmbench_cn": "mmbench", "seed_image": "seed"}


@dataclass
class Trial:
    number: int
    kills: list[str] = field(default_factory=list)
    fired_points: list[str] = field(default_factory=list)
    answered_at_kill: list[int] = field(default_factory=list)
    results_while_incomplete: bool = False
    resume_rc: int | None = None
    identical: bool = False
    problem: str = ""
    seconds: float = 0.0

    @property
    def fired(self) -> int:
        return len(self.fired_points)


# ---------------------------------------------------------------------------- processes
def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ALIGNGPT_FAULT", "ALIGNGPT_TEST_KILL_AFTER_BATCHES")}
    env.update(extra or {})
    return env


def _launch(cmd: list[str], env: dict[str, str], timer: float | None, limit: float) -> tuple[int, float]:
    """Run ``cmd``; with ``timer`` SIGKILL it after that many seconds. Returns (rc, seconds)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    try:
        if timer is not None:
            try:
                proc.wait(timeout=timer)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"{cmd[3:5]} did not finish within {limit:.0f} s")
    if proc.returncode not in (0, -signal.SIGKILL):
        sys.stderr.write(err.decode("utf-8", "replace")[-3000:])
    return proc.returncode, time.monotonic() - start


def _run_cmd(args: argparse.Namespace, data_root: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "aligngpt.cli.eval_cli", "run", "--tasks", args.tasks, "--model", str(args.model),
            "--data-root", str(data_root), "--output-dir", str(out), "--max-new-tokens", str(args.max_new_tokens),
            "--batch-size", str(args.batch_size), "--canary", "never"]


# ---------------------------------------------------------------------------- run outputs
def _run_dir(out: Path) -> Path | None:
    dirs = [d for d in out.iterdir() if d.is_dir()] if out.is_dir() else []
    return dirs[0] if len(dirs) == 1 else None


def _journal_keys(run_dir: Path, task: str) -> list[str]:
    keys: list[str] = []
    for journal in sorted((run_dir / task).glob("journal*.jsonl")):
        for raw in journal.read_bytes().splitlines(keepends=True):
            if raw.endswith(b"\n"):
                try:
                    keys.append(str(json.loads(raw)["key"]))
                except (ValueError, KeyError, TypeError):
                    pass
    return keys


def _snapshot(run_dir: Path, tasks: list[str]) -> dict:
    results = json.loads((run_dir / "results.json").read_text())
    return {
        "files": {f"{t}/{name}": (run_dir / t / name).read_bytes() for t in tasks for name in ("answers.jsonl", "samples.jsonl")},
        "metrics": {t: (results["tasks"][t]["metrics"], results["tasks"][t]["n"]) for t in tasks},
    }


def _samples_equal(got: bytes, want: bytes) -> bool:
    """Rows equal, alignment weights within 1e-6: greedy answers never depend on the batch, but
    the gate weights of a question re-batched after a kill inside a batch's journal write may
    differ in the last fp32 bits (other matmul shapes)."""
    rows_got, rows_want = got.splitlines(), want.splitlines()
    if len(rows_got) != len(rows_want):
        return False
    for a, b in zip(map(json.loads, rows_got), map(json.loads, rows_want)):
        wa, wb = a.pop("alignment_weights", None), b.pop("alignment_weights", None)
        if a != b or (wa is None) != (wb is None):
            return False
        if wa is not None and (len(wa) != len(wb) or any(abs(x - y) > 1e-6 for x, y in zip(wa, wb))):
            return False
    return True


def _check_final(run_dir: Path, tasks: list[str], clean: dict, n_questions: dict[str, int]) -> str:
    """'' when the finished run equals the uninterrupted one, else what differs."""
    state = json.loads((run_dir / "run_state.json").read_text())
    if state.get("status") != "complete":
        return f"run_state is {state.get('status')!r}"
    got = _snapshot(run_dir, tasks)
    for name, data in clean["files"].items():
        if got["files"][name] == data:
            continue
        if not (name.endswith("samples.jsonl") and _samples_equal(got["files"][name], data)):
            return f"{name} differs from the uninterrupted run"
    if got["metrics"] != clean["metrics"]:
        return "metrics differ from the uninterrupted run"
    for t in tasks:
        keys = _journal_keys(run_dir, t)
        if len(keys) != len(set(keys)):
            return f"{t}: a question is journaled twice"
        if len(set(keys)) != n_questions[t]:
            return f"{t}: journal holds {len(set(keys))} of {n_questions[t]} questions"
    return ""


def _pick_kill(kind: str, rng: random.Random, n_batches: int, n_tasks: int, wall: float) -> str:
    if kind == "batch":
        return f"batch:{rng.randint(1, max(1, n_batches))}"
    if kind == "score":
        return f"score:{rng.randint(1, n_tasks)}"
    if kind == "results":
        return "results:1"
    return f"timer:{rng.uniform(0.15, 0.95) * wall:.2f}"


def _kind_schedule(rng: random.Random, kinds: list[str], count: int) -> list[str]:
    """Blocks of one shuffled copy of every kind, so each kind occurs early and evenly."""
    out: list[str] = []
    while len(out) < count:
        block = list(kinds)
        rng.shuffle(block)
        out.extend(block)
    return out[:count]


def soak_run(args: argparse.Namespace, work: Path, rng: random.Random) -> tuple[list[Trial], dict]:
    from aligngpt.harness.settings import RunSettings
    from aligngpt.harness.samples import load_samples
    from aligngpt.harness.tasks import parse_task_list
    from aligngpt.toy import write_benchmarks

    tasks = [t.name for t in parse_task_list(args.tasks)]
    data_root = work / "eval"
    write_benchmarks(data_root, seed=args.seed, n_per_task=args.n_per_task,
                     benchmarks=sorted({TASK_BENCHMARK[t] for t in tasks}))
    settings = RunSettings(data_root=str(data_root), source="local")
    n_questions = {s.name: len(load_samples(s, settings)) for s in parse_task_list(args.tasks)}
    n_batches = sum(math.ceil(n / args.batch_size) for n in n_questions.values())

    clean_out = work / "clean"
    rc, wall = _launch(_run_cmd(args, data_root, clean_out), _env(), None, args.limit)
    if rc != 0:
        raise RuntimeError(f"the uninterrupted run failed (exit {rc})")
    clean = _snapshot(_run_dir(clean_out), tasks)
    info = {"tasks": tasks, "questions": n_questions, "batches": n_batches, "clean_wall_s": wall}

    trials: list[Trial] = []
    schedule = _kind_schedule(rng, args.kinds, args.kills)
    fired_total = 0
    number = 0
    while fired_total < args.kills and number < args.kills * 3:
        number += 1
        trial = Trial(number)
        start = time.monotonic()
        out = work / f"trial{number:03d}"
        kinds = [schedule[min(fired_total, len(schedule) - 1)]]
        if rng.random() < args.chain and fired_total + 1 < args.kills:
            kinds.append(rng.choice(args.kinds))  # a second kill, during the first resume
        for kind in kinds:
            point = _pick_kill(kind, rng, n_batches, len(tasks), wall)
            trial.kills.append(point)
            env = _env() if kind == "timer" else _env({"ALIGNGPT_FAULT": point})
            timer = float(point.split(":")[1]) if kind == "timer" else None
            rc, _ = _launch(_run_cmd(args, data_root, out), env, timer, args.limit)
            run_dir = _run_dir(out)
            if rc == -signal.SIGKILL:
                trial.fired_points.append(point)
                answered = sum(len(set(_journal_keys(run_dir, t))) for t in tasks) if run_dir else 0
                trial.answered_at_kill.append(answered)
                state = json.loads((run_dir / "run_state.json").read_text()) if run_dir and (run_dir / "run_state.json").exists() else {}
                if run_dir and (run_dir / "results.json").exists() and state.get("status") != "complete":
                    # only a timer kill between the results write and the state write may leave
                    # one, and then it must be the whole, correct file
                    snap_ok = kind == "timer" and _snapshot(run_dir, tasks)["metrics"] == clean["metrics"]
                    trial.results_while_incomplete = not snap_ok
            elif rc != 0:
                trial.problem = f"a run with kill {point} exited {rc}"
                break
        if not trial.problem:
            trial.resume_rc, _ = _launch(_run_cmd(args, data_root, out), _env(), None, args.limit)
            if trial.resume_rc != 0:
                trial.problem = f"resume exited {trial.resume_rc}"
            elif trial.results_while_incomplete:
                trial.problem = "a results.json existed while the run was incomplete"
            else:
                trial.problem = _check_final(_run_dir(out), tasks, clean, n_questions)
        trial.identical = not trial.problem
        trial.seconds = time.monotonic() - start
        fired_total += trial.fired
        trials.append(trial)
        _progress(trial)
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    return trials, info


# ---------------------------------------------------------------------------- score-alignment
def soak_alignment(args: argparse.Namespace, work: Path, rng: random.Random) -> tuple[list[Trial], dict]:
    from aligngpt.toy import write_pretrain
    from aligngpt.training.toy import write_clip

    root = work / "align"
    write_pretrain(root, seed=args.seed, n=args.pairs, image_size=16)
    clip = write_clip(root / "clip", image_size=16, patch=4)
    data = root / "LLaVA-Pretrain" / "blip_laion_cc_sbu_558k.json"
    images = root / "LLaVA-Pretrain" / "images"
    batch = 4
    n_batches = math.ceil(args.pairs / batch)

    def cmd(out: Path) -> list[str]:
        return [sys.executable, "-m", "aligngpt.cli.train_cli", "score-alignment", "--data", str(data), "--image-folder",
                str(images), "--clip", str(clip), "--levels", "4", "--out", str(out), "--batch-size", str(batch),
                "--no-progress"]

    clean_out = root / "clean" / "scored.json"
    clean_out.parent.mkdir(parents=True)
    rc, wall = _launch(cmd(clean_out), _env(), None, args.limit)
    if rc != 0:
        raise RuntimeError(f"the uninterrupted score-alignment failed (exit {rc})")
    clean = clean_out.read_bytes()
    trials: list[Trial] = []
    fired_total, number = 0, 0
    while fired_total < args.alignment_kills and number < args.alignment_kills * 3:
        number += 1
        trial = Trial(number)
        start = time.monotonic()
        out = root / f"trial{number:03d}" / "scored.json"
        out.parent.mkdir(parents=True)
        if number % 3 == 0:
            point = f"timer:{rng.uniform(0.3, 0.95) * wall:.2f}"
            rc, _ = _launch(cmd(out), _env(), float(point.split(":")[1]), args.limit)
        else:
            point = f"after-batch:{rng.randint(1, n_batches)}"
            rc, _ = _launch(cmd(out), _env({"ALIGNGPT_TEST_KILL_AFTER_BATCHES": point.split(":")[1]}), None, args.limit)
        trial.kills.append(point)
        if rc == -signal.SIGKILL:
            trial.fired_points.append(point)
            journal = out.with_name(out.name + ".scores.jsonl")
            trial.answered_at_kill.append(max(0, journal.read_bytes().count(b"\n") - 1) if journal.exists() else 0)
            trial.results_while_incomplete = out.exists() and out.read_bytes() != clean
        elif rc != 0:
            trial.problem = f"score-alignment with kill {point} exited {rc}"
        if not trial.problem:
            trial.resume_rc, _ = _launch(cmd(out), _env(), None, args.limit)
            if trial.resume_rc != 0:
                trial.problem = f"resume exited {trial.resume_rc}"
            elif trial.results_while_incomplete:
                trial.problem = "a partial output file existed after the kill"
            elif out.read_bytes() != clean:
                trial.problem = "output differs from the uninterrupted scoring"
        trial.identical = not trial.problem
        trial.seconds = time.monotonic() - start
        fired_total += trial.fired
        trials.append(trial)
        _progress(trial, "score-alignment")
    return trials, {"pairs": args.pairs, "batches": n_batches, "clean_wall_s": wall}


# ---------------------------------------------------------------------------- report
def _progress(trial: Trial, what: str = "run") -> None:
    status = "ok" if trial.identical else f"FAIL: {trial.problem}"
    print(f"[{what} trial {trial.number}] kills={','.join(trial.kills)} fired={trial.fired} {status} "
          f"({trial.seconds:.1f} s)", file=sys.stderr, flush=True)


def summary(trials: list[Trial], title: str) -> str:
    from tabulate import tabulate

    rows = [(t.number, " then ".join(p if p in t.fired_points else f"{p} (finished first)" for p in t.kills), t.fired, ",".join(map(str, t.answered_at_kill)) or "-",
             t.resume_rc, "yes" if t.identical else "NO", t.problem or "", f"{t.seconds:.1f}") for t in trials]
    table = tabulate(rows, headers=["trial", "kill point(s)", "kills", "answered at kill", "resume rc", "identical",
                                    "problem", "s"], tablefmt="github")
    by_kind: dict[str, list[int]] = {}
    for t in trials:
        for point in t.fired_points:
            kind = point.split(":")[0]
            stats = by_kind.setdefault(kind, [0, 0])
            stats[0] += 1
            stats[1] += int(t.identical)
    kinds = tabulate([(k, n, ok) for k, (n, ok) in sorted(by_kind.items())],
                     headers=["kill kind", "kills", "in trials that resumed identically"], tablefmt="github")
    fired = sum(t.fired for t in trials)
    passed = sum(t.identical for t in trials)
    return f"## {title}\n\n{table}\n\n{kinds}\n\n{fired} SIGKILLs in {len(trials)} trials; {passed}/{len(trials)} resumed to identical output\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=50, help="SIGKILLs of `run` to inflict (default 50)")
    p.add_argument("--alignment-kills", type=int, default=10, help="SIGKILLs of `score-alignment` (default 10)")
    p.add_argument("--kinds", default=",".join(KINDS), help=f"kill kinds to draw from (default {','.join(KINDS)})")
    p.add_argument("--chain", type=float, default=0.25, help="probability of a second kill during the first resume")
    p.add_argument("--tasks", default="gqa,pope,textvqa,scienceqa_img")
    p.add_argument("--n-per-task", type=int, default=4)
    p.add_argument("--pairs", type=int, default=18, help="caption pairs for the score-alignment trials")
    p.add_argument("--model", default=str(DEFAULT_MODEL) if DEFAULT_MODEL.is_dir() else "toy")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--max-new-tokens", type=int, default=3)
    p.add_argument("--seed", type=int, default=0, help="seed of the kill points and of the toy data")
    p.add_argument("--limit", type=float, default=600.0, help="seconds one command may take")
    p.add_argument("--workdir", default=None, help="keep the work here (default: a temporary folder, removed)")
    p.add_argument("--keep", action="store_true", help="keep every trial's run folder")
    args = p.parse_args(argv)
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = sorted(set(args.kinds) - set(KINDS))
    if unknown or not args.kinds:
        p.error(f"--kinds: unknown {unknown}; choose from {', '.join(KINDS)}")
    return args


def _report(trials: list[Trial], header: str, title: str, required_kills: int) -> bool:
    """Print one soak's header and summary; it passes when every trial matched the clean run
    and at least ``required_kills`` kills actually landed."""
    print(header + "\n")
    print(summary(trials, title))
    return all(t.identical for t in trials) and sum(t.fired for t in trials) >= required_kills


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="aligngpt-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    ok = True
    try:
        if args.kills > 0:
            trials, info = soak_run(args, work, rng)
            ok &= _report(trials, f"run: tasks {','.join(info['tasks'])}, questions {info['questions']}, "
                          f"{info['batches']} batches of {args.batch_size}, model {args.model}, "
                          f"uninterrupted run {info['clean_wall_s']:.1f} s",
                          "aligngpt-eval run: SIGKILL then resume", args.kills)
        if args.alignment_kills > 0:
            trials, info = soak_alignment(args, work, rng)
            ok &= _report(trials, f"score-alignment: {info['pairs']} pairs, {info['batches']} batches, "
                          f"uninterrupted {info['clean_wall_s']:.1f} s",
                          "aligngpt-train score-alignment: SIGKILL then resume", args.alignment_kills)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
