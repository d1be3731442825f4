"""SEED-Bench image: loaders (LLaVA layout, lmms-lab parquet) and convert_seed_for_submission scoring."""
import logging

import pytest

from aligngpt.data.base import get_loader
from aligngpt.tasks.seed_image.loader import SEED_QUESTION_TYPES, load_hf, load_local, official_id
from aligngpt.errors import DataError
from aligngpt.evaluators import get_evaluator
from aligngpt.tasks.seed_image.evaluator import SEEDImageEvaluator

from .builders_sqa_textvqa_seed import (
    seed_line, seed_prompt, seed_question, write_jsonl, write_seed_hf, write_seed_local,
)

# Image questions in dimensions 1 (x2), 2 (x1), 5 (x3); video questions in 10 and 12.
IMAGE_QS = [
    seed_question("1001", 1, "A"), seed_question("1002", 1, "B"),
    seed_question("2001", 2, "C"),
    seed_question("5001", 5, "D"), seed_question("5002", 5, "A"), seed_question("5003", 5, "B"),
]
VIDEO_QS = [seed_question("v10", 10, "A"), seed_question("v12", 12, "B")]
# In LLaVA's question file but absent from the (re-screened) annotation file.
STALE_VIDEO = seed_question("v99", 11, "C")


@pytest.fixture
def seed_root(tmp_path):
    lines = [seed_line(q) for q in IMAGE_QS + VIDEO_QS + [STALE_VIDEO]]
    write_seed_local(tmp_path, IMAGE_QS + VIDEO_QS, lines)
    return tmp_path


def test_official_id():
    assert official_id("101669") == 101669 and official_id(101669) == 101669
    assert official_id("v1738") == "v1738"


# ------------------------------------------------------------------ local loader
def test_local_loader_keeps_image_questions_only(seed_root, caplog):
    with caplog.at_level(logging.WARNING):
        samples = get_loader("seed_image", "local")(seed_root)
    # Video questions (data_type "video") and the unannotated line are not loaded.
    assert [s.question_id for s in samples] == [1001, 1002, 2001, 5001, 5002, 5003]
    assert "1 lines have no annotation" in caplog.text
    s = samples[3]
    assert s.question == seed_prompt(IMAGE_QS[3])
    assert s.question.endswith("\nD. Four\nAnswer with the option's letter from the given "
                               "choices directly.")
    assert s.image == seed_root / "seed_bench" / "SEED-Bench-image" / "5001_2591111986"
    assert s.target == "D"
    assert s.meta == {"question_type_id": 5, "dimension": "Instances Counting",
                      "data_type": "image"}


def test_local_loader_dimension_names_come_from_the_json(tmp_path):
    # A SEED-Bench.json with the 2024-05 names (ids 3 and 4 swapped): the file's names win.
    q = seed_question("3001", 3, "A")
    write_seed_local(tmp_path, [q], [seed_line(q)])
    path = tmp_path / "seed_bench" / "SEED-Bench.json"
    path.write_text(path.read_text().replace('"Instance Attributes": 3', '"Instance Attributes": 4')
                    .replace('"Instance Location": 4', '"Instance Location": 3'))
    assert load_local(tmp_path)[0].meta["dimension"] == "Instance Location"


def test_annotation_type_ids_must_be_named(tmp_path):
    q = seed_question("1301", 13, "A", data_type="image")      # no id 13 in question_type
    write_seed_local(tmp_path, [q], [])
    with pytest.raises(DataError, match=r"questions\[0\]: question_type_id 13 not in"):
        load_local(tmp_path)


def test_local_loader_strictness_and_errors(tmp_path, seed_root):
    qfile = seed_root / "seed_bench" / "llava-seed-bench.jsonl"
    write_jsonl(qfile, [seed_line(q) for q in IMAGE_QS[1:]])
    with pytest.raises(DataError, match="1 image questions of SEED-Bench.json are missing .*1001"):
        load_local(seed_root)
    assert len(load_local(seed_root, strict=False)) == 5
    write_jsonl(qfile, [seed_line(q) for q in IMAGE_QS + [IMAGE_QS[0]]])
    with pytest.raises(DataError, match=r"jsonl:7: duplicate question_id 1001"):
        load_local(seed_root)
    write_jsonl(qfile, [seed_line(q) for q in IMAGE_QS])
    qfile.write_text(qfile.read_text() + "{not json\n")
    with pytest.raises(DataError, match=r"llava-seed-bench.jsonl:7: malformed JSON"):
        load_local(seed_root)
    with pytest.raises(DataError, match="llava-seed-bench.jsonl: file not found"):
        load_local(tmp_path / "elsewhere")


