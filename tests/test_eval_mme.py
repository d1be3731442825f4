"""MME loader (local + HF layouts) and evaluator (LLaVA converter + official calculation.py)."""
from __future__ import annotations

import json

import pytest

from aligngpt.data import get_loader
from aligngpt.tasks.mme.loader import (benchmark_root, category_and_file, gt_question_candidates, hf_prompt,
                                       load_mme_hf, load_mme_local)
from aligngpt.errors import ConfigError, DataError
from aligngpt.evaluators import get_evaluator
from aligngpt.tasks.mme.evaluator import MMEEvaluator, parse_prediction
from tests.builders_gqa_pope_mme import MME_QA, SUFFIX, build_mme_hf, build_mme_local


@pytest.mark.parametrize("text, expected", [
    ("yes", "yes"),                    # exact
    ("No", "no"),                      # lower-cased, exact
    ("Yes, there is a dog.", "yes"),   # "yes" in first 4 chars
    ("No, it is not", "no"),           # "no" in first 4 chars
    ("Not at all", "no"),              # "not " contains "no"
    ("Eyes", "yes"),                   # "eyes" contains "yes"
    ("Ano", "no"),                     # "ano" contains "no"
    ("The answer is yes", "other"),    # nothing in the first 4 chars
    ("", "other"),
    ("y", "other"),                    # no single-letter mapping (that is lmms-eval's parser)
])
def test_parse_prediction_matches_calculation_py(text, expected):
    assert parse_prediction(text) == expected


def test_category_and_file_like_converter():
    assert category_and_file("artwork/images/10002.jpg") == ("artwork", "10002.txt")
    assert category_and_file("code_reasoning/0020.png#1") == ("code_reasoning", "0020.txt")


def test_gt_question_candidates_cover_each_converter_branch():
    # instruction removed, suffix appended, then the two-space fallback
    assert gt_question_candidates("Is it red?" + SUFFIX) == [
        "Is it red? Please answer yes or no.", "Is it red?  Please answer yes or no."]
    # suffix already present: used as is (after dropping the instruction and stripping)
    assert gt_question_candidates("Is it red? Please answer yes or no." + SUFFIX) == [
        "Is it red? Please answer yes or no."]
    assert gt_question_candidates("Is it red? Please answer yes or no.") == ["Is it red? Please answer yes or no."]


# Predictions by (category, stem, question index); question 0 is the "Yes" one, 1 the "No" one.
ANSWERS = {
    ("artwork", "10002", 0): "Yes",                 # yes   right
    ("artwork", "10002", 1): "No, it is not",       # no    right   -> image 10002 both right
    ("artwork", "10003", 0): "The answer is yes",   # other wrong
    ("artwork", "10003", 1): "Not at all",          # no    right
    ("existence", "0001", 0): "Eyes",               # yes   right
    ("existence", "0001", 1): "",                   # other wrong
    ("code_reasoning", "0020", 0): "yes",           # yes   right
    ("code_reasoning", "0020", 1): "no",            # no    right
}


def _ext(category):
    return "png" if category == "code_reasoning" else "jpg"


def _local_key(category, stem, i):
    rel = f"{category}/images/{stem}.jpg" if category == "artwork" else f"{category}/{stem}.{_ext(category)}"
    return f"{rel}#{i}"


def _hf_key(category, stem, i):
    return f"{category}/{stem}.{_ext(category)}#{i}"


def test_local_loader_both_folder_styles_and_prompt_variants(tmp_path):
    styles = {("code_reasoning", "0020", 0): "keep", ("code_reasoning", "0020", 1): "both"}
    build_mme_local(tmp_path, styles=styles)
    samples = load_mme_local(tmp_path)
    assert [s.key for s in samples] == [_local_key(c, s, i) for (c, s) in MME_QA for i in range(2)]
    by_key = {s.key: s for s in samples}
    release = tmp_path / "MME" / "MME_Benchmark_release_version"
    art = by_key["artwork/images/10002.jpg#1"]            # image-folder style
    assert art.question == "Does this artwork exist in the form of glassware?" + SUFFIX
    assert art.image == release / "artwork" / "images" / "10002.jpg"
    assert art.target == {"answer": "No", "category": "artwork", "image": "artwork/10002"}
    assert art.meta["answer_question_id"] == "artwork/images/10002.jpg"
    dog = by_key["existence/0001.jpg#0"]                  # flat style, two-space GT line
    assert dog.meta["gt_question"] == "Is there a dog in this image?  Please answer yes or no."
    assert dog.target["answer"] == "Yes"
    code = by_key["code_reasoning/0020.png#1"]            # prompt keeps "Please answer yes or no."
    assert code.question == "Is a c++ code shown in the picture? Please answer yes or no." + SUFFIX
    assert code.target["answer"] == "No"
    assert get_loader("mme", "local") is load_mme_local


