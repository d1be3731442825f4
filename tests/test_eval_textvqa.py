"""TextVQA: loaders (LLaVA OCR layout, lmms-lab parquet), the prompt join and m4c scoring."""
import pytest

from aligngpt.data.base import get_loader
from aligngpt.tasks.textvqa.loader import build_prompt, load_hf, load_local, prompt_question
from aligngpt.errors import DataError
from aligngpt.evaluators import get_evaluator
from aligngpt.tasks.textvqa.evaluator import TextVQAEvaluator, predictions_from_llava_answers

from .builders_sqa_textvqa_seed import (
    textvqa_annotation, textvqa_line, write_jsonl, write_textvqa_hf, write_textvqa_local,
)

S = "\nAnswer the question using a single word or phrase."

ANNOTATIONS = [
    textvqa_annotation(34602, "003a8ae2ef43b901", "what is the brand of this camera?",
                       ["dakota"] * 3 + ["dakota digital"] * 7),
    textvqa_annotation(34603, "003a8ae2ef43b901", "what does the small white text spell?",
                       ["copenhagen"] * 2 + ["thursday"] * 8),
    # Two identical questions on one image: the official lookup keeps only the last one.
    textvqa_annotation(34610, "00685bc495504d61", "what number is on the jersey?",
                       ["22"] * 10),
    textvqa_annotation(34611, "00685bc495504d61", "what number is on the jersey?",
                       ["23"] * 10),
    textvqa_annotation(34700, "0a1b2c3d4e5f6a7b", "what time is it?",
                       ["5:00"] * 4 + ["five"] * 6),
]

LINES = [
    textvqa_line("003a8ae2ef43b901", "What is the brand of this camera?\nReference OCR token: "
                 "DAKOTA, DIGITAL, Single-Use, Camera, Pire, digitat" + S),
    # OCR line first: the question is on line 2.
    textvqa_line("003a8ae2ef43b901", "Reference OCR token: COPENHAGEN\n"
                 "What does the small white text spell?" + S),
    textvqa_line("00685bc495504d61", "What number is on the jersey?\nReference OCR token: 22" + S),
    textvqa_line("00685bc495504d61", "What number is on the jersey?\nReference OCR token: 22" + S),
    # No OCR tokens: two lines.
    textvqa_line("0a1b2c3d4e5f6a7b", "What time is it?" + S),
]


@pytest.fixture
def tv_root(tmp_path):
    write_textvqa_local(tmp_path, ANNOTATIONS, LINES)
    return tmp_path


# ------------------------------------------------------------------ prompt handling
def test_prompt_question_branches():
    assert prompt_question("What is it?\nReference OCR token: A, B" + S) == "what is it?"
    assert prompt_question("Reference OCR token: A\nWhat IS it?" + S) == "what is it?"
    assert prompt_question("What is it?" + S) == "what is it?"
    old = "OCR tokens: A B. Question: What is it? Short answer: x"
    assert prompt_question(old) == "what is it?"
    with pytest.raises(ValueError):
        prompt_question("one line only")
    with pytest.raises(ValueError):
        prompt_question("OCR tokens: A B. no question here")
    with pytest.raises(ValueError):  # 3 lines without the OCR marker: the official assert
        prompt_question("a\nb\nc")


def test_build_prompt_matches_llava_file_format():
    assert build_prompt("what is the brand of this camera?",
                        ["DAKOTA", "DIGITAL", "Single-Use", "Camera", "Pire", "digitat"]) == \
        LINES[0]["text"]
    # Only the first letter is upper-cased (no .capitalize()); no OCR line without tokens.
    assert build_prompt("what time is it on the BBC?", []) == "What time is it on the BBC?" + S


# ------------------------------------------------------------------ local loader
def test_local_loader_joins_like_eval_textvqa(tv_root):
    samples = get_loader("textvqa", "local")(tv_root)
    # Ids are the TextVQA question ids; the k-th duplicate line takes the k-th annotation.
    assert [s.question_id for s in samples] == [34602, 34603, 34610, 34611, 34700]
    assert samples[0].question == LINES[0]["text"]
    assert samples[0].meta["answer_question_id"] == "003a8ae2ef43b901"
    assert samples[0].image == tv_root / "textvqa" / "train_images" / "003a8ae2ef43b901.jpg"
    assert samples[1].target[0] == "copenhagen"
    # Official quirk: both duplicate lines are scored against the LAST annotation ("23").
    assert samples[2].target == ["23"] * 10 and samples[3].target == ["23"] * 10
    own = load_local(tv_root, collapse_duplicates=False)
    assert own[2].target == ["22"] * 10 and own[3].target == ["23"] * 10


