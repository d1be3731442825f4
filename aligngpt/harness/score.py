"""``aligngpt-eval score``: score an existing LLaVA-format answer file against a task's data."""
from __future__ import annotations

from pathlib import Path

from aligngpt.evaluators import ScoreResult, get_evaluator

from ..data.base import Sample
from ..errors import ConfigError, DataError
from ..io import iter_jsonl
from .judging import attach_judge, build_judge, check_judge_requirements
from .samples import load_samples
from .scoring import score_answers
from .settings import RunSettings
from .tasks import TaskSpec


def read_answers(path: str | Path, samples: list[Sample]) -> dict[str, str]:
    """``question_id`` -> ``text`` from an answer JSONL; every question answered exactly once."""
    path = Path(path)
    known = {s.key for s in samples}
    # Official ids shared by several questions (MME) are matched in file order, k-th to k-th.
    shared: dict[str, list[str]] = {}
    for s in samples:
        if "answer_question_id" in s.meta:
            shared.setdefault(str(s.meta["answer_question_id"]), []).append(s.key)
    answers: dict[str, str] = {}
    for lineno, row in iter_jsonl(path):
        if not isinstance(row, dict) or "question_id" not in row or "text" not in row:
            raise DataError(path, "answer rows need 'question_id' and 'text'", line=lineno)
        key = str(row["question_id"])
        if key not in known and key in shared:
            pending = [k for k in shared[key] if k not in answers]
            key = pending[0] if pending else shared[key][-1]
        if key not in known:
            raise DataError(path, f"answer for unknown question id {row['question_id']!r}", line=lineno)
        if key in answers:
            raise DataError(path, f"duplicate answer for question id {row['question_id']!r}", line=lineno)
        if not isinstance(row["text"], str):
            raise DataError(path, f"'text' must be a string for question id {row['question_id']!r}", line=lineno)
        answers[key] = row["text"]
    missing = [s.question_id for s in samples if s.key not in answers]
    if missing:
        raise DataError(path, f"{len(missing)} of {len(samples)} questions have no answer, e.g. {missing[:3]!r}")
    return answers


def score_file(spec: TaskSpec, answers_path: str | Path, settings: RunSettings,
               submission_dir: Path | None = None,
               submission_processor: bool = True) -> tuple[ScoreResult, list[Path]]:
    """Metrics of an answer file, plus the server upload written for server-scored tasks.

    ``submission_processor=False`` (CLI ``--no-submission-processor``) makes the locally
    API-scored tasks (vqav2_val, vizwiz_val) score the raw text without LLaVA's m4c processor.
    """
    evaluator = get_evaluator(spec.evaluator)
    if not submission_processor:
        if not hasattr(evaluator, "submission_processor"):
            raise ConfigError(f"--no-submission-processor applies to vqav2_val and vizwiz_val, not {spec.name}")
        evaluator.submission_processor = False
    samples = load_samples(spec, settings)
    judge = build_judge(settings.judge)
    check_judge_requirements({spec.name: evaluator}, judge)
    attach_judge(evaluator, judge)
    custom = getattr(evaluator, "predictions_from_answers", None)
    if custom is None:
        answers = read_answers(answers_path, samples)
    else:
        # The official reader of this benchmark tolerates rows we do not load (SEED: video rows).
        rows = []
        for lineno, row in iter_jsonl(answers_path):
            if not isinstance(row, dict) or "question_id" not in row or "text" not in row:
                raise DataError(answers_path, "answer rows need 'question_id' and 'text'", line=lineno)
            rows.append(row)
        answers = custom(samples, rows)
        missing = [s.question_id for s in samples if s.key not in answers]
        if missing:
            raise DataError(answers_path, f"{len(missing)} of {len(samples)} questions have no answer, e.g. {missing[:3]!r}")
    return score_answers(spec, evaluator, samples, answers, settings.judge, submission_dir)
