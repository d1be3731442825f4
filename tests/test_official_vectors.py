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


# ------------------------------------------------------------------ POPE (LLaVA eval_pope.py)
def test_pope_per_answer_and_split_metrics():
    from aligngpt.tasks.pope.evaluator import label_is_yes, parse_answer, split_metrics

    data = rows("pope")
    bad = mismatches(data, lambda r: parse_answer(r["text"]), lambda r: r["parsed"])
    assert not bad, f"{len(bad)} of {len(data)} disagree, e.g. {bad[:5]}"
    by_id = {r["id"]: r for r in data}
    for split in summary("pope")["splits"]:
        part = [by_id[i] for i in range(split["first_id"], split["last_id"] + 1)]
        got = split_metrics([parse_answer(r["text"]) == "yes" for r in part], [label_is_yes(r["label"]) for r in part])
        assert got["counts"] == {k: split[k] for k in ("TP", "FP", "TN", "FN")}
        for k in ("accuracy", "precision", "recall", "f1", "yes_ratio"):
            assert got[k] == pytest.approx(100.0 * split[k], abs=1e-9), k


# ------------------------------------------------------------------ MME (calculation.py)
def test_mme_per_question_and_task_scores():
    from aligngpt.tasks.mme.evaluator import category_score, parse_prediction

    data = rows("mme")
    bad = mismatches(data, lambda r: parse_prediction(r["pred"]), lambda r: r["parsed"])
    assert not bad, f"{len(bad)} of {len(data)} disagree, e.g. {bad[:5]}"
    bad = mismatches(data, lambda r: parse_prediction(r["pred"]) == r["gt"].lower(), lambda r: r["correct"])
    assert not bad, f"{len(bad)} of {len(data)} disagree, e.g. {bad[:5]}"
    official = summary("mme")
    ours: dict[str, float] = {}
    for task in official["task_scores"]:
        part = [r for r in data if r["task"] == task]   # in file order: consecutive pairs
        correct = [parse_prediction(r["pred"]) == r["gt"].lower() for r in part]
        ours[task] = category_score(correct, [[i, i + 1] for i in range(0, len(part), 2)])["score"]
    assert ours == pytest.approx(official["task_scores"], abs=1e-9)
    from aligngpt.tasks.mme.evaluator import COGNITION, PERCEPTION

    assert sum(ours[t] for t in PERCEPTION) == pytest.approx(official["perception"], abs=1e-9)
    assert sum(ours[t] for t in COGNITION) == pytest.approx(official["cognition"], abs=1e-9)


# ------------------------------------------------------------------ GQA (convert + eval.py)
def test_gqa_per_question_and_accuracy():
    from aligngpt.data.base import Sample
    from aligngpt.tasks.gqa.evaluator import GQAEvaluator, convert_prediction

    data = rows("gqa")
    bad = mismatches(data, lambda r: convert_prediction(r["text"]), lambda r: r["prediction"])
    assert not bad, f"{len(bad)} of {len(data)} disagree, e.g. {bad[:5]}"
    samples = [Sample(question_id=r["id"], question="", target={
        "answer": r["answer"], "structural": r["structural"], "balanced": r["balanced"]}) for r in data]
    result = GQAEvaluator().score(samples, {r["id"]: r["text"] for r in data})
    bad = mismatches(data, lambda r: result.per_sample[r["id"]]["score"], lambda r: r["score"])
    assert not bad, f"{len(bad)} of {len(data)} disagree, e.g. {bad[:5]}"
    assert result.metrics == pytest.approx(summary("gqa"), abs=1e-9)


# ------------------------------------------------------------------ ScienceQA (eval_science_qa.py)
def test_scienceqa_per_question_and_accuracy():
    from aligngpt.data.base import Sample
    from aligngpt.tasks.scienceqa_img.evaluator import ScienceQAEvaluator, choice_index, parse_letter

    data = rows("scienceqa")
    bad = mismatches(data, lambda r: parse_letter(r["text"]), lambda r: r["parsed"])
    assert not bad, f"{len(bad)} of {len(data)} disagree, e.g. {bad[:5]}"
    bad = mismatches(data, lambda r: choice_index(parse_letter(r["text"]), r["n_choices"]), lambda r: r["pred_idx"])
    assert not bad, f"{len(bad)} of {len(data)} disagree, e.g. {bad[:5]}"
    samples = [Sample(question_id=r["id"], question="", target={"answer": r["answer"], "n_choices": r["n_choices"]},
                      meta={"has_image": r["image"]}) for r in data]
    result = ScienceQAEvaluator().score(samples, {r["id"]: r["text"] for r in data})
    bad = mismatches(data, lambda r: result.per_sample[r["id"]]["score"] == 1.0, lambda r: r["correct"])
    assert not bad, f"{len(bad)} of {len(data)} disagree, e.g. {bad[:5]}"
    official = summary("scienceqa")
    assert result.metrics["accuracy"] == pytest.approx(official["acc"], abs=1e-9)
    assert result.metrics["img_accuracy"] == pytest.approx(official["img_acc"], abs=1e-9)


