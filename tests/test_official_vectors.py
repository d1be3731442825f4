"""Differential test vectors: our scorers against outputs of the official code itself.

Each ``tests/data/official_vectors/<scorer>/vectors.jsonl`` row holds adversarial inputs and
what the unmodified official scorer returned for them; ``summary.json`` holds the official
aggregates over all rows. ``tests/data/official_vectors/README.md`` names each official
repository, commit and file, and the command (``dev/official_vectors/``) that produced them.
Every row is checked, per question, to 1e-9.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from aligngpt.evaluators.vqa_normalize import (
    m4c_process, m4c_textvqa_score, vizwiz_api_score, vqa_api_score,
)

DATA = Path(__file__).parent / "data" / "official_vectors"
TOL = 1e-9


def rows(scorer: str) -> list[dict]:
    with open(DATA / scorer / "vectors.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def summary(scorer: str) -> dict:
    return json.loads((DATA / scorer / "summary.json").read_text(encoding="utf-8"))


def mismatches(items, ours, official) -> list:
    """(row id, ours, official) for every row that disagrees; the first 5 are reported."""
    bad = []
    for r in items:
        got, want = ours(r), official(r)
        same = abs(got - want) <= TOL if isinstance(want, float) else got == want
        if not same:
            bad.append((r.get("id"), got, want))
    return bad


def per_type_means(scores: list[float], types: list[str]) -> dict[str, float]:
    out: dict[str, list[float]] = {}
    for s, t in zip(scores, types):
        out.setdefault(t, []).append(s)
    return {t: 100.0 * sum(v) / len(v) for t, v in out.items()}


# ------------------------------------------------------------------ VQA API / VizWiz API / m4c
@pytest.mark.parametrize("scorer,score_fn", [("vqav2_val", vqa_api_score), ("vizwiz_val", vizwiz_api_score)])
@pytest.mark.parametrize("field,use_m4c", [("api_m4c", True), ("api_raw", False)])
def test_api_per_question(scorer, score_fn, field, use_m4c):
    data = rows(scorer)
    assert len(data) >= 2000
    bad = mismatches(data, lambda r: 100.0 * score_fn(m4c_process(r["pred"]) if use_m4c else r["pred"],
                                                      r["answers"]).score,
                     lambda r: r[field])
    assert not bad, f"{len(bad)} of {len(data)} disagree, e.g. {bad[:5]}"


@pytest.mark.parametrize("scorer,score_fn", [("vqav2_val", vqa_api_score), ("vizwiz_val", vizwiz_api_score)])
@pytest.mark.parametrize("field,use_m4c", [("api_m4c", True), ("api_raw", False)])
def test_api_aggregates(scorer, score_fn, field, use_m4c):
    data = rows(scorer)
    scores = [score_fn(m4c_process(r["pred"]) if use_m4c else r["pred"], r["answers"]).score for r in data]
    official = summary(scorer)[field]
    assert 100.0 * sum(scores) / len(scores) == pytest.approx(official["overall"], abs=1e-9)
    assert per_type_means(scores, [r["answer_type"] for r in data]) == \
        pytest.approx(official["per_answer_type"], abs=1e-9)


def test_m4c_processor_strings():
    data = rows("vqav2_val") + rows("vizwiz_val") + rows("textvqa")
    bad = mismatches(data, lambda r: m4c_process(r["pred"]), lambda r: r["m4c"])
    assert not bad, f"{len(bad)} of {len(data)} disagree, e.g. {bad[:5]}"


def test_textvqa_per_question_and_accuracy():
    data = rows("textvqa")
    bad = mismatches(data, lambda r: m4c_textvqa_score(r["pred"], r["answers"]).score, lambda r: r["score"])
    assert not bad, f"{len(bad)} of {len(data)} disagree, e.g. {bad[:5]}"
    scores = [m4c_textvqa_score(r["pred"], r["answers"]).score for r in data]
    assert sum(scores) / len(scores) == pytest.approx(summary("textvqa")["accuracy"], abs=1e-12)
