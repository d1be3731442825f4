"""POPE as LLaVA-1.5 scores it (LLaVA ``llava/eval/eval_pope.py`` = AoiDragon/POPE ``evaluate.py`` logic).

Answer parsing (:func:`parse_answer`), reproduced exactly: keep the text before the first ``.``;
delete every ``,``; split on single spaces (not on newlines or tabs); if a token is exactly
``No``, ``not`` or ``no`` the answer is *no*, otherwise *yes*. So ``"NO"``, ``"Nope"``,
``"Not sure"`` and the empty answer all count as *yes*.

Gold labels: eval_pope.py maps a label to negative only when it is exactly ``"no"``; anything else
(even ``"No"``) is positive. Reproduced.

Per split (a question's ``category``): TP/FP/TN/FN with *yes* as the positive class; accuracy,
precision TP/(TP+FP), recall TP/(TP+FN), F1, and yes-ratio = share of *predictions* that are yes
(lmms-eval's yes-ratio counts gold labels instead; we follow LLaVA). The reported POPE number is
the mean of the three split F1s (LLaVA#626); ``accuracy`` is the mean of the split accuracies.

Deviations, all where the official script would crash:

* precision with no predicted *yes*, recall with no gold *yes*, and F1 with P+R = 0 divide by
  zero in eval_pope.py; we return ``zero_division`` (default 0.0) instead.
* a split with no samples (e.g. a small ``--limit`` run) would divide by zero in the yes-ratio; its
  metrics are ``None``, and so are the two means, which are defined over the three splits (a
  mean over the splits present would pass one split's F1 off as the benchmark's).

Joining: by default each prediction is matched to its sample by question id. ``join="position"``
reproduces the official pairing instead: per split, predictions in the mapping's (answer-file)
order are zipped with the labels in label-file order, truncating to the shorter. On a correctly
ordered, complete answer file both give the same numbers; on a reordered one only the id join is right.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from aligngpt.data.base import Sample
from aligngpt.errors import ConfigError, DataError

from aligngpt.evaluators.base import Evaluator, ScoreResult

POPE_SPLITS = ("random", "popular", "adversarial")

# Tokens that make an answer "no" (LLaVA llava/eval/eval_pope.py, eval_pope()).
NO_TOKENS = ("No", "not", "no")


def parse_answer(text: str) -> str:
    """eval_pope.py's yes/no reading of a model answer."""
    if text.find(".") != -1:
        text = text.split(".")[0]
    words = text.replace(",", "").split(" ")
    return "no" if any(tok in words for tok in NO_TOKENS) else "yes"


def label_is_yes(label: str) -> bool:
    """eval_pope.py: a label is negative only if it is exactly ``"no"``."""
    return label != "no"


def split_metrics(pred_yes: list[bool], gold_yes: list[bool], *, zero_division: float = 0.0) -> dict:
    """Accuracy / precision / recall / F1 / yes-ratio (x100) of one split, as eval_pope.py computes them.

    ``pred_yes`` is every prediction of the split (the yes-ratio uses all of them); pairs are
    ``zip(pred_yes, gold_yes)``, which truncates like the official script.
    """
    if not pred_yes:
        return {k: None for k in ("accuracy", "precision", "recall", "f1", "yes_ratio")}
    tp = fp = tn = fn = 0
    for p, g in zip(pred_yes, gold_yes):
        if p and g:
            tp += 1
        elif p:
            fp += 1
        elif not g:
            tn += 1
        else:
            fn += 1
    precision = tp / (tp + fp) if tp + fp else zero_division
    recall = tp / (tp + fn) if tp + fn else zero_division
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else zero_division
    total = tp + fp + tn + fn
    accuracy = (tp + tn) / total if total else zero_division
    yes_ratio = sum(pred_yes) / len(pred_yes)
    return {"accuracy": 100.0 * accuracy, "precision": 100.0 * precision, "recall": 100.0 * recall,
            "f1": 100.0 * f1, "yes_ratio": 100.0 * yes_ratio,
            "counts": {"TP": tp, "FP": fp, "TN": tn, "FN": fn}}


class POPEEvaluator(Evaluator):
    """Per-split POPE metrics plus the mean F1 / mean accuracy LLaVA-1.5 reports."""

    name = "pope"

    def __init__(self, join: str = "id", zero_division: float = 0.0):
        if join not in ("id", "position"):
            raise ConfigError(f"pope: join must be 'id' or 'position', got {join!r}")
        self.join = join
        self.zero_division = zero_division

    def score(self, samples: Sequence[Sample], predictions: Mapping[str, str]) -> ScoreResult:
        by_split: dict[str, list[Sample]] = {}
        for s in samples:
            by_split.setdefault(s.target["split"], []).append(s)
        per_sample: dict[str, dict] = {}
        splits: dict[str, dict] = {}
        names = list(POPE_SPLITS) + sorted(set(by_split) - set(POPE_SPLITS))
        for split in names:
            members = by_split.get(split, [])
            if self.join == "id":
                pairs = self._pairs_by_id(members, predictions)
            else:
                pairs = self._pairs_by_position(members, predictions)
            for key, text, label in pairs:
                parsed = parse_answer(text)
                per_sample[key] = {"target": label, "parsed": parsed, "split": split,
                                   "score": 1.0 if (parsed == "yes") == label_is_yes(label) else 0.0}
            pred_yes = [parse_answer(text) == "yes" for _, text, _ in pairs]
            gold_yes = [label_is_yes(label) for _, _, label in pairs]
            result = split_metrics(pred_yes, gold_yes, zero_division=self.zero_division)
            result.pop("counts", None)
            splits[split] = result
        present = [splits[s] for s in POPE_SPLITS if splits[s]["f1"] is not None]
        whole = len(present) == len(POPE_SPLITS)
        metrics = {
            "f1": sum(m["f1"] for m in present) / len(present) if whole else None,
            "accuracy": sum(m["accuracy"] for m in present) / len(present) if whole else None,
            "splits": splits,
        }
        return ScoreResult(metrics=metrics, per_sample=per_sample, n=len(per_sample))

    @staticmethod
    def _pairs_by_id(members: list[Sample], predictions: Mapping[str, str]) -> list[tuple[str, str, str]]:
        out = []
        for s in members:
            if s.key not in predictions:
                raise DataError(None, f"pope: no prediction for question {s.key}")
            out.append((s.key, predictions[s.key], s.target["label"]))
        return out

    @staticmethod
    def _pairs_by_position(members: list[Sample], predictions: Mapping[str, str]) -> list[tuple]:
        """eval_pope.py's pairing: answers of the split in answer order, labels in label-file order.

        Only answers to this split's questions are taken, so there are never more answers than
        labels; fewer answers leave the last labels unpaired, as ``zip`` does.
        """
        keys = {s.key for s in members}
        answers = [(k, t) for k, t in predictions.items() if k in keys]
        labels = [s.target["label"] for s in sorted(members, key=lambda s: s.target["label_index"])]
        return [(k, t, label) for (k, t), label in zip(answers, labels)]