# ------------------------------------------------------------------ SEED (convert_seed_for_submission.py)
def test_seed_per_question_and_printed_accuracies():
    from aligngpt.data.base import Sample
    from aligngpt.tasks.seed_image.evaluator import SEEDImageEvaluator

    data = rows("seed_image")
    samples = [Sample(question_id=r["id"], question="", target=r["answer"],
                      meta={"question_type_id": r["type_id"], "dimension": f"Dim {r['type_id']}"}) for r in data]
    result = SEEDImageEvaluator().score(samples, {str(r["id"]): r["text"] for r in data})
    bad = mismatches(data, lambda r: result.per_sample[str(r["id"])]["score"] == 1.0, lambda r: r["correct"])
    assert not bad, f"{len(bad)} of {len(data)} disagree, e.g. {bad[:5]}"
    printed = summary("seed_image")["printed"]
    ours = [f"{name}: {acc:.2f}%" for name, acc in result.metrics["dimensions"].items()]
    assert ours == printed[:9]
    assert f"image accuracy: {result.metrics['image_accuracy']:.2f}%" in printed


# ------------------------------------------------------------------ MMBench (OpenCompass eval_mmbench.py)
def test_mmbench_extraction_and_circular_hits():
    from aligngpt.data.base import Sample
    from aligngpt.tasks.mmbench.evaluator import MMBenchEvaluator, can_infer

    data = rows("mmbench")
    bad = mismatches(data, lambda r: can_infer(r["prediction"], r["options"]), lambda r: r["parsed"])
    assert not bad, f"{len(bad)} of {len(data)} disagree, e.g. {bad[:5]}"
    samples = [Sample(question_id=r["index"], question="", target=r["answer"], meta={
        "choices": r["options"], "question_raw": r["question"], "index": r["index"],
        "category": r["category"], "l2_category": r["l2"]}) for r in data]
    result = MMBenchEvaluator(xlsx_roundtrip=False).score(samples, {str(r["index"]): r["prediction"] for r in data})
    hits = summary("mmbench")["hits"]
    assert len(hits) >= 500
    for main, official in hits.items():
        ours = result.per_sample[main]["score"]
        if official == "needs_llm":
            # The official code would now ask gpt-3.5-turbo-0613; without a judge we score the
            # question 0 and report its unresolved rows (documented deviation).
            group = [r for r in result.per_sample.values() if r["group"] == int(main)]
            assert ours == 0 and any(r["parsed"] is None for r in group), main
        else:
            assert ours == official, main


def jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# ------------------------------------------------------------------ LLaVA-Bench (LLaVA review scripts)
def test_llava_bench_parse_score():
    from aligngpt.tasks.llava_bench.evaluator import parse_score

    data = jsonl(DATA / "llava_bench" / "parse_score.jsonl")
    assert len(data) >= 2000

    def ours(r):
        got = parse_score(r["review"])
        got = [-1.0, -1.0] if got is None else list(got)   # the official failure value
        return [None if x != x else x for x in got], [x != x for x in got]

    bad = mismatches(data, ours, lambda r: (r["parsed"], r["nan"]))
    assert not bad, f"{len(bad)} of {len(data)} disagree, e.g. {bad[:5]}"


def test_llava_bench_summary_math():
    from aligngpt.tasks.llava_bench.evaluator import LLaVABenchEvaluator

    evaluator = LLaVABenchEvaluator()
    sets = jsonl(DATA / "llava_bench" / "summaries.jsonl")
    assert len(sets) >= 100
    for s in sets:
        pairs: dict[str, list] = {"all": []}
        for r in s["reviews"]:
            pairs["all"].append(tuple(r["tuple"]))
            pairs.setdefault(r["category"], []).append(tuple(r["tuple"]))
        for name, printed in s["printed"].items():
            got = evaluator._summary(pairs[name])
            # summarize_gpt_review.py prints round(ratio, 1), round(ref * 10, 1), round(model * 10, 1)
            assert [round(got["relative"], 1), round(got["reference"] * 10, 1), round(got["model"] * 10, 1)] \
                == printed, (s["id"], name)


