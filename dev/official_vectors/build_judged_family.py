"""Vectors for the LLaVA-Bench and MM-Vet judge-score parsing and aggregation math.

usage: python dev/official_vectors/build_judged_family.py [OUT_DIR]
Needs numpy, pandas, tqdm in the running Python. No judge is called: the official scripts are
given review / grade files that already hold every score.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import sys
import tempfile
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from build_choice_family import run_script  # noqa: E402
from build_vqa_family import write_jsonl  # noqa: E402
from cases import llava_bench_sets, mmvet_sets, review_cases  # noqa: E402
from official_src import load_module, materialise  # noqa: E402

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[1] / "tests/data/official_vectors"


def stub_openai() -> None:
    """The official files import the openai client at the top; it is never used here."""
    openai = types.ModuleType("openai")
    openai.OpenAI = lambda *a, **k: None
    exceptions = types.ModuleType("openai._exceptions")
    exceptions.RateLimitError = type("RateLimitError", (Exception,), {})
    sys.modules.setdefault("openai", openai)
    sys.modules.setdefault("openai._exceptions", exceptions)


def llava_bench() -> None:
    stub_openai()
    bench = load_module(materialise("review_bench"), "eval_gpt_review_bench")
    rows = []
    for c in review_cases():
        with contextlib.redirect_stdout(io.StringIO()):
            got = bench.parse_score(c["review"])
        rows.append(dict(c, parsed=[None if math.isnan(x) else x for x in got],
                         nan=[math.isnan(x) for x in got]))
    summarize = materialise("summarize_review")
    sets = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for s in llava_bench_sets():
            (tmp / "review_x.jsonl").write_text("".join(json.dumps(r) + "\n" for r in s["reviews"]))
            _, printed = run_script(summarize, ["-f", "review_x.jsonl"], tmp)
            # "<category> <relative> <reference*10> <model*10>", each rounded to 1 decimal
            lines = {l.split()[0]: [float(x) for x in l.split()[1:]] for l in printed.splitlines()[1:-1]}
            sets.append(dict(s, printed=lines))
    write_jsonl(OUT / "llava_bench/parse_score.jsonl", rows)
    write_jsonl(OUT / "llava_bench/summaries.jsonl", sets)


def mmvet() -> None:
    stub_openai()
    script = materialise("mmvet")
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for s in mmvet_sets():
            qs = s["questions"]
            (tmp / "mm-vet.json").write_text(json.dumps(
                {k: {"imagename": "x.png", "question": "q", "answer": "a", "capability": v["capability"]}
                 for k, v in qs.items()}))
            (tmp / "m.json").write_text(json.dumps({k: "pred" for k in qs}))
            (tmp / f"m_gpt-4-0613-grade-{s['num_run']}runs.json").write_text(json.dumps(
                {k: {"model": ["gpt-4-0613"] * s["num_run"], "content": ["x"] * s["num_run"], "score": v["scores"]}
                 for k, v in qs.items()}))
            run_script(script, ["--mmvet_path", str(tmp), "--result_file", str(tmp / "m.json"),
                                "--result_path", str(tmp), "--num_run", str(s["num_run"]),
                                "--decimal_places", "12"], tmp)
            import pandas as pd

            cap = pd.read_csv(tmp / f"m_gpt-4-0613-cap-score-{s['num_run']}runs.csv", index_col=0)
            integ = pd.read_csv(tmp / f"m_gpt-4-0613-cap-int-score-{s['num_run']}runs.csv", index_col=0)
            out.append(dict(s, capabilities={k: float(cap.loc["m", k]) for k in cap.columns if k not in ("std", "runs")},
                            integrations={k: float(integ.loc["m", k]) for k in integ.columns
                                          if k not in ("std", "runs", "total")},
                            std=float(cap.loc["m", "std"])))
    write_jsonl(OUT / "mmvet/aggregates.jsonl", out)


def mmvet_grading() -> None:
    """The official grading loop (``runs``) with a scripted client: the request bytes, which reply
    it accepts, the requests it sends (temperature, re-ask suffix), 0.0 after five unusable ones."""
    from cases import mmvet_grading_scripts

    scripts = mmvet_grading_scripts()
    suffix = "\nPredict the correctness of the answer (digit): "
    log: dict[str, list] = {s["id"]: [] for s in scripts}
    first: dict[str, str] = {}
    state = {"i": -1, "ids": []}

    class Completions:
        def create(self, model, max_tokens, temperature, messages):
            content = messages[0]["content"]
            retry = content.endswith(suffix)
            if not retry:   # a first request: the loop moved on to the next sample (data order)
                state["i"] += 1
            sample = state["ids"][state["i"]]
            if not retry:
                first[sample] = hashlib.sha256(content.encode()).hexdigest()
            log[sample].append([temperature, retry, max_tokens, model])
            replies = script_of[sample]
            message = types.SimpleNamespace(content=replies.pop(0) if replies else "unused")
            return types.SimpleNamespace(choices=[types.SimpleNamespace(message=message)], model=model)

    class Client:
        def __init__(self, *a, **k):
            self.chat = types.SimpleNamespace(completions=Completions())

    openai = types.ModuleType("openai")
    openai.OpenAI = Client
    exceptions = types.ModuleType("openai._exceptions")
    exceptions.RateLimitError = type("RateLimitError", (Exception,), {})
    sys.modules["openai"], sys.modules["openai._exceptions"] = openai, exceptions
    script_of = {s["id"]: list(s["replies"]) for s in scripts}
    script = materialise("mmvet")
    grades = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for start in range(0, len(scripts), 200):
            part = scripts[start:start + 200]
            state["i"], state["ids"] = -1, [s["id"] for s in part]
            (tmp / "mm-vet.json").write_text(json.dumps(
                {s["id"]: {"imagename": "x.png", "question": s["question"], "answer": s["answer"], "capability": ["rec"]}
                 for s in part}))
            (tmp / "m.json").write_text(json.dumps({s["id"]: s["prediction"] for s in part}))
            grade_file = tmp / "m_gpt-4-0613-grade-1runs.json"
            grade_file.unlink(missing_ok=True)
            run_script(script, ["--mmvet_path", str(tmp), "--result_file", str(tmp / "m.json"),
                                "--result_path", str(tmp), "--num_run", "1"], tmp)
            grades.update(json.loads(grade_file.read_text()))
    rows = [dict(s, score=grades[s["id"]]["score"][0], first_request_sha256=first[s["id"]],
                 requests=log[s["id"]]) for s in scripts]
    write_jsonl(OUT / "mmvet/grading.jsonl", rows)


def llava_bench_requests() -> None:
    """eval_gpt_review_bench.py as ``__main__`` with a stub ``openai.ChatCompletion``: the exact
    request of every question, and the tuple it stores for the scripted review."""
    from cases import llava_bench_requests as make

    cases = make()
    sent: list[dict] = []
    reviews_in_order = iter([c["review"] for c in cases])

    def create(**kwargs):   # the script asks once per question, in question-file order
        sent.append(kwargs)
        return {"choices": [{"message": {"content": next(reviews_in_order)}}]}

    openai = types.ModuleType("openai")
    openai.ChatCompletion = types.SimpleNamespace(create=create)
    openai.error = types.SimpleNamespace(RateLimitError=type("RateLimitError", (Exception,), {}))
    sys.modules["openai"] = openai
    script, rule_file = materialise("review_bench"), materialise("rule_json")
    contexts = {c["image"]: c["caption"] for c in cases}   # one context per image (last wins)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "q.jsonl").write_text("".join(json.dumps({"question_id": c["id"], "image": c["image"], "text": c["question"],
                                                         "category": c["category"]}) + "\n" for c in cases))
        (tmp / "ctx.jsonl").write_text("".join(json.dumps({"image": k, "caption": v}) + "\n" for k, v in contexts.items()))
        (tmp / "ref.jsonl").write_text("".join(json.dumps({"question_id": c["id"], "text": c["reference"]}) + "\n" for c in cases))
        (tmp / "ans.jsonl").write_text("".join(json.dumps({"question_id": c["id"], "answer_id": f"a{c['id']}",
                                                           "text": c["answer"]}) + "\n" for c in cases))
        run_script(script, ["-q", "q.jsonl", "-c", "ctx.jsonl", "-a", "ref.jsonl", "ans.jsonl", "-r", str(rule_file),
                            "-o", "review.jsonl"], tmp)
        reviews = [json.loads(line) for line in open(tmp / "review.jsonl")]
        _, printed = run_script(materialise("summarize_review"), ["-f", "review.jsonl"], tmp)
    # The request is stored as its sha256 (the rule prompt alone is ~1 kB) plus its parameters.
    rows = [dict(c, caption=contexts[c["image"]], tuple=r["tuple"],
                 request_sha256=hashlib.sha256(json.dumps(s["messages"], ensure_ascii=False).encode()).hexdigest(),
                 request_params={k: v for k, v in s.items() if k != "messages"})
            for c, s, r in zip(cases, sent, reviews)]
    write_jsonl(OUT / "llava_bench/requests.jsonl", rows)
    lines = {line.split()[0]: [float(x) for x in line.split()[1:]] for line in printed.splitlines()[1:-1]}
    (OUT / "llava_bench/requests_summary.json").write_text(json.dumps(lines, indent=1) + "\n")


if __name__ == "__main__":
    for step in sys.argv[2:] or ["llava_bench", "mmvet", "mmvet_grading", "llava_bench_requests"]:
        globals()[step]()
