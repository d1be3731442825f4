"""VQAv2: test-dev loader + EvalAI upload (LLaVA's converter), val2014 loader + official VQA API.

Every expected score is worked out by hand from docs/protocol/README.md, "VQA answer
normalisation" (m4c processor, then the 2021 VQA API: normalise both sides only when the 10
answers disagree; leave-one-out soft accuracy, where k matching annotators give 0, 0.3, 0.6,
0.9, then 1.0 for k >= 4).
"""
import json

import pytest

from aligngpt.data.base import get_loader
from aligngpt.tasks.vqav2 import loader as loader
from aligngpt.errors import DataError
from aligngpt.tasks.vqav2.evaluator import (
    SUBMISSION_FILE, VQAv2SubmissionEvaluator, VQAv2ValEvaluator, build_vqav2_submission,
    validate_vqav2_submission,
)
from aligngpt.toy import generate_toy_data

from .builders_vqa_vizwiz import (
    SHORT, vqa_annotation, vqa_question, vqav2_hf_row, vqav2_line, write_vqav2_hf, write_vqav2_test,
    write_vqav2_val,
)
from .builders_sqa_textvqa_seed import write_jsonl

# test2015 (all questions, file order) and the test-dev subset LLaVA runs.
FULL = [
    vqav2_line(262144000, 262144, "Is the sky blue?"),
    vqav2_line(262144001, 262144, "What is on the table?"),
    vqav2_line(262144002, 262144, "How many dogs are there?"),
    vqav2_line(393225000, 393225, "What animal is this?"),
    vqav2_line(393225001, 393225, "Is it raining?"),
]
DEV = [FULL[0], FULL[2], FULL[3]]


@pytest.fixture
def test_root(tmp_path):
    write_vqav2_test(tmp_path, DEV, FULL)
    return tmp_path


# ------------------------------------------------------------------ test-dev loader
def test_testdev_loader_reads_llava_layout(test_root):
    samples = get_loader("vqav2", "local")(test_root)
    assert [s.question_id for s in samples] == [262144000, 262144002, 393225000]
    assert samples[1].question == "How many dogs are there?" + SHORT  # verbatim, suffix included
    assert samples[0].image == test_root / "vqav2" / "test2015" / "COCO_test2015_000000262144.jpg"
    assert samples[0].target is None
    # One shared reference to the full list; it resolves to the test2015 ids in file order.
    ref = samples[0].meta["submission_split"]
    assert all(s.meta["submission_split"] is ref for s in samples)
    assert loader.submission_question_ids(ref) == tuple(r["question_id"] for r in FULL)
    # The benchmark folder itself is accepted as the data root too.
    assert len(loader.load_testdev_local(test_root / "vqav2")) == 3


