"""MME scores as LLaVA-1.5 reports them: LLaVA's converter, then the official ``calculation.py``.

The official pipeline writes one ``image<TAB>question<TAB>gt<TAB>prediction`` line per question,
per category, in answer-file order, and ``calculation.py`` then:

* reads the lines back (each prediction still ends in the line's ``\\n``) and groups **consecutive
  line pairs** as one image (asserting each group has 2 lines);
* lower-cases gt and prediction; the gt must be yes/no;
* parses the prediction (:func:`parse_prediction`): exactly ``yes``/``no`` -> itself; else
  ``yes`` within the first 4 characters -> yes; else ``no`` within them -> no; else ``other``
  (always wrong). So ``"Not sure"`` -> no, ``"Eyes"`` -> yes, ``"The answer is yes"`` -> other.
  The trailing ``\\n`` the script sees never changes this outcome, so it is not added here;
* per category: acc = correct / questions, acc+ = images with both right / images, score =
  100*acc + 100*acc+ (max 200). Perception = sum of the 10 perception scores (the number papers
  call "MME"); cognition = sum of the 4 cognition scores.

Deviations, where the official tools would crash or cannot run: a prediction containing a tab,
newline or carriage return breaks the line format (``readlines`` splits on ``\\r`` too, then the
4-field ``split("\\t")`` fails); we score the text as is. A category missing from the samples is
left out of ``subtasks``, and the total it belongs to is ``None``: a sum over fewer subtasks is
not MME's number (calculation.py would fail to open its file). Categories outside the 14 are
scored under ``subtasks`` but not summed.

``pairing="image"`` groups questions by image instead of by consecutive position (what lmms-eval
does); with the two questions of every image adjacent, as in the official files, both agree.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from aligngpt.data.base import Sample
from aligngpt.errors import ConfigError, DataError

from aligngpt.evaluators.base import Evaluator, ScoreResult

# Subtask lists (MME eval_tool calculation.py, eval_type_dict).
PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene",
              "landmark", "artwork", "OCR")
COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")


def parse_prediction(text: str) -> str:
    """calculation.py's ``parse_pred_ans`` applied to the lower-cased prediction."""
    pred = text.lower()
    if pred in ("yes", "no"):
        return pred
    prefix = pred[:4]
    if "yes" in prefix:
        return "yes"
    if "no" in prefix:
        return "no"
    return "other"


def category_score(correct: list[bool], groups: list[list[int]]) -> dict[str, float]:
    """acc, acc+ and their sum (x100) for one category; ``groups`` index into ``correct``."""
    acc = sum(correct) / len(correct)
    acc_plus = sum(all(correct[i] for i in g) for g in groups) / len(groups)
    return {"acc": 100.0 * acc, "acc_plus": 100.0 * acc_plus, "score": 100.0 * acc + 100.0 * acc_plus}


class MMEEvaluator(Evaluator):
    """Official MME perception / cognition totals and per-subtask scores."""

    name = "mme"

    def __init__(self, pairing: str = "consecutive"):
        if pairing not in ("consecutive", "image"):
            raise ConfigError(f"mme: pairing must be 'consecutive' or 'image', got {pairing!r}")
        self.pairing = pairing

    def score(self, samples: Sequence[Sample], predictions: Mapping[str, str]) -> ScoreResult:
        by_cat: dict[str, list[Sample]] = {}
        for s in samples:
            by_cat.setdefault(s.target["category"], []).append(s)
        per_sample: dict[str, dict] = {}
        subtasks: dict[str, float] = {}
        for category, members in by_cat.items():
            correct: list[bool] = []
            for s in members:
                if s.key not in predictions:
                    raise DataError(None, f"mme: no prediction for question {s.key}")
                gold = s.target["answer"].lower()
                if gold not in ("yes", "no"):
                    raise DataError(None, f"mme: question {s.key} has gold answer {s.target['answer']!r}, not yes/no")
                parsed = parse_prediction(predictions[s.key])
                correct.append(parsed == gold)
                per_sample[s.key] = {"target": s.target["answer"], "parsed": parsed,
                                     "score": 1.0 if parsed == gold else 0.0, "category": category}
            groups = self._groups(category, members)
            subtasks[category] = category_score(correct, groups)["score"]
        ordered = {c: subtasks[c] for c in PERCEPTION + COGNITION if c in subtasks}
        ordered.update({c: subtasks[c] for c in sorted(subtasks) if c not in ordered})
        metrics = {  # a sum over some subtasks is not MME's total (a --limit run): None
            "perception": sum(subtasks[c] for c in PERCEPTION) if all(c in subtasks for c in PERCEPTION) else None,
            "cognition": sum(subtasks[c] for c in COGNITION) if all(c in subtasks for c in COGNITION) else None,
            "subtasks": ordered,
        }
        return ScoreResult(metrics=metrics, per_sample=per_sample, n=len(per_sample))

    def _groups(self, category: str, members: list[Sample]) -> list[list[int]]:
        """Index groups of two: consecutive pairs (calculation.py) or by image (lmms-eval)."""
        if self.pairing == "consecutive":
            groups = [list(range(i, min(i + 2, len(members)))) for i in range(0, len(members), 2)]
        else:
            by_image: dict[str, list[int]] = {}
            for i, s in enumerate(members):
                by_image.setdefault(s.target["image"], []).append(i)
            groups = list(by_image.values())
        bad = [g for g in groups if len(g) != 2]
        if bad:
            first = members[bad[0][0]].key
            raise DataError(None, f"mme: category {category!r} has a group of {len(bad[0])} question(s) "
                                  f"starting at {first}; every image needs exactly 2 (pairing={self.pairing})")
        return groups
