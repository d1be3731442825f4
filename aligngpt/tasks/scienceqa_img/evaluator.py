"""ScienceQA accuracy as LLaVA's ``llava/eval/eval_science_qa.py`` (v1.5) computes it.

Letter parsing (:func:`parse_letter`), in order:

1. the text is exactly one of ``A``-``E``;
2. else it is at least 3 characters, starts with ``A``-``E`` and continues with ``". "``;
3. else the regex ``The answer is ([A-Z]).`` matches exactly once (``.`` is any character, so
   a letter at the very end of the text does not match, and F-Z are captured);
4. else ``FAILED``.

A letter beyond the problem's choice count (or F-Z, or FAILED) scores wrong. ``img_accuracy``
(the "SQA-I" number) is over the problems that have an image; ``accuracy`` over all. The official
script decides "image" by ``'<image>' in prompt`` of the answer file, which the driver writes iff
the problem has an image; a *missing* answer would get prompt "Unknown" and drop out of the
image denominator -- here every sample must have a prediction, so that case cannot arise.
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

from aligngpt.data.base import Sample
from .loader import SQA_OPTIONS as OPTIONS
from aligngpt.errors import DataError

from aligngpt.evaluators.base import Evaluator, ScoreResult

# Source: haotian-liu/LLaVA llava/eval/eval_science_qa.py (answer regex).
ANSWER_IS = re.compile(r"The answer is ([A-Z]).")
FAILED = "FAILED"


def parse_letter(text: str) -> str:
    """The letter LLaVA's SQA scorer reads from a prediction, or ``"FAILED"``."""
    if text in OPTIONS:
        return text
    if len(text) >= 3 and text[0] in OPTIONS and text[1:3] == ". ":
        return text[0]
    found = ANSWER_IS.findall(text)
    return found[0] if len(found) == 1 else FAILED


def choice_index(letter: str, n_choices: int) -> int:
    """``get_pred_idx``: the option index, or -1 when the letter is not among the choices."""
    valid = OPTIONS[:n_choices]
    return valid.index(letter) if letter in valid else -1


class ScienceQAEvaluator(Evaluator):
    name = "scienceqa_img"

    def score(self, samples: Sequence[Sample], predictions: Mapping[str, str]) -> ScoreResult:
        missing = [s.key for s in samples if s.key not in predictions]
        if missing:
            raise DataError(None, f"no prediction for {len(missing)} ScienceQA problems "
                                  f"(e.g. {', '.join(missing[:5])})")
        per_sample = {}
        correct = total = img_correct = img_total = 0
        for s in samples:
            answer, n_choices = s.target["answer"], s.target["n_choices"]
            letter = parse_letter(predictions[s.key])
            hit = choice_index(letter, n_choices) == answer
            has_image = bool(s.meta.get("has_image", s.image is not None))
            correct += hit
            total += 1
            if has_image:
                img_correct += hit
                img_total += 1
            per_sample[s.key] = {"target": OPTIONS[answer], "parsed": letter,
                                 "score": float(hit), "has_image": has_image}
        metrics = {
            # None when the selection holds no image problem (the official script divides by 0).
            "img_accuracy": img_correct / img_total * 100 if img_total else None,
            "accuracy": correct / total * 100 if total else None,
        }
        return ScoreResult(metrics=metrics, per_sample=per_sample, n=total)
