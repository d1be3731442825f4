"""LLaVA-Bench-in-the-Wild: GPT-4 review against the GPT-4 reference answer, relative score.

Reproduces LLaVA's ``llava/eval/eval_gpt_review_bench.py`` (AlignGPT ``src/eval/``, identical
but for the API-key lines) and ``summarize_gpt_review.py``:

* one request per question: system "You are a helpful and precise assistant for checking the
  quality of the answer.", user content ``[Context]\\n{caption}\\n\\n[Question]\\n{q}\\n\\n
  [Assistant 1]\\n{GPT-4 reference}\\n\\n[End of Assistant 1]\\n\\n[Assistant 2]\\n{model}\\n\\n
  [End of Assistant 2]\\n\\n[System]\\n{rule prompt}\\n\\n`` with role and prompt from
  ``rule.json`` key ``llava_bench_{category}``; a list caption is joined with "\\n", a string
  caption is used as is; ``gpt-4-0314``, temperature 0.2, max_tokens 1024;
* ``parse_score``: first line of the review, commas -> spaces, split on single spaces; exactly
  two tokens -> two floats (Python ``float``), otherwise a failure;
* per category and overall: mean reference score and mean model score, each rounded to 3
  decimals, relative score = mean(model) / mean(reference) * 100 (the printed value is then
  rounded to 1 decimal; ours is left unrounded).

Difference: a failed request or unparseable review is *missing* (excluded from the means,
reported in ``judge.coverage``/``missing``). The official code averages ``[-1, -1]`` in;
``unparsed_as_minus_one=True`` restores that for unparseable reviews.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from aligngpt.data.base import Sample
from aligngpt.errors import ConfigError, DataError
from aligngpt.judge import Judge, JudgedScoreResult, judge_metrics
from aligngpt.protocol_data import read_json

from aligngpt.evaluators.base import Evaluator

# LLaVA llava/eval/eval_gpt_review_bench.py, get_eval(): the request's fixed parts.
SYSTEM_PROMPT = "You are a helpful and precise assistant for checking the quality of the answer."
OFFICIAL_JUDGE_MODEL = "gpt-4-0314"
JUDGE_TEMPERATURE = 0.2
JUDGE_MAX_TOKENS = 1024
CATEGORIES = ("conv", "detail", "complex")


def caption_text(caption: str | list[str]) -> str:
    """LLaVA v1.1.3 / AlignGPT: ``"\\n".join(caption)`` for a list, the string itself otherwise."""
    return "\n".join(caption) if isinstance(caption, list) else caption


def review_content(caption: str | list[str], question: str, reference: str, answer: str,
                   role: str, rule_prompt: str) -> str:
    """The user message of one review request, byte for byte."""
    return (f"[Context]\n{caption_text(caption)}\n\n"
            f"[Question]\n{question}\n\n"
            f"[{role} 1]\n{reference}\n\n[End of {role} 1]\n\n"
            f"[{role} 2]\n{answer}\n\n[End of {role} 2]\n\n"
            f"[System]\n{rule_prompt}\n\n")


def parse_score(review: str | None) -> tuple[float, float] | None:
    """LLaVA ``parse_score`` minus its ``[-1, -1]``: the two scores on the first line, or None.

    Note the official quirks kept: "8, 9" fails (the comma becomes a second space, giving three
    tokens), a leading space fails, and anything ``float`` accepts ("nan", "1e1") passes.
    """
    if not isinstance(review, str):
        return None
    parts = review.split("\n")[0].replace(",", " ").split(" ")
    if len(parts) != 2:
        return None
    try:
        return float(parts[0]), float(parts[1])
    except ValueError:
        return None


class LLaVABenchEvaluator(Evaluator):
    """Relative score (model vs GPT-4 reference) from an LLM judge; needs ``judge``."""

    name = "llava_bench"
    needs_judge = True
    official_judge_model = OFFICIAL_JUDGE_MODEL

    def __init__(self, judge: Judge | None = None, *, unparsed_as_minus_one: bool = False,
                 round_means: bool = True, rules: Mapping[str, Any] | None = None):
        self.judge = judge
        self.unparsed_as_minus_one = unparsed_as_minus_one
        self.round_means = round_means
        self.rules = dict(rules) if rules is not None else read_json("llava_bench_rule.json")

    def request_messages(self, sample: Sample, answer: str) -> list[dict]:
        target = sample.target or {}
        key = "llava_bench_" + str(target.get("category"))
        if key not in self.rules:
            raise DataError(None, f"question {sample.key}: category {target.get('category')!r} has no rule {key!r}")
        rule = self.rules[key]
        content = review_content(target["caption"], sample.question, target["reference"], answer,
                                 rule["role"], rule["prompt"])
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]

    def score(self, samples: Sequence[Sample], predictions: Mapping[str, str]) -> JudgedScoreResult:
        if self.judge is None:
            raise ConfigError("llava_bench is scored by an LLM judge: configure one (model, base URL, API key env)")
        judge = self.judge
        for s in samples:
            if s.key not in predictions:
                raise DataError(None, f"no prediction for LLaVA-Bench question {s.key}")
        requests = [(s, self.request_messages(s, predictions[s.key])) for s in samples]
        before = judge.stats()

        def review(item: tuple[Sample, list[dict]]):
            return judge.chat(item[1], temperature=JUDGE_TEMPERATURE, max_tokens=JUDGE_MAX_TOKENS)

        replies = judge.map(review, requests)
        per_sample: dict[str, dict] = {}
        pairs: dict[str, list[tuple[float, float]]] = {"all": []}
        missing = 0
        for (s, _), reply in zip(requests, replies):
            category = str((s.target or {}).get("category"))
            scores = parse_score(reply.content) if reply.ok else None
            error = reply.error if not reply.ok else (None if scores else "review's first line is not two scores")
            if scores is None and reply.ok and self.unparsed_as_minus_one:
                scores = (-1.0, -1.0)  # the official behaviour, on request
            record: dict[str, Any] = {"target": s.target["reference"], "category": category,
                                      "review": reply.content if reply.ok else None}
            if scores is None:
                missing += 1
                record.update(score=None, reference_score=None, model_score=None, missing=True, judge_error=error)
            else:
                record.update(score=scores[1] / 10.0, reference_score=scores[0], model_score=scores[1], missing=False)
                pairs["all"].append(scores)
                pairs.setdefault(category, []).append(scores)
            per_sample[s.key] = record

        metrics: dict[str, Any] = {}
        summary = {k: self._summary(v) for k, v in pairs.items()}
        metrics["relative_score"] = summary["all"]["relative"]
        names = list(CATEGORIES) + sorted(k for k in summary if k not in CATEGORIES and k != "all")
        metrics["categories"] = {c: summary[c]["relative"] if c in summary else None for c in names}
        metrics["scores"] = {k: {kk: vv for kk, vv in v.items() if kk != "relative"}
                             for k, v in sorted(summary.items())}
        metrics["judge"] = judge_metrics(judge, before, n_judgements=len(requests), n_missing=missing,
                                         served_models=[r.served_model for r in replies if r.ok])
        return JudgedScoreResult(metrics=metrics, per_sample=per_sample, n=len(samples), missing=missing)

    def _summary(self, pairs: list[tuple[float, float]]) -> dict:
        """``summarize_gpt_review.py``: column means (rounded to 3 places), ratio x100."""
        if not pairs:
            return {"reference": None, "model": None, "n": 0, "relative": None}
        ref, model = np.asarray(pairs, dtype=float).mean(0).tolist()
        if self.round_means:
            ref, model = round(ref, 3), round(model, 3)
        relative = model / ref * 100 if ref else None
        return {"reference": ref, "model": model, "n": len(pairs), "relative": relative}