# ------------------------------------------------------------------ MM-Vet (mm-vet_evaluator.py export_result)
def test_mmvet_aggregation_math():
    from aligngpt.data.base import Sample
    from aligngpt.tasks.mmvet.evaluator import MMVetEvaluator

    sets = jsonl(DATA / "mmvet" / "aggregates.jsonl")
    assert len(sets) >= 100
    for s in sets:
        evaluator = MMVetEvaluator(num_runs=s["num_run"])
        samples = [Sample(question_id=k, question="", target={"capability": v["capability"]})
                   for k, v in s["questions"].items()]
        got = evaluator._aggregate(samples, {k: v["scores"] for k, v in s["questions"].items()})
        official = s["capabilities"]   # rounded by the official code to 12 decimals
        assert got["total"] == pytest.approx(official["total"], abs=1e-9), s["id"]
        for cap, value in official.items():
            if cap != "total":
                assert got["capabilities"][cap] == pytest.approx(value, abs=1e-9), (s["id"], cap)
        # The official integration names join a set (order varies); compare as capability sets.
        ours = {frozenset(k.split("_")): v for k, v in got["integrations"].items()}
        assert ours == pytest.approx({frozenset(k.split("_")): v for k, v in s["integrations"].items()}, abs=1e-9)
        if s["num_run"] > 1:
            assert got["total_std"] == pytest.approx(s["std"], abs=1e-9), s["id"]


def test_mmbench_end_to_end_through_the_submission_xlsx():
    # LLaVA's convert_mmbench_for_submission.py wrote the xlsx and OpenCompass eval_result read
    # it back (NA strings, "=" formulas, escapes); we read the same TSV with our loader and
    # emulate the round trip (xlsx_roundtrip=True, the default).
    from aligngpt.tasks.mmbench.loader import read_mmbench_tsv
    from aligngpt.tasks.mmbench.evaluator import MMBenchEvaluator

    samples = read_mmbench_tsv(DATA / "mmbench_xlsx" / "meta.tsv", "en")
    preds = {str(r["index"]): r["text"] for r in jsonl(DATA / "mmbench_xlsx" / "predictions.jsonl")}
    result = MMBenchEvaluator().score(samples, preds)
    official = jsonl(DATA / "mmbench_xlsx" / "hits.jsonl")
    assert len(official) == 400
    bad = []
    for row in official:
        ours = result.per_sample[str(row["main"])]["score"]
        if row["llm_asked"]:
            # The official code asked gpt-3.5 (here: a stub that fails) and then drew a random
            # letter; without a judge we score 0 with unresolved rows (documented deviation).
            group = [r for r in result.per_sample.values() if r["group"] == row["main"]]
            if not (ours == 0 and any(r["parsed"] is None for r in group)):
                bad.append((row["main"], ours, "needs_llm"))
        elif ours != row["hit"]:
            bad.append((row["main"], ours, row["hit"]))
    assert not bad, f"{len(bad)} of {len(official)} disagree, e.g. {bad[:5]}"


# ------------------------------------------------------------------ the CLI, end to end
@pytest.mark.parametrize("flags,field", [([], "api_m4c"), (["--no-submission-processor"], "api_raw")])
def test_cli_vqav2_val_gives_the_official_api_numbers(tmp_path, capsys, flags, field):
    # 400 vector questions in the real VQA v2 val layout; `score --task vqav2_val` must print the
    # means of the official API's per-question scores: after LLaVA's m4c processor by default,
    # on the raw text with --no-submission-processor.
    from .builders_sqa_textvqa_seed import write_jsonl
    from .builders_vqa_vizwiz import vqa_annotation, vqa_question, write_vqav2_val
    from .faults_support import run_cli

    data = rows("vqav2_val")[:400]
    write_vqav2_val(tmp_path, [vqa_question(5000 + r["id"], 7, "Q?") for r in data],
                    [vqa_annotation(5000 + r["id"], 7, r["answers"], r["answer_type"]) for r in data])
    answers = tmp_path / "answers.jsonl"
    write_jsonl(answers, [{"question_id": 5000 + r["id"], "prompt": "Q?", "text": r["pred"]} for r in data])
    code, out, _ = run_cli(capsys, ["score", "--task", "vqav2_val", "--answers", answers,
                                    "--data-root", tmp_path, "--json", *flags])
    assert code == 0
    metrics = json.loads(out)["metrics"]
    assert metrics["accuracy"] == pytest.approx(sum(r[field] for r in data) / len(data), abs=1e-9)
    for atype in ("yes/no", "number", "other"):
        chosen = [r[field] for r in data if r["answer_type"] == atype]
        assert metrics[atype] == pytest.approx(sum(chosen) / len(chosen), abs=1e-9)


