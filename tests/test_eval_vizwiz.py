"""VizWiz: test loader + EvalAI upload (LLaVA's converter), val loader + VizWiz API accuracy.

Expected scores are worked out by hand from docs/protocol/README.md, "VQA answer normalisation":
the m4c processor, then the VizWiz API (prediction normalised again with the VizWiz tables,
ground truth compared as given, leave-one-out soft accuracy: k matching annotators give 0, 0.3,
0.6, 0.9, then 1.0 for k >= 4).
"""
import json
import warnings

import pytest

from aligngpt.data.base import get_loader
from aligngpt.tasks.vizwiz import loader as loader
from aligngpt.errors import DataError
from aligngpt.tasks.vizwiz.evaluator import (
    VizWizSubmissionEvaluator, VizWizValEvaluator, build_vizwiz_submission, validate_vizwiz_submission,
)
from aligngpt.toy import generate_toy_data

from .builders_sqa_textvqa_seed import write_json, write_jsonl
from .builders_vqa_vizwiz import (
    VIZWIZ, vizwiz_entry, vizwiz_hf_row, vizwiz_line, write_vizwiz, write_vizwiz_hf,
)

TEST = [vizwiz_line(0, "What is this?"), vizwiz_line(1, "What color is this shirt?"),
        vizwiz_line(2, "Can you read this label?")]

# (index, question, answers, answer type, prediction, expected score, expected raw score)
VAL_CASES = [
    # m4c "Yes." -> "yes", 10 matches -> 1.0. Raw: VizWiz strips the period and lower-cases -> 1.0.
    (0, "Is it on?", ["yes"] * 10, "yes/no", "Yes.", 1.0, 1.0),
    # 6 x "unanswerable" -> 1.0.
    (1, "What is this?", ["unanswerable"] * 6 + ["unsuitable"] * 4, "unanswerable", "Unanswerable", 1.0, 1.0),
    # The prediction "two" becomes "2"; the GT is never normalised, so only the two "2" count -> 0.6.
    (2, "How many?", ["2"] * 2 + ["two"] * 8, "number", "two", 0.6, 0.6),
    # m4c maps "dont" -> "don't" (ASCII); the VizWiz table has no "don't" key: 3 matches -> 0.9.
    # Raw: the VizWiz table maps "dont" -> "don’t" (U+2019), matching nothing -> 0.0.
    (3, "What is it?", ["don't know"] * 3 + ["no idea"] * 7, "other", "dont know", 0.9, 0.0),
    # "Coca-Cola" -> "coca cola", but the GT "Coca Cola" keeps its capitals -> 0.0.
    (4, "What drink?", ["Coca Cola"] * 5 + ["coke"] * 5, "other", "Coca-Cola", 0.0, 0.0),
    # "A cat." -> "cat" (article and period removed): 4 x "cat" -> 1.0.
    (5, "What animal?", ["cat"] * 4 + ["kitten"] * 6, "other", "A cat.", 1.0, 1.0),
]


def _image(index: int) -> str:
    return f"VizWiz_val_{index:08d}.jpg"


@pytest.fixture
def vz_root(tmp_path):
    val = [vizwiz_entry(i, q, answers, atype) for i, q, answers, atype, *_ in VAL_CASES]
    write_vizwiz(tmp_path, TEST, val)
    return tmp_path


# ------------------------------------------------------------------ test split + upload
def test_test_loader_reads_llava_layout(vz_root):
    samples = get_loader("vizwiz", "local")(vz_root)
    assert [s.question_id for s in samples] == [0, 1, 2]
    assert samples[1].question == "What color is this shirt?" + VIZWIZ
    assert samples[0].image == vz_root / "vizwiz" / "test" / "VizWiz_test_00000000.jpg"
    assert samples[2].meta["image"] == "VizWiz_test_00000002.jpg"
    assert samples[0].meta["submission_split"]["count"] == 3


def test_submission_is_llava_converter_output(vz_root, tmp_path):
    samples = loader.load_test_local(vz_root)
    preds = {"0": "A bottle of water.", "1": "Dark blue", "2": "Unanswerable"}
    ev = VizWizSubmissionEvaluator()
    assert ev.score(samples, preds).metrics == {}
    path, = ev.write_submission(samples, preds, tmp_path / "out")
    # m4c: "A bottle of water." -> "bottle of water"; "Dark blue" -> "dark blue"; json.dump format.
    assert path.read_text(encoding="utf-8") == (
        '[{"image": "VizWiz_test_00000000.jpg", "answer": "bottle of water"}, '
        '{"image": "VizWiz_test_00000001.jpg", "answer": "dark blue"}, '
        '{"image": "VizWiz_test_00000002.jpg", "answer": "unanswerable"}]')
    images = [json.loads(line)["image"] for line in (vz_root / "vizwiz" / "llava_test.jsonl").read_text().splitlines()]
    assert validate_vizwiz_submission(path, images) == 3


