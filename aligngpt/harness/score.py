"""``aligngpt-eval score``: score an existing LLaVA-format answer file against a task's data."""
from __future__ import annotations

from pathlib import Path

from aligngpt.evaluators import ScoreResult
from aligngpt.evaluators.answers import read_answers

from .judging import attach_judge, build_judge, check_judge_requirements
from .samples import load_samples
from .scoring import score_answers
from .settings import RunSettings
from .tasks import TaskSpec

__all__ = ["read_answers", "score_file"]


def score_file(spec: TaskSpec, answers_path: str | Path, settings: RunSettings,
               submission_dir: Path | None = None,
               submission_processor: bool = True) -> tuple[ScoreResult, list[Path]]:
    """Metrics of an answer file, plus the server upload written for server-scored tasks.

    ``submission_processor=False`` (CLI ``--no-submission-processor``) makes the locally
    API-scored tasks (vqav2_val, vizwiz_val) score the raw text without LLaVA's m4c processor.
    """
    evaluator = spec.make_evaluator()
    evaluator.set_submission_processor(submission_processor)
    samples = load_samples(spec, settings)
    judge = build_judge(settings.judge)
    check_judge_requirements([spec], judge)
    attach_judge(spec, evaluator, judge)
    answers = evaluator.read_answers(answers_path, samples)
    return score_answers(spec, evaluator, samples, answers, settings.judge, submission_dir)