def test_local_loader_nested_release_folder(tmp_path):
    build_mme_local(tmp_path, nested=True)
    samples = load_mme_local(tmp_path)
    bench = tmp_path / "MME" / "MME_Benchmark_release_version" / "MME_Benchmark"
    assert samples[0].image == bench / "artwork" / "images" / "10002.jpg"
    assert benchmark_root(bench.parent, "artwork") == bench
    assert len(samples) == 8


def test_scores_perception_cognition_subtasks(tmp_path):
    samples = load_mme_local(build_mme_local(tmp_path))
    preds = {_local_key(*k): v for k, v in ANSWERS.items()}
    r = get_evaluator("mme").score(samples, preds)
    # artwork: 3/4 right -> acc 75; image 10002 both right, 10003 not -> acc+ 1/2 = 50 -> 125.
    # existence: 1/2 right -> 50; acc+ 0 -> 50.   code_reasoning: 2/2, 1/1 -> 200.
    assert r.metrics["subtasks"] == pytest.approx({"existence": 50.0, "artwork": 125.0, "code_reasoning": 200.0})
    assert list(r.metrics["subtasks"]) == ["existence", "artwork", "code_reasoning"]   # official order
    # 2 of 10 perception and 1 of 4 cognition subtasks: their sums would not be MME's totals
    assert r.metrics["perception"] is None and r.metrics["cognition"] is None
    assert r.n == 8
    assert r.per_sample["artwork/images/10003.jpg#0"] == {"target": "Yes", "parsed": "other", "score": 0.0,
                                                          "category": "artwork"}


def test_consecutive_pairing_versus_image_pairing(tmp_path):
    # Interleaved order: 10002-Q0, 10003-Q0, 10002-Q1, 10003-Q1 (images not adjacent).
    order = [("artwork", "10002", 0), ("artwork", "10003", 0), ("artwork", "10002", 1), ("artwork", "10003", 1)]
    qa = {k: v for k, v in MME_QA.items() if k[0] == "artwork"}
    samples = load_mme_local(build_mme_local(tmp_path, order=order, qa=qa))
    answers = {("artwork", "10002", 0): "yes", ("artwork", "10003", 0): "yes",   # right, right
               ("artwork", "10002", 1): "yes", ("artwork", "10003", 1): "yes"}   # wrong, wrong
    preds = {_local_key(*k): v for k, v in answers.items()}
    # acc = 2/4 = 50 either way.
    # consecutive (calculation.py): pairs (right, right), (wrong, wrong) -> acc+ 1/2 -> 50 + 50 = 100.
    assert MMEEvaluator().score(samples, preds).metrics["subtasks"]["artwork"] == pytest.approx(100.0)
    # by image (lmms-eval): 10002 (right, wrong), 10003 (right, wrong) -> acc+ 0 -> 50.
    assert MMEEvaluator(pairing="image").score(samples, preds).metrics["subtasks"]["artwork"] == pytest.approx(50.0)
    # On the official adjacent order both pairings agree.
    adjacent = load_mme_local(build_mme_local(tmp_path / "adj", qa=qa))
    assert MMEEvaluator().score(adjacent, preds).metrics == MMEEvaluator(pairing="image").score(adjacent, preds).metrics


def test_odd_group_raises(tmp_path):
    samples = load_mme_local(build_mme_local(tmp_path))[:3]     # artwork 10002 x2, 10003 x1
    preds = {s.key: "yes" for s in samples}
    with pytest.raises(DataError, match="group of 1 question"):
        MMEEvaluator().score(samples, preds)
    with pytest.raises(DataError, match="group of 1 question"):
        MMEEvaluator(pairing="image").score(samples, preds)


