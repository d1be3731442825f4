"""LLaVA-Bench-in-the-Wild and MM-Vet: loaders, the exact official judge requests (checked by
a real local HTTP server), score parsing, aggregation, the cache, and missing judgements."""
from __future__ import annotations

import hashlib
import io
import json
import math
from pathlib import Path

import pytest
from PIL import Image

import aligngpt.tasks.llava_bench.loader  # noqa: F401  (registers the loaders)
import aligngpt.tasks.mmvet.loader  # noqa: F401
from aligngpt.data.base import get_loader
from aligngpt.errors import ConfigError, DataError
from aligngpt.tasks.llava_bench.evaluator import LLaVABenchEvaluator, parse_score
from aligngpt.tasks.mmvet.evaluator import MMVetEvaluator, parse_grade
from aligngpt.judge import JudgeClient
from aligngpt.protocol_data import read_json, read_text
from tests.test_judge import FakeJudgeServer, completion

PKG_DATA = Path(__file__).resolve().parents[1] / "aligngpt" / "protocol_data"
SHARED_DATA = Path("/work/shared/protocol-data")


def tiny_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (3, 3), (1, 2, 3)).save(buf, format="PNG")
    return buf.getvalue()


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_protocol_files_are_verbatim():
    digests = {
        "llava_bench_rule.json": "dd7345a44ce9f7a24e51a30ee030cdab32346f9d08e3359c80545ff1312b1e07",
        "mmvet_grader_prompt.txt": "d1b3e0a5b4e72c888b77164489d705bba4dd149934fff564dfba6443d81afe3f",
    }
    for name, digest in digests.items():
        data = (PKG_DATA / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest
        if SHARED_DATA.is_dir():
            assert data == (SHARED_DATA / name).read_bytes()
    assert read_text("mmvet_grader_prompt.txt").endswith("| 1.0\n")
    assert read_json("llava_bench_rule.json")["llava_bench_conv"]["role"] == "Assistant"


# =========================================================================== LLaVA-Bench

RULES = json.loads((PKG_DATA / "llava_bench_rule.json").read_text(encoding="utf-8"))
SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer."
QUESTIONS = [  # (question_id, image, category, text)
    (0, "001.jpg", "conv", "What is the name of this sight?"),
    (1, "001.jpg", "conv", "Is it day or night?"),
    (2, "002.jpg", "conv", "How many cups?"),
    (3, "002.jpg", "detail", "Describe the image in detail."),
    (4, "001.jpg", "complex", "Why is it famous?"),
    (5, "002.jpg", "complex", "What could happen next?"),
]
CAPTIONS = {"001.jpg": "An aerial view of a volcano crater by the sea.",
            "002.jpg": ["Two cups on a table.", "Morning light."]}
# The judge's first lines: (reference score, model score) -> parsed pairs
REVIEWS = {0: "8 7\nAssistant 1 is better.", 1: "9,7\nboth fine", 2: "9 8", 3: "7 7",
           4: "10 5\n...", 5: "8, 9\ncomma plus space gives three tokens"}


@pytest.fixture()
def bench_root(tmp_path):
    folder = tmp_path / "llava-bench-in-the-wild"
    (folder / "images").mkdir(parents=True)
    for name in CAPTIONS:
        (folder / "images" / name).write_bytes(tiny_png())
    write_jsonl(folder / "questions.jsonl",
                [{"question_id": q, "image": im, "text": t, "category": c} for q, im, c, t in QUESTIONS])
    write_jsonl(folder / "context.jsonl", [{"id": n[:3], "image": n, "caption": c} for n, c in CAPTIONS.items()])
    write_jsonl(folder / "answers_gpt4.jsonl",
                [{"question_id": q, "text": f"reference {q}", "answer_id": f"gpt4-{q}"} for q, *_ in QUESTIONS])
    return tmp_path


def expected_review_content(qid: int) -> str:
    """Hand-built from eval_gpt_review_bench.py's f-string (rule role = "Assistant")."""
    _, image, category, text = QUESTIONS[qid]
    caption = CAPTIONS[image]
    context = "\n".join(caption) if isinstance(caption, list) else caption
    prompt = RULES[f"llava_bench_{category}"]["prompt"]
    return (f"[Context]\n{context}\n\n[Question]\n{text}\n\n"
            f"[Assistant 1]\nreference {qid}\n\n[End of Assistant 1]\n\n"
            f"[Assistant 2]\nmodel says {qid}\n\n[End of Assistant 2]\n\n"
            f"[System]\n{prompt}\n\n")


CONTENT_TO_QID = {}


def review_responder(body, headers):
    assert set(body) == {"model", "messages", "temperature", "max_tokens"}
    assert body["model"] == "gpt-4-0314" and body["temperature"] == 0.2 and body["max_tokens"] == 1024
    system, user = body["messages"]
    assert system == {"role": "system", "content": SYSTEM} and user["role"] == "user"
    qid = CONTENT_TO_QID[user["content"]]  # KeyError = a request that is not the official text
    return 200, completion(REVIEWS[qid], model="gpt-4-0314")


def test_llava_bench_loader(bench_root):
    samples = get_loader("llava_bench", "local")(bench_root)
    assert [s.question_id for s in samples] == [q for q, *_ in QUESTIONS]
    s = samples[2]
    assert s.question == "How many cups?"  # raw, no suffix
    assert s.image == bench_root / "llava-bench-in-the-wild" / "images" / "002.jpg"
    assert s.target == {"reference": "reference 2", "caption": CAPTIONS["002.jpg"], "category": "conv"}


def test_llava_bench_official_requests_aggregation_and_cache(bench_root, tmp_path):
    samples = get_loader("llava_bench", "local")(bench_root)
    predictions = {str(q): f"model says {q}" for q, *_ in QUESTIONS}
    CONTENT_TO_QID.clear()
    CONTENT_TO_QID.update({expected_review_content(q): q for q, *_ in QUESTIONS})
    with FakeJudgeServer(review_responder) as srv:
        judge = JudgeClient(srv.url, "gpt-4-0314", cache_path=tmp_path / "j.sqlite", backoff_base=0.001)
        result = LLaVABenchEvaluator(judge=judge).score(samples, predictions)
        assert srv.errors == [] and srv.count == 6
        m = result.metrics
        # parsed pairs: q0 (8,7) q1 (9,7) q2 (9,8) | q3 (7,7) | q4 (10,5), q5 "8, 9" -> missing
        # all: ref mean 43/5 = 8.6, model mean 34/5 = 6.8 -> 6.8 / 8.6 * 100
        assert m["relative_score"] == pytest.approx(6.8 / 8.6 * 100)
        # conv: ref 26/3 = 8.6667 -> 8.667, model 22/3 = 7.3333 -> 7.333 (rounded to 3 places
        # as summarize_gpt_review.py does) -> 7.333 / 8.667 * 100 = 84.608...
        assert m["categories"]["conv"] == pytest.approx(7.333 / 8.667 * 100)
        assert m["categories"]["conv"] != pytest.approx(22 / 26 * 100, abs=1e-3)
        assert m["categories"]["detail"] == pytest.approx(100.0)  # 7 / 7
        assert m["categories"]["complex"] == pytest.approx(50.0)  # 5 / 10
        assert m["scores"]["conv"] == {"reference": 8.667, "model": 7.333, "n": 3}
        assert result.missing == 1
        j = m["judge"]
        assert (j["n_requests"], j["n_cached"], j["missing"], j["n_judgements"]) == (6, 0, 1, 6)
        assert j["coverage"] == pytest.approx(500 / 6) and j["model"] == "gpt-4-0314"
        ps = result.per_sample
        assert ps["1"]["reference_score"] == 9.0 and ps["1"]["model_score"] == 7.0 and ps["1"]["score"] == 0.7
        assert ps["5"]["missing"] is True and ps["5"]["score"] is None and ps["5"]["review"].startswith("8, 9")

        # re-score: everything from the cache, same numbers
        again = LLaVABenchEvaluator(judge=judge).score(samples, predictions)
        assert srv.count == 6
        assert again.metrics["judge"]["n_cached"] == 6 and again.metrics["judge"]["n_requests"] == 0
        assert again.metrics["relative_score"] == m["relative_score"]

        # the official [-1, -1] on request: complex ref (10 - 1)/2 = 4.5, model (5 - 1)/2 = 2.0
        official = LLaVABenchEvaluator(judge=judge, unparsed_as_minus_one=True).score(samples, predictions)
        assert official.metrics["categories"]["complex"] == pytest.approx(2.0 / 4.5 * 100)
        # all: ref 42/6 = 7.0, model 33/6 = 5.5
        assert official.metrics["relative_score"] == pytest.approx(5.5 / 7.0 * 100)
        assert official.missing == 0
        # unrounded means, on request: conv 22/26
        raw = LLaVABenchEvaluator(judge=judge, round_means=False).score(samples, predictions)
        assert raw.metrics["categories"]["conv"] == pytest.approx(22 / 26 * 100)
        judge.close()


def test_llava_bench_failing_judge_gives_missing_not_numbers(bench_root):
    samples = get_loader("llava_bench", "local")(bench_root)
    predictions = {str(q): "x" for q, *_ in QUESTIONS}
    calls = {"n": 0}

    def flaky(body, headers):
        calls["n"] += 1
        return (500, {"error": {"message": "down"}}) if calls["n"] % 2 else (200, b"garbage{")

    with FakeJudgeServer(flaky) as srv:
        judge = JudgeClient(srv.url, "gpt-4-0314", cache_path=None, max_retries=2, backoff_base=0.001)
        result = LLaVABenchEvaluator(judge=judge).score(samples, predictions)
    assert result.metrics["relative_score"] is None
    assert all(v is None for v in result.metrics["categories"].values())
    assert result.missing == 6 and result.metrics["judge"]["coverage"] == 0.0
    assert all(r["score"] is None and r["judge_error"] for r in result.per_sample.values())
    assert srv.count == 6 * 3


@pytest.mark.parametrize("review, expected", [
    ("8 9", (8.0, 9.0)), ("8,9\nwhy", (8.0, 9.0)), ("7.5 10", (7.5, 10.0)), ("1e1 2", (10.0, 2.0)),
    ("8, 9", None), (" 8 9", None), ("8 9 10", None), ("8", None), ("a b", None), ("8\t9", None),
    ("", None), (None, None),
])
def test_parse_score(review, expected):
    assert parse_score(review) == expected


def test_parse_score_accepts_nan_like_the_official_float():
    ref, model = parse_score("nan 5")
    assert math.isnan(ref) and model == 5.0


def test_llava_bench_needs_a_judge_and_predictions(bench_root):
    samples = get_loader("llava_bench", "local")(bench_root)
    with pytest.raises(ConfigError, match="judge"):
        LLaVABenchEvaluator().score(samples, {})

    class NoCall:
        model = "x"

    with pytest.raises(DataError, match="no prediction"):
        LLaVABenchEvaluator(judge=NoCall()).score(samples, {})  # type: ignore[arg-type]


@pytest.mark.parametrize("breakage, message", [
    ("drop_reference", "no reference answer"),
    ("extra_reference", "without a question"),
    ("wrong_reference_id", "is for question"),
    ("unknown_image", "has no line in"),
    ("missing_image_file", "not found"),
    ("bad_caption", "caption"),
])
def test_llava_bench_loader_errors(bench_root, breakage, message):
    folder = bench_root / "llava-bench-in-the-wild"
    if breakage == "drop_reference":
        lines = (folder / "answers_gpt4.jsonl").read_text().splitlines()[:-1]
        (folder / "answers_gpt4.jsonl").write_text("\n".join(lines) + "\n")
    elif breakage == "extra_reference":
        with open(folder / "answers_gpt4.jsonl", "a") as fh:
            fh.write(json.dumps({"question_id": 99, "text": "extra"}) + "\n")
    elif breakage == "wrong_reference_id":
        rows = [json.loads(x) for x in (folder / "answers_gpt4.jsonl").read_text().splitlines()]
        rows[0], rows[1] = rows[1], rows[0]
        write_jsonl(folder / "answers_gpt4.jsonl", rows)
    elif breakage == "unknown_image":
        write_jsonl(folder / "context.jsonl", [{"image": "001.jpg", "caption": "c"}])
    elif breakage == "missing_image_file":
        (folder / "images" / "002.jpg").unlink()
    elif breakage == "bad_caption":
        write_jsonl(folder / "context.jsonl", [{"image": "001.jpg", "caption": 5}])
    with pytest.raises(DataError, match=message) as err:
        get_loader("llava_bench", "local")(bench_root)
    assert err.value.path is not None and err.value.line is not None


def write_parquet(path: Path, columns: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    arrays = {k: (pa.array(v, image_type) if k == "image" else pa.array(v)) for k, v in columns.items()}
    pq.write_table(pa.table(arrays), path)


def test_llava_bench_hf_loader_builds_the_same_requests(bench_root, tmp_path):
    local = get_loader("llava_bench", "local")(bench_root)
    captions = {im: ("\n".join(c) if isinstance(c, list) else c) for im, c in CAPTIONS.items()}
    write_parquet(tmp_path / "hf" / "data" / "train-00000-of-00001.parquet", {
        "question_id": [q for q, *_ in QUESTIONS],
        "question": [t for *_, t in QUESTIONS],
        "image": [{"bytes": tiny_png(), "path": im} for _, im, _, _ in QUESTIONS],
        "caption": [captions[im] for _, im, _, _ in QUESTIONS],  # lmms-lab stores one string
        "gpt_answer": [f"reference {q}" for q, *_ in QUESTIONS],
        "category": [c for _, _, c, _ in QUESTIONS],
        "image_id": [im[:3] for _, im, _, _ in QUESTIONS],
    })
    hf = get_loader("llava_bench", "hf")(str(tmp_path / "hf"), cache_dir=str(tmp_path / "cache"))
    ev = LLaVABenchEvaluator()
    assert [s.question for s in hf] == [s.question for s in local]
    assert all(isinstance(s.image, bytes) for s in hf)
    assert [ev.request_messages(s, "a") for s in hf] == [ev.request_messages(s, "a") for s in local]


# =========================================================================== MM-Vet

MMVET = {  # key -> (capabilities, question, answer)
    "v1_0": (["rec"], "What animal is this?", "cat"),
    "v1_1": (["ocr", "rec"], "What do the signs say?", "stop<AND>go"),
    "v1_2": (["ocr"], "What number is shown?", "12<OR>twelve"),
    "v1_3": (["rec", "know", "gen"], "Explain the joke.", "It is a pun."),
    "v1_4": (["ocr", "math"], "What is x?", "5"),
}
PROMPT = (PKG_DATA / "mmvet_grader_prompt.txt").read_text(encoding="utf-8")
RETRY = "\nPredict the correctness of the answer (digit): "


@pytest.fixture()
def mmvet_root(tmp_path):
    folder = tmp_path / "mm-vet"
    (folder / "images").mkdir(parents=True)
    truth = {}
    for key, (caps, q, a) in MMVET.items():
        truth[key] = {"imagename": f"{key}.png", "capability": caps, "question": q, "answer": a}
        (folder / "images" / f"{key}.png").write_bytes(tiny_png())
    (folder / "mm-vet.json").write_text(json.dumps(truth, indent=2), encoding="utf-8")
    write_jsonl(folder / "llava-mm-vet.jsonl",
                [{"question_id": i, "image": f"v1_{i}.png", "text": MMVET[f"v1_{i}"][1]} for i in range(5)])
    return tmp_path


def grader_text(i: int, prediction: str) -> str:
    """prompt + "\\n" + question | spaced answer | prediction | (empty) -- built by hand."""
    caps, q, a = MMVET[f"v1_{i}"]
    spaced = a.replace("<AND>", " <AND> ").replace("<OR>", " <OR> ")
    return f"{PROMPT}\n{q} | {spaced} | {prediction} | "


def mmvet_replies():
    """(content, temperature) -> grader reply, per question, following the official ramp."""
    table = {
        (grader_text(0, "pred 0"), 0.0): "1.0",
        (grader_text(1, "pred 1"), 0.0): "0.5 because",             # first token 0.5
        (grader_text(2, "pred 2"), 0.0): "Correct",                 # unusable -> re-ask
        (grader_text(2, "pred 2") + RETRY, 0.0): "high",            # re-ask 1, same temperature
        (grader_text(2, "pred 2") + RETRY, 0.5): "0.8",             # re-ask 2, +0.5
        (grader_text(4, "pred 4"), 0.0): " 0.3",                    # leading space: unusable
        (grader_text(4, "pred 4") + RETRY, 0.0): "0.3",
    }
    table[(grader_text(3, "pred 3"), 0.0)] = "1.5"                   # out of range
    for t in (0.0, 0.5, 1.0, 1.5):
        table[(grader_text(3, "pred 3") + RETRY, t)] = "x"           # never usable -> missing
    return table


def make_grader(table, flip_first: bool = False):
    seen = {"v1_0": 0}

    def responder(body, headers):
        assert set(body) == {"model", "messages", "temperature", "max_tokens"}
        assert body["model"] == "gpt-4-0613" and body["max_tokens"] == 3
        (message,) = body["messages"]
        assert message["role"] == "user"
        reply = table[(message["content"], body["temperature"])]  # KeyError = not the official request
        if flip_first and message["content"] == grader_text(0, "pred 0"):
            seen["v1_0"] += 1
            reply = "1.0" if seen["v1_0"] % 2 else "0.0"
        return 200, completion(reply, model="gpt-4-0613")

    return responder


PREDS = {str(i): f"pred {i}" for i in range(5)}


def test_mmvet_loader(mmvet_root):
    samples = get_loader("mmvet", "local")(mmvet_root)
    assert [s.question_id for s in samples] == list(range(5))
    s = samples[1]
    assert s.question == "What do the signs say?" and s.image == mmvet_root / "mm-vet" / "images" / "v1_1.png"
    assert s.target == {"question": "What do the signs say?", "answer": "stop<AND>go",
                        "capability": ["ocr", "rec"], "key": "v1_1"}


def test_mmvet_official_requests_ramp_and_aggregation(mmvet_root, tmp_path):
    samples = get_loader("mmvet", "local")(mmvet_root)
    with FakeJudgeServer(make_grader(mmvet_replies())) as srv:
        judge = JudgeClient(srv.url, "gpt-4-0613", cache_path=tmp_path / "g.sqlite", backoff_base=0.001)
        result = MMVetEvaluator(judge=judge).score(samples, PREDS)
        assert srv.errors == []
        # requests: q0 1, q1 1, q2 3, q3 5 (the ramp 0.0, 0.0, 0.5, 1.0, 1.5), q4 2 = 12
        assert srv.count == 12
        q3 = sorted(b["temperature"] for b in srv.requests if "Explain the joke." in b["messages"][0]["content"])
        assert q3 == [0.0, 0.0, 0.5, 1.0, 1.5]
        m = result.metrics
        # scores: q0 1.0, q1 0.5, q2 0.8, q3 missing, q4 0.3 -> total (1.0+0.5+0.8+0.3)/4 = 65 %
        assert m["total"] == pytest.approx(65.0)
        caps = m["capabilities"]
        assert caps["rec"] == pytest.approx(75.0)          # q0, q1: 1.5 / 2
        assert caps["ocr"] == pytest.approx(160 / 3)       # q1, q2, q4: 1.6 / 3
        assert caps["math"] == pytest.approx(30.0)         # q4
        assert caps["know"] is None and caps["gen"] is None and caps["spat"] is None
        assert m["integrations"] == {"gen_know_rec": None, "math_ocr": pytest.approx(30.0),
                                     "ocr": pytest.approx(80.0), "ocr_rec": pytest.approx(50.0),
                                     "rec": pytest.approx(100.0)}
        assert result.missing == 1 and m["judge"]["missing"] == 1
        assert m["judge"]["coverage"] == pytest.approx(80.0) and m["judge"]["n_requests"] == 12
        ps = result.per_sample
        assert ps["2"]["score"] == 0.8 and ps["2"]["judge_replies"] == [["Correct", "high", "0.8"]]
        assert ps["3"]["missing"] is True and ps["3"]["score"] is None and "usable" in ps["3"]["judge_error"]
        assert ps["1"]["target"] == "stop<AND>go"

        again = MMVetEvaluator(judge=judge).score(samples, PREDS)
        assert srv.count == 12 and again.metrics["judge"]["n_cached"] == 12
        assert again.metrics["total"] == m["total"]

        # the official 0.0 for q3, on request: total 2.6 / 5 = 52 %, rec 1.5 / 3, know 0
        zero = MMVetEvaluator(judge=judge, unparsed_as_zero=True).score(samples, PREDS)
        assert zero.metrics["total"] == pytest.approx(52.0)
        assert zero.metrics["capabilities"]["rec"] == pytest.approx(50.0)
        assert zero.metrics["capabilities"]["know"] == 0.0 and zero.missing == 0
        judge.close()


def test_mmvet_several_runs(mmvet_root):
    samples = get_loader("mmvet", "local")(mmvet_root)
    with FakeJudgeServer(make_grader(mmvet_replies(), flip_first=True)) as srv:
        judge = JudgeClient(srv.url, "gpt-4-0613", cache_path=None, backoff_base=0.001)
        result = MMVetEvaluator(judge=judge, num_runs=2).score(samples, PREDS)
        assert srv.errors == [] and srv.count == 24  # run 2 is salted, not served from run 1
    m = result.metrics
    # q0 gets 1.0 in one run and 0.0 in the other: totals 65 and (0+0.5+0.8+0.3)/4 = 40
    assert sorted(m["runs"]) == pytest.approx([40.0, 65.0])
    assert m["total"] == pytest.approx(52.5) and m["total_std"] == pytest.approx(12.5)
    assert m["capabilities"]["rec"] == pytest.approx(50.0)  # runs: 75 and 25
    assert sorted(result.per_sample["0"]["run_scores"]) == [0.0, 1.0] and result.per_sample["0"]["score"] == 0.5


def test_mmvet_transport_failure_is_missing(mmvet_root):
    samples = get_loader("mmvet", "local")(mmvet_root)
    with FakeJudgeServer(lambda body, h: (502, b"bad gateway")) as srv:
        judge = JudgeClient(srv.url, "gpt-4-0613", cache_path=None, max_retries=1, backoff_base=0.001)
        result = MMVetEvaluator(judge=judge).score(samples, PREDS)
        assert srv.count == 5 * 2  # a failed request ends the sample's ramp: no re-ask
    assert result.metrics["total"] is None and result.missing == 5
    assert result.metrics["judge"]["coverage"] == 0.0
    assert all(v is None for v in result.metrics["capabilities"].values())


@pytest.mark.parametrize("content, expected", [
    ("0.5", 0.5), ("1.0\n", 1.0), ("0 because", 0.0), ("1.5", None), ("-0.1", None),
    (" 0.5", None), ("nan", None), ("high", None), ("", None), (None, None),
])
def test_parse_grade(content, expected):
    assert parse_grade(content) == expected


def test_mmvet_needs_judge_and_valid_data(mmvet_root):
    samples = get_loader("mmvet", "local")(mmvet_root)
    with pytest.raises(ConfigError):
        MMVetEvaluator().score(samples, PREDS)
    with pytest.raises(ConfigError):
        MMVetEvaluator(num_runs=0)
    truth_path = mmvet_root / "mm-vet" / "mm-vet.json"
    truth = json.loads(truth_path.read_text())
    del truth["v1_3"]
    truth_path.write_text(json.dumps(truth))
    with pytest.raises(DataError, match="v1_3") as err:
        get_loader("mmvet", "local")(mmvet_root)
    assert err.value.line == 4
    truth["v1_3"] = {"question": "q", "answer": "a", "capability": []}
    truth_path.write_text(json.dumps(truth))
    with pytest.raises(DataError, match="capability"):
        get_loader("mmvet", "local")(mmvet_root)


def test_mmvet_hf_loader_matches_local(mmvet_root, tmp_path):
    local = get_loader("mmvet", "local")(mmvet_root)
    write_parquet(tmp_path / "hf" / "data" / "test-00000-of-00001.parquet", {
        "question_id": list(MMVET),
        "image": [{"bytes": tiny_png(), "path": f"{k}.png"} for k in MMVET],
        "question": [v[1] for v in MMVET.values()],
        "answer": [v[2] for v in MMVET.values()],
        "capability": [",".join(v[0]) for v in MMVET.values()],
    })
    hf = get_loader("mmvet", "hf")(str(tmp_path / "hf"), cache_dir=str(tmp_path / "cache"))
    assert [(s.question_id, s.question, s.target) for s in hf] == [(s.question_id, s.question, s.target) for s in local]
    assert all(isinstance(s.image, bytes) for s in hf)


def test_mmvet_temperature_override_still_asks_every_re_ask(mmvet_root, tmp_path):
    # With a forced temperature the re-ask bodies are identical; salting keeps the cache from
    # answering re-ask 2..4 with re-ask 1's reply, so each sample makes all 5 requests.
    samples = get_loader("mmvet", "local")(mmvet_root)
    with FakeJudgeServer(lambda body, h: (200, completion("unsure"))) as srv:
        judge = JudgeClient(srv.url, "gpt-4-0613", cache_path=tmp_path / "o.sqlite", temperature=0.0,
                            backoff_base=0.001)
        result = MMVetEvaluator(judge=judge).score(samples, PREDS)
        assert srv.count == 5 * 5 and {b["temperature"] for b in srv.requests} == {0.0}
        assert result.missing == 5 and result.metrics["judge"]["temperature_override"] == 0.0
        judge.close()
