"""TextVQA accuracy as LLaVA's ``eval_textvqa.py`` + ``m4c_evaluator.TextVQAAccuracyEvaluator``.

The m4c answer processor runs on the prediction and on all 10 answers, then the leave-one-out
soft score (docs/protocol/README.md, "VQA answer normalisation"); ``accuracy`` = mean x 100. The
join of answers to annotations (by image and lower-cased question, last annotation wins) happens
in the loader, which stores the official gold answers as each sample's target.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from aligngpt.data.base import Sample
from .loader import prompt_question
from aligngpt.errors import DataError

from aligngpt.evaluators.answers import read_answer_rows
from aligngpt.evaluators.base import Evaluator, ScoreResult
from aligngpt.evaluators.vqa_normalize import m4c_textvqa_score


def predictions_from_llava_answers(samples: Sequence[Sample],
                                   rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Map rows of a LLaVA TextVQA answer file (``question_id`` = image id, ``prompt``, ``text``)
    to our sample keys, pairing them as ``eval_textvqa.py`` does: by (image id, question
    recovered from the prompt); the k-th row of a pair takes the k-th sample of that pair."""
    slots: dict[tuple[Any, str], list[str]] = {}
    for s in samples:
        key = (s.meta.get("answer_question_id"), prompt_question(s.question))
        slots.setdefault(key, []).append(s.key)
    out: dict[str, str] = {}
    for i, row in enumerate(rows):
        try:
            key = (row["question_id"], prompt_question(row["prompt"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(None, f"answer row {i}: cannot read its id and question ({exc})") from None
        free = slots.get(key)
        if not free:
            raise DataError(None, f"answer row {i}: no unanswered TextVQA question for image "
                                  f"{key[0]!r} and question {key[1]!r}")
        out[free.pop(0)] = row["text"]
    return out


class TextVQAEvaluator(Evaluator):
    name = "textvqa"

    # Hook for scoring a LLaVA answer file, whose question ids repeat (they are image ids).
    predictions_from_answers = staticmethod(predictions_from_llava_answers)

    def read_answers(self, path: str | Path, samples: Sequence[Sample]) -> dict[str, str]:
        """Answer files repeat question ids (image ids): matched as LLaVA's script matches them."""
        return read_answer_rows(path, samples, self.predictions_from_answers)

    def score(self, samples: Sequence[Sample], predictions: Mapping[str, str]) -> ScoreResult:
        missing = [s.key for s in samples if s.key not in predictions]
        if missing:
            raise DataError(None, f"no prediction for {len(missing)} TextVQA questions "
                                  f"(e.g. {', '.join(missing[:5])})")
        per_sample = {}
        scores = []
        for s in samples:
            result = m4c_textvqa_score(predictions[s.key], s.target)
            scores.append(result.score)
            per_sample[s.key] = {"target": list(s.target), "parsed": result.prediction,
                                 "score": result.score}
        # The official order of operations: 100. * (sum / n).
        accuracy = 100.0 * (sum(scores) / len(scores)) if scores else None
        return ScoreResult(metrics={"accuracy": accuracy}, per_sample=per_sample, n=len(scores))
