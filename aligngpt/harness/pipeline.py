"""``aligngpt-eval run``: task spec -> samples -> prompts -> engine -> journal -> evaluator -> results.

Predictions are journaled per batch, so a killed run resumes where it stopped; ``results.json``
is written once, atomically, after every task has been scored, so a failed or killed run never
leaves one behind. The run folder's name comes from :mod:`.settings`, the questions from
:mod:`.samples`, the scoring from :mod:`.scoring` and the files from :mod:`.outputs`.
"""
from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import torch
from tqdm import tqdm

from ..engine.autobatch import auto_batch_size
from ..engine.batched import InferenceEngine
from ..engine.pixel_cache import PixelCache
from ..engine.canary import BatchInvarianceError, run_canary
from ..errors import AlignGPTError
from ..io import atomic_write_json, atomic_write_jsonl, iter_jsonl
from .distributed import init_distributed
from .journal import PredictionJournal
from .judging import attach_judge, build_judge, check_judge_requirements
from .outputs import answer_rows, environment, sample_rows, write_state
from .samples import fingerprint, load_samples
from .scoring import decoding, generate_answers, score_answers
from .settings import RunSettings, run_name
from .tasks import TaskSpec


@dataclass
class RunResult:
    run_dir: Path
    results: dict


def resolve_model(settings: RunSettings):
    """Load the model named by ``--model`` (``toy`` = the bundled tiny model)."""
    import aligngpt
    from .toy import toy_model_dir

    path = toy_model_dir() if settings.model == "toy" else settings.model
    model, processor = aligngpt.load_pretrained(
        path, device=settings.device, dtype=settings.dtype, align_mode=settings.align_mode
    )
    return model, processor, str(path)


CANARY_MIN_QUESTIONS = 64
_FAULT_COUNTS: dict[str, int] = {}


def _fault_point(name: str) -> None:
    """Test hook: ``ALIGNGPT_FAULT=name:K`` SIGKILLs this process at the K-th pass through ``name``
    (fault-injection tests kill runs at chosen points without timing races)."""
    spec = os.environ.get("ALIGNGPT_FAULT")
    if not spec:
        return
    target, _, count = spec.partition(":")
    if target != name:
        return
    _FAULT_COUNTS[name] = _FAULT_COUNTS.get(name, 0) + 1
    if _FAULT_COUNTS[name] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def _canary_hint(engine: InferenceEngine) -> str:
    """What to do next: the likely cause depends on the device and precision."""
    param = next(engine.model.parameters())
    if param.device.type != "cpu" and param.dtype in (torch.float16, torch.bfloat16):
        return ("  cause: half-precision GPU kernels pick different reduction orders for different batch "
                "shapes, so near-tied logits can flip; choose --batch-size 1 (reference-exact), --dtype float32, "
                "or accept the batched answers with --canary never (recorded in results.json).")
    return ("  this should not happen in float32: please report it with the questions above; --batch-size 1 "
            "gives the reference's answers meanwhile.")


def _canary_due(settings: RunSettings, engine: InferenceEngine, todo) -> bool:
    if settings.canary == "never" or engine.batch_size <= 1 or len(todo) < 2:
        return False
    return settings.canary == "always" or len(todo) >= CANARY_MIN_QUESTIONS


def _public_settings(settings: RunSettings) -> dict:
    out = {k: v for k, v in asdict(settings).items() if k not in ("fresh", "judge")}
    j = settings.judge
    if j.configured:  # never the key itself, only which variable held it
        from ..judge import _redact_url

        out["judge"] = {"base_url": _redact_url(j.base_url), "model": j.model, "api_key_env": j.api_key_env}
    return out


class Interrupted(KeyboardInterrupt):
    """SIGTERM delivered as an exception, so the run records itself ``interrupted`` (like Ctrl-C)."""


