"""VQAv2: the EvalAI upload for test-dev, and the official VQA accuracy on val2014.

``vqav2`` (server-scored): no local metric. :meth:`VQAv2SubmissionEvaluator.write_submission`
writes what LLaVA's ``scripts/convert_vqav2_for_submission.py`` writes: a JSON list with one
``{"question_id": int, "answer": str}`` per question of the *full* test2015 list (447,793 for the
real data), in that file's order; the answer is the m4c ``EvalAIAnswerProcessor`` applied to the
model's text, or ``""`` for a question that was not run (all test-std-only questions, and every
question a ``--limit`` run skipped). The bytes equal the converter's ``json.dump`` output
(default separators, ASCII escapes, no trailing newline); the file is written atomically.

``vqav2_val`` (local): LLaVA's submission processor first (m4c, as the upload would carry the
answer), then the official 2021 VQA API per question (:func:`vqa_api_score`: whitespace always;
punctuation + digits/articles on both sides only when the 10 answers disagree; leave-one-out
soft accuracy; exact, case-sensitive comparison; Python 2 string semantics). Metrics, x100 and unrounded (the API prints them to 2 decimals): ``accuracy`` =
mean over questions; ``yes/no``, ``number``, ``other`` = mean over the questions of that answer
type (the API's ``accPerAnsType``); a type with no question in the run is ``None``.

Quirk kept on purpose: m4c splits ``'s`` off ("dog's" -> "dog 's") while the API leaves the
annotators' "dog's" alone, so such answers cannot match; the server does the same to an upload.
``VQAv2ValEvaluator(submission_processor=False)`` (CLI ``score --no-submission-processor``)
scores the raw text with the API alone. Per-question scores equal the official API's on the
vectors in ``tests/data/official_vectors/vqav2_val`` (both modes).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from aligngpt.data.base import Sample
from .loader import ANSWER_TYPES, submission_question_ids
from aligngpt.evaluators.upload import validate_upload
from aligngpt.errors import DataError
from aligngpt.io import atomic_write_text

from aligngpt.evaluators.base import Evaluator, ScoreResult
from aligngpt.evaluators.vqa_normalize import m4c_process, vqa_api_score

SUBMISSION_FILE = "submission.json"


def submission_ref(samples: Sequence[Sample], task: str) -> dict:
    """The one ``meta["submission_split"]`` reference the loader gave every sample."""
    refs = {json.dumps(s.meta.get("submission_split"), sort_keys=True) for s in samples}
    if len(refs) != 1 or refs == {"null"}:
        raise DataError(None, f"{task}: samples must come from one loader call that recorded the "
                              f"submission's full question list (meta['submission_split']); found {len(refs)}")
    return dict(samples[0].meta["submission_split"])


def _answered(samples: Sequence[Sample], predictions: Mapping[str, str]) -> dict[str, str]:
    """Raw model text of the samples that have a prediction (keys: ``str(question_id)``)."""
    return {s.key: predictions[s.key] for s in samples if s.key in predictions}


def server_only_result(samples: Sequence[Sample], predictions: Mapping[str, str]) -> ScoreResult:
    """No local metric: per sample only the processed answer the upload will carry."""
    per_sample = {
        s.key: {"target": None, "score": None,
                "parsed": m4c_process(predictions[s.key]) if s.key in predictions else None}
        for s in samples
    }
    return ScoreResult(metrics={}, per_sample=per_sample, n=len(samples))


# ------------------------------------------------------------------ test-dev submission
def build_vqav2_submission(samples: Sequence[Sample], predictions: Mapping[str, str],
                           all_ids: Iterable[int]) -> list[dict[str, Any]]:
    """The converter's list: every id of ``all_ids`` in order, m4c-processed answer or ``""``.

    A sample whose id is not in ``all_ids`` raises: the official converter would drop its answer
    without a word, which means the two question files do not belong together.
    """
    all_ids = list(all_ids)
    answers = _answered(samples, predictions)
    known = {str(q) for q in all_ids}
    stray = [s.key for s in samples if s.key not in known]
    if stray:
        raise DataError(None, f"{len(stray)} question id(s) are not in the test2015 list "
                              f"(e.g. {', '.join(stray[:3])}); their answers would be lost")
    return [{"question_id": qid, "answer": m4c_process(answers[str(qid)]) if str(qid) in answers else ""}
            for qid in all_ids]


def validate_vqav2_submission(path: str | Path, all_ids: Iterable[int]) -> int:
    """Check an upload against the EvalAI VQA schema; returns the number of entries.

    A JSON list of objects with exactly ``question_id`` (int) and ``answer`` (str); every id of
    ``all_ids`` exactly once and no other. Raises :class:`DataError` naming the file and entry.
    """
    return validate_upload(path, "question_id", all_ids, id_is_valid=lambda q: isinstance(q, int) and not isinstance(q, bool),
                           id_kind="an integer", universe="test2015", key_label="question ")


class VQAv2SubmissionEvaluator(Evaluator):
    """Server-scored test-dev: no local metric; :meth:`write_submission` makes the upload."""

    name = "vqav2"

    def score(self, samples: Sequence[Sample], predictions: Mapping[str, str]) -> ScoreResult:
        return server_only_result(samples, predictions)

    def write_submission(self, samples: Sequence[Sample], predictions: Mapping[str, str],
                         out_dir: str | Path) -> list[Path]:
        """Write ``out_dir/submission.json`` over the full test2015 list and validate it."""
        if not samples:
            return []
        all_ids = submission_question_ids(submission_ref(samples, self.name))
        rows = build_vqav2_submission(samples, predictions, all_ids)
        path = Path(out_dir) / SUBMISSION_FILE
        # json.dumps defaults = the converter's json.dump(all_answers, f): same bytes.
        atomic_write_text(path, json.dumps(rows))
        validate_vqav2_submission(path, all_ids)
        return [path]


# ------------------------------------------------------------------ val2014, scored locally
def per_type_metrics(scores: Sequence[float], types: Sequence[str | None],
                     type_names: Sequence[str]) -> dict[str, float | None]:
    """``accuracy`` (all questions) and one mean per answer type, x100 (None where empty)."""
    metrics: dict[str, float | None] = {"accuracy": 100.0 * sum(scores) / len(scores) if scores else None}
    for name in type_names:
        chosen = [sc for sc, t in zip(scores, types) if t == name]
        metrics[name] = 100.0 * sum(chosen) / len(chosen) if chosen else None
    return metrics


def require_predictions(samples: Sequence[Sample], predictions: Mapping[str, str], task: str) -> None:
    """Every sample needs an answer: the official API refuses incomplete result sets."""
    missing = [s.key for s in samples if s.key not in predictions]
    if missing:
        raise DataError(None, f"no prediction for {len(missing)} {task} questions (e.g. {', '.join(missing[:5])})")


class VQAv2ValEvaluator(Evaluator):
    """val2014 with the official VQA API after LLaVA's submission processor."""

    name = "vqav2_val"

    def __init__(self, *, submission_processor: bool = True):
        self.submission_processor = submission_processor

    def set_submission_processor(self, enabled: bool) -> None:
        self.submission_processor = enabled

    def score(self, samples: Sequence[Sample], predictions: Mapping[str, str]) -> ScoreResult:
        require_predictions(samples, predictions, self.name)
        scores: list[float] = []
        types: list[str] = []
        per_sample: dict[str, dict[str, Any]] = {}
        for s in samples:
            answer = predictions[s.key]
            parsed = m4c_process(answer) if self.submission_processor else answer
            result = vqa_api_score(parsed, s.target["answers"])
            scores.append(result.score)
            types.append(s.target["answer_type"])
            per_sample[s.key] = {"target": list(s.target["answers"]), "parsed": parsed,
                                 "compared": result.prediction, "score": result.score,
                                 "answer_type": s.target["answer_type"]}
        return ScoreResult(metrics=per_type_metrics(scores, types, ANSWER_TYPES),
                           per_sample=per_sample, n=len(samples))