def test_testdev_loader_errors_name_file_and_line(tmp_path):
    stray = vqav2_line(999, 1, "Not in test2015?")
    write_vqav2_test(tmp_path, [DEV[0], stray], FULL)
    with pytest.raises(DataError, match=r"test-dev2015\.jsonl:2: question_id 999 is not in"):
        loader.load_testdev_local(tmp_path)
    # A string id: the upload needs integer ids.
    write_jsonl(tmp_path / "vqav2" / "llava_vqav2_mscoco_test-dev2015.jsonl",
                [DEV[0], dict(DEV[1], question_id="262144002")])
    with pytest.raises(DataError, match=r"test-dev2015\.jsonl:2: field 'question_id' has type str"):
        loader.load_testdev_local(tmp_path)
    # An image path escaping the data folder.
    write_jsonl(tmp_path / "vqav2" / "llava_vqav2_mscoco_test-dev2015.jsonl",
                [dict(DEV[0], image="../../etc/passwd")])
    with pytest.raises(DataError, match=r"test-dev2015\.jsonl:1: image path .* escapes"):
        loader.load_testdev_local(tmp_path)
    # Malformed JSON line / duplicate id in the full list.
    (tmp_path / "vqav2" / "llava_vqav2_mscoco_test-dev2015.jsonl").write_text(
        json.dumps(DEV[0]) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test-dev2015\.jsonl:2: malformed JSON"):
        loader.load_testdev_local(tmp_path)
    write_jsonl(tmp_path / "vqav2" / "llava_vqav2_mscoco_test2015.jsonl", FULL + [FULL[1]])
    with pytest.raises(DataError, match=r"test2015\.jsonl:6: duplicate question_id 262144001"):
        loader.read_llava_question_ids(tmp_path / "vqav2" / "llava_vqav2_mscoco_test2015.jsonl")


# ------------------------------------------------------------------ submission
def test_submission_is_llava_converter_output(test_root, tmp_path):
    samples = loader.load_testdev_local(test_root)
    preds = {"262144000": "Yes.", "262144002": "Two", "393225000": "The cat."}
    ev = VQAv2SubmissionEvaluator()
    result = ev.score(samples, preds)
    assert result.metrics == {} and result.n == 3
    assert result.per_sample["262144002"] == {"target": None, "score": None, "parsed": "2"}
    paths = ev.write_submission(samples, preds, tmp_path / "out")
    assert paths == [tmp_path / "out" / SUBMISSION_FILE]
    # Every test2015 id in file order; m4c answers ("Yes." -> "yes", "Two" -> "2",
    # "The cat." -> "cat"), "" for the questions not run; json.dump default formatting.
    expected = ('[{"question_id": 262144000, "answer": "yes"}, {"question_id": 262144001, "answer": ""}, '
                '{"question_id": 262144002, "answer": "2"}, {"question_id": 393225000, "answer": "cat"}, '
                '{"question_id": 393225001, "answer": ""}]')
    assert paths[0].read_text(encoding="utf-8") == expected
    all_ids = [json.loads(line)["question_id"] for line in
               (test_root / "vqav2" / "llava_vqav2_mscoco_test2015.jsonl").read_text().splitlines()]
    assert validate_vqav2_submission(paths[0], all_ids) == 5
    assert not list((tmp_path / "out").glob(".*tmp"))  # atomic write left no temporary file


def test_limited_run_still_gets_a_complete_upload(test_root, tmp_path):
    samples = loader.load_testdev_local(test_root)[:1]  # what --limit 1 keeps
    path, = VQAv2SubmissionEvaluator().write_submission(samples, {"262144000": "no"}, tmp_path)
    rows = json.loads(path.read_text())
    assert [r["answer"] for r in rows] == ["no", "", "", "", ""]
    assert VQAv2SubmissionEvaluator().write_submission([], {}, tmp_path) == []


def test_build_refuses_ids_outside_the_full_list(test_root):
    samples = loader.load_testdev_local(test_root)
    with pytest.raises(DataError, match="not in the test2015 list"):
        build_vqav2_submission(samples, {}, [262144000, 262144002])  # 393225000 missing


@pytest.mark.parametrize("payload, message", [
    ({"question_id": 1}, "expected a JSON list"),
    ([{"question_id": 1, "answer": "a"}, {"question_id": 2, "answer": "b"}], "1 test2015 question"),
    ([{"question_id": "1", "answer": "a"}], "entry 0: question_id '1' is not an integer"),
    ([{"question_id": True, "answer": "a"}], "entry 0: question_id True is not an integer"),
    ([{"question_id": 1, "answer": 2}], "entry 0: answer for question 1 is not a string"),
    ([{"question_id": 1, "answer": "a", "x": 1}], "entry 0: expected an object with exactly"),
    ([{"question_id": 1, "answer": "a"}, {"question_id": 1, "answer": "a"}], "entry 1: question_id 1 appears twice"),
    ([{"question_id": 9, "answer": "a"}], "entry 0: question_id 9 is not a test2015 question"),
])
def test_validator_rejects_schema_errors(tmp_path, payload, message):
    path = tmp_path / "upload.json"
    path.write_text(json.dumps(payload))
    ids = [1] if message != "1 test2015 question" else [1, 2, 3]
    with pytest.raises(DataError, match=message) as err:
        validate_vqav2_submission(path, ids)
    assert str(path) in str(err.value)


# ------------------------------------------------------------------ val2014: data
# (question id, image id, answers, answer type, prediction, expected score, expected raw score)
VAL_CASES = [
    # Unanimous "yes": no normalisation; m4c "Yes." -> "yes" matches all 10 -> 1.0.
    # Raw API: "Yes." vs "yes" (exact compare) differs -> 0.0.
    (1001, 11, ["yes"] * 10, "yes/no", "Yes.", 1.0, 0.0),
    # Disagreeing answers: 2 x "no" -> k = 2 -> 0.6 (either way).
    (1002, 11, ["no"] * 2 + ["yes"] * 8, "yes/no", "No", 0.6, 0.6),
    # "two" -> "2" on both sides (answers disagree): 6 x "2" -> 1.0.
    (1003, 12, ["2"] * 3 + ["two"] * 3 + ["3"] * 4, "number", "Two", 1.0, 1.0),
    # GT "1,000" has digit-comma-digit -> every mark deleted -> "1000"; "one thousand" ->
    # "1 thousand". 3 x "1000" -> 0.9. m4c deletes the comma of the prediction.
    (1004, 12, ["1,000"] * 2 + ["1000"] + ["one thousand"] * 7, "number", "1,000", 0.9, 0.9),
    # m4c splits "'s": "dog's" -> "dog 's", which no processed GT equals -> 0.0.
    # Raw: "dog's" equals 2 GT answers -> 0.6.
    (1005, 13, ["dog's"] * 2 + ["dog"] * 8, "other", "dog's", 0.0, 0.6),
    # "-" without a neighbouring space becomes a space: "t-shirt" -> "t shirt", 4 of them -> 1.0.
    (1006, 13, ["t-shirt"] * 4 + ["shirt"] * 6, "other", "T-Shirt", 1.0, 1.0),
    # Articles and the period go: "The cat." -> "cat"; GT "a cat" -> "cat": 3 x "cat" -> 0.9.
    (1007, 14, ["a cat"] + ["cat"] * 2 + ["cats"] * 7, "other", "The cat.", 0.9, 0.9),
    # Unanimous "Red": no processing and an exact, case-sensitive compare (vqaEval.py L98, L107):
    # m4c lower-cases the prediction to "red" -> 0.0; the raw "Red" matches -> 1.0. (A
    # mismatch with the official VQAv2-val scores was this case, which we used to score 1.0.)
    (1008, 14, ["Red"] * 10, "other", "Red", 0.0, 1.0),
]


@pytest.fixture
def val_root(tmp_path):
    questions = [vqa_question(q, img, f"Question {q}?") for q, img, *_ in VAL_CASES]
    annotations = [vqa_annotation(q, img, answers, atype) for q, img, answers, atype, *_ in VAL_CASES]
    write_vqav2_val(tmp_path, questions, annotations[::-1])  # join is by id, not position
    return tmp_path


def test_val_loader_reads_official_files(val_root):
    samples = get_loader("vqav2_val", "local")(val_root)
    assert [s.question_id for s in samples] == [c[0] for c in VAL_CASES]
    assert samples[0].question == "Question 1001?" + SHORT
    assert samples[0].image == val_root / "vqav2" / "val2014" / "COCO_val2014_000000000011.jpg"
    assert samples[3].target == {"answers": VAL_CASES[3][2], "answer_type": "number", "question_type": "what"}


def test_val_scoring_m4c_then_official_api(val_root):
    samples = loader.load_val_local(val_root)
    preds = {str(c[0]): c[4] for c in VAL_CASES}
    result = VQAv2ValEvaluator().score(samples, preds)
    for qid, *_, expected, _raw in VAL_CASES:
        assert result.per_sample[str(qid)]["score"] == pytest.approx(expected), qid
    # yes/no (1 + 0.6)/2 = 0.8; number (1 + 0.9)/2 = 0.95; other (0 + 1 + 0.9 + 0)/4 = 0.475;
    # overall 5.4/8 = 0.675.
    assert result.metrics == pytest.approx({"accuracy": 67.5, "yes/no": 80.0, "number": 95.0, "other": 47.5})
    assert result.n == 8
    row = result.per_sample["1005"]
    assert row["parsed"] == "dog 's" and row["compared"] == "dog 's" and row["answer_type"] == "other"
    assert row["target"] == ["dog's"] * 2 + ["dog"] * 8


def test_val_scoring_without_submission_processor(val_root):
    samples = loader.load_val_local(val_root)
    preds = {str(c[0]): c[4] for c in VAL_CASES}
    result = VQAv2ValEvaluator(submission_processor=False).score(samples, preds)
    for qid, *_, raw in VAL_CASES:
        assert result.per_sample[str(qid)]["score"] == pytest.approx(raw), qid
    # yes/no (0 + 0.6)/2 = 0.3; number 0.95; other (0.6 + 1 + 0.9 + 1)/4 = 0.875; overall 6.0/8.
    assert result.metrics == pytest.approx({"accuracy": 75.0, "yes/no": 30.0, "number": 95.0, "other": 87.5})


def test_val_types_without_questions_are_none_and_missing_predictions_fail(val_root):
    samples = loader.load_val_local(val_root)[:2]  # two yes/no questions only
    result = VQAv2ValEvaluator().score(samples, {"1001": "yes", "1002": "yes"})
    # 1001: 1.0; 1002: "yes" is given by 8 annotators -> 1.0.
    assert result.metrics == {"accuracy": 100.0, "yes/no": 100.0, "number": None, "other": None}
    with pytest.raises(DataError, match="no prediction for 1 vqav2_val"):
        VQAv2ValEvaluator().score(samples, {"1001": "yes"})


def test_val_loader_errors(tmp_path):
    q = [vqa_question(1, 5, "A?"), vqa_question(2, 5, "B?")]
    a = [vqa_annotation(1, 5, ["x"] * 10, "other")]
    write_vqav2_val(tmp_path, q, a)
    with pytest.raises(DataError, match=r"annotations\.json: no annotation for question_id 2"):
        loader.load_val_local(tmp_path)
    write_vqav2_val(tmp_path, q[:1], a + [vqa_annotation(3, 5, ["x"] * 10, "other")])
    with pytest.raises(DataError, match="1 annotation.* have no question"):
        loader.load_val_local(tmp_path)
    write_vqav2_val(tmp_path, q[:1], [vqa_annotation(1, 5, ["x"] * 10, "color")])
    with pytest.raises(DataError, match="answer_type 'color' is not one of"):
        loader.load_val_local(tmp_path)
    write_vqav2_val(tmp_path, [q[0], q[0]], a)
    with pytest.raises(DataError, match=r"questions\[1\]: duplicate question_id 1"):
        loader.load_val_local(tmp_path)
    (tmp_path / "vqav2" / "v2_OpenEnded_mscoco_val2014_questions.json").write_text('{"questions": [\n  {]}')
    with pytest.raises(DataError, match=r"questions\.json:2: malformed JSON"):
        loader.load_val_local(tmp_path)


# ------------------------------------------------------------------ HF source
def test_hf_loaders_match_local(tmp_path, val_root, test_root):
    ann = {a["question_id"]: a for a in json.loads(
        (val_root / "vqav2" / "v2_mscoco_val2014_annotations.json").read_text())["annotations"]}
    val_rows = [vqav2_hf_row(q, img, f"Question {q}?", ann[q]) for q, img, *_ in VAL_CASES]
    dev_rows = [vqav2_hf_row(r["question_id"], 1, r["text"][: -len(SHORT)]) for r in DEV]
    full_rows = [vqav2_hf_row(r["question_id"], 1, r["text"][: -len(SHORT)]) for r in FULL]
    hf = write_vqav2_hf(tmp_path / "hf", {"validation": val_rows, "testdev": dev_rows, "test": full_rows})

    local_val = loader.load_val_local(val_root)
    hf_val = get_loader("vqav2_val", "hf")(str(hf))
    assert [(s.question_id, s.question, s.target) for s in hf_val] == \
        [(s.question_id, s.question, s.target) for s in local_val]
    assert isinstance(hf_val[0].image, bytes)
    preds = {str(c[0]): c[4] for c in VAL_CASES}
    assert VQAv2ValEvaluator().score(hf_val, preds).metrics == VQAv2ValEvaluator().score(local_val, preds).metrics

    local_dev = loader.load_testdev_local(test_root)
    hf_dev = get_loader("vqav2", "hf")(str(hf))
    assert [(s.question_id, s.question) for s in hf_dev] == [(s.question_id, s.question) for s in local_dev]
    # The upload from the HF source lists the HF test split's ids: same bytes as from the local source.
    preds = {"262144000": "Yes.", "262144002": "Two", "393225000": "The cat."}
    ev = VQAv2SubmissionEvaluator()
    hf_file, = ev.write_submission(hf_dev, preds, tmp_path / "hf_out")
    local_file, = ev.write_submission(local_dev, preds, tmp_path / "local_out")
    assert hf_file.read_bytes() == local_file.read_bytes()
    # ... or the ids of a given local test2015 JSONL.
    alt = loader.load_testdev_hf(str(hf), test_question_file=test_root / "vqav2" / "llava_vqav2_mscoco_test2015.jsonl")
    assert alt[0].meta["submission_split"]["kind"] == "llava_jsonl"
    assert ev.write_submission(alt, preds, tmp_path / "alt")[0].read_bytes() == local_file.read_bytes()


def test_hf_row_errors_name_the_row(tmp_path):
    bad = vqav2_hf_row(7, 1, "Q?", {"answers": [{"answer": "a", "answer_confidence": "yes", "answer_id": 1}],
                                    "answer_type": "colour", "question_type": "what"})
    hf = write_vqav2_hf(tmp_path / "hf", {"validation": [bad]})
    with pytest.raises(DataError, match=r"\[validation\] row 0: answer_type 'colour'"):
        loader.load_val_hf(str(hf))


# ------------------------------------------------------------------ toy layout
def test_toy_layout_loads_and_submits(tmp_path):
    generate_toy_data(tmp_path, seed=0, n_per_task=6, benchmarks=["vqav2"], n_pretrain=0, n_instruct=0)
    root = tmp_path / "eval"
    dev = loader.load_testdev_local(root)
    val = loader.load_val_local(root)
    assert len(dev) == 6 and len(val) == 6
    assert all(s.image.is_file() for s in dev + val)
    path, = VQAv2SubmissionEvaluator().write_submission(dev, {s.key: "yes" for s in dev}, tmp_path / "out")
    full = loader.read_llava_question_ids(root / "vqav2" / "llava_vqav2_mscoco_test2015.jsonl")
    assert validate_vqav2_submission(path, full) == len(full) > len(dev)
    # Answering with the first annotator's answer scores > 0 on every question.
    result = VQAv2ValEvaluator().score(val, {s.key: s.target["answers"][0] for s in val})
    assert all(r["score"] > 0 for r in result.per_sample.values())


def test_cli_score_vqav2_val_with_and_without_submission_processor(val_root, capsys, tmp_path):
    # `score --task vqav2_val` = m4c then the API; the documented switch
    # `--no-submission-processor` = the API on the raw text (same numbers as the evaluator's).
    from .faults_support import run_cli

    answers = tmp_path / "answers.jsonl"
    write_jsonl(answers, [{"question_id": c[0], "prompt": "", "text": c[4]} for c in VAL_CASES])
    base = ["score", "--task", "vqav2_val", "--answers", answers, "--data-root", val_root, "--json"]
    code, out, _ = run_cli(capsys, base)
    assert code == 0 and json.loads(out)["metrics"]["accuracy"] == pytest.approx(67.5)
    code, out, _ = run_cli(capsys, base + ["--no-submission-processor"])
    assert code == 0 and json.loads(out)["metrics"]["accuracy"] == pytest.approx(75.0)
    code, _, err = run_cli(capsys, ["score", "--task", "gqa", "--answers", answers, "--data-root", val_root,
                                    "--no-submission-processor"])
    assert code != 0 and "--no-submission-processor applies to vqav2_val and vizwiz_val" in err