def test_missing_prediction_raises(tmp_path):
    samples = load_mme_local(build_mme_local(tmp_path))
    with pytest.raises(DataError, match="no prediction for question artwork/images/10002.jpg#0"):
        MMEEvaluator().score(samples, {})


def test_bad_pairing_option():
    with pytest.raises(ConfigError):
        MMEEvaluator(pairing="random")


def test_unknown_category_scored_but_not_summed(tmp_path):
    qa = {("artwork", "10002"): MME_QA[("artwork", "10002")], ("weird", "1"): MME_QA[("artwork", "10003")]}
    samples = load_mme_local(build_mme_local(tmp_path, qa=qa))
    m = MMEEvaluator().score(samples, {s.key: "yes" for s in samples}).metrics
    # Each category: yes right, yes wrong -> acc 50, acc+ 0 -> 50.
    assert m["subtasks"] == pytest.approx({"artwork": 50.0, "weird": 50.0})
    assert list(m["subtasks"]) == ["artwork", "weird"]
    assert m["perception"] is None and m["cognition"] is None  # "weird" counts towards neither


def test_missing_question_file_names_it(tmp_path):
    with pytest.raises(DataError, match=r"llava_mme\.jsonl: file not found"):
        load_mme_local(tmp_path)


def test_malformed_jsonl_line_names_line(tmp_path):
    build_mme_local(tmp_path)
    q = tmp_path / "MME" / "llava_mme.jsonl"
    lines = q.read_text().splitlines()
    lines[1] = '{"question_id": "artwork/images/10002.jpg"'
    q.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        load_mme_local(tmp_path)
    assert err.value.line == 2 and str(q) in str(err.value)


@pytest.mark.parametrize("row, message", [
    ({"question_id": "artwork/images/10002.jpg", "image": "artwork/images/10002.jpg", "text": "Is it a vase?"},
     "no ground truth for this question"),
    ({"question_id": "artwork/images/99999.jpg", "image": "x.jpg", "text": "Q?"},
     r"questions_answers_YN/99999\.txt: file not found"),
    ({"question_id": "artwork/images/10002.jpg", "image": "artwork/images/10002.jpg"}, "'text' must be a string"),
    ({"question_id": "artwork/images/10002.jpg", "image": "/abs/10002.jpg",
      "text": "Does this artwork exist in the form of painting?" + SUFFIX}, "escapes the data folder"),
    (["not", "an", "object"], "expected a JSON object"),
])
def test_bad_rows_raise(tmp_path, row, message):
    build_mme_local(tmp_path)
    q = tmp_path / "MME" / "llava_mme.jsonl"
    q.write_text(q.read_text() + json.dumps(row) + "\n")
    with pytest.raises(DataError, match=message):
        load_mme_local(tmp_path)


def test_bad_gt_line_names_file_and_line(tmp_path):
    build_mme_local(tmp_path)
    gt = tmp_path / "MME" / "MME_Benchmark_release_version" / "existence" / "0001.txt"
    gt.write_text(gt.read_text() + "\nno tab on this line\n")   # blank line skipped, line 4 bad
    with pytest.raises(DataError, match="expected 'question<TAB>answer'") as err:
        load_mme_local(tmp_path)
    assert err.value.line == 4 and str(gt) in str(err.value)


def test_gt_answer_must_be_yes_or_no(tmp_path):
    qa = {("existence", "0001"): [("Is there a dog in this image? Please answer yes or no.", "Maybe"),
                                  ("Is there a cat in this image? Please answer yes or no.", "No")]}
    build_mme_local(tmp_path, qa=qa)
    with pytest.raises(DataError, match="must be Yes or No"):
        load_mme_local(tmp_path)