# ------------------------------------------------------------------ scoring
PREDICTIONS = {
    "1001": "A",          # right
    "1002": "B.",         # gold B, but exact match only -> wrong
    "2001": "C",          # right
    "5001": "D",          # right
    "5002": "A) One",     # wrong under exact match
    "5003": "b",          # case matters -> wrong
}


def test_scoring_exact_match(seed_root):
    samples = load_local(seed_root)
    result = get_evaluator("seed_image").score(samples, PREDICTIONS)
    # 3 of 6 right -> 50.0. Per dimension: Scene 1/2 -> 50, Identity 1/1 -> 100,
    # Counting 1/3 -> 33.33; listed in question-type-id order.
    assert result.metrics["image_accuracy"] == pytest.approx(50.0)
    assert list(result.metrics["dimensions"]) == ["Scene Understanding", "Instance Identity",
                                                  "Instances Counting"]
    assert result.metrics["dimensions"] == pytest.approx(
        {"Scene Understanding": 50.0, "Instance Identity": 100.0, "Instances Counting": 100 / 3})
    assert result.per_sample["1002"] == {"target": "B", "parsed": "B.", "score": 0.0,
                                         "dimension": "Scene Understanding"}
    assert result.n == 6


def test_llava_answer_file_rows(seed_root):
    samples = load_local(seed_root)
    rows = [{"question_id": line["question_id"], "prompt": line["text"], "text": "A"}
            for line in (seed_line(q) for q in IMAGE_QS + VIDEO_QS + [STALE_VIDEO])]
    rows.append({"question_id": 1002, "prompt": "", "text": "B"})   # a later row wins
    preds = SEEDImageEvaluator.predictions_from_answers(samples, rows)
    # Video and unannotated rows are ignored; ids are our sample keys.
    assert preds == {"1001": "A", "1002": "B", "2001": "A", "5001": "A", "5002": "A", "5003": "A"}
    with pytest.raises(DataError, match="answer row 0"):
        SEEDImageEvaluator.predictions_from_answers(samples, [{"text": "A"}])


def test_first_char_option_is_explicit(seed_root):
    samples = load_local(seed_root)
    result = SEEDImageEvaluator(first_char=True).score(samples, PREDICTIONS)
    # "B." -> "B" right, "A) One" -> "A" right, "b" stays "b" wrong: 5 of 6 -> 83.33.
    assert result.metrics["image_accuracy"] == pytest.approx(500 / 6)
    with pytest.raises(DataError, match="no prediction for 1 SEED-Bench"):
        SEEDImageEvaluator().score(samples, {k: v for k, v in PREDICTIONS.items() if k != "5003"})


# ------------------------------------------------------------------ HF source
def test_hf_loader_filters_video_and_matches_local(tmp_path, seed_root):
    folder = write_seed_hf(tmp_path / "hf", IMAGE_QS + VIDEO_QS)
    samples = get_loader("seed_image", "hf")(str(folder), cache_dir=str(tmp_path / "cache"))
    local = load_local(seed_root)
    assert [s.question_id for s in samples] == [s.question_id for s in local]
    assert [s.question for s in samples] == [s.question for s in local]
    assert [s.target for s in samples] == [s.target for s in local]
    assert [s.meta for s in samples] == [s.meta for s in local]
    assert all(isinstance(s.image, bytes) for s in samples)
    assert SEED_QUESTION_TYPES[3] == "Instance Attributes"
    renamed = load_hf(str(folder), cache_dir=str(tmp_path / "cache"),
                      type_names={**SEED_QUESTION_TYPES, 5: "Counting"})
    assert renamed[3].meta["dimension"] == "Counting"


def test_dimension_without_a_right_answer_scores_zero_where_the_official_script_crashes():
    # LLaVA scripts/convert_seed_for_submission.py L40 reads correct_counts[data_type], which is
    # only set by a hit or a missing answer: an all-wrong dimension raises KeyError there (seen
    # when building tests/data/official_vectors/seed_image). Documented deviation: 0.0.
    from aligngpt.data.base import Sample

    samples = [Sample(question_id=1, question="", target="A", meta={"question_type_id": 2, "dimension": "Instance Identity"}),
               Sample(question_id=2, question="", target="B", meta={"question_type_id": 1, "dimension": "Scene Understanding"})]
    result = SEEDImageEvaluator().score(samples, {"1": "B", "2": "B"})
    assert result.metrics["dimensions"] == {"Scene Understanding": 100.0, "Instance Identity": 0.0}
    assert result.metrics["image_accuracy"] == 50.0