def _raise_interrupted(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def _resume_note(spec, samples, journal) -> str | None:
    """"resuming: 336 of 900 pope answers from the journal" when a journal already holds answers."""
    reused = sum(s.key in journal for s in samples)
    if not reused:
        return None
    rest = "nothing left to generate" if reused == len(samples) else f"{len(samples) - reused} to generate"
    return f"resuming: {reused} of {len(samples)} {spec.name} answers from the journal ({rest})"


def _earlier_timings(task_dir: Path) -> list[dict]:
    path = task_dir / "timing.jsonl"
    return [row for _, row in iter_jsonl(path)] if path.is_file() else []


def _generate_task(spec, samples, journal, engine, settings, dist, model, quiet) -> dict:
    """Answer this rank's share of the task's unanswered questions; returns timing."""
    note = _resume_note(spec, samples, journal)
    if note and dist.is_main and not quiet:
        print(note, file=sys.stderr)
    reused = sum(s.key in journal for s in samples)
    dec = decoding(spec, model.config, engine.processor, conv_mode=settings.conv_mode,
                   max_new_tokens=settings.max_new_tokens)
    todo = dist.shard([s for s in samples if s.key not in journal])
    if settings.batch_size == "auto":
        engine.batch_size = auto_batch_size(engine, todo or samples, template=dec.template,
                                            max_new_tokens=dec.max_new_tokens, pad_to_square=dec.pad_to_square)
    if _canary_due(settings, engine, todo):
        report = run_canary(engine, todo, template=dec.template, max_new_tokens=dec.max_new_tokens,
                            pad_to_square=dec.pad_to_square)
        if not report.ok:
            raise BatchInvarianceError(report.describe() + "\n" + _canary_hint(engine))
    done_before = len(samples) - len(todo) * dist.world_size
    bar = tqdm(total=len(samples), initial=max(done_before, 0), desc=spec.name, unit="q",
               disable=quiet or not dist.is_main, file=sys.stderr, dynamic_ncols=True)

    def record(batch):
        _fault_point("batch")
        journal.append([
            {"key": p.key, "question_id": p.question_id, "prompt": p.prompt, "text": p.text,
             "alignment_weights": p.alignment_weights}
            for p in batch
        ])

    if not todo:
        bar.close()
        return {"generated": 0, "reused": reused, "processes": dist.world_size}
    try:
        _, stats = generate_answers(engine, todo, dec, on_batch=record,
                                    progress=lambda n: bar.update(n * dist.world_size))
    finally:
        bar.close()
    return {"generated": stats.samples, "reused": reused, "wall_s": stats.wall_s, "model_s": stats.model_s,
            "samples_per_s": stats.samples_per_s, "outside_model_share": stats.outside_model_share,
            "batch_size": engine.batch_size, "processes": dist.world_size}


def _record_timing(task_dir: Path, timing: dict) -> dict:
    """Keep every session's timing: a resumed run reports the sessions that generated its answers
    (``earlier``) beside its own, instead of replacing them with ``generated: 0``."""
    earlier = _earlier_timings(task_dir)
    if timing["generated"]:
        atomic_write_jsonl(task_dir / "timing.jsonl", [*earlier, timing])
    return {**timing, "earlier": earlier} if earlier else timing


def _score_task(spec, samples, journal, evaluator, settings, run_dir, name, model_id) -> dict:
    task_dir = run_dir / spec.name
    predictions = {s.key: journal.records[s.key]["text"] for s in samples}
    _fault_point("score")
    scored, submissions = score_answers(spec, evaluator, samples, predictions, settings.judge, task_dir)
    atomic_write_jsonl(task_dir / "samples.jsonl", sample_rows(samples, journal, scored.per_sample))
    atomic_write_jsonl(task_dir / "answers.jsonl", answer_rows(samples, journal, model_id, name))
    entry = {
        "metrics": scored.metrics,
        "n": len(samples),
        "protocol": spec.protocol,
        "data": {"source": settings.source, "fingerprint": fingerprint(samples)},
    }
    if submissions:
        entry["submission"] = [str(p.relative_to(run_dir)) for p in submissions]
    return entry


def execute_run(tasks: Sequence[TaskSpec], settings: RunSettings, *, quiet: bool = False) -> RunResult:
    import torch

    dist = init_distributed(settings.device)
    settings = replace(settings, device=dist.device_for(settings.device))
    torch.manual_seed(settings.seed)
    name = run_name(settings, tasks)
    run_dir = Path(settings.output_dir) / name
    # Data, judges and model first: a mistake there fails before any model time is spent, and
    # before a run folder exists (or a --fresh one is deleted).
    sizes: dict[str, int] = {}
    task_samples = {t.name: load_samples(t, settings, sizes) for t in tasks}
    evaluators = {t.name: t.make_evaluator() for t in tasks}
    judge = build_judge(settings.judge) if dist.is_main else None
    if dist.is_main:
        check_judge_requirements(tasks, judge)
    for t in tasks:
        attach_judge(t, evaluators[t.name], judge)
    model, processor, model_path = resolve_model(settings)
    if dist.is_main:
        if settings.fresh and run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "results.json").unlink(missing_ok=True)  # stale from an older, different finish
        write_state(run_dir, "running", tasks=[t.name for t in tasks], processes=dist.world_size)
        if not quiet:
            print(f"run: {run_dir}", file=sys.stderr)
    dist.barrier()
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_term = signal.signal(signal.SIGTERM, _raise_interrupted) if in_main_thread else None
    try:
        engine = InferenceEngine(
            model, processor, batch_size=8 if settings.batch_size == "auto" else settings.batch_size,
            num_workers=settings.num_workers, align_mode=settings.align_mode,
            pixel_cache=PixelCache(settings.image_cache) if settings.image_cache else True,
        )
        model_id = "toy" if settings.model == "toy" else Path(model_path).name
        task_results = {}
        for spec in tasks:
            samples = task_samples[spec.name]
            journal = PredictionJournal(run_dir / spec.name / dist.journal_name(), shared_folder=True)
            dist.barrier()  # every rank has read the journals before any rank appends
            timing = _generate_task(spec, samples, journal, engine, settings, dist, model, quiet)
            dist.barrier()
            if dist.is_main:
                journal.reload()
                task_results[spec.name] = _score_task(spec, samples, journal, evaluators[spec.name], settings,
                                                      run_dir, name, model_id)
                if settings.limit is not None:  # a subset: never to be read as the benchmark's number
                    task_results[spec.name]["limited"] = {"limit": settings.limit, "questions": len(samples),
                                                          "of": sizes[spec.name]}
                task_results[spec.name]["timing"] = _record_timing(run_dir / spec.name, timing)
        results = None
        if dist.is_main:
            results = {
                "model": {
                    "name": model_id,
                    "path": model_path,
                    "bundled_toy_model": settings.model == "toy",
                    "align_mode": settings.align_mode or model.config.align_mode,
                    "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
                    "vision_weights_from": getattr(getattr(model, "loading_info", None), "vision_weights_from", None),
                },
                "settings": _public_settings(settings),
                "environment": environment(),
                "tasks": task_results,
            }
            _fault_point("results")
            atomic_write_json(run_dir / "results.json", results)
            write_state(run_dir, "complete", tasks=[t.name for t in tasks], processes=dist.world_size)
        dist.barrier()
        return RunResult(run_dir, results)
    except AlignGPTError as exc:
        if dist.is_main:
            _record_failure(run_dir, str(exc))
        raise
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Interrupted): resumable, not failed
        if dist.is_main:
            _record_failure(run_dir, str(exc) or "SIGINT", status="interrupted")
        raise
    except BaseException as exc:
        if dist.is_main:
            _record_failure(run_dir, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)


def _record_failure(run_dir: Path, reason: str, status: str = "failed") -> None:
    """Best effort: on a full or read-only disk the state file cannot be written either, and
    that second error must not replace the one the user needs to see."""
    try:
        if status == "interrupted":
            write_state(run_dir, status, signal=reason, hint="run the same command again to resume")
        else:
            write_state(run_dir, status, reason=reason)
    except OSError:
        pass
