"""Attaching an LLM judge to the evaluators that need one, and refusing silent gaps.

The judge endpoint is configured only by the ``--judge-*`` flags (never the model under test);
its key is read from the environment variable the user names. A judgement that failed or could
not be parsed is missing: unless ``--allow-missing-judgements``, the run stops with an error
instead of printing a number computed over fewer questions than the benchmark has.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from ..errors import AlignGPTError, ConfigError

if TYPE_CHECKING:
    from .task_spec import TaskSpec


class MissingJudgementsError(AlignGPTError):
    pass


@dataclass
class JudgeSettings:
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    cache_path: str | None = None
    concurrency: int = 4
    max_retries: int = 5
    timeout: float = 60.0
    temperature: float | None = None
    allow_missing: bool = False

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)


def default_cache_path() -> Path:
    from .toy import cache_dir

    return cache_dir() / "judge-cache.sqlite"


def build_judge(settings: JudgeSettings):
    if not settings.configured:
        if settings.base_url or settings.model:
            raise ConfigError("a judge needs both --judge-base-url and --judge-model")
        return None
    from ..judge import JudgeClient

    return JudgeClient(
        settings.base_url,
        settings.model,
        api_key_env=settings.api_key_env,
        cache_path=settings.cache_path or default_cache_path(),
        max_concurrency=settings.concurrency,
        max_retries=settings.max_retries,
        timeout=settings.timeout,
        temperature=settings.temperature,
    )


def check_judge_requirements(specs: Iterable["TaskSpec"], judge) -> None:
    """Fail before any model time is spent when a judge-scored task has no judge."""
    needing = [spec.name for spec in specs if spec.judge == "required"]
    if needing and judge is None:
        raise ConfigError(f"task(s) {', '.join(needing)} are scored by an LLM judge: pass --judge-base-url and --judge-model")


def attach_judge(spec: "TaskSpec", evaluator, judge) -> None:
    """Hand the judge to evaluators whose task uses one (``judge: optional`` or ``required``)."""
    if judge is not None and spec.judge != "none":
        evaluator.attach_judge(judge)


def check_missing(task: str, result, settings: JudgeSettings) -> None:
    missing = int(getattr(result, "missing", 0) or 0)
    if missing and not settings.allow_missing:
        raise MissingJudgementsError(
            f"task {task}: {missing} judgement(s) failed or could not be parsed; no score is reported. "
            "Re-run to retry them (successful judgements are cached), or pass --allow-missing-judgements "
            "to report metrics over the judged questions with their coverage."
        )
