"""MMBench / MMBench-CN: TSV + HF loaders, OpenCompass choice extraction, circular evaluation,
the judge fallback (real local HTTP server), and the submission xlsx."""
from __future__ import annotations

import base64
import io
import json

import pandas as pd
import pytest
from PIL import Image

import aligngpt.tasks.mmbench.loader  # noqa: F401  (registers the loaders)
from aligngpt.data.base import get_loader
from aligngpt.tasks.mmbench.loader import read_mmbench_tsv
from aligngpt.errors import DataError
from aligngpt.tasks.mmbench.evaluator import (
    MMBenchCNEvaluator, MMBenchEvaluator, build_match_prompt, can_infer, can_infer_option,
    can_infer_text, submission_frame, write_submission_xlsx, xlsx_roundtrip_text,
)
from aligngpt.judge import JudgeClient
from tests.test_judge import FakeJudgeServer, completion

COLUMNS = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image", "source",
           "l2-category", "comment", "split"]
SUFFIX = "Answer with the option's letter from the given choices directly."


def png_b64(color: tuple[int, int, int]) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def rotations(index: int, question: str, options: list[str], answer: int, category: str, l2: str,
              hint: str = "") -> list[dict]:
    """The main row and its circular copies (options rotated left by k, index + k*1e6)."""
    rows = []
    for k in range(len(options)):
        opts = options[k:] + options[:k]
        ans_letter = "ABCD"[(answer - k) % len(options)]
        row = {"index": index + k * 1_000_000, "question": question, "hint": hint, "answer": ans_letter,
               "category": category, "image": png_b64((index * 20 % 255, 0, 0)), "source": "src",
               "l2-category": l2, "comment": "", "split": "dev"}
        for i, letter in enumerate("ABCD"):
            row[letter] = opts[i] if i < len(opts) else ""
        rows.append(row)
    return rows


