"""VizWiz-VQA: the EvalAI upload for test, and the VizWiz API accuracy on val.

``vizwiz`` (server-scored): no local metric. :meth:`VizWizSubmissionEvaluator.write_submission`
writes what LLaVA's ``scripts/convert_vizwiz_for_submission.py`` writes: a JSON list with one
``{"image": "<file>.jpg", "answer": m4c(text)}`` per test question, in question-file order. The
converter asserts that every test question has an answer; we raise likewise when a question of
a complete run lacks one. A ``--limit`` run (fewer samples than the question file holds) gets no
upload at all, with a warning: the server would reject a partial list.

``vizwiz_val`` (local; ``submission_processor=False`` / ``--no-submission-processor`` skips m4c):
LLaVA's submission processor (m4c) first, then the VizWiz API per question
(:func:`vizwiz_api_score`: the prediction is normalised again with the VizWiz tables, the
annotators' answers are compared as given, leave-one-out soft accuracy). Metrics x100, unrounded:
``accuracy`` over all questions and ``yes/no``, ``number``, ``other``, ``unanswerable`` over the
questions of each answer type (None where a type has no question, or is unknown in the source).

Quirk kept on purpose: the VizWiz API never normalises the ground truth, so a capitalised or
punctuated annotator answer ("Yes.") can never be matched by a normalised prediction.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from aligngpt.data.base import Sample
from .loader import ANSWER_TYPES
from aligngpt.evaluators.upload import validate_upload
from aligngpt.errors import DataError
from aligngpt.io import atomic_write_text

from aligngpt.evaluators.base import Evaluator, ScoreResult
from aligngpt.evaluators.vqa_normalize import m4c_process, vizwiz_api_score
from aligngpt.tasks.vqav2.evaluator import SUBMISSION_FILE, per_type_metrics, require_predictions, server_only_result, submission_ref


def build_vizwiz_submission(samples: Sequence[Sample], predictions: Mapping[str, str]) -> list[dict[str, str]]:
    """The converter's list, in sample (= question-file) order; every sample must be answered."""
    missing = [s.key for s in samples if s.key not in predictions]
    if missing:
        raise DataError(None, f"no prediction for {len(missing)} VizWiz test questions "
                              f"(e.g. {', '.join(missing[:5])}); the upload needs every one")
    return [{"image": s.meta["image"], "answer": m4c_process(predictions[s.key])} for s in samples]


def validate_vizwiz_submission(path: str | Path, all_images: Iterable[str]) -> int:
    """Check an upload against the EvalAI VizWiz schema; returns the number of entries.

    A JSON list of objects with exactly ``image`` (str) and ``answer`` (str); every image of
    ``all_images`` exactly once and no other. Raises :class:`DataError` naming the file and entry.
    """
    return validate_upload(path, "image", all_images, id_is_valid=lambda q: isinstance(q, str),
                           id_kind="a string", universe="test", item="image")


class VizWizSubmissionEvaluator(Evaluator):
    """Server-scored test: no local metric; :meth:`write_submission` makes the upload."""

    name = "vizwiz"

    def score(self, samples: Sequence[Sample], predictions: Mapping[str, str]) -> ScoreResult:
        return server_only_result(samples, predictions)

    def write_submission(self, samples: Sequence[Sample], predictions: Mapping[str, str],
                         out_dir: str | Path) -> list[Path]:
        """Write ``out_dir/submission.json`` (all test questions) and validate it."""
        if not samples:
            return []
        total = submission_ref(samples, self.name).get("count")
        if total is not None and len(samples) < total:
            warnings.warn(f"vizwiz: {len(samples)} of {total} test questions were run (--limit?); "
                          f"no submission written, the server needs all of them", stacklevel=2)
            return []
        rows = build_vizwiz_submission(samples, predictions)
        path = Path(out_dir) / SUBMISSION_FILE
        # json.dumps defaults = the converter's json.dump(all_answers, f): same bytes.
        atomic_write_text(path, json.dumps(rows))
        validate_vizwiz_submission(path, [s.meta["image"] for s in samples])
        return [path]


class VizWizValEvaluator(Evaluator):
    """val with the VizWiz API after LLaVA's submission processor."""

    name = "vizwiz_val"

    def __init__(self, *, submission_processor: bool = True):
        self.submission_processor = submission_processor

    def set_submission_processor(self, enabled: bool) -> None:
        self.submission_processor = enabled

    def score(self, samples: Sequence[Sample], predictions: Mapping[str, str]) -> ScoreResult:
        require_predictions(samples, predictions, self.name)
        scores: list[float] = []
        types: list[str | None] = []
        per_sample: dict[str, dict[str, Any]] = {}
        for s in samples:
            answer = predictions[s.key]
            parsed = m4c_process(answer) if self.submission_processor else answer
            result = vizwiz_api_score(parsed, s.target["answers"])
            scores.append(result.score)
            types.append(s.target.get("answer_type"))
            per_sample[s.key] = {"target": list(s.target["answers"]), "parsed": parsed,
                                 "compared": result.prediction, "score": result.score,
                                 "answer_type": s.target.get("answer_type")}
        return ScoreResult(metrics=per_type_metrics(scores, types, ANSWER_TYPES),
                           per_sample=per_sample, n=len(samples))
