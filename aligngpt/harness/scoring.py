"""Generate-then-score: the one path from a task's questions to its metrics.

``run`` (through :mod:`.pipeline`), ``score`` (an existing answer file), the training callback
and ``grid`` (which drives ``run``) all decode with :func:`decoding` and :func:`generate_answers`
and score with :func:`score_answers`, so a task's prompt template, decoding budget, image
handling, judge check and submission files cannot differ between them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from ..data.base import Sample
from .judging import JudgeSettings, check_missing
from .submissions import write_submissions
from .tasks import TaskSpec


@dataclass(frozen=True)
class Decoding:
    """How one task's questions are put to one model."""

    template: str
    max_new_tokens: int
    pad_to_square: bool


def task_template(spec: TaskSpec, conv_mode: str | None, processor) -> str:
    """The task's protocol template, unless ``--conv-mode`` names one (``auto``: the checkpoint's)."""
    if not conv_mode:
        return spec.template
    return processor.template if conv_mode == "auto" else conv_mode


def decoding(spec: TaskSpec, model_config, processor, *, conv_mode: str | None = None,
             max_new_tokens: int | None = None) -> Decoding:
    """The task's decoding settings for this checkpoint (overrides: ``--conv-mode``, ``--max-new-tokens``)."""
    return Decoding(
        template=task_template(spec, conv_mode, processor),
        max_new_tokens=max_new_tokens or spec.max_new_tokens,
        pad_to_square=spec.pad_to_square(model_config.image_aspect_ratio),
    )


def generate_answers(engine, samples: Sequence[Sample], dec: Decoding, *,
                     on_batch: Callable | None = None, progress: Callable[[int], None] | None = None):
    """The engine's answers to ``samples``: ``(predictions, stats)`` as the engine returns them."""
    return engine.generate(samples, template=dec.template, max_new_tokens=dec.max_new_tokens,
                           pad_to_square=dec.pad_to_square, on_batch=on_batch, progress=progress)


def score_answers(spec: TaskSpec, evaluator, samples: Sequence[Sample], answers: Mapping[str, str],
                  judge: JudgeSettings, submission_dir: Path | None = None):
    """The evaluator's :class:`ScoreResult`, refusing silent judge gaps, plus the upload files
    written into ``submission_dir`` for server-scored tasks (none when it is ``None``)."""
    result = evaluator.score(samples, answers)
    written = write_submissions(evaluator, samples, answers, submission_dir) if submission_dir is not None else []
    check_missing(spec.name, result, judge)
    return result, written