def test_mmvet_grading_loop_accepts_the_same_reply_with_the_same_requests():
    # mm-vet_evaluator.py runs() with a scripted client: per sample the request bytes (sha256),
    # every request it sent (temperature, re-ask suffix, max_tokens, model) and the reply it
    # accepted (or 0.0 after five unusable ones).
    import hashlib

    from aligngpt.data.base import Sample
    from aligngpt.tasks.mmvet.evaluator import OFFICIAL_JUDGE_MODEL, MMVetEvaluator
    from aligngpt.judge import JudgeReply, JudgeStats

    data = jsonl(DATA / "mmvet" / "grading.jsonl")
    assert len(data) >= 500
    suffix = "\nPredict the correctness of the answer (digit): "
    order = iter(data)
    state: dict = {}
    log: dict[str, list] = {r["id"]: [] for r in data}
    first: dict[str, str] = {}

    class ScriptedJudge:   # requests arrive sample by sample, in sample order, as officially
        model = OFFICIAL_JUDGE_MODEL

        def chat(self, messages, *, temperature=None, max_tokens=None, salt=None, **params):
            content = messages[0]["content"]
            retry = content.endswith(suffix)
            if not retry:
                state["row"] = next(order)
                state["replies"] = list(state["row"]["replies"])
                first[state["row"]["id"]] = hashlib.sha256(content.encode()).hexdigest()
            log[state["row"]["id"]].append([temperature, retry, max_tokens, self.model])
            return JudgeReply(ok=True, content=state["replies"].pop(0), served_model=self.model)

        def map(self, fn, items):
            return [fn(item) for item in items]

        def stats(self):
            return JudgeStats()

        def describe(self):
            return {"model": self.model}

    samples = [Sample(question_id=r["id"], question="", target={"question": r["question"], "answer": r["answer"],
                                                                "capability": ["rec"]}) for r in data]
    result = MMVetEvaluator(ScriptedJudge(), unparsed_as_zero=True).score(
        samples, {r["id"]: r["prediction"] for r in data})
    bad = []
    for r in data:
        # The official loop sends a sixth request (temperature 2.0) whose reply it never reads;
        # we skip it (documented in aligngpt/tasks/mmvet/evaluator.py).
        if (result.per_sample[r["id"]]["score"] != r["score"] or log[r["id"]] != r["requests"][:5]
                or first[r["id"]] != r["first_request_sha256"]):
            bad.append((r["id"], result.per_sample[r["id"]]["score"], r["score"], log[r["id"]], r["requests"]))
    assert not bad, f"{len(bad)} of {len(data)} disagree, e.g. {bad[:3]}"


def test_llava_bench_requests_scores_and_summary_end_to_end():
    # eval_gpt_review_bench.py (stub openai) recorded every request it sent and the tuple it
    # stored; summarize_gpt_review.py summarised that review file. Our evaluator must send the
    # same bytes with the same parameters, read the same tuples, and print the same numbers.
    import hashlib

    from aligngpt.data.base import Sample
    from aligngpt.tasks.llava_bench.evaluator import LLaVABenchEvaluator
    from aligngpt.judge import JudgeReply, JudgeStats

    data = jsonl(DATA / "llava_bench" / "requests.jsonl")
    script = iter(data)   # requests arrive in question order, as the official script sends them
    params: list[dict] = []
    digests: list[str] = []

    class ScriptedJudge:
        model = "gpt-4-0314"

        def chat(self, messages, *, temperature=None, max_tokens=None, salt=None, **extra):
            params.append({"model": self.model, "temperature": temperature, "max_tokens": max_tokens})
            digests.append(hashlib.sha256(json.dumps(list(messages), ensure_ascii=False).encode()).hexdigest())
            return JudgeReply(ok=True, content=next(script)["review"], served_model=self.model)

        def map(self, fn, items):
            return [fn(item) for item in items]

        def stats(self):
            return JudgeStats()

        def describe(self):
            return {"model": self.model}

    samples = [Sample(question_id=r["id"], question=r["question"],
                      target={"reference": r["reference"], "caption": r["caption"], "category": r["category"]})
               for r in data]
    result = LLaVABenchEvaluator(ScriptedJudge(), unparsed_as_minus_one=True).score(
        samples, {str(r["id"]): r["answer"] for r in data})
    assert params == [r["request_params"] for r in data]
    assert digests == [r["request_sha256"] for r in data]   # byte-identical requests
    bad = mismatches(data, lambda r: [result.per_sample[str(r["id"])]["reference_score"],
                                      result.per_sample[str(r["id"])]["model_score"]], lambda r: r["tuple"])
    assert not bad, f"{len(bad)} of {len(data)} disagree, e.g. {bad[:5]}"
    printed = json.loads((DATA / "llava_bench" / "requests_summary.json").read_text())
    scores = result.metrics["scores"]
    for name, (relative, ref10, model10) in printed.items():
        got = scores["all" if name == "all" else name.removeprefix("llava_bench_")]
        rel = result.metrics["relative_score"] if name == "all" else result.metrics["categories"][name.removeprefix("llava_bench_")]
        assert [round(rel, 1), round(got["reference"] * 10, 1), round(got["model"] * 10, 1)] == [relative, ref10, model10], name
