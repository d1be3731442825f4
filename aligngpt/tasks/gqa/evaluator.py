"""GQA accuracy as LLaVA-1.5 reports it: LLaVA's prediction conversion, then the official eval.py.

Two stages, reproduced exactly (quirks included):

1. LLaVA ``scripts/convert_gqa_for_eval.py``: ``prediction = text.rstrip('.').lower()`` and nothing
   else. Only *trailing periods* go (all of them: ``"yes.."`` -> ``"yes"``); leading/trailing
   spaces, other punctuation (``"no!"``) and articles (``"a table"``) stay, so such answers are wrong.
2. GQA v1.2 ``eval.py`` (the copy LLaVA patches per its gist): a question counts only if
   ``isBalanced``; it is correct iff ``prediction == answer`` (exact, case-sensitive string
   equality; GQA gold answers are lower-case). Binary = structural type other than ``query``;
   open = structural type ``query``. Averages of an empty list are 0 (the script's ``avg``).
   A balanced question without a prediction makes the script raise; so do we (an unbalanced one
   is skipped, as the script never reads its prediction).

Validity, plausibility, consistency, grounding and distribution are not reported (LLaVA's gist
disables them; testdev has no choices file).
"""
from __future__ import annotations

from typing import Mapping, Sequence

from aligngpt.data.base import Sample
from aligngpt.errors import DataError

from aligngpt.evaluators.base import Evaluator, ScoreResult


def convert_prediction(text: str) -> str:
    """LLaVA's GQA conversion: strip trailing periods, lower-case. Nothing else."""
    return text.rstrip(".").lower()


def _avg_percent(values: list[float]) -> float:
    """eval.py's ``avg`` (0 for an empty list), times 100."""
    return 100.0 * sum(values) / len(values) if values else 0.0


class GQAEvaluator(Evaluator):
    """Official GQA accuracy / binary / open over the balanced questions."""

    name = "gqa"

    def score(self, samples: Sequence[Sample], predictions: Mapping[str, str]) -> ScoreResult:
        per_sample: dict[str, dict] = {}
        buckets: dict[str, list[float]] = {"accuracy": [], "binary": [], "open": []}
        for s in samples:
            target = s.target
            kind = "open" if target["structural"] == "query" else "binary"
            if s.key not in predictions:
                if target["balanced"]:
                    raise DataError(None, f"gqa: no prediction for question {s.key}; the official eval.py "
                                          "requires one for every balanced question")
                # eval.py skips unbalanced questions before reading their prediction.
                per_sample[s.key] = {"target": target["answer"], "parsed": None, "score": 0.0,
                                     "type": kind, "balanced": False}
                continue
            parsed = convert_prediction(predictions[s.key])
            correct = 1.0 if parsed == target["answer"] else 0.0
            if target["balanced"]:
                buckets["accuracy"].append(correct)
                buckets[kind].append(correct)
            per_sample[s.key] = {
                "target": target["answer"],
                "parsed": parsed,
                "score": correct,
                "type": kind,
                "balanced": bool(target["balanced"]),
            }
        metrics = {k: _avg_percent(v) for k, v in buckets.items()}
        return ScoreResult(metrics=metrics, per_sample=per_sample, n=len(buckets["accuracy"]))
