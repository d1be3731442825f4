"""SEED-Bench image accuracy as LLaVA's ``scripts/convert_seed_for_submission.py`` computes it.

A prediction is right iff the answer-file text *equals* the gold letter (no stripping beyond the
driver's, no parsing: "A." or "A) ..." are wrong). ``image_accuracy`` = right / image questions
x 100 (AlignGPT's "SEED-I"); ``dimensions.{name}`` = the same per question type, listed in
question-type-id order. The official script counts questions absent from the answer file as
wrong; here every sample must have a prediction (the harness checks ids first). Where the
official script would crash we report instead: a dimension whose answered questions are all
wrong raises ``KeyError`` there (``correct_counts`` is only set on a hit or a missing answer;
convert_seed_for_submission.py L40); ours reports 0.0 for it.

``first_char=True`` is an explicit non-official option: keep only the first character of a
longer prediction (lmms-eval ``seedbench``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from aligngpt.data.base import Sample
from .loader import official_id
from aligngpt.errors import DataError

from aligngpt.evaluators.answers import read_answer_rows
from aligngpt.evaluators.base import Evaluator, ScoreResult


class SEEDImageEvaluator(Evaluator):
    name = "seed_image"

    def __init__(self, *, first_char: bool = False):
        self.first_char = first_char

    @staticmethod
    def predictions_from_answers(samples: Sequence[Sample],
                                 rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
        """Predictions for our samples from a LLaVA SEED answer file, read as the official
        script reads it: rows keyed by ``question_id`` (a later row replaces an earlier one),
        rows of questions not loaded here (video, unannotated) ignored."""
        wanted = {official_id(s.question_id): s.key for s in samples}
        out: dict[str, str] = {}
        for i, row in enumerate(rows):
            try:
                key, text = wanted.get(official_id(row["question_id"])), row["text"]
            except (KeyError, TypeError) as exc:
                raise DataError(None, f"answer row {i}: no question_id/text ({exc})") from None
            if key is not None:
                out[key] = text
        return out

    def read_answers(self, path: str | Path, samples: Sequence[Sample]) -> dict[str, str]:
        """As the official reader: rows of questions not loaded here (video) are ignored."""
        return read_answer_rows(path, samples, self.predictions_from_answers)

    def parse(self, text: str) -> str:
        return text[:1] if self.first_char and len(text) > 1 else text

    def score(self, samples: Sequence[Sample], predictions: Mapping[str, str]) -> ScoreResult:
        missing = [s.key for s in samples if s.key not in predictions]
        if missing:
            raise DataError(None, f"no prediction for {len(missing)} SEED-Bench questions "
                                  f"(e.g. {', '.join(missing[:5])})")
        per_sample = {}
        counts: dict[tuple[int, str], list[int]] = {}  # (type id, name) -> [right, total]
        for s in samples:
            parsed = self.parse(predictions[s.key])
            hit = parsed == s.target
            tally = counts.setdefault((s.meta["question_type_id"], s.meta["dimension"]), [0, 0])
            tally[0] += hit
            tally[1] += 1
            per_sample[s.key] = {"target": s.target, "parsed": parsed, "score": float(hit),
                                 "dimension": s.meta["dimension"]}
        right = sum(c[0] for c in counts.values())
        total = sum(c[1] for c in counts.values())
        metrics = {
            "image_accuracy": right / total * 100 if total else None,
            "dimensions": {name: c[0] / c[1] * 100 for (_, name), c in sorted(counts.items())},
        }
        return ScoreResult(metrics=metrics, per_sample=per_sample, n=total)