def test_submission_needs_every_answer_and_skips_limited_runs(vz_root, tmp_path):
    samples = loader.load_test_local(vz_root)
    # The converter asserts every test question is answered.
    with pytest.raises(DataError, match="no prediction for 1 VizWiz test questions"):
        build_vizwiz_submission(samples, {"0": "a", "1": "b"})
    # A --limit run (2 of 3 questions) gets no upload, with a warning.
    with pytest.warns(UserWarning, match="2 of 3 test questions"):
        assert VizWizSubmissionEvaluator().write_submission(samples[:2], {"0": "a", "1": "b"}, tmp_path) == []
    assert not (tmp_path / "submission.json").exists()


@pytest.mark.parametrize("payload, message", [
    ("not a list", "expected a JSON list"),
    ([{"image": "a.jpg", "answer": "x"}], "1 test image"),
    ([{"image": 3, "answer": "x"}], "entry 0: image 3 is not a string"),
    ([{"image": "a.jpg", "answer": None}], "entry 0: answer for a.jpg is not a string"),
    ([{"image": "a.jpg"}], "entry 0: expected an object with exactly 'image' and 'answer'"),
    ([{"image": "a.jpg", "answer": "x"}, {"image": "a.jpg", "answer": "y"}], "entry 1: image a.jpg appears twice"),
    ([{"image": "c.jpg", "answer": "x"}], "entry 0: image c.jpg is not a test image"),
])
def test_validator_rejects_schema_errors(tmp_path, payload, message):
    path = tmp_path / "upload.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(DataError, match=message) as err:
        validate_vizwiz_submission(path, ["a.jpg", "b.jpg"] if message == "1 test image" else ["a.jpg"])
    assert str(path) in str(err.value)


def test_test_loader_errors_name_file_and_line(tmp_path):
    write_vizwiz(tmp_path, [TEST[0], dict(TEST[1], image=TEST[0]["image"])], [])
    with pytest.raises(DataError, match=r"llava_test\.jsonl:2: image .* appears twice"):
        loader.load_test_local(tmp_path)
    write_jsonl(tmp_path / "vizwiz" / "llava_test.jsonl", [TEST[0], {"question_id": 5, "image": "x.jpg"}])
    with pytest.raises(DataError, match=r"llava_test\.jsonl:2: missing field 'text'"):
        loader.load_test_local(tmp_path)


# ------------------------------------------------------------------ val
def test_val_loader_reads_vizwiz_annotations(vz_root):
    samples = get_loader("vizwiz_val", "local")(vz_root)
    assert [s.question_id for s in samples] == [_image(c[0]) for c in VAL_CASES]
    assert samples[2].question == "How many?" + VIZWIZ
    assert samples[2].image == vz_root / "vizwiz" / "val" / _image(2)
    assert samples[1].target == {"answers": VAL_CASES[1][2], "answer_type": "unanswerable", "answerable": 0}


def test_val_scoring_m4c_then_vizwiz_api(vz_root):
    samples = loader.load_val_local(vz_root)
    preds = {_image(c[0]): c[4] for c in VAL_CASES}
    result = VizWizValEvaluator().score(samples, preds)
    for i, *_, expected, _raw in VAL_CASES:
        assert result.per_sample[_image(i)]["score"] == pytest.approx(expected), i
    # yes/no 1.0; number 0.6; other (0.9 + 0 + 1)/3; unanswerable 1.0; overall 4.5/6 = 0.75.
    assert result.metrics == pytest.approx({"accuracy": 75.0, "yes/no": 100.0, "number": 60.0,
                                            "other": 190.0 / 3, "unanswerable": 100.0})
    row = result.per_sample[_image(3)]
    assert row["parsed"] == "don't know" and row["compared"] == "don't know" and row["answer_type"] == "other"
    assert row["target"] == ["don't know"] * 3 + ["no idea"] * 7


def test_val_scoring_without_submission_processor(vz_root):
    samples = loader.load_val_local(vz_root)
    preds = {_image(c[0]): c[4] for c in VAL_CASES}
    result = VizWizValEvaluator(submission_processor=False).score(samples, preds)
    for i, *_, raw in VAL_CASES:
        assert result.per_sample[_image(i)]["score"] == pytest.approx(raw), i
    assert result.per_sample[_image(3)]["compared"] == "don\u2019t know"
    # other (0 + 0 + 1)/3; overall (1 + 1 + 0.6 + 0 + 0 + 1)/6 = 0.6.
    assert result.metrics["accuracy"] == pytest.approx(60.0)
    assert result.metrics["other"] == pytest.approx(100.0 / 3)


def test_val_missing_types_and_predictions(vz_root):
    samples = loader.load_val_local(vz_root)[:1]
    assert VizWizValEvaluator().score(samples, {_image(0): "no"}).metrics == {
        "accuracy": 0.0, "yes/no": 0.0, "number": None, "other": None, "unanswerable": None}
    with pytest.raises(DataError, match="no prediction for 1 vizwiz_val"):
        VizWizValEvaluator().score(samples, {})


