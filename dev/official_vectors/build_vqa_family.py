"""Vectors for the VQA API (VQAv2-val), the VizWiz API and m4c TextVQA, from the official code.

usage: python dev/official_vectors/build_vqa_family.py [OUT_DIR]
Needs: Python 2.7 at $PY27 (default /root/.pyenv/versions/2.7.18/bin/python) for the 2021 VQA
API, which is Python 2 source; numpy + scikit-learn + tqdm in the running Python (imports of the
VizWiz and m4c files); the VizWiz file at $VIZWIZ_EVAL (see README).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from cases import VIZWIZ_TYPES, vqa_cases  # noqa: E402
from official_src import checkout_root, load_module, materialise  # noqa: E402

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[1] / "tests/data/official_vectors"
PY27 = os.environ.get("PY27", "/root/.pyenv/versions/2.7.18/bin/python")
VIZWIZ_EVAL = Path(os.environ.get("VIZWIZ_EVAL", "/tmp/off/vizwiz_vqaEval.py"))


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows),
                    encoding="utf-8")


def vqa_api(cases: list[dict], field: str) -> dict:
    """Run the official Python 2 API on ``case[field]`` as the result answer."""
    materialise("vqa_eval")
    materialise("vqa_tools")
    materialise("vqa_eval_init")
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "cases.json"), Path(tmp, "out.json")
        src.write_text(json.dumps([{"id": c["id"], "res": c[field], "answers": c["answers"],
                                    "answer_type": c["answer_type"]} for c in cases]), encoding="utf-8")
        subprocess.run([PY27, str(HERE / "run_vqa_api_py2.py"), str(checkout_root("vqa_eval")), str(src), str(dst)],
                       check=True, stdout=subprocess.DEVNULL)
        return json.loads(dst.read_text(encoding="utf-8"))


def vizwiz_api(cases: list[dict], field: str) -> dict:
    """The VizWiz ``VQAEval`` accuracy on ``case[field]``; its caption-metric step is not run."""
    for name in ("pycocoevalcap", "pycocoevalcap.tokenizer", "pycocoevalcap.tokenizer.ptbtokenizer",
                 "pycocoevalcap.bleu", "pycocoevalcap.bleu.bleu", "pycocoevalcap.meteor",
                 "pycocoevalcap.meteor.meteor", "pycocoevalcap.rouge", "pycocoevalcap.rouge.rouge",
                 "pycocoevalcap.cider", "pycocoevalcap.cider.cider"):
        module = sys.modules.setdefault(name, types.ModuleType(name))
        for attr in ("PTBTokenizer", "Bleu", "Meteor", "Rouge", "Cider"):
            setattr(module, attr, None)
    mod = load_module(VIZWIZ_EVAL, "vizwiz_vqaEval")
    imgs = [f"VizWiz_val_{c['id']:08d}.jpg" for c in cases]
    gt = types.SimpleNamespace(
        getImgs=lambda: imgs,
        imgToQA={img: {"image": img, "answer_type": c["answer_type"], "answerable": 1,
                       "answers": [{"answer": a, "answer_confidence": "yes"} for a in c["answers"]]}
                 for img, c in zip(imgs, cases)})
    res = types.SimpleNamespace(imgToQA={img: {"image": img, "answer": c[field]} for img, c in zip(imgs, cases)})
    ev = mod.VQAEval(gt, res, n=12)
    try:
        ev.evaluate()
    except NotImplementedError:
        pass  # reached only after the accuracy loop and setAccuracy have run
    return {"per_question": [{"id": c["id"], "score": ev.evalQA[img]} for img, c in zip(imgs, cases)],
            "overall": ev.accuracy["overall"], "per_answer_type": ev.accuracy["perAnswerType"]}


def main() -> None:
    m4c_mod = load_module(materialise("m4c"), "m4c_evaluator")
    processor = m4c_mod.EvalAIAnswerProcessor()

    # VQAv2-val: m4c submission processor then the API, and the API on the raw text.
    cases = vqa_cases(3000, seed=18)
    for c in cases:
        c["m4c"] = processor(c["pred"])
    raw, m4c = vqa_api(cases, "pred"), vqa_api(cases, "m4c")
    rows = [dict(c, api_raw=r["score"], api_m4c=m["score"])
            for c, r, m in zip(cases, raw["per_question"], m4c["per_question"])]
    write_jsonl(OUT / "vqav2_val/vectors.jsonl", rows)
    (OUT / "vqav2_val/summary.json").write_text(json.dumps(
        {"api_raw": {k: raw[k] for k in ("overall", "per_answer_type")},
         "api_m4c": {k: m4c[k] for k in ("overall", "per_answer_type")}}, indent=1) + "\n")

    # VizWiz-val: m4c submission processor then the VizWiz API, and the API on the raw text.
    cases = vqa_cases(2000, seed=19, types=VIZWIZ_TYPES)
    for c in cases:
        c["m4c"] = processor(c["pred"])
    raw, m4c = vizwiz_api(cases, "pred"), vizwiz_api(cases, "m4c")
    rows = [dict(c, api_raw=r["score"], api_m4c=m["score"])
            for c, r, m in zip(cases, raw["per_question"], m4c["per_question"])]
    write_jsonl(OUT / "vizwiz_val/vectors.jsonl", rows)
    (OUT / "vizwiz_val/summary.json").write_text(json.dumps(
        {"api_raw": {k: raw[k] for k in ("overall", "per_answer_type")},
         "api_m4c": {k: m4c[k] for k in ("overall", "per_answer_type")}}, indent=1) + "\n")

    # TextVQA: TextVQAAccuracyEvaluator.eval_pred_list on one entry = that question's score.
    evaluator = m4c_mod.TextVQAAccuracyEvaluator()
    cases = vqa_cases(2000, seed=20)
    rows = []
    for c in cases:
        entry = {"pred_answer": c["pred"], "gt_answers": c["answers"]}
        rows.append({"id": c["id"], "pred": c["pred"], "answers": c["answers"],
                     "m4c": processor(c["pred"]), "score": evaluator.eval_pred_list([entry])})
    overall = evaluator.eval_pred_list([{"pred_answer": c["pred"], "gt_answers": c["answers"]} for c in cases])
    write_jsonl(OUT / "textvqa/vectors.jsonl", rows)
    (OUT / "textvqa/summary.json").write_text(json.dumps({"accuracy": overall}, indent=1) + "\n")


if __name__ == "__main__":
    main()