def write_tsv(path, rows: list[dict], columns=COLUMNS) -> None:
    lines = ["\t".join(columns)]
    lines += ["\t".join(str(r.get(c, "")) for c in columns) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# Eight questions. Predictions are listed per row in index order within each question.
GROUPS = [
    # g0: bare letters, all right
    (rotations(0, "What color is it?", ["red", "green", "blue"], 0, "attribute_recognition", "FP-S",
               hint="Look closely."), ["A", "C", "B"]),
    # g1: main right, copy wrong
    (rotations(1, "Is it big?", ["yes", "no"], 1, "attribute_recognition", "FP-S"), ["B", "B"]),
    # g2: the letter patterns "(C).", bare "B", "A)", then the option-text match ("blue car" = D)
    (rotations(2, "Which fruit?", ["a red apple", "green pear", "blue car", "yellow banana"], 2, "ocr", "FP-S"),
     ["The answer is (C).", "B", "A) because", "I think it is a blue car"]),
    # g3: "A" as an article is skipped, the text match finds "cat"=B; the copy answers C (not an option)
    (rotations(3, "What animal?", ["dog", "cat"], 1, "ocr", "FP-S"), ["A cat is sitting there", "C"]),
    # g4: main unresolved, copy right
    (rotations(4, "What animal is shown?", ["cat", "dog"], 0, "image_scene", "CP"), ["I cannot tell", "B"]),
    # g5: both rows unresolved ("cat or dog" matches two option texts)
    (rotations(5, "Pet?", ["cat", "dog"], 1, "image_scene", "CP"), ["cat or dog", "hmm"]),
    # g6: main wrong by the rules; one unresolved copy, one right copy
    (rotations(6, "Shape?", ["circle", "square", "star"], 0, "image_scene", "CP"), ["C", "no idea", "B"]),
    # g7: two unresolved rows and one right copy
    (rotations(7, "Count?", ["one", "two", "three"], 0, "image_scene", "CP"), ["unsure", "dunno", "B"]),
]


@pytest.fixture()
def mmbench_root(tmp_path):
    rows = [r for rows, _ in GROUPS for r in rows]
    rows.sort(key=lambda r: r["index"] % 1_000_000 * 10 + r["index"] // 1_000_000)  # file order != index order
    (tmp_path / "mmbench").mkdir()
    write_tsv(tmp_path / "mmbench" / "mmbench_dev_20230712.tsv", rows)
    predictions = {}
    for rows_, preds in GROUPS:
        for row, pred in zip(rows_, preds):
            predictions[str(row["index"])] = pred
    return tmp_path, predictions


# --------------------------------------------------------------------------- loader


def test_loader_builds_llava_prompt_and_meta(mmbench_root):
    root, _ = mmbench_root
    samples = get_loader("mmbench", "local")(root)
    by_id = {s.question_id: s for s in samples}
    assert len(samples) == sum(len(r) for r, _ in GROUPS)
    s0 = by_id[0]
    # hint + "\n" + question, options, suffix
    assert s0.question == f"Look closely.\nWhat color is it?\nA. red\nB. green\nC. blue\n{SUFFIX}"
    assert s0.target == "A" and isinstance(s0.image, bytes) and s0.image[:4] == b"\x89PNG"
    # empty hint (NaN) -> no hint line; rotated copy
    c = by_id[1_000_001]
    assert c.question == f"Is it big?\nA. no\nB. yes\n{SUFFIX}" and c.target == "A"
    assert c.meta["group"] == 1 and c.meta["round"] == 1
    assert c.meta["category"] == "attribute_recognition" and c.meta["l2_category"] == "FP-S"
    assert c.meta["options"] == ["no", "yes"] and c.meta["option_char"] == ["A", "B"]
    assert c.meta["choices"] == {"A": "no", "B": "yes"} and c.meta["question_raw"] == "Is it big?"
    assert "image" not in c.meta["row"] and c.meta["row"]["index"] == 1_000_001


def test_option_truncation_quirks(tmp_path):
    # pandas reads "NA" as NaN -> the list stops at C; LLaVA's is_none stops the prompt at a
    # literal "none", while OpenCompass' build_choices (pandas NaN test) still keeps it.
    rows = [{"index": 0, "question": "Q", "hint": "nan", "A": "x", "B": "y", "C": "NA", "D": "z", "answer": "A",
             "image": png_b64((1, 2, 3))},
            {"index": 1, "question": "Q2", "hint": "H", "A": "x", "B": "y", "C": "none", "D": "", "answer": "B",
             "image": png_b64((1, 2, 3))}]
    path = tmp_path / "t.tsv"
    write_tsv(path, rows, ["index", "question", "hint", "A", "B", "C", "D", "answer", "image"])
    s0, s1 = read_mmbench_tsv(path, "cn")
    assert s0.question == "Q\nA. x\nB. y\n请直接回答选项字母。"  # "nan" hint dropped, CN suffix
    assert s0.meta["choices"] == {"A": "x", "B": "y", "D": "z"}
    assert s1.question == "H\nQ2\nA. x\nB. y\n请直接回答选项字母。"
    assert s1.meta["choices"] == {"A": "x", "B": "y", "C": "none"}
    assert s1.meta["category"] is None and s1.meta["split"] is None


def test_image_given_as_index_reference(tmp_path):
    img = png_b64((9, 9, 9))
    rows = [{"index": 5, "question": "Q", "A": "a", "B": "b", "answer": "A", "image": img},
            {"index": 1_000_005, "question": "Q", "A": "b", "B": "a", "answer": "B", "image": "5"}]
    path = tmp_path / "t.tsv"
    write_tsv(path, rows, ["index", "question", "A", "B", "answer", "image"])
    a, b = read_mmbench_tsv(path, "en")
    assert a.image == b.image == base64.b64decode(img)


@pytest.mark.parametrize("bad, message, line", [
    ({"image": "@@not base64@@"}, "base64", 3),
    ({"index": "x1"}, "not an integer", 3),
    ({"index": "0"}, "duplicate index", 3),
    ({"answer": "F"}, "not one of A-D", 3),
    ({"B": ""}, "fewer than two options", 3),
])
def test_loader_errors_name_file_and_line(tmp_path, bad, message, line):
    good = {"index": 0, "question": "Q", "A": "a", "B": "b", "answer": "A", "image": png_b64((0, 0, 0))}
    second = {**good, "index": 1, **bad}
    path = tmp_path / "bad.tsv"
    write_tsv(path, [good, second], ["index", "question", "A", "B", "answer", "image"])
    with pytest.raises(DataError, match=message) as err:
        read_mmbench_tsv(path, "en")
    assert err.value.line == line and str(path) in str(err.value)


def test_loader_missing_file_and_column(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        get_loader("mmbench_cn", "local")(tmp_path)
    path = tmp_path / "t.tsv"
    write_tsv(path, [{"index": 0, "question": "Q", "A": "a"}], ["index", "question", "A"])
    with pytest.raises(DataError, match="missing column"):
        read_mmbench_tsv(path, "en")


def test_cn_loader_falls_back_to_mmbench_cn_folder(tmp_path):
    (tmp_path / "mmbench_cn").mkdir()
    write_tsv(tmp_path / "mmbench_cn" / "mmbench_dev_cn_20231003.tsv",
              rotations(0, "这是什么颜色？", ["红", "绿"], 0, "c", "l"))
    samples = get_loader("mmbench_cn", "local")(tmp_path)
    assert samples[0].question == "这是什么颜色？\nA. 红\nB. 绿\n请直接回答选项字母。"


def test_hf_loader_gives_identical_questions(mmbench_root, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root, _ = mmbench_root
    tsv_samples = get_loader("mmbench", "local")(root)
    frame = pd.read_csv(root / "mmbench" / "mmbench_dev_20230712.tsv", sep="\t", dtype=str, keep_default_na=False)
    # lmms-lab layout: index stored as a string in `en`, "nan" strings for empty cells,
    # `L2-category` capitalised, image as {bytes, path}.
    cols = {c: [v if v != "" else "nan" for v in frame[c]] for c in frame.columns if c not in ("image", "l2-category")}
    cols["L2-category"] = list(frame["l2-category"])
    images = [{"bytes": base64.b64decode(v), "path": None} for v in frame["image"]]
    table = pa.table({**cols, "image": pa.array(images, pa.struct([("bytes", pa.binary()), ("path", pa.string())]))})
    hf_dir = tmp_path / "hf" / "en"
    hf_dir.mkdir(parents=True)
    pq.write_table(table, hf_dir / "dev-00000-of-00001.parquet")
    hf_samples = get_loader("mmbench", "hf")(str(tmp_path / "hf"), cache_dir=str(tmp_path / "cache"))
    assert [(s.question_id, s.question, s.target, s.image) for s in hf_samples] == \
           [(s.question_id, s.question, s.target, s.image) for s in tsv_samples]
    assert [s.meta["choices"] for s in hf_samples] == [s.meta["choices"] for s in tsv_samples]
    assert hf_samples[0].meta["l2_category"] == tsv_samples[0].meta["l2_category"]


# --------------------------------------------------------------------------- choice extraction


@pytest.mark.parametrize("answer, expected", [
    ("B", "B"),                       # (a) one bare letter
    ("E", "E"),                       # E is a valid letter (always wrong: no option E)
    ("A cat sits here", None),        # (a) skipped: "A" may be the article (>3 tokens), no pattern
    ("A is right", "A"),              # (a) "A" with exactly 3 tokens is taken
    ("A or B", None),                 # two bare letters, no pattern matches
    ("B. blue", "B"), ("C, sure", "C"), ("D: yes", "D"), ("so A) ok", "A"), ("it is B).", "B"),
    ("(C) right", "C"), ("is (D).", "D"), ("answer :A", "A"), ("answer :B,", "B"),
    ("answer :C.", "C"), ("answer :D)", "D"), ("answer :A).", "A"),
    ("A. or B.", None),               # two letters match the same pattern
    ("A B. x y", "B"),                # (a) fails (2 bare letters) -> pattern "B." decides
    ("Failed to obtain answer via API B", None),
    ("b", None),                      # letters are case-sensitive
])
def test_can_infer_option(answer, expected):
    assert can_infer_option(answer) == expected


def test_can_infer_text_and_combination():
    choices = {"A": "Red Apple", "B": "pear"}
    assert can_infer_text("I see a red apple.", choices) == "A"       # lower-cased substring
    assert can_infer_text("apple or pear", {"A": "apple", "B": "pear"}) is None  # ambiguous
    assert can_infer_text("nothing", choices) is None
    assert can_infer("(B) pear", choices) == "B"                       # letter first
    assert can_infer("pear, definitely", choices) == "B"               # then text
    assert can_infer("A cat is a pear eater", choices) == "B"           # article rule, then text


def test_xlsx_roundtrip_matches_pandas_and_openpyxl(tmp_path):
    preds = ["", "A", "None", "NA", "null", "=1+1", "=", "nan", " B ", "1", "#N/A", "n/a", "-"]
    frame = pd.DataFrame({"index": range(len(preds)), "prediction": preds})
    frame.to_excel(tmp_path / "r.xlsx", index=False, engine="openpyxl")
    back = [str(x) for x in pd.read_excel(tmp_path / "r.xlsx")["prediction"]]  # the official re-read
    assert [xlsx_roundtrip_text(p) for p in preds] == back


def test_match_prompt_is_the_official_text():
    prompt = build_match_prompt("What is it", ["cat", "dog"], "a kitten")
    assert prompt.startswith(
        "You are an AI assistant who will help me to match an answer with several options of a single-choice "
        "question. You are provided with a question, several options, and an answer, and you need to find which "
        "option is most similar to the answer. If the meaning of all options are significantly different from the "
        "answer, output E. Your should output a single uppercase character in A, B, C, D (if they are valid "
        "options), and E. \nExample 1: \nQuestion: What is the main object in image?\nOptions: A. teddy bear B. "
        "rabbit C. cat D. dog\nAnswer: a cute teddy bear\nYour output: A\nExample 2: \nQuestion: What is the main "
        "object in image?\nOptions: A. teddy bear B. rabbit C. cat D. dog\nAnswer: Spider\nYour output: E\n"
        "Example 3: \n")
    assert prompt.endswith("Question: What is it?\nOptions: There are several options: \nA. cat\nB. dog\n"
                           "\nAnswer: a kitten\nYour output: ")


# --------------------------------------------------------------------------- circular evaluation


def test_circular_accuracy_without_judge(mmbench_root):
    root, predictions = mmbench_root
    samples = get_loader("mmbench", "local")(root)
    result = MMBenchEvaluator().score(samples, predictions)
    m = result.metrics
    # hits: g0 1, g1 0 (copy wrong), g2 1, g3 0 (copy says C), g4 0 (unresolved row = wrong),
    # g5 0, g6 0 (main wrong), g7 0 -> 2 / 8 = 25 %
    assert m["circular_accuracy"] == pytest.approx(25.0)
    assert m["n_questions"] == 8 and result.n == len(samples) and result.missing == 0
    # attribute_recognition g0,g1 -> 1/2; ocr g2,g3 -> 1/2; image_scene g4..g7 -> 0/4
    assert m["categories"] == {"attribute_recognition": 50.0, "image_scene": 0.0, "ocr": 50.0}
    # FP-S = g0..g3 -> 2/4; CP = g4..g7 -> 0/4
    assert m["l2_categories"] == {"CP": 0.0, "FP-S": 50.0}
    # rows the rules leave open: g4 main, g5 both, g6 one copy, g7 two rows = 6
    assert m["unresolved_rows"] == 6
    assert "judge" not in m
    ps = result.per_sample
    assert ps["2"] == {"target": "C", "target_text": "blue car", "parsed": "C", "method": "rule",
                       "row_correct": True, "score": 1, "group": 2}
    assert ps["3000002"]["parsed"] == "D" and ps["3000002"]["row_correct"] is True  # text match
    assert ps["3"]["parsed"] == "B"  # "A cat is sitting there": article rule, then "cat"
    assert ps["1000003"]["parsed"] == "C" and ps["1000003"]["score"] == 0
    assert ps["4"]["method"] == "unresolved" and ps["4"]["row_correct"] is False and ps["4"]["score"] == 0


def test_xlsx_quirk_and_orphans_and_errors(mmbench_root):
    root, predictions = mmbench_root
    samples = get_loader("mmbench", "local")(root)
    preds = dict(predictions, **{"1": "None"})  # read back as "nan" -> unresolved
    result = MMBenchEvaluator().score(samples, preds)
    assert result.per_sample["1"]["prediction_as_scored"] == "nan"
    assert result.per_sample["1"]["method"] == "unresolved"
    # without the quirk "None" would be resolved by the text rule: option "no" is in "none"
    assert MMBenchEvaluator(xlsx_roundtrip=False).score(samples, preds).per_sample["1"]["parsed"] == "B"
    # a copy without its main row is not scored (official: groups come from main rows)
    subset = [s for s in samples if s.question_id != 0]
    r = MMBenchEvaluator().score(subset, predictions)
    assert r.per_sample["1000000"]["orphan"] is True and r.metrics["n_questions"] == 7
    with pytest.raises(DataError, match="no prediction"):
        MMBenchEvaluator().score(samples, {})
    test_like = [s for s in samples]
    test_like[0].target = None
    with pytest.raises(DataError, match="no answer"):
        MMBenchEvaluator().score(test_like, predictions)


# --------------------------------------------------------------------------- judge fallback

HEADER = ("You are an AI assistant who will help me to match an answer with several options of a single-choice "
          "question. You are provided with a question, several options, and an answer, and you need to find which "
          "option is most similar to the answer. If the meaning of all options are significantly different from the "
          "answer, output E. Your should output a single uppercase character in A, B, C, D (if they are valid "
          "options), and E. \nExample 1: \nQuestion: What is the main object in image?\nOptions: A. teddy bear B. "
          "rabbit C. cat D. dog\nAnswer: a cute teddy bear\nYour output: A\nExample 2: \nQuestion: What is the main "
          "object in image?\nOptions: A. teddy bear B. rabbit C. cat D. dog\nAnswer: Spider\nYour output: E\n"
          "Example 3: \n")


def expected_prompt(question: str, options: list[str], prediction: str) -> str:
    opts = "".join(f"{L}. {o}\n" for L, o in zip("ABCD", options))
    # the official template appends "?" to the question (which usually ends in "?" already)
    return (f"{HEADER}Question: {question}?\nOptions: There are several options: \n{opts}"
            f"\nAnswer: {prediction}\nYour output: ")


# Expected judge traffic: official order, only for questions the rules left open.
REPLIES = {
    expected_prompt("What animal is shown?", ["cat", "dog"], "I cannot tell"): "A",    # g4 main: right
    expected_prompt("Pet?", ["cat", "dog"], "cat or dog"): "The answer is B",          # g5 main: "B" via (a)
    expected_prompt("Pet?", ["dog", "cat"], "hmm"): "Sorry, I cannot decide.",         # g5 copy: never usable
    expected_prompt("Count?", ["one", "two", "three"], "unsure"): "E",                 # g7 main: E = wrong
}


def official_responder(body, headers):
    assert set(body) == {"model", "messages", "max_tokens", "n", "stop", "temperature"}
    assert body["max_tokens"] == 512 and body["n"] == 1 and body["stop"] is None and body["temperature"] == 0.7
    assert len(body["messages"]) == 1 and body["messages"][0]["role"] == "user"
    content = body["messages"][0]["content"]
    assert content in REPLIES, content[-200:]
    return 200, completion(REPLIES[content], model="gpt-3.5-turbo-0613")


def test_judge_fallback_official_order_cache_and_missing(mmbench_root, tmp_path, monkeypatch):
    root, predictions = mmbench_root
    samples = get_loader("mmbench", "local")(root)
    with FakeJudgeServer(official_responder) as srv:
        judge = JudgeClient(srv.url, "gpt-3.5-turbo-0613", cache_path=tmp_path / "c.sqlite", backoff_base=0.001)
        result = MMBenchEvaluator(judge=judge).score(samples, predictions)
        m = result.metrics
        # g4 -> 1 (judge A right); g5 main judged B (right), copy 3 unusable replies -> missing ->
        # no score; g6 decided by the rules (no call); g7 main judged E (wrong) -> 0, its second
        # unresolved row is not asked. Scored: g0 1, g1 0, g2 1, g3 0, g4 1, g6 0, g7 0 -> 3/7.
        assert m["circular_accuracy"] == pytest.approx(300 / 7)
        assert result.missing == 1 and m["judge"]["missing_questions"] == 1
        # image_scene/CP: g4 1, g6 0, g7 0 -> 1/3
        assert m["categories"]["image_scene"] == pytest.approx(100 / 3)
        assert m["l2_categories"] == {"CP": pytest.approx(100 / 3), "FP-S": 50.0}
        # rows without a letter: g5 copy (missing), g6 copy and g7 copy (not needed) = 3
        assert m["unresolved_rows"] == 3
        # requests: g4 1 + g5 main 1 + g5 copy 3 tries + g7 main 1 = 6; 4 judged rows, 1 missing
        assert srv.count == 6
        j = m["judge"]
        assert (j["n_requests"], j["n_cached"], j["n_judgements"], j["missing"]) == (6, 0, 4, 1)
        assert j["coverage"] == 75.0 and j["model"] == "gpt-3.5-turbo-0613"
        assert j["served_models"] == ["gpt-3.5-turbo-0613"]
        ps = result.per_sample
        assert ps["4"]["method"] == "judge" and ps["4"]["parsed"] == "A" and ps["4"]["judge_reply"] == "A"
        assert ps["1000005"]["method"] == "missing" and ps["1000005"]["score"] is None
        assert ps["1000005"]["row_correct"] is None and "judge_error" in ps["1000005"]
        assert ps["7"]["parsed"] == "E" and ps["7"]["row_correct"] is False
        assert ps["1000007"]["method"] == "not_needed" and ps["1000006"]["method"] == "not_needed"

        assert srv.errors == []
        # a second run costs nothing: every reply comes from the cache
        again = MMBenchEvaluator(judge=judge).score(samples, predictions)
        assert srv.count == 6
        assert again.metrics["judge"]["n_requests"] == 0 and again.metrics["judge"]["n_cached"] == 6
        assert again.metrics["circular_accuracy"] == m["circular_accuracy"]
        judge.close()


def test_judge_failures_are_missing_never_guessed(mmbench_root, tmp_path):
    root, predictions = mmbench_root
    samples = get_loader("mmbench", "local")(root)
    with FakeJudgeServer(lambda body, h: (500, {"error": {"message": "down"}})) as srv:
        judge = JudgeClient(srv.url, "m", cache_path=None, max_retries=1, backoff_base=0.001)
        result = MMBenchEvaluator(judge=judge).score(samples, predictions)
        m = result.metrics
        # judged rows: g4 main, g5 both, g7 two rows = 5, all missing; each 3 tries x 2 calls
        assert m["judge"]["n_judgements"] == 5 and m["judge"]["missing"] == 5 and m["judge"]["coverage"] == 0.0
        assert srv.count == 5 * 3 * 2
        # g4, g5, g7 have no score; scored g0 1, g1 0, g2 1, g3 0, g6 0 -> 2/5
        assert m["circular_accuracy"] == pytest.approx(40.0)
        assert result.missing == 3
        assert all(result.per_sample[k]["score"] is None for k in ("4", "5", "7"))


def test_cn_evaluator_is_the_same_procedure(mmbench_root):
    root, predictions = mmbench_root
    samples = get_loader("mmbench", "local")(root)
    cn = MMBenchCNEvaluator().score(samples, predictions)
    assert MMBenchCNEvaluator.name == "mmbench_cn"
    assert cn.metrics == MMBenchEvaluator().score(samples, predictions).metrics


# --------------------------------------------------------------------------- submission


def test_submission_xlsx_columns_and_values(mmbench_root, tmp_path):
    root, predictions = mmbench_root
    samples = get_loader("mmbench", "local")(root)
    preds = dict(predictions, **{"0": "A\x01"})  # a control character openpyxl refuses
    out = write_submission_xlsx(samples, preds, tmp_path / "up" / "model.xlsx")
    back = pd.read_excel(out)
    # LLaVA: TSV columns minus hint/category/source/image/comment/l2-category, prediction 7th
    assert list(back.columns) == ["index", "question", "A", "B", "C", "D", "prediction", "answer", "split"]
    assert list(back["index"]) == [s.question_id for s in samples]
    assert back.loc[back["index"] == 0, "prediction"].item() == "A"
    assert back.loc[back["index"] == 1_000_002, "prediction"].item() == "B"
    keep = submission_frame(samples, predictions, keep_categories=True)
    assert list(keep.columns) == ["index", "question", "A", "B", "C", "D", "prediction", "answer", "category",
                                  "l2-category", "split"]
    # unanswered rows stay empty
    partial = submission_frame(samples, {"0": "A"})
    assert partial["prediction"].isna().sum() == len(samples) - 1
    assert json.loads(json.dumps(samples[0].meta["row"]))  # meta rows are JSON-serialisable


def test_xlsx_quirk_drops_formula_like_options(tmp_path):
    # An option cell "=5" is written by openpyxl as a formula and read back as NaN by the
    # official scorer, so it is no longer a choice for the text rule.
    rows = [{"index": 0, "question": "x+2=7, x?", "A": "=5", "B": "7", "answer": "A", "image": png_b64((0, 0, 0))}]
    path = tmp_path / "t.tsv"
    write_tsv(path, rows, ["index", "question", "A", "B", "answer", "image"])
    samples = read_mmbench_tsv(path, "en")
    assert samples[0].question.endswith("\nA. =5\nB. 7\n" + SUFFIX)
    preds = {"0": "it is =5"}
    assert MMBenchEvaluator().score(samples, preds).per_sample["0"]["parsed"] is None
    assert MMBenchEvaluator(xlsx_roundtrip=False).score(samples, preds).per_sample["0"]["parsed"] == "A"


def test_missing_openpyxl_skips_the_xlsx_but_keeps_the_score(mmbench_root, tmp_path, monkeypatch, caplog):
    """The base install has no openpyxl: the run's score stands, the upload file is skipped with a
    warning naming the extra, and any other missing module still fails loudly."""
    import sys

    from aligngpt.harness.submissions import write_submissions

    root, predictions = mmbench_root
    samples = get_loader("mmbench", "local")(root)
    evaluator = MMBenchEvaluator()
    assert [p.name for p in write_submissions(evaluator, samples, predictions, tmp_path / "with")] == ["submission.xlsx"]
    for name in [m for m in sys.modules if m == "openpyxl" or m.startswith("openpyxl.")] + ["openpyxl"]:
        monkeypatch.setitem(sys.modules, name, None)  # importing any of openpyxl now raises ModuleNotFoundError
    with caplog.at_level("WARNING", logger="aligngpt.harness.submissions"):
        assert write_submissions(evaluator, samples, predictions, tmp_path / "without") == []
    assert "aligngpt[xlsx]" in caplog.text and not (tmp_path / "without" / "submission.xlsx").exists()
    assert evaluator.score(samples, predictions).metrics  # scoring needs no openpyxl

    class Broken:
        name = "broken"

        def write_submission(self, *_):
            import aligngpt_no_such_module  # noqa: F401

    with pytest.raises(ModuleNotFoundError):
        write_submissions(Broken(), samples, predictions, tmp_path)