def test_hf_loader_prompt_grouping_and_scores(tmp_path):
    # Rows of artwork/10002 are split apart; the loader makes each image's two questions adjacent.
    rows = [("artwork", "10002", 0), ("existence", "0001", 0), ("artwork", "10003", 0), ("artwork", "10002", 1),
            ("existence", "0001", 1), ("artwork", "10003", 1), ("code_reasoning", "0020", 0),
            ("code_reasoning", "0020", 1)]
    root = build_mme_hf(tmp_path / "MME", rows=rows)
    samples = get_loader("mme", "hf")(str(root), cache_dir=str(tmp_path / "cache"))
    assert [s.key for s in samples] == [
        "artwork/10002.jpg#0", "artwork/10002.jpg#1", "existence/0001.jpg#0", "existence/0001.jpg#1",
        "artwork/10003.jpg#0", "artwork/10003.jpg#1", "code_reasoning/0020.png#0", "code_reasoning/0020.png#1"]
    by_key = {s.key: s for s in samples}
    # Two-space GT question -> the suffix goes either way.
    assert by_key["existence/0001.jpg#0"].question == "Is there a dog in this image?" + SUFFIX
    assert by_key["artwork/10002.jpg#1"].target == {"answer": "No", "category": "artwork", "image": "artwork/10002"}
    assert isinstance(by_key["artwork/10002.jpg#1"].image, bytes)
    preds = {_hf_key(*k): v for k, v in ANSWERS.items()}
    m = MMEEvaluator().score(samples, preds).metrics
    assert m["subtasks"] == pytest.approx({"existence": 50.0, "artwork": 125.0, "code_reasoning": 200.0})
    assert m["perception"] is None and m["cognition"] is None


def test_hf_prompt():
    assert hf_prompt("Is it red? Please answer yes or no.") == "Is it red?" + SUFFIX
    assert hf_prompt(" Is it red?  Please answer yes or no. ") == "Is it red?" + SUFFIX
    assert hf_prompt("Is it red?") == "Is it red?" + SUFFIX


def test_hf_missing_column(tmp_path):
    from tests.builders_gqa_pope_mme import png_bytes, write_hf_parquet

    write_hf_parquet(tmp_path / "MME" / "data" / "test-00000-of-00001.parquet",
                     {"question_id": ["a/1.jpg"], "question": ["Q?"], "answer": ["Yes"], "image": [png_bytes()]})
    with pytest.raises(DataError, match="missing column.*category"):
        load_mme_hf(str(tmp_path / "MME"), cache_dir=str(tmp_path / "c"))


def test_registry_finds_evaluator():
    assert isinstance(get_evaluator("mme"), MMEEvaluator)


def test_evaluator_rejects_non_yes_no_gold():
    from aligngpt.data.base import Sample

    s = Sample(question_id="a/1.jpg#0", question="Q?", target={"answer": "maybe", "category": "OCR", "image": "a/1"})
    with pytest.raises(DataError, match="gold answer 'maybe'"):
        MMEEvaluator().score([s], {"a/1.jpg#0": "yes"})


def test_read_gt_file_missing(tmp_path):
    from aligngpt.tasks.mme.loader import read_gt_file

    with pytest.raises(DataError, match="0001.txt: file not found"):
        read_gt_file(tmp_path / "0001.txt")


def test_totals_need_every_subtask_of_their_half():
    from aligngpt.data.base import Sample
    from aligngpt.tasks.mme.evaluator import COGNITION, PERCEPTION

    def pair(cat: str, i: int) -> list[Sample]:  # "yes" to both: one right -> acc 50, acc+ 0 -> 50
        return [Sample(f"{cat}/{i}.png", "q?", None, {"answer": a, "category": cat, "image": f"{cat}/{i}"},
                       {"category": cat, "answer_question_id": f"{cat}/{i}.png"}) for a in ("Yes", "No")]

    every = [s for cat in PERCEPTION + COGNITION for s in pair(cat, 0)]
    m = MMEEvaluator().score(every, {s.key: "yes" for s in every}).metrics
    assert m["perception"] == pytest.approx(50.0 * 10) and m["cognition"] == pytest.approx(50.0 * 4)
    no_code = [s for s in every if s.target["category"] != "code_reasoning"]
    m = MMEEvaluator().score(no_code, {s.key: "yes" for s in no_code}).metrics
    assert m["perception"] == pytest.approx(500.0) and m["cognition"] is None
