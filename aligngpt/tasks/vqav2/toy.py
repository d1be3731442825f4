"""The toy VQAv2 copy (test-dev + val) in LLaVA-1.5's layout (written by :func:`write_vqav2`).

The writer produces the files of the LLaVA-1.5 evaluation layout (docs/protocol/vqav2.md) with
the field names, id types and file-name conventions of the real files, and returns a small stats
dict (question/image counts and the task's chance-level baselines).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from aligngpt.toy import text as T
from aligngpt.toy.layout import SHORT_ANSWER, Out, majority_rate, unique_ints
from aligngpt.toy.world import COLORS, SHAPES, WORDS, Scene, Size, render_scene, rng_for, sample_scene

# --- VQAv2 ------------------------------------------------------------------------------------

VQA_FAMILIES = ("color", "count", "count_all", "exist", "exist_color", "verify_color", "shape_at",
                "side", "both", "background", "size", "word")
# family -> VQA question_type prefix (the VQA API reports accuracy per such prefix).
VQA_QTYPE = {
    "color": "what color is the", "count": "how many", "count_all": "how many", "exist": "is there a",
    "exist_color": "is there a", "verify_color": "is the", "shape_at": "what", "side": "what",
    "both": "are there", "background": "what color is the", "size": "is the", "word": "what is the",
}
VQA_POOLS = {
    "color": list(COLORS), "count": [str(i) for i in range(6)], "count_all": [str(i) for i in range(1, 6)],
    "shape_at": list(SHAPES), "side": ["left", "right"], "background": ["black", "gray", "white"],
    "size": ["small", "large"], "word": [w.lower() for w in WORDS],
}


def _vqa_item(rng: np.random.Generator, scene: Scene) -> Optional[T.QA]:
    fam = VQA_FAMILIES[int(rng.integers(len(VQA_FAMILIES)))]
    return T.ask(fam, scene, rng)


def _vqa_answers(rng: np.random.Generator, qa: T.QA) -> list[dict]:
    pool = VQA_POOLS.get(qa.family, ["yes", "no"])
    answers = T.human_answers(rng, qa.answer, pool)
    conf = ["yes" if rng.random() < 0.85 else "maybe" for _ in answers]
    return [{"answer": a, "answer_confidence": c, "answer_id": i + 1} for i, (a, c) in enumerate(zip(answers, conf))]


def write_vqav2(root: Path, seed: int, n: int, size: Size = 48) -> dict:
    """test-dev + full test2015 question files (server-scored) and the val2014 files (local proxy)."""
    out = Out(root / "vqav2")
    rng = rng_for(seed, "vqav2")
    # test2015: test-dev questions plus test-std-only ones; the converter needs all of them.
    n_test = n + n // 2
    image_ids = unique_ints(rng, n_test, 1, 581930)
    all_lines: list[dict] = []
    k_img = 0
    while len(all_lines) < n_test:
        scene = sample_scene(rng, word_prob=0.15)
        img_id = image_ids[k_img]
        k_img += 1
        name = f"COCO_test2015_{img_id:012d}.jpg"
        out.image(f"test2015/{name}", render_scene(scene, size))
        asked: set[str] = set()
        for k in range(int(rng.integers(1, 4))):
            qa = _vqa_item(rng, scene)
            if qa is None or len(all_lines) >= n_test or qa.question in asked:
                continue
            asked.add(qa.question)
            row = {"question_id": img_id * 1000 + k, "image": name, "text": qa.question + SHORT_ANSWER,
                   "category": "default"}
            all_lines.append(row)
    # test-dev is a subset of test2015 (file order kept); the rest exist only in test-std.
    dev_lines = [all_lines[i] for i in sorted(rng.permutation(n_test)[:n].tolist())]
    out.jsonl("llava_vqav2_mscoco_test-dev2015.jsonl", dev_lines)
    out.jsonl("llava_vqav2_mscoco_test2015.jsonl", all_lines)

    # val2014 (the local proxy): official question + annotation JSON files.
    vrng = rng_for(seed, "vqav2_val")
    val_ids = unique_ints(vrng, n, 1, 581930)
    questions, annotations = [], []
    k_img = 0
    types: dict[str, list[str]] = {"yes/no": [], "number": [], "other": []}
    while len(questions) < n:
        scene = sample_scene(vrng, word_prob=0.15)
        img_id = val_ids[k_img]
        k_img += 1
        out.image(f"val2014/COCO_val2014_{img_id:012d}.jpg", render_scene(scene, size))
        asked = set()
        for k in range(int(vrng.integers(1, 4))):
            qa = _vqa_item(vrng, scene)
            if qa is None or len(questions) >= n or qa.question in asked:
                continue
            asked.add(qa.question)
            qid = img_id * 1000 + k
            answers = _vqa_answers(vrng, qa)
            questions.append({"image_id": img_id, "question": qa.question, "question_id": qid})
            annotations.append({
                "question_type": VQA_QTYPE[qa.family], "multiple_choice_answer": qa.answer, "answers": answers,
                "image_id": img_id, "answer_type": qa.answer_type, "question_id": qid,
            })
            types[qa.answer_type].append(qa.answer)
    info = {"description": "Toy VQA v2 (aligngpt.toy; synthetic)", "version": "2.0", "year": 2017}
    lic = {"name": "synthetic", "url": ""}
    out.json("v2_OpenEnded_mscoco_val2014_questions.json", {
        "info": info, "task_type": "Open-Ended", "data_type": "mscoco", "license": lic,
        "data_subtype": "val2014", "questions": questions})
    out.json("v2_mscoco_val2014_annotations.json", {
        "info": info, "license": lic, "data_subtype": "val2014", "annotations": annotations, "data_type": "mscoco"})
    per = {t: 100 * majority_rate(a) for t, a in types.items()}
    overall = sum(len(a) * majority_rate(a) for a in types.values()) / max(1, n)
    return {"questions": len(dev_lines), "test_questions": len(all_lines), "val_questions": len(questions),
            "images": out.n_images,
            "chance": {"vqav2_val": {"accuracy": 100 * overall, "yes/no": per["yes/no"], "number": per["number"],
                                     "other": per["other"]}}}
