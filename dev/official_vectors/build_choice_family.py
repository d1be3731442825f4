"""Vectors for POPE, MME, GQA, ScienceQA, SEED and MMBench, from the official code.

usage: python dev/official_vectors/build_choice_family.py [OUT_DIR]
Needs numpy, pandas, scikit-learn, tqdm in the running Python (imports of the official files).
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import runpy
import sys
import tempfile
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from build_vqa_family import write_jsonl  # noqa: E402
from cases import gqa_cases, mme_cases, mmbench_cases, pope_cases, seed_cases, sqa_cases  # noqa: E402
from official_src import load_module, materialise  # noqa: E402

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[1] / "tests/data/official_vectors"


def run_script(path: Path, argv: list[str], cwd: Path) -> tuple[dict, str]:
    """Run an official script as ``__main__`` with ``argv``; its globals and stdout."""
    old_argv, old_cwd = sys.argv, os.getcwd()
    sys.argv = [str(path)] + argv
    os.chdir(cwd)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            glb = runpy.run_path(str(path), run_name="__main__")
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
    return glb, out.getvalue()


def pope() -> None:
    mod = load_module(materialise("eval_pope"), "eval_pope")
    cases = pope_cases()
    rows, chunks = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for start in range(0, len(cases), 300):          # one "split" per 300 cases
            chunk = cases[start:start + 300]
            label_file = Path(tmp, "labels.json")
            label_file.write_text("".join(json.dumps({"label": c["label"]}) + "\n" for c in chunk))
            answers = [{"question_id": c["id"], "text": c["text"]} for c in chunk]
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                mod.eval_pope(answers, str(label_file))   # rewrites answer['text'] to its yes/no reading
            lines = out.getvalue().splitlines()
            tp, fp, tn, fn = map(int, lines[1].split("\t"))
            printed = {l.split(": ")[0]: float(l.split(": ")[1]) for l in lines[2:7]}
            chunks.append({"first_id": chunk[0]["id"], "last_id": chunk[-1]["id"], "TP": tp, "FP": fp, "TN": tn, "FN": fn,
                           "accuracy": printed["Accuracy"], "precision": printed["Precision"],
                           "recall": printed["Recall"], "f1": printed["F1 score"],
                           "yes_ratio": printed["Yes ratio"]})
            rows += [dict(c, parsed=a["text"]) for c, a in zip(chunk, answers)]
    write_jsonl(OUT / "pope/vectors.jsonl", rows)
    (OUT / "pope/summary.json").write_text(json.dumps({"splits": chunks}) + "\n")


def mme() -> None:
    mod = load_module(materialise("mme_calc"), "mme_calculation")
    cases = mme_cases()
    cal = mod.calculate_metrics()
    tasks = [t for ts in mod.eval_type_dict.values() for t in ts]
    per_task = {t: [] for t in tasks}
    for i, c in enumerate(cases):                      # consecutive pairs stay in one task
        per_task[tasks[(i // 2) % len(tasks)]].append(c)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task, items in per_task.items():
            # The converter's line format: image \t question \t gt \t prediction \n
            Path(tmp, task + ".txt").write_text(
                "".join(f"img{c['id'] // 2}.jpg\tQ{c['id']}?\t{c['gt']}\t{c['pred']}\n" for c in items))
            # Per question: calculation.py's reading of that line (split on tabs, lower-case, parse).
            for c, line in zip(items, open(Path(tmp, task + ".txt")).readlines()):
                _, _, gt, pred = line.split("\t")
                rows.append(dict(c, task=task, parsed=cal.parse_pred_ans(pred.lower()),
                                 correct=cal.parse_pred_ans(pred.lower()) == gt.lower()))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            cal.process_result(tmp)
    # process_result returns only the last type's dict; every score is printed (float repr):
    # "total score: X" per type and "\t NAME  score: X" per task.
    printed = out.getvalue().splitlines()
    totals = [float(l.split(":")[1]) for l in printed if l.startswith("total score:")]
    tasks_printed = {l.split()[0]: float(l.split("score:")[1]) for l in printed if l.startswith("\t ")}
    rows.sort(key=lambda r: r["id"])
    write_jsonl(OUT / "mme/vectors.jsonl", rows)
    (OUT / "mme/summary.json").write_text(json.dumps(
        {"perception": totals[0], "cognition": totals[1], "task_scores": tasks_printed}, indent=1) + "\n")


def gqa() -> None:
    convert, evalpy = materialise("convert_gqa"), materialise("gqa_eval")
    cases = gqa_cases()

    def run(items: list[dict], tmp: Path) -> dict:
        (tmp / "answers.jsonl").write_text("".join(json.dumps({"question_id": c["id"], "text": c["text"]}) + "\n"
                                                   for c in items))
        run_script(convert, ["--src", "answers.jsonl", "--dst", "t_predictions.json"], tmp)
        questions = {c["id"]: {"question": "Is it?", "answer": c["answer"], "isBalanced": c["balanced"],
                               "types": {"structural": c["structural"], "semantic": "attr", "detailed": "x"},
                               "semantic": [{"operation": "select", "argument": "x"}],
                               "groups": {"global": "g", "local": "l"}, "entailed": []} for c in items}
        (tmp / "t_questions.json").write_text(json.dumps(questions))
        glb, _ = run_script(evalpy, ["--tier", "t"], tmp)
        predictions = {p["questionId"]: p["prediction"] for p in json.load(open(tmp / "t_predictions.json"))}
        return {"scores": glb["scores"], "predictions": predictions}

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for c in cases:
            one = run([dict(c, balanced=True)], tmp)
            rows.append(dict(c, prediction=one["predictions"][c["id"]], score=one["scores"]["accuracy"] / 100))
        full = run(cases, tmp)
    write_jsonl(OUT / "gqa/vectors.jsonl", rows)
    (OUT / "gqa/summary.json").write_text(json.dumps(
        {k: full["scores"][k] for k in ("accuracy", "binary", "open")}, indent=1) + "\n")


def sqa() -> None:
    script = materialise("eval_sqa")
    cases = sqa_cases()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "pid_splits.json").write_text(json.dumps({"test": [c["id"] for c in cases]}))
        (tmp / "problems.json").write_text(json.dumps(
            {c["id"]: {"choices": [f"choice {j}" for j in range(c["n_choices"])], "answer": c["answer"]}
             for c in cases}))
        (tmp / "answers.jsonl").write_text("".join(json.dumps(
            {"question_id": c["id"], "prompt": ("<image>\n" if c["image"] else "") + "Q?", "text": c["text"]}) + "\n"
            for c in cases))
        run_script(script, ["--base-dir", str(tmp), "--result-file", "answers.jsonl", "--output-file", "out.json",
                            "--output-result", "result.json"], tmp)
        out, result = json.load(open(tmp / "out.json")), json.load(open(tmp / "result.json"))
    analysis = {a["question_id"]: (a, k == "correct") for k in ("correct", "incorrect") for a in out[k]}
    rows = [dict(c, parsed=analysis[c["id"]][0]["parsed_ans"], pred_idx=result["results"][c["id"]],
                 correct=analysis[c["id"]][1]) for c in cases]
    mm = [r for r in rows if analysis[r["id"]][0]["is_multimodal"]]
    write_jsonl(OUT / "scienceqa/vectors.jsonl", rows)
    (OUT / "scienceqa/summary.json").write_text(json.dumps(
        {"acc": result["acc"], "img_acc": sum(r["correct"] for r in mm) / len(mm) * 100}, indent=1) + "\n")


VIDEO_CONTROL = {"id": 999999, "text": "A", "answer": "A", "type_id": 10, "data_type": "video"}


def seed() -> None:
    script = materialise("convert_seed")
    # One right answer per dimension: the aggregate run would raise KeyError for a dimension
    # with none (see below).
    cases = seed_cases() + [{"id": 190000 + t, "text": "B", "answer": "B", "type_id": t, "data_type": "image"}
                            for t in range(1, 10)]
    qtypes = {f"Dim {t}": t for t in range(1, 11)}

    def run(items: list[dict], tmp: Path) -> str:
        (tmp / "ann.json").write_text(json.dumps({"question_type": qtypes, "questions": [
            {"question_id": str(c["id"]), "answer": c["answer"], "question_type_id": c["type_id"],
             "data_type": c["data_type"]} for c in items]}))
        (tmp / "answers.jsonl").write_text("".join(json.dumps({"question_id": c["id"], "text": c["text"]}) + "\n"
                                                   for c in items))
        return run_script(script, ["--annotation-file", "ann.json", "--result-file", "answers.jsonl",
                                   "--result-upload-file", "upload.jsonl"], tmp)[1]

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for c in cases:
            # A control question of the same dimension answered right: the script raises
            # KeyError for a dimension without any right answer (correct_counts is only set on
            # a hit or a missing answer), so a lone wrong answer cannot be run by itself.
            # The script also divides by the number of video questions: one, answered right.
            control = dict(c, id=c["id"] + 500000, text=c["answer"])
            printed = run([c, control, VIDEO_CONTROL], tmp)
            line = [l for l in printed.splitlines() if l.startswith("image accuracy")][0]
            assert line in ("image accuracy: 100.00%", "image accuracy: 50.00%"), line
            rows.append(dict(c, correct=line == "image accuracy: 100.00%"))
        printed = run(cases + [VIDEO_CONTROL], tmp)
    write_jsonl(OUT / "seed_image/vectors.jsonl", rows)
    (OUT / "seed_image/summary.json").write_text(json.dumps({"printed": printed.splitlines()}, indent=1) + "\n")


def mmbench() -> None:
    import pandas as pd

    # The file imports opencompass.models.OpenAI at the top; the matcher is never reached for
    # the rows we compare (the stub below raises if it were).
    fake = types.ModuleType("opencompass.models")

    class NoModel:
        def __init__(self, *a, **k):
            pass

        def generate(self, prompts):
            raise LookupError("needs the LLM matcher")

    fake.OpenAI = NoModel
    sys.modules.setdefault("opencompass", types.ModuleType("opencompass"))
    sys.modules["opencompass.models"] = fake
    mod = load_module(materialise("mmbench"), "eval_mmbench")
    cases = mmbench_cases()
    frame = pd.DataFrame([{"index": r["index"], "question": r["question"], "prediction": r["prediction"],
                           **{L: r["options"].get(L, math.nan) for L in "ABCD"}} for r in cases])
    rows = []
    for r, (_, item) in zip(cases, frame.iterrows()):
        got = mod.prefetch_answer(item)
        rows.append(dict(r, parsed=got if got else None))
    answer_map = {r["index"]: r["answer"] for r in cases}
    hits = {}
    for main in sorted({r["index"] % 1_000_000 for r in cases}):
        sub = frame[frame["index"] % int(1e6) == main]
        try:
            hits[main] = mod.eval_sub_data(NoModel(), sub, answer_map)
        except LookupError:
            hits[main] = "needs_llm"
    write_jsonl(OUT / "mmbench/vectors.jsonl", rows)
    (OUT / "mmbench/summary.json").write_text(json.dumps({"hits": {str(k): v for k, v in hits.items()}}) + "\n")


def mmbench_xlsx() -> None:
    """LLaVA's convert_mmbench_for_submission.py, then OpenCompass eval_result, end to end."""
    import pandas as pd

    from cases import mmbench_xlsx_cases

    class FailingModel:   # stands in for opencompass.models.OpenAI: every request fails
        def __init__(self, *a, **k):
            pass

        def generate(self, prompts):
            return ["Failed to obtain answer via API"]

    fake = types.ModuleType("opencompass.models")
    fake.OpenAI = FailingModel
    sys.modules.setdefault("opencompass", types.ModuleType("opencompass"))
    sys.modules["opencompass.models"] = fake
    mod = load_module(materialise("mmbench"), "eval_mmbench_xlsx")
    # Observe (not change) which rows reach the LLM step: record the row, call the original.
    reached: set[int] = set()
    original = mod.extract_answer_from_item

    def observed(model, item):
        reached.add(int(item["index"]) % 1_000_000)
        return original(model, item)

    mod.extract_answer_from_item = observed
    convert = materialise("convert_mmbench")
    cases = mmbench_xlsx_cases()
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        table = pd.DataFrame([{"index": r["index"], "question": r["question"], "hint": math.nan,
                               **{L: r["options"].get(L, math.nan) for L in "ABCD"}, "answer": r["answer"],
                               "category": r["category"], "source": "s", "l2-category": r["l2"],
                               "comment": math.nan, "split": "dev", "image": png} for r in cases])
        table.to_csv(tmp / "meta.tsv", sep="\t", index=False)
        (tmp / "answers").mkdir()
        (tmp / "answers" / "m.jsonl").write_text("".join(json.dumps({"question_id": r["index"], "text": r["prediction"]}) + "\n"
                                                         for r in cases))
        run_script(convert, ["--annotation-file", "meta.tsv", "--result-dir", "answers", "--upload-dir", ".",
                             "--experiment", "m"], tmp)
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                mod.eval_result(str(tmp / "m.xlsx"), "openai", str(tmp / "meta.tsv"))
        finally:
            os.chdir(cwd)
        hits = mod.load(str(tmp / "m_openai_result.pkl"))
        meta_tsv = (tmp / "meta.tsv").read_text(encoding="utf-8")
    out = [{"main": int(m), "hit": int(h), "llm_asked": int(m) in reached} for m, h in sorted(hits.items())]
    (OUT / "mmbench_xlsx").mkdir(parents=True, exist_ok=True)
    (OUT / "mmbench_xlsx/meta.tsv").write_text(meta_tsv.replace(png, "AAAA"), encoding="utf-8")
    write_jsonl(OUT / "mmbench_xlsx/predictions.jsonl", [{"index": r["index"], "text": r["prediction"]} for r in cases])
    write_jsonl(OUT / "mmbench_xlsx/hits.jsonl", out)


if __name__ == "__main__":
    for step in sys.argv[2:] or ["pope", "mme", "gqa", "sqa", "seed", "mmbench", "mmbench_xlsx"]:
        globals()[step]()
