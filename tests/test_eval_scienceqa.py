"""ScienceQA-IMG: loaders (LLaVA layout, lmms-lab parquet) and LLaVA's eval_science_qa.py scoring."""
import json

import pytest

from aligngpt.data.base import get_loader
from aligngpt.tasks.scienceqa_img.loader import SQA_SUFFIX, load_hf, load_local
from aligngpt.errors import DataError
from aligngpt.evaluators import get_evaluator
from aligngpt.tasks.scienceqa_img.evaluator import ScienceQAEvaluator, choice_index, parse_letter

from .builders_sqa_textvqa_seed import sqa_problem, write_sqa_hf, write_sqa_local

SUFFIX = "\nAnswer with the option's letter from the given choices directly."

# Six test problems: 4 with an image, 2 text-only; 2 to 5 choices; with and without a hint.
PROBLEMS = {
    "4": sqa_problem("Which of these states is farthest north?",
                     ["West Virginia", "Louisiana", "Arizona", "Oklahoma"], 0, image="image.png"),
    "5": sqa_problem("Which tense does the sentence use?", ["past", "present", "future"], 1,
                     hint="Mona will print her name.", image="image.png"),
    "11": sqa_problem("Is this a solid or a liquid?", ["solid", "liquid"], 0, image="image.png"),
    "12": sqa_problem("What is the capital of Utah?", ["Salt Lake City", "Provo", "Ogden",
                                                       "Orem", "Logan"], 4, image="image.png"),
    "20": sqa_problem("Which word would you find on a dictionary page?", ["hurt", "hint"], 1,
                      hint="guide words: hamster - hire"),
    "21": sqa_problem("Select the mammal.", ["koala", "gecko", "trout"], 0),
}


@pytest.fixture
def sqa_root(tmp_path):
    write_sqa_local(tmp_path, PROBLEMS, extra_problems={"1": sqa_problem("q", ["a", "b"], 0,
                                                                         split="train")})
    return tmp_path


# ------------------------------------------------------------------ parsing
@pytest.mark.parametrize("text, letter", [
    ("A", "A"),                       # exact letter
    ("E", "E"),
    ("B. present", "B"),              # "X. " prefix
    ("B.", "FAILED"),                 # length 2: not the prefix form, no regex match
    ("B) present", "FAILED"),
    (" A", "FAILED"),                 # no stripping
    ("a", "FAILED"),                  # lower case is not a letter option
    ("The answer is C.", "C"),        # regex, exactly one match
    ("So. The answer is D!", "D"),    # "." in the regex is any character
    ("The answer is C", "FAILED"),    # no character after the letter
    ("The answer is A. The answer is B.", "FAILED"),  # two matches
    ("The answer is F.", "F"),        # regex captures A-Z
    ("F", "FAILED"),                  # exact-letter branch only knows A-E
])
def test_parse_letter(text, letter):
    assert parse_letter(text) == letter


def test_choice_index():
    assert choice_index("C", 3) == 2
    assert choice_index("D", 3) == -1       # beyond the problem's choices
    assert choice_index("F", 5) == -1
    assert choice_index("FAILED", 5) == -1


# ------------------------------------------------------------------ local loader
def test_local_loader_prompts_images_and_targets(sqa_root):
    samples = get_loader("scienceqa_img", "local")(sqa_root)
    assert [s.question_id for s in samples] == ["4", "5", "11", "12", "20", "21"]
    by_id = {s.key: s for s in samples}
    # Human turn without "<image>", stripped, plus the single-pred suffix.
    assert by_id["5"].question == ("Context: Mona will print her name.\nWhich tense does the "
                                   "sentence use?\nA. past\nB. present\nC. future" + SUFFIX)
    assert by_id["21"].question == "Select the mammal.\nA. koala\nB. gecko\nC. trout" + SUFFIX
    assert by_id["4"].image == sqa_root / "scienceqa" / "images" / "test" / "4" / "image.png"
    assert by_id["4"].image.is_file()
    assert by_id["20"].image is None and by_id["20"].meta["has_image"] is False
    # The answer-file prompt eval_science_qa.py tests for "<image>" (the driver's cur_prompt).
    assert by_id["4"].meta["answer_prompt"] == "<image>\n" + by_id["4"].question
    assert "answer_prompt" not in by_id["20"].meta
    assert by_id["12"].target == {"answer": 4, "n_choices": 5}
    assert SQA_SUFFIX in by_id["12"].question
    # The benchmark folder itself is accepted as data root too.
    assert len(load_local(sqa_root / "scienceqa")) == 6


def test_local_loader_errors(tmp_path, sqa_root):
    with pytest.raises(DataError, match="llava_test_CQM-A.json: file not found"):
        load_local(tmp_path / "nowhere")
    qfile = sqa_root / "scienceqa" / "llava_test_CQM-A.json"
    qfile.write_text('[{"id": "4",\n "conversations": [}]')
    with pytest.raises(DataError, match=r"llava_test_CQM-A.json:2: malformed JSON"):
        load_local(sqa_root)


