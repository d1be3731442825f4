"""GQA loader (local + HF layouts) and evaluator (LLaVA conversion + official eval.py accuracy)."""
from __future__ import annotations

import json

import pytest

from aligngpt.data import get_loader
from aligngpt.tasks.gqa.loader import load_gqa_hf, load_gqa_local
from aligngpt.errors import DataError
from aligngpt.evaluators import get_evaluator
from aligngpt.tasks.gqa.evaluator import GQAEvaluator, convert_prediction
from tests.builders_gqa_pope_mme import GQA_QUESTIONS, SUFFIX, build_gqa_hf, build_gqa_local, png_bytes, write_jsonl

# Predictions for GQA_QUESTIONS, one per conversion branch.
PREDICTIONS = {
    "201307251": "Yes.",      # -> "yes" (trailing period gone, lower-cased)  gold yes   binary  correct
    "201640614": "Red..",     # -> "red" (every trailing period goes)           gold red   open    correct
    "202225914": "Left!",     # -> "left!" ("!" is kept)                         gold left  binary  wrong
    "20968310": "A plate",    # -> "a plate" (articles are kept)                gold plate open    wrong
    "201303228": "No",        # -> "no"                                          gold no    binary  correct
    "207000001": "no",        # unbalanced: never counted (gold yes)
}


@pytest.mark.parametrize("text, expected", [
    ("Yes.", "yes"),
    ("red...", "red"),
    ("Left!", "left!"),           # other punctuation survives
    ("A plate", "a plate"),       # no article removal
    ("St. Louis", "st. louis"),   # inner periods survive
    ("yes. ", "yes. "),           # rstrip('.') stops at the trailing space
    ("", ""),
])
def test_convert_prediction_is_rstrip_period_then_lower(text, expected):
    assert convert_prediction(text) == expected


def test_local_loader_reads_llava_layout(tmp_path):
    build_gqa_local(tmp_path)
    samples = load_gqa_local(tmp_path)
    assert [s.question_id for s in samples] == list(GQA_QUESTIONS)
    s = samples[1]
    assert s.question == "What color is the car?" + SUFFIX   # JSONL text used verbatim
    assert s.image == tmp_path / "gqa" / "data" / "images" / "n161313.jpg"
    assert s.target == {"answer": "red", "balanced": True, "structural": "query"}
    assert samples[-1].target["balanced"] is False
    assert get_loader("gqa", "local") is load_gqa_local


def test_evaluator_accuracy_binary_open(tmp_path):
    samples = load_gqa_local(build_gqa_local(tmp_path))
    result = get_evaluator("gqa").score(samples, PREDICTIONS)
    # Balanced: 5 questions, correct 201307251, 201640614, 201303228 -> 3/5 = 60%.
    # Binary (structural != query): verify, choose, logical -> 2 of 3 correct -> 66.67%.
    # Open (query): car colour right, "a plate" wrong -> 1/2 = 50%.
    assert result.metrics == pytest.approx({"accuracy": 60.0, "binary": 200 / 3, "open": 50.0})
    assert set(result.metrics) == {"accuracy", "binary", "open"}
    assert result.n == 5
    assert result.per_sample["202225914"] == {"target": "left", "parsed": "left!", "score": 0.0,
                                              "type": "binary", "balanced": True}
    assert result.per_sample["201640614"]["score"] == 1.0
    # The unbalanced question is reported but never averaged (it is wrong, yet accuracy is 60).
    assert result.per_sample["207000001"]["balanced"] is False


def test_empty_bucket_averages_to_zero_like_eval_py(tmp_path):
    binary_only = {k: v for k, v in GQA_QUESTIONS.items() if v["types"]["structural"] != "query"}
    samples = load_gqa_local(build_gqa_local(tmp_path, binary_only))
    result = GQAEvaluator().score(samples, {k: PREDICTIONS[k] for k in binary_only})
    # Balanced binary: yes(right), left!(wrong), no(right) -> 2/3; no open question -> avg([]) = 0.
    assert result.metrics == pytest.approx({"accuracy": 200 / 3, "binary": 200 / 3, "open": 0.0})