def test_scoring_m4c_accuracy(tv_root):
    samples = load_local(tv_root)
    preds = {
        "34602": "Dakota",       # "dakota": 3 of 10 answers -> 0.9
        "34603": "Thursday.",    # "thursday": 8 of 10 -> 1.0
        "34610": "22",           # gold collapsed to "23" x10 -> 0.0
        "34611": "23",           # 10 of 10 -> 1.0
        "34700": "Five",         # "five" -> "5" on both sides: 6 of 10 -> 1.0
    }
    result = get_evaluator("textvqa").score(samples, preds)
    # (0.9 + 1 + 0 + 1 + 1) / 5 = 0.78 -> 78.0
    assert result.metrics["accuracy"] == pytest.approx(78.0)
    assert result.n == 5
    assert result.per_sample["34700"]["parsed"] == "5"
    row = result.per_sample["34602"]
    assert row["target"] == ["dakota"] * 3 + ["dakota digital"] * 7
    assert row["parsed"] == "dakota"
    assert row["score"] == pytest.approx(0.9)
    # Without the official collapse the first jersey line is scored on its own answers ("22").
    own = TextVQAEvaluator().score(load_local(tv_root, collapse_duplicates=False), preds)
    assert own.metrics["accuracy"] == pytest.approx((0.9 + 1 + 1 + 1 + 1) / 5 * 100)
    with pytest.raises(DataError, match="no prediction for 1 TextVQA"):
        TextVQAEvaluator().score(samples, {k: v for k, v in preds.items() if k != "34700"})


def test_llava_answer_rows_map_to_sample_keys(tv_root):
    samples = load_local(tv_root)
    rows = [{"question_id": line["question_id"], "prompt": line["text"], "text": f"ans{i}",
             "answer_id": "x", "model_id": "m", "metadata": {}} for i, line in enumerate(LINES)]
    assert predictions_from_llava_answers(samples, rows) == {
        "34602": "ans0", "34603": "ans1", "34610": "ans2", "34611": "ans3", "34700": "ans4"}
    assert TextVQAEvaluator.predictions_from_answers(samples, rows[::-1])["34611"] == "ans2"
    with pytest.raises(DataError, match="no unanswered TextVQA question"):
        predictions_from_llava_answers(samples, rows + [rows[0]])


def test_local_loader_errors(tmp_path, tv_root):
    with pytest.raises(DataError, match="file not found"):
        load_local(tmp_path / "missing")
    qfile = tv_root / "textvqa" / "llava_textvqa_val_v051_ocr.jsonl"
    qfile.write_text(qfile.read_text() + '{"question_id": "abc", "text": \n')
    with pytest.raises(DataError, match=r"llava_textvqa_val_v051_ocr.jsonl:6: malformed JSON"):
        load_local(tv_root)
    write_jsonl(qfile, LINES + [textvqa_line("003a8ae2ef43b901", "Who made it?" + S)])
    with pytest.raises(DataError, match=r"jsonl:6: no annotation .* 'who made it\?'"):
        load_local(tv_root)
    write_jsonl(qfile, LINES + [LINES[0]])   # a third copy of a question that exists once
    with pytest.raises(DataError, match=r"jsonl:6: .* appears more often"):
        load_local(tv_root)
    write_jsonl(qfile, [textvqa_line("003a8ae2ef43b901", "a\nb\nc\nd")])
    with pytest.raises(DataError, match=r"jsonl:1: cannot find the question"):
        load_local(tv_root)


def test_annotation_file_shape_is_checked(tmp_path, tv_root):
    (tv_root / "textvqa" / "TextVQA_0.5.1_val.json").write_text('{"questions": []}')
    with pytest.raises(DataError, match="TextVQA_0.5.1_val.json: expected an object with a 'data' list"):
        load_local(tv_root)


def test_annotation_with_nine_answers_is_refused(tmp_path):
    bad = [textvqa_annotation(1, "img", "what?", ["x"] * 9)]
    write_textvqa_local(tmp_path, bad, [textvqa_line("img", "What?" + S)])
    with pytest.raises(DataError, match=r"data\[0\]: expected 10 answer strings"):
        load_local(tmp_path)


# ------------------------------------------------------------------ HF source
def test_hf_loader_builds_the_same_prompts(tmp_path, tv_root):
    rows = [
        {"image_id": "003a8ae2ef43b901", "question_id": 34602,
         "question": "what is the brand of this camera?", "answers": ANNOTATIONS[0]["answers"],
         "ocr_tokens": ["DAKOTA", "DIGITAL", "Single-Use", "Camera", "Pire", "digitat"]},
        {"image_id": "0a1b2c3d4e5f6a7b", "question_id": 34700, "question": "what time is it?",
         "answers": ANNOTATIONS[4]["answers"], "ocr_tokens": []},
    ]
    folder = write_textvqa_hf(tmp_path / "hf", rows)
    samples = load_hf(str(folder), cache_dir=str(tmp_path / "cache"))
    local = {s.question_id: s for s in load_local(tv_root)}
    for s in samples:
        assert s.question == local[s.question_id].question
        assert s.target == local[s.question_id].target
        assert isinstance(s.image, bytes)
    result = TextVQAEvaluator().score(samples, {"34602": "dakota digital", "34700": "5:00"})
    # "dakota digital": 7 of 10 -> 1.0; "5:00": 4 of 10 -> 1.0 -> 100.
    assert result.metrics["accuracy"] == pytest.approx(100.0)