def test_local_loader_field_checks(tmp_path):
    bad = dict(PROBLEMS)
    bad["21"] = {**PROBLEMS["21"], "answer": True}          # bool is not an answer index
    write_sqa_local(tmp_path, bad)
    with pytest.raises(DataError, match=r"problems.json: problem 21: field 'answer' has type bool"):
        load_local(tmp_path)
    bad["21"] = {**PROBLEMS["21"], "answer": 3}             # only 3 choices
    write_sqa_local(tmp_path, bad)
    with pytest.raises(DataError, match="answer index 3 outside its 3 choices"):
        load_local(tmp_path)


def test_local_loader_requires_every_test_problem(tmp_path):
    write_sqa_local(tmp_path, PROBLEMS, drop_from_questions=("12",))
    with pytest.raises(DataError, match="1 test problems have no prompt .*12"):
        load_local(tmp_path)


def test_local_loader_refuses_foreign_ids_and_escaping_images(tmp_path):
    base = write_sqa_local(tmp_path, PROBLEMS)
    entries = json.loads((base / "llava_test_CQM-A.json").read_text())
    entries.append({"id": "99", "conversations": [{"from": "human", "value": "x"}]})
    (base / "llava_test_CQM-A.json").write_text(json.dumps(entries))
    with pytest.raises(DataError, match=r"entry 6 \(id 99\): not in pid_splits"):
        load_local(tmp_path)
    entries = entries[:-1]
    entries[0]["image"] = "../../secret.png"
    (base / "llava_test_CQM-A.json").write_text(json.dumps(entries))
    with pytest.raises(DataError, match="escapes the data folder"):
        load_local(tmp_path)


# ------------------------------------------------------------------ scoring
def test_scoring_img_and_overall_accuracy(sqa_root):
    samples = load_local(sqa_root)
    predictions = {
        "4": "A",                  # gold A (index 0) -> right            [image]
        "5": "B. present",         # prefix form, gold B -> right         [image]
        "11": "The answer is B.",  # parsed B, gold A -> wrong            [image]
        "12": "E",                 # 5 choices, gold E -> right           [image]
        "20": "C",                 # only 2 choices: C -> -1 -> wrong     [text]
        "21": "The answer is A.",  # regex, gold A -> right               [text]
    }
    result = get_evaluator("scienceqa_img").score(samples, predictions)
    # Image problems: 3 of 4 right -> 75.0; all problems: 4 of 6 right -> 66.67.
    assert result.metrics["img_accuracy"] == pytest.approx(75.0)
    assert result.metrics["accuracy"] == pytest.approx(400 / 6)
    assert result.n == 6
    assert result.per_sample["11"] == {"target": "A", "parsed": "B", "score": 0.0,
                                       "has_image": True}
    assert result.per_sample["20"]["parsed"] == "C" and result.per_sample["20"]["score"] == 0.0
    assert result.per_sample["5"]["score"] == 1.0


def test_scoring_without_image_problems_and_missing_predictions(sqa_root):
    samples = [s for s in load_local(sqa_root) if s.image is None]
    result = ScienceQAEvaluator().score(samples, {"20": "B", "21": "A"})
    # No image problem selected -> img_accuracy None; 2 of 2 right -> 100.
    assert result.metrics == {"img_accuracy": None, "accuracy": 100.0}
    with pytest.raises(DataError, match="no prediction for 1 ScienceQA problems"):
        ScienceQAEvaluator().score(samples, {"20": "B"})


# ------------------------------------------------------------------ HF source
def test_hf_loader_matches_local_prompts(tmp_path, sqa_root):
    folder = write_sqa_hf(tmp_path / "hf", list(PROBLEMS.values()))
    samples = get_loader("scienceqa_img", "hf")(str(folder), cache_dir=str(tmp_path / "cache"))
    local = load_local(sqa_root)
    assert [s.question for s in samples] == [s.question for s in local]
    assert [s.question_id for s in samples] == list(range(6))    # row index: no pid in HF copy
    assert [s.target for s in samples] == [s.target for s in local]
    assert isinstance(samples[0].image, bytes) and samples[0].image.startswith(b"\x89PNG")
    assert samples[4].image is None and samples[4].meta["has_image"] is False
    assert [s.meta for s in samples] == [s.meta for s in local]
    result = ScienceQAEvaluator().score(samples, {str(i): "A" for i in range(6)})
    # "A" is right for problems 4, 11, 21 (gold index 0): image 2 of 4, overall 3 of 6.
    assert result.metrics == pytest.approx({"img_accuracy": 50.0, "accuracy": 50.0})


def test_hf_loader_missing_split(tmp_path):
    folder = write_sqa_hf(tmp_path / "hf", list(PROBLEMS.values()))
    with pytest.raises(DataError, match="no parquet files"):
        load_hf(str(folder), config="ScienceQA-IMG", cache_dir=str(tmp_path / "cache"))