def test_gold_comparison_is_case_sensitive(tmp_path):
    questions = {"1": {**GQA_QUESTIONS["201640614"], "answer": "Red"}}
    samples = load_gqa_local(build_gqa_local(tmp_path, questions))
    # The prediction is lower-cased, the gold is not: "red" != "Red" -> 0.
    assert GQAEvaluator().score(samples, {"1": "Red"}).metrics["accuracy"] == 0.0


def test_missing_prediction_for_balanced_question_raises(tmp_path):
    samples = load_gqa_local(build_gqa_local(tmp_path))
    preds = dict(PREDICTIONS)
    del preds["201640614"]
    with pytest.raises(DataError, match="no prediction for question 201640614"):
        GQAEvaluator().score(samples, preds)


def test_missing_prediction_for_unbalanced_question_is_skipped(tmp_path):
    samples = load_gqa_local(build_gqa_local(tmp_path))
    preds = {k: v for k, v in PREDICTIONS.items() if k != "207000001"}
    result = GQAEvaluator().score(samples, preds)
    assert result.metrics["accuracy"] == pytest.approx(60.0)
    assert result.per_sample["207000001"]["parsed"] is None


def test_missing_file_names_the_file(tmp_path):
    build_gqa_local(tmp_path)
    (tmp_path / "gqa" / "data" / "testdev_balanced_questions.json").unlink()
    with pytest.raises(DataError, match="testdev_balanced_questions.json: file not found"):
        load_gqa_local(tmp_path)
    with pytest.raises(DataError, match="llava_gqa_testdev_balanced.jsonl: file not found"):
        load_gqa_local(tmp_path / "elsewhere")


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    build_gqa_local(tmp_path)
    jsonl = tmp_path / "gqa" / "llava_gqa_testdev_balanced.jsonl"
    lines = jsonl.read_text().splitlines()
    lines[2] = '{"question_id": "202225914", "image": '
    jsonl.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        load_gqa_local(tmp_path)
    assert err.value.line == 3 and str(err.value).startswith(f"{jsonl}:3:")


@pytest.mark.parametrize("row, message", [
    ({"question_id": "999", "image": "n161313.jpg", "text": "Q?"}, "question_id 999 is not in"),
    ({"question_id": "201307251", "image": "n161313.jpg"}, "missing field 'text'"),
    ({"question_id": "201307251", "image": "../../etc/passwd", "text": "Q?"}, "escapes the data folder"),
    ({"question_id": "201307251", "image": "n161313.jpg", "text": None}, "'text' must be a string"),
    ([1, 2], "expected a JSON object"),
])
def test_bad_jsonl_rows_raise_with_line(tmp_path, row, message):
    build_gqa_local(tmp_path)
    write_jsonl(tmp_path / "gqa" / "llava_gqa_testdev_balanced.jsonl",
                [{"question_id": "201640614", "image": "n161313.jpg", "text": "Q?"}, row])
    with pytest.raises(DataError, match=message) as err:
        load_gqa_local(tmp_path, require_all_balanced=False)
    assert err.value.line == 2


def test_duplicate_question_id_raises(tmp_path):
    build_gqa_local(tmp_path, jsonl_ids=["201307251", "201307251"])
    with pytest.raises(DataError, match="duplicate question_id 201307251") as err:
        load_gqa_local(tmp_path, require_all_balanced=False)
    assert err.value.line == 2


def test_balanced_question_missing_from_jsonl_raises(tmp_path):
    build_gqa_local(tmp_path, jsonl_ids=["201307251", "201640614"])
    with pytest.raises(DataError, match="3 balanced question"):
        load_gqa_local(tmp_path)
    assert len(load_gqa_local(tmp_path, require_all_balanced=False)) == 2


def test_question_record_without_types_raises(tmp_path):
    questions = {"1": {k: v for k, v in GQA_QUESTIONS["201307251"].items() if k != "types"}}
    build_gqa_local(tmp_path, questions)
    with pytest.raises(DataError, match="question 1: missing field 'types'"):
        load_gqa_local(tmp_path)


def test_questions_file_must_be_an_object(tmp_path):
    build_gqa_local(tmp_path)
    (tmp_path / "gqa" / "data" / "testdev_balanced_questions.json").write_text(json.dumps([1]))
    with pytest.raises(DataError, match="expected a JSON object keyed by questionId"):
        load_gqa_local(tmp_path)


