"""Toy open-ended VQA benchmarks: GQA, VQAv2 (test-dev + val), VizWiz (test + val), TextVQA.

Each writer produces the files of the LLaVA-1.5 evaluation layout (protocol.md §3.1-3.3, 3.5)
with the field names, id types and file-name conventions of the real files, and returns a small
stats dict (question/image counts and the task's chance-level baselines).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from . import text as T
from .layout import SHORT_ANSWER, VIZWIZ_SUFFIX, Out, hex_id, majority_rate, unique_ints
from .world import COLORS, SHAPES, WORDS, Scene, Size, render_scene, rng_for, sample_scene

# --- GQA --------------------------------------------------------------------------------------

# family -> (structural, semantic, detailed) GQA types; 'query' questions are the "open" ones.
GQA_TYPES = {
    "exist": ("verify", "obj", "exist"),
    "verify_color": ("verify", "attr", "verifyAttr"),
    "left_of": ("verify", "rel", "relVerify"),
    "above": ("verify", "rel", "relVerify"),
    "both": ("logical", "obj", "existAnd"),
    "same_color": ("compare", "attr", "twoSame"),
    "choose_color": ("choose", "attr", "chooseAttr"),
    "size": ("choose", "attr", "chooseAttr"),
    "color": ("query", "attr", "queryAttr"),
    "relation_shape": ("query", "rel", "relS"),
    "shape_at": ("query", "cat", "category"),
    "side": ("query", "attr", "positionQuery"),
    "background": ("query", "global", "place"),
}


def _gqa_program(qa: T.QA, scene: Scene, obj_ids: dict) -> list[dict]:
    """A short GQA-style semantic program (select -> operation); informative, not executed."""
    structural, _, _ = GQA_TYPES[qa.family]
    cell = qa.meta.get("object") or qa.meta.get("anchor") or qa.meta.get("a")
    ops: list[dict] = []
    if cell is not None:
        o = next(x for x in scene.objects if x.cell == tuple(cell))
        ops.append({"operation": "select", "dependencies": [], "argument": f"{o.shape} ({obj_ids[o.cell]})"})
    elif "shape" in qa.meta:
        ops.append({"operation": "select", "dependencies": [], "argument": f"{qa.meta['shape']} (-)"})
    else:
        ops.append({"operation": "select", "dependencies": [], "argument": "scene"})
    ops.append({"operation": structural if structural != "query" else "query",
                "dependencies": [0], "argument": qa.family})
    return ops


def write_gqa(root: Path, seed: int, n: int, size: Size = 48) -> dict:
    out = Out(root / "gqa")
    rng = rng_for(seed, "gqa")
    families = list(GQA_TYPES)
    questions: dict[str, dict] = {}
    lines = []
    image_nums = unique_ints(rng, n, 1000, 600000)
    qid_pool = unique_ints(rng, 4 * n, 2_000_000, 210_000_000)
    n_img = 0
    while len(lines) < n:
        scene = sample_scene(rng, n_objects=int(rng.integers(2, 5)))
        image_id = f"n{image_nums[n_img]}"
        obj_ids = {o.cell: str(image_nums[n_img] * 10 + k) for k, o in enumerate(scene.objects)}
        n_img += 1
        out.image(f"data/images/{image_id}.jpg", render_scene(scene, size))
        asked: set[str] = set()
        for _ in range(int(rng.integers(3, 7))):
            if len(lines) >= n:
                break
            fam = families[int(rng.integers(len(families)))]
            qa = T.ask(fam, scene, rng)
            if qa is None or qa.question in asked:
                continue
            asked.add(qa.question)
            qid = str(qid_pool[len(lines)])
            structural, semantic, detailed = GQA_TYPES[fam]
            questions[qid] = {
                "semantic": _gqa_program(qa, scene, obj_ids),
                "entailed": [],
                "equivalent": [qid],
                "question": qa.question,
                "imageId": image_id,
                "isBalanced": True,
                "groups": {"global": None if structural != "query" else qa.family, "local": f"{len(lines) % 20:02d}-{fam}"},
                "answer": qa.answer,
                "semanticStr": f"select: {qa.family}",
                "annotations": {"answer": {}, "question": {}, "fullAnswer": {}},
                "types": {"structural": structural, "semantic": semantic, "detailed": detailed},
                "fullAnswer": f"The answer is {qa.answer}.",
            }
            lines.append({"question_id": qid, "image": f"{image_id}.jpg", "text": qa.question + SHORT_ANSWER,
                          "category": "default"})
    out.jsonl("llava_gqa_testdev_balanced.jsonl", lines)
    out.json("data/testdev_balanced_questions.json", questions)
    binary = [q for q in questions.values() if q["types"]["structural"] != "query"]
    open_ = [q for q in questions.values() if q["types"]["structural"] == "query"]
    # Binary questions have two possible answers; open ones are scored against the blind
    # "always say the most common open answer" baseline.
    maj_open = majority_rate([q["answer"] for q in open_])
    acc = (len(binary) * 0.5 + len(open_) * maj_open) / max(1, len(questions))
    return {"questions": len(lines), "images": out.n_images,
            "chance": {"accuracy": 100 * acc, "binary": 50.0, "open": 100 * maj_open}}


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


# --- VizWiz -----------------------------------------------------------------------------------

def _vizwiz_item(rng: np.random.Generator) -> tuple[Scene, str, str, str]:
    """(scene, question, answer, answer_type) for one VizWiz-style photo and question."""
    r = rng.random()
    if r < 0.2:
        # Blurry photo: nothing can be told apart.
        scene = sample_scene(rng, n_objects=1, blur=True, word_prob=0.5)
        q = ["What is this?", "What color is this?", "What does this say?"][int(rng.integers(3))]
        return scene, q, "unanswerable", "unanswerable"
    kind = int(rng.integers(5))
    if kind in (0, 1):
        # "What is this?" photos hold one thing and no text, so "this" is unambiguous.
        scene = sample_scene(rng, n_objects=1)
        o = scene.objects[0]
        return (scene, "What is this?", o.shape, "other") if kind == 0 else (scene, "What color is this?", o.color, "other")
    if kind == 2:
        scene = sample_scene(rng, n_objects=1, word_prob=0.7)
        if scene.text is None:
            return scene, "What does this say?", "unanswerable", "unanswerable"
        return scene, "What does this say?", scene.text.text.lower(), "other"
    scene = sample_scene(rng, n_objects=int(rng.integers(1, 3)), word_prob=0.2)
    if kind == 3:
        shape = scene.objects[int(rng.integers(len(scene.objects)))].shape
        return scene, f"How many {T.PLURALS[shape]} are there?", str(scene.count(shape)), "number"
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    ans = "yes" if scene.has(shape) else "no"
    q = f"Is this {T.with_article(shape)}?" if len(scene.objects) == 1 else f"Is there {T.with_article(shape)}?"
    return scene, q, ans, "yes/no"


def _vizwiz_answers(rng: np.random.Generator, answer: str, atype: str) -> list[dict]:
    pool = {"other": list(SHAPES) + list(COLORS), "number": ["1", "2", "3"], "yes/no": ["yes", "no"],
            "unanswerable": ["unsuitable", "blurry"]}[atype]
    answers = T.human_answers(rng, answer, pool)
    conf = ["yes" if rng.random() < 0.8 else "maybe" for _ in answers]
    return [{"answer": a, "answer_confidence": c} for a, c in zip(answers, conf)]


def write_vizwiz(root: Path, seed: int, n: int, size: Size = 48) -> dict:
    out = Out(root / "vizwiz")
    rng = rng_for(seed, "vizwiz")
    lines = []
    for i in range(n):
        scene, q, _, _ = _vizwiz_item(rng)
        name = f"VizWiz_test_{i:08d}.jpg"
        out.image(f"test/{name}", render_scene(scene, size))
        lines.append({"question_id": i, "image": name, "text": q + VIZWIZ_SUFFIX, "category": "default"})
    out.jsonl("llava_test.jsonl", lines)

    vrng = rng_for(seed, "vizwiz_val")
    val = []
    by_type: dict[str, list[str]] = {"yes/no": [], "number": [], "other": [], "unanswerable": []}
    for i in range(n):
        scene, q, ans, atype = _vizwiz_item(vrng)
        name = f"VizWiz_val_{i:08d}.jpg"
        out.image(f"val/{name}", render_scene(scene, size))
        val.append({"image": name, "question": q, "answers": _vizwiz_answers(vrng, ans, atype),
                    "answer_type": atype, "answerable": 0 if atype == "unanswerable" else 1})
        by_type[atype].append(ans)
    out.json("val.json", val)
    unans = len(by_type["unanswerable"]) / max(1, n)
    # Blind baseline: always answer "unanswerable" (the classic VizWiz prior).
    return {"questions": n, "val_questions": n, "images": out.n_images,
            "chance": {"vizwiz_val": {"accuracy": 100 * unans, "unanswerable": 100.0,
                                      "yes/no": 0.0, "number": 0.0, "other": 0.0}}}


# --- TextVQA ----------------------------------------------------------------------------------

_TEXTVQA_FAMILIES = ("word", "word", "text_color", "first_letter", "letters", "word_row")


def _textvqa_qa(rng: np.random.Generator, scene: Scene, fam: str) -> T.QA:
    if fam == "word_row":
        t = scene.text
        assert t is not None
        return T.QA(f"what word is written {T.ROW_PHRASES[t.row]} of the image?", t.text.lower(), "word")
    qa = T.ask(fam, scene, rng)
    assert qa is not None
    qa.question = qa.question[0].lower() + qa.question[1:]  # TextVQA questions are lower-case
    return qa


def _ocr_tokens(rng: np.random.Generator, word: str) -> list[str]:
    r = rng.random()
    if r < 0.1:
        return []  # OCR found nothing (the real file then has an empty token list)
    tokens = [word]
    if r < 0.35:
        cut = int(rng.integers(1, len(word)))
        tokens.append(word[:cut] if rng.random() < 0.5 else word[cut:])
    return tokens


def write_textvqa(root: Path, seed: int, n: int, size: Size = (64, 48)) -> dict:
    out = Out(root / "textvqa")
    rng = rng_for(seed, "textvqa")
    data, lines = [], []
    qid = 34602
    answers_all = []
    while len(lines) < n:
        word = WORDS[int(rng.integers(len(WORDS)))]
        scene = sample_scene(rng, n_objects=int(rng.integers(1, 3)), word=word)
        image_id = hex_id(rng)
        img = render_scene(scene, size)
        out.image(f"train_images/{image_id}.jpg", img)
        tokens = _ocr_tokens(rng, word)
        fams = [_TEXTVQA_FAMILIES[i] for i in rng.permutation(len(_TEXTVQA_FAMILIES))[: int(rng.integers(1, 3))]]
        asked = set()
        for fam in fams:
            if len(lines) >= n:
                break
            qa = _textvqa_qa(rng, scene, fam)
            if qa.question in asked:
                continue
            asked.add(qa.question)
            pool = {"word": [w.lower() for w in WORDS], "text_color": list(COLORS),
                    "first_letter": list("abcdefghiklmnoprst"), "letters": ["3", "4", "5"]}[qa.family]
            answers = T.human_answers(rng, qa.answer, pool)
            answers_all.append(qa.answer)
            data.append({
                "question": qa.question, "image_id": image_id, "image_classes": ["Toy"],
                "flickr_original_url": "", "flickr_300k_url": "", "image_width": img.width,
                "image_height": img.height, "answers": answers,
                "question_tokens": qa.question.rstrip("?").split(), "question_id": qid, "set_name": "val",
            })
            qid += 1
            prompt = T.capitalize(qa.question) + "\nReference OCR token: " + ", ".join(tokens) + SHORT_ANSWER
            # As in LLaVA's file, question_id is the image id (shared by questions on one image).
            lines.append({"question_id": image_id, "image": f"{image_id}.jpg", "text": prompt, "category": "default"})
    out.jsonl("llava_textvqa_val_v051_ocr.jsonl", lines)
    out.json("TextVQA_0.5.1_val.json", {"dataset_type": "val", "dataset_name": "textvqa",
                                         "dataset_version": "0.5.1", "data": data})
    return {"questions": len(lines), "images": out.n_images,
            "chance": {"accuracy": 100 * majority_rate(answers_all)}}
