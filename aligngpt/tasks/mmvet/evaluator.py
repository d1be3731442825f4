"""MM-Vet: the official GPT-4 grader (``yuweihao/MM-Vet``, ``mm-vet_evaluator.py``).

* Query = the few-shot grader prompt (``protocol_data/mmvet_grader_prompt.txt``) + "\\n" +
  ``" | ".join([question, answer with "<AND>"->" <AND> ", "<OR>"->" <OR> ", prediction, ""])``,
  one user message, ``gpt-4-0613``, ``max_tokens=3``, temperature 0.0.
* Parse: ``content.split(" ")[0].strip()`` as a float in [0, 1]. On failure the official loop
  re-asks with "\\nPredict the correctness of the answer (digit): " appended, first at the same
  temperature and then 0.5 higher each time, and gives 0.0 once ``try_time > 5``. Its fifth
  re-ask (temperature 2.0) is sent but its reply is never read; we skip that request, so a
  sample gets at most 5 readable replies (temperatures 0.0, 0.0, 0.5, 1.0, 1.5) as officially.
* Aggregation per run: capability c = mean score of the questions whose capability list holds
  c, x100; ``total`` = mean over all questions x100; capability integrations (exact capability
  set) likewise. With ``num_runs`` > 1 every value is the mean over runs and ``total_std`` is
  the population std of the run totals (numpy default), as the official export.

Differences: a failed request, or 5 unusable replies, is *missing* (excluded from the means,
counted in ``missing``/``judge.coverage``); the official 0.0 is available with
``unparsed_as_zero=True``. A reply of "nan" (which the official range check lets through and
which would turn every mean into NaN) counts as unusable. Integration names join the
capabilities in sorted order (the official joins a Python set, whose order varies by run).
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from aligngpt.data.base import Sample
from .loader import CAPABILITIES
from aligngpt.errors import ConfigError, DataError
from aligngpt.judge import Judge, JudgedScoreResult, judge_metrics
from aligngpt.protocol_data import read_text

from aligngpt.evaluators.base import Evaluator

OFFICIAL_JUDGE_MODEL = "gpt-4-0613"
MAX_TOKENS = 3
# yuweihao/MM-Vet mm-vet_evaluator.py: the text appended when a reply is not a score.
RETRY_SUFFIX = "\nPredict the correctness of the answer (digit): "
# Temperatures of the first request and of the re-asks whose replies the official loop reads.
TEMPERATURES = (0.0, 0.0, 0.5, 1.0, 1.5)


def spaced_answer(answer: str) -> str:
    return answer.replace("<AND>", " <AND> ").replace("<OR>", " <OR> ")


def grader_query(prompt: str, question: str, answer: str, prediction: str) -> str:
    """The official user message (it ends in " | ")."""
    return prompt + "\n" + " | ".join([question, spaced_answer(answer), prediction, ""])


def parse_grade(content: str | None) -> float | None:
    """First space-separated token as a float in [0, 1]; None if unusable."""
    if not isinstance(content, str):
        return None
    try:
        value = float(content.split(" ")[0].strip())
    except ValueError:
        return None
    if math.isnan(value) or value < 0.0 or value > 1.0:
        return None
    return value


class MMVetEvaluator(Evaluator):
    """MM-Vet total and per-capability scores from an LLM grader; needs ``judge``."""

    name = "mmvet"
    needs_judge = True
    official_judge_model = OFFICIAL_JUDGE_MODEL

    def __init__(self, judge: Judge | None = None, *, num_runs: int = 1, unparsed_as_zero: bool = False,
                 prompt: str | None = None):
        if num_runs < 1:
            raise ConfigError("num_runs must be >= 1")
        self.judge = judge
        self.num_runs = num_runs
        self.unparsed_as_zero = unparsed_as_zero
        self.prompt = prompt if prompt is not None else read_text("mmvet_grader_prompt.txt")

    def _grade(self, query: str, run: int) -> dict:
        """One grading with the official re-ask ramp. Returns score/None, replies, error."""
        assert self.judge is not None
        replies: list[str] = []
        served = None
        for attempt, temperature in enumerate(TEMPERATURES):
            content = query if attempt == 0 else query + RETRY_SUFFIX
            # run > 0 and re-asks are deliberate repeats: salt them so the cache does not answer
            # them with an earlier reply (matters when a temperature override makes bodies equal).
            salt = None if run == 0 and attempt == 0 else {"run": run, "attempt": attempt}
            reply = self.judge.chat([{"role": "user", "content": content}], temperature=temperature,
                                    max_tokens=MAX_TOKENS, salt=salt)
            if not reply.ok:
                return {"score": None, "replies": replies, "error": reply.error, "served": served}
            served = reply.served_model or served
            replies.append(reply.content or "")
            value = parse_grade(reply.content)
            if value is not None:
                return {"score": value, "replies": replies, "error": None, "served": served}
        if self.unparsed_as_zero:
            return {"score": 0.0, "replies": replies, "error": None, "served": served}
        return {"score": None, "replies": replies, "error": f"{len(replies)} replies without a usable score",
                "served": served}

    def score(self, samples: Sequence[Sample], predictions: Mapping[str, str]) -> JudgedScoreResult:
        if self.judge is None:
            raise ConfigError("mmvet is scored by an LLM judge: configure one (model, base URL, API key env)")
        for s in samples:
            if s.key not in predictions:
                raise DataError(None, f"no prediction for MM-Vet question {s.key}")
        jobs = [(s, run, grader_query(self.prompt, s.target["question"], s.target["answer"], predictions[s.key]))
                for s in samples for run in range(self.num_runs)]
        before = self.judge.stats()
        outcomes = self.judge.map(lambda job: self._grade(job[2], job[1]), jobs)

        grades: dict[str, list[float | None]] = {s.key: [None] * self.num_runs for s in samples}
        details: dict[str, list[dict]] = {s.key: [None] * self.num_runs for s in samples}  # type: ignore[misc]
        for (s, run, _), outcome in zip(jobs, outcomes):
            grades[s.key][run] = outcome["score"]
            details[s.key][run] = outcome
        n_missing = sum(1 for g in grades.values() for v in g if v is None)

        metrics = self._aggregate(samples, grades)
        metrics["judge"] = judge_metrics(self.judge, before, n_judgements=len(jobs), n_missing=n_missing,
                                         served_models=[o["served"] for o in outcomes])
        per_sample: dict[str, dict] = {}
        for s in samples:
            runs = grades[s.key]
            usable = [v for v in runs if v is not None]
            record: dict[str, Any] = {
                "target": s.target["answer"],
                "capability": list(s.target["capability"]),
                "score": (sum(usable) / len(usable)) if usable and len(usable) == len(runs) else None,
                "missing": len(usable) != len(runs),
                "judge_replies": [d["replies"] for d in details[s.key]],
            }
            errors = [d["error"] for d in details[s.key] if d["error"]]
            if errors:
                record["judge_error"] = errors[0]
            if self.num_runs > 1:
                record["run_scores"] = runs
            per_sample[s.key] = record
        n_missing_samples = sum(1 for r in per_sample.values() if r["missing"])
        return JudgedScoreResult(metrics=metrics, per_sample=per_sample, n=len(samples), missing=n_missing_samples)

    def _aggregate(self, samples: Sequence[Sample], grades: Mapping[str, list[float | None]]) -> dict:
        """Official ``export_result``: per run sums / counts x100, then the mean over runs."""
        caps_of = {s.key: list(s.target["capability"]) for s in samples}
        cap_names = list(CAPABILITIES) + sorted({c for cs in caps_of.values() for c in cs} - set(CAPABILITIES))
        integrations = sorted({"_".join(sorted(set(cs))) for cs in caps_of.values()})

        def run_mean(run: int, keep) -> float | None:
            values = [grades[k][run] for k in grades if keep(k) and grades[k][run] is not None]
            return 100.0 * sum(values) / len(values) if values else None  # type: ignore[arg-type]

        def over_runs(keep) -> float | None:
            per_run = [run_mean(r, keep) for r in range(self.num_runs)]
            per_run = [v for v in per_run if v is not None]
            return float(np.mean(per_run)) if per_run else None

        totals = [run_mean(r, lambda k: True) for r in range(self.num_runs)]
        usable_totals = [t for t in totals if t is not None]
        metrics: dict[str, Any] = {
            "total": float(np.mean(usable_totals)) if usable_totals else None,
            "capabilities": {c: over_runs(lambda k, c=c: c in caps_of[k]) for c in cap_names},
            "integrations": {name: over_runs(lambda k, name=name: "_".join(sorted(set(caps_of[k]))) == name)
                             for name in integrations},
        }
        if self.num_runs > 1:
            metrics["runs"] = totals
            metrics["total_std"] = float(np.std(usable_totals)) if usable_totals else None
        return metrics