def test_hf_loader_joins_images_and_adds_suffix(tmp_path):
    root = build_gqa_hf(tmp_path / "GQA")
    samples = get_loader("gqa", "hf")(str(root), cache_dir=str(tmp_path / "cache"))
    local = load_gqa_local(build_gqa_local(tmp_path / "local"))
    # Same ids, prompts and targets as the local layout.
    assert [(s.key, s.question, s.target) for s in samples] == [(s.key, s.question, s.target) for s in local]
    by_id = {s.key: s for s in samples}
    image_ids = sorted({q["imageId"] for q in GQA_QUESTIONS.values()})
    assert by_id["202225914"].image == png_bytes((40 * image_ids.index("n235859"), 0, 0))
    assert GQAEvaluator().score(samples, PREDICTIONS).metrics["accuracy"] == pytest.approx(60.0)


def test_hf_loader_reports_missing_columns_and_images(tmp_path):
    from tests.builders_gqa_pope_mme import write_hf_parquet

    root = tmp_path / "GQA"
    write_hf_parquet(root / "testdev_balanced_instructions" / "testdev-00000-of-00001.parquet",
                     {"id": ["1"], "imageId": ["n1"], "question": ["Q?"]}, image_column=None)
    write_hf_parquet(root / "testdev_balanced_images" / "testdev-00000-of-00001.parquet",
                     {"id": ["n2"], "image": [png_bytes()]})
    with pytest.raises(DataError, match="missing column.*answer"):
        load_gqa_hf(str(root), cache_dir=str(tmp_path / "cache"))
    build_gqa_hf(root, {"1": GQA_QUESTIONS["201307251"]})
    write_hf_parquet(root / "testdev_balanced_images" / "testdev-00000-of-00001.parquet",
                     {"id": ["other"], "image": [png_bytes()]})
    with pytest.raises(DataError, match="imageId n161313 not in testdev_balanced_images"):
        load_gqa_hf(str(root), cache_dir=str(tmp_path / "cache2"))
    with pytest.raises(DataError, match="no parquet files"):
        load_gqa_hf(str(tmp_path), cache_dir=str(tmp_path / "cache3"))


def test_registry_finds_evaluator():
    assert isinstance(get_evaluator("gqa"), GQAEvaluator)


def test_hub_ids_go_to_load_dataset_with_config_split_and_cache(tmp_path, monkeypatch):
    import datasets

    from aligngpt.tasks.gqa import loader as gqa_loader

    local = build_gqa_hf(tmp_path / "GQA")
    calls = []
    real = datasets.load_dataset

    def fake_load_dataset(path, name=None, *, split=None, cache_dir=None, **kw):
        calls.append((path, name, split, cache_dir, kw))
        if path == "broken/GQA":
            raise ConnectionError("offline")
        files = sorted((local / name).glob(f"{split}-*.parquet"))
        return real("parquet", data_files={split: [str(f) for f in files]}, split=split,
                    cache_dir=str(tmp_path / "c"))

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    samples = gqa_loader.load_gqa_hf(cache_dir="/somewhere", revision="abc")
    assert calls == [("lmms-lab/GQA", "testdev_balanced_instructions", "testdev", "/somewhere", {"revision": "abc"}),
                     ("lmms-lab/GQA", "testdev_balanced_images", "testdev", "/somewhere", {"revision": "abc"})]
    assert len(samples) == len(GQA_QUESTIONS)
    with pytest.raises(DataError, match="broken/GQA: cannot load config 'testdev_balanced_instructions'.*offline"):
        gqa_loader.load_gqa_hf("broken/GQA")


def test_image_cells_without_bytes_are_refused():
    from aligngpt.tasks.gqa.loader import image_bytes

    assert image_bytes(b"abc", source="x", row=0) == b"abc"
    with pytest.raises(DataError, match="row 7: image cell holds no encoded bytes"):
        image_bytes({"bytes": None, "path": "/etc/passwd"}, source="x", row=7)   # paths are never followed


def test_non_string_answer_raises(tmp_path):
    build_gqa_local(tmp_path, {"1": {**GQA_QUESTIONS["201307251"], "answer": 1}})
    with pytest.raises(DataError, match="question 1: answer and types.structural must be strings"):
        load_gqa_local(tmp_path)