def test_val_loader_errors(tmp_path):
    base = tmp_path / "vizwiz"
    good = vizwiz_entry(0, "Q?", ["a"] * 10, "other")
    write_json(base / "val.json", [good, good])
    with pytest.raises(DataError, match=r"val\.json: entry 1 \(VizWiz_val_00000000\.jpg\): duplicate image"):
        loader.load_val_local(tmp_path)
    write_json(base / "val.json", [dict(good, answer_type="colour")])
    with pytest.raises(DataError, match="answer_type 'colour' is not one of"):
        loader.load_val_local(tmp_path)
    write_json(base / "val.json", [dict(good, answers=[{"answer_confidence": "yes"}])])
    with pytest.raises(DataError, match=r"answers\[0\]: missing field 'answer'"):
        loader.load_val_local(tmp_path)
    write_json(base / "val.json", [dict(good, image="../secret.jpg")])
    with pytest.raises(DataError, match="escapes the data folder"):
        loader.load_val_local(tmp_path)
    write_json(base / "val.json", {"image": "x"})
    with pytest.raises(DataError, match="expected a JSON list"):
        loader.load_val_local(tmp_path)


# ------------------------------------------------------------------ HF source
def test_hf_loaders_match_local(tmp_path, vz_root):
    val_rows = [vizwiz_hf_row(_image(i)[:-4], q, answers, atype) for i, q, answers, atype, *_ in VAL_CASES]
    test_rows = [vizwiz_hf_row(r["image"][:-4], r["text"][: -len(VIZWIZ)], [], None) for r in TEST]
    hf = write_vizwiz_hf(tmp_path / "hf", {"val": val_rows, "test": test_rows})

    local_val = loader.load_val_local(vz_root)
    hf_val = get_loader("vizwiz_val", "hf")(str(hf))
    assert [(s.question_id, s.question, s.target["answers"], s.target["answer_type"]) for s in hf_val] == \
        [(s.question_id, s.question, s.target["answers"], s.target["answer_type"]) for s in local_val]
    preds = {_image(c[0]): c[4] for c in VAL_CASES}
    assert VizWizValEvaluator().score(hf_val, preds).metrics == VizWizValEvaluator().score(local_val, preds).metrics

    # Test: same prompts and upload; ids are the image names (LLaVA's ints are not in the HF copy).
    local_test = loader.load_test_local(vz_root)
    hf_test = get_loader("vizwiz", "hf")(str(hf))
    assert [s.question for s in hf_test] == [s.question for s in local_test]
    assert [s.question_id for s in hf_test] == [r["image"] for r in TEST]
    answers = ["bottle", "blue", "unanswerable"]
    ev = VizWizSubmissionEvaluator()
    hf_file, = ev.write_submission(hf_test, {s.key: a for s, a in zip(hf_test, answers)}, tmp_path / "h")
    local_file, = ev.write_submission(local_test, {s.key: a for s, a in zip(local_test, answers)}, tmp_path / "l")
    assert hf_file.read_bytes() == local_file.read_bytes()


def test_hf_unknown_category_leaves_type_unknown(tmp_path):
    hf = write_vizwiz_hf(tmp_path / "hf", {"val": [vizwiz_hf_row("VizWiz_val_00000009", "Q?", ["x"] * 10, "default")]})
    samples = loader.load_val_hf(str(hf))
    assert samples[0].question_id == "VizWiz_val_00000009.jpg" and samples[0].target["answer_type"] is None
    # "X" -> "x" matches all 10 -> 1.0; it counts in accuracy but in no answer type.
    result = VizWizValEvaluator().score(samples, {"VizWiz_val_00000009.jpg": "X"})
    assert result.metrics == {"accuracy": 100.0, "yes/no": None, "number": None, "other": None,
                              "unanswerable": None}


# ------------------------------------------------------------------ toy layout
def test_toy_layout_loads_and_submits(tmp_path):
    manifest = generate_toy_data(tmp_path, seed=0, n_per_task=6, benchmarks=["vizwiz"], n_pretrain=0,
                                 n_instruct=0)
    root = tmp_path / "eval"
    test = loader.load_test_local(root)
    val = loader.load_val_local(root)
    assert len(test) == 6 and len(val) == 6
    assert all(s.image.is_file() for s in test + val)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a complete run writes without warning
        path, = VizWizSubmissionEvaluator().write_submission(test, {s.key: "unanswerable" for s in test}, tmp_path / "o")
    assert validate_vizwiz_submission(path, [s.meta["image"] for s in test]) == 6
    # The toy manifest's blind baseline ("always unanswerable") is what the evaluator computes.
    result = VizWizValEvaluator().score(val, {s.key: "Unanswerable" for s in val})
    chance = manifest["eval"]["chance"]["vizwiz_val"]
    assert result.metrics["accuracy"] == pytest.approx(chance["accuracy"])
    assert result.metrics["unanswerable"] == pytest.approx(chance["unanswerable"])
