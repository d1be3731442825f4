"""Toy multiple-choice benchmarks: ScienceQA-IMG, MMBench (EN + CN) and SEED-Bench, in LLaVA-1.5's layout.

ScienceQA (protocol.md §3.4): ``problems.json`` (pid -> question, choices, answer index, hint,
image, subject, ...), ``pid_splits.json``, images ``images/test/{pid}/image.png`` and LLaVA's
``llava_test_CQM-A.json`` (human turn ``[<image>\\n][Context: hint\\n]question\\nA. ..``, gpt turn
= the letter; written with ``indent=2`` like the real file). Text-only problems are included,
as in the real test split, so ``accuracy`` and ``img_accuracy`` differ.

MMBench (§3.8/3.9): the dev TSV with columns ``index, question, hint, A, B, C, D, answer,
category, image (base64), source, l2-category, comment, split``; each question of N options is
followed by its N-1 circular copies (options rotated, ``index + k*1000000``). The CN file holds
the translated subset of the same questions under the same indices.

SEED-Bench (§3.10): ``SEED-Bench.json`` (``questions`` + ``question_type`` map, string ids,
``data_id`` = an extension-less image file name) plus a few video questions (dimensions 10-12,
``data_type`` "video", ids ``v123``), whose middle frames LLaVA stored as
``SEED-Bench-video-image/{type}_{qid}.png``; ``llava-seed-bench.jsonl`` has int ids for image
questions and the string id for video ones.
"""
from __future__ import annotations

import base64
import csv
import io
from pathlib import Path

import numpy as np

from . import text as T
from .layout import LETTERS, MC_ANSWER, Out, mc_block, unique_ints
from .world import (
    SHAPES, WORDS, Scene, Size, encode_image, render_scene, render_text_card, rng_for, sample_scene,
)

# --- ScienceQA --------------------------------------------------------------------------------

# family -> (subject, topic, category, skill)
SQA_IMAGE_FAMILIES = {
    "color": ("natural science", "colors", "Identify colors", "Identify the color of a shape"),
    "shape_at": ("natural science", "shapes", "Identify shapes", "Identify a shape"),
    "count": ("natural science", "counting", "Count objects", "Count shapes in a picture"),
    "word": ("language science", "reading", "Read words", "Read a word in a picture"),
    "side": ("social science", "geography", "Read a map", "Tell left from right"),
    "most_corners": ("natural science", "geometry", "Compare shapes", "Compare numbers of corners"),
    "background": ("natural science", "colors", "Identify colors", "Identify a background color"),
}
SQA_HINTS = ("Look at the picture.", "The picture shows shapes on a plain background.",
             "Shapes can differ in color, size and place.")
SQA_TEXT_HINTS = ("Select the best answer.", "Use what you know about shapes and words.")


def _trim_options(qa: T.QA, k: int) -> list[str]:
    """Keep the answer and ``k-1`` of the distractors, order preserved."""
    assert qa.options is not None
    ans = qa.option_answer
    keep = {ans} | set([o for o in qa.options if o != ans][: k - 1])
    return [o for o in qa.options if o in keep]


def _sqa_text_problem(rng: np.random.Generator) -> tuple[str, list[str], int, tuple[str, str, str, str], str]:
    kind = int(rng.integers(4))
    if kind == 0:
        qa = T.q_sides_knowledge(Scene((), "black"), rng)
        assert qa is not None and qa.options is not None
        return (qa.question, qa.options, qa.answer_index,
                ("natural science", "geometry", "Shapes", "Count the corners of a shape"),
                f"A {qa.meta['shape']} has {qa.answer} corners.")
    if kind == 1:
        word = WORDS[int(rng.integers(len(WORDS)))]
        ans = T.SPANISH[word]
        others = [T.SPANISH[w] for w in WORDS if w != word]
        opts = [ans] + [others[i] for i in rng.permutation(len(others))[:3].tolist()]
        opts = [opts[i] for i in rng.permutation(len(opts)).tolist()]
        return (f"What is the Spanish word for {word.lower()}?", opts, opts.index(ans),
                ("language science", "translation", "Translate words", "Translate a word into Spanish"),
                f"The Spanish word for {word.lower()} is {ans}.")
    if kind == 2:
        _, qa = T.arithmetic_qa(rng)
        problem = qa.meta["problem"].rstrip("=")
        sym = next(c for c in problem if c in "+-*")
        a, b = problem.split(sym)
        q = f"What is {a} {dict(zip('+-*', ('plus', 'minus', 'times')))[sym]} {b}?"
        assert qa.options is not None
        return (q, qa.options, qa.answer_index, ("natural science", "arithmetic", "Add and subtract", "Compute"),
                f"The answer is {qa.answer}.")
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    name = T.CHARACTER_NAMES[shape]
    others = [s for s in SHAPES if s != shape]
    opts = [shape] + [others[i] for i in rng.permutation(len(others))[:3].tolist()]
    opts = [opts[i] for i in rng.permutation(len(opts)).tolist()]
    return (f"Which shape is the character {name}?", opts, opts.index(shape),
            ("social science", "culture", "Know characters", "Match a character to its shape"),
            f"{name} is a {shape}.")


def write_scienceqa(root: Path, seed: int, n: int, size: Size = 48) -> dict:
    out = Out(root / "scienceqa")
    rng = rng_for(seed, "scienceqa")
    n_extra = 10  # a few train/val problems so pid_splits has every key, as the real file
    pids = [str(p) for p in unique_ints(rng, n + 2 * n_extra, 1, 21209)]
    test_pids, train_pids, val_pids = pids[:n], pids[n:n + n_extra], pids[n + n_extra:]
    problems: dict[str, dict] = {}
    llava = []
    fams = list(SQA_IMAGE_FAMILIES)
    inv_img, inv_all = [], []
    split_of = {**{p: "train" for p in train_pids}, **{p: "val" for p in val_pids}, **{p: "test" for p in test_pids}}
    for pid in pids:
        split = split_of[pid]
        with_image = split == "test" and rng.random() < 0.75
        hint = ""
        if with_image:
            while True:
                fam = fams[int(rng.integers(len(fams)))]
                scene = sample_scene(rng, word=WORDS[int(rng.integers(len(WORDS)))] if fam == "word" else None)
                qa = T.ask(fam, scene, rng)
                if qa is not None and qa.options is not None:
                    break
            choices = _trim_options(qa, int(rng.integers(2, 5)))
            answer = choices.index(qa.option_answer)
            question = qa.question
            subject, topic, category, skill = SQA_IMAGE_FAMILIES[fam]
            solution = f"The answer is {qa.option_answer}."
            if rng.random() < 0.6:
                hint = SQA_HINTS[int(rng.integers(len(SQA_HINTS)))]
            out.image(f"images/test/{pid}/image.png", render_scene(scene, size))
        else:
            question, choices, answer, (subject, topic, category, skill), solution = _sqa_text_problem(rng)
            if rng.random() < 0.5:
                hint = SQA_TEXT_HINTS[int(rng.integers(len(SQA_TEXT_HINTS)))]
        problems[pid] = {
            "question": question, "choices": choices, "answer": answer, "hint": hint,
            "image": "image.png" if with_image else None, "task": "closed choice",
            "grade": f"grade{int(rng.integers(1, 9))}", "subject": subject, "topic": topic,
            "category": category, "skill": skill, "lecture": "Shapes, colors and words can be seen and named.",
            "solution": solution, "split": split,
        }
        if split != "test":
            continue
        human = ("<image>\n" if with_image else "") + (f"Context: {hint}\n" if hint else "") + question + mc_block(choices)
        entry: dict = {"id": pid}
        if with_image:
            entry["image"] = f"{pid}/image.png"
        entry["conversations"] = [{"from": "human", "value": human}, {"from": "gpt", "value": LETTERS[answer]}]
        llava.append(entry)
        inv_all.append(1 / len(choices))
        if with_image:
            inv_img.append(1 / len(choices))
    splits = {"train": train_pids, "val": val_pids, "test": test_pids, "trainval": train_pids + val_pids,
              "minitrain": train_pids[:5], "minival": val_pids[:5], "minitest": test_pids[: max(1, n // 4)]}
    out.json("problems.json", problems)
    out.json("pid_splits.json", splits)
    out.json("llava_test_CQM-A.json", llava, indent=2)
    return {"questions": len(llava), "image_questions": len(inv_img), "images": out.n_images,
            "chance": {"img_accuracy": 100 * float(np.mean(inv_img)) if inv_img else 0.0,
                       "accuracy": 100 * float(np.mean(inv_all))}}


# --- MMBench ----------------------------------------------------------------------------------

L2 = {
    "cp": "coarse_perception", "fps": "finegrained_perception (instance-level)",
    "fpc": "finegrained_perception (cross-instance)", "ar": "attribute_reasoning",
    "rr": "relation_reasoning", "lr": "logic_reasoning",
}
# family -> (category, l2-category); the L3 / L2 names are those of the real dev TSV.
MMB_FAMILIES = {
    "background": ("image_style", L2["cp"]),
    "scene_kind": ("image_scene", L2["cp"]),
    "color": ("attribute_recognition", L2["fps"]),
    "shape_at": ("attribute_recognition", L2["fps"]),
    "position": ("object_localization", L2["fps"]),
    "word": ("ocr", L2["fps"]),
    "same_color": ("attribute_comparison", L2["fpc"]),
    "relative_position": ("spatial_relationship", L2["fpc"]),
    "most_corners": ("physical_property_reasoning", L2["ar"]),
    "character": ("identity_reasoning", L2["ar"]),
    "relation_shape": ("physical_relation", L2["rr"]),
    "arithmetic": ("structuralized_imagetext_understanding", L2["lr"]),
}
MMB_COLUMNS = ("index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image", "source",
               "l2-category", "comment", "split")
MMB_HINT_EN = "The picture shows simple shapes on a plain background."
MMB_HINT_CN = "图中是一些简单的图形。"


def _b64(img) -> str:
    return base64.b64encode(encode_image(img, "JPEG")).decode("ascii")


def _mmb_question(rng: np.random.Generator, size: Size):
    """(image, QA, scene or None) for one MMBench question."""
    fams = list(MMB_FAMILIES)
    while True:
        fam = fams[int(rng.integers(len(fams)))]
        if fam == "arithmetic":
            problem, qa = T.arithmetic_qa(rng, "+-")
            return render_text_card(problem, size=size), qa, None
        n_obj = 1 if fam == "character" else None
        scene = sample_scene(rng, n_objects=n_obj, word=WORDS[int(rng.integers(len(WORDS)))] if fam == "word" else None)
        qa = T.ask(fam, scene, rng)
        if qa is not None and qa.options is not None and len(qa.options) in (2, 4):
            return render_scene(scene, size), qa, scene


def _circular_rows(index: int, question: str, hint: str, options: list[str], answer: str, category: str,
                   l2: str, image_b64: str) -> list[dict]:
    n = len(options)
    a = options.index(answer)
    rows = []
    for k in range(n):
        opts = options[k:] + options[:k]
        row = {"index": index + k * 1_000_000, "question": question, "hint": hint}
        for i, letter in enumerate("ABCD"):
            row[letter] = opts[i] if i < n else ""
        row.update({"answer": LETTERS[(a - k) % n], "category": category, "image": image_b64, "source": "toy",
                    "l2-category": l2, "comment": "", "split": "dev"})
        rows.append(row)
    return rows


def _write_tsv(out: Out, rel: str, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(MMB_COLUMNS)
    for r in sorted(rows, key=lambda r: r["index"]):
        w.writerow([r[c] for c in MMB_COLUMNS])
    out.text(rel, buf.getvalue())


def write_mmbench(root: Path, seed: int, n: int, size: Size = 48) -> dict:
    """``n`` main questions in the EN TSV (plus circular copies); their translations in the CN TSV."""
    out = Out(root / "mmbench")
    rng = rng_for(seed, "mmbench")
    en_rows, cn_rows = [], []
    chance_en, chance_cn = [], []
    for index in range(n):
        img, qa, scene = _mmb_question(rng, size)
        category, l2 = MMB_FAMILIES[qa.family]
        b64 = _b64(img)
        assert qa.options is not None
        with_hint = rng.random() < 0.3
        en_rows += _circular_rows(index, qa.question, MMB_HINT_EN if with_hint else "", list(qa.options),
                                  qa.option_answer, category, l2, b64)
        k = len(qa.options)
        chance_en.append((1 / k) ** k)
        zh = T.zh_question(qa, scene) if scene is not None else T.zh_question(qa, Scene((), "white"))
        if zh is not None:
            q_cn, opts_cn, ans_cn = zh
            cn_rows += _circular_rows(index, q_cn, MMB_HINT_CN if with_hint else "", opts_cn, ans_cn,
                                      category, l2, b64)
            chance_cn.append((1 / k) ** k)
    _write_tsv(out, "mmbench_dev_20230712.tsv", en_rows)
    _write_tsv(out, "mmbench_dev_cn_20231003.tsv", cn_rows)
    out.n_images = n
    # Random letters on every circular pass: a question with N options survives with (1/N)^N.
    return {"questions": n, "rows": len(en_rows), "cn_questions": len(chance_cn), "cn_rows": len(cn_rows),
            "images": n,
            "chance": {"mmbench": {"circular_accuracy": 100 * float(np.mean(chance_en))},
                       "mmbench_cn": {"circular_accuracy": 100 * float(np.mean(chance_cn)) if chance_cn else 0.0}}}


# --- SEED-Bench -------------------------------------------------------------------------------

# Source: AILab-CVC/SEED-Bench DATASET.md ("question_type" map of SEED-Bench.json).
SEED_QUESTION_TYPES = {
    "Scene Understanding": 1, "Instance Identity": 2, "Instance Location": 3, "Instance Attributes": 4,
    "Instances Counting": 5, "Spatial Relation": 6, "Instance Interaction": 7, "Visual Reasoning": 8,
    "Text Understanding": 9, "Action Recognition": 10, "Action Prediction": 11, "Procedure Understanding": 12,
}
SEED_FAMILY = {1: "background", 2: "shape_at", 3: "position", 4: "color", 5: "count", 6: "relative_position",
               7: "relation_shape", 8: "most_corners", 9: "word"}


def _seed_image_question(rng: np.random.Generator, dim: int) -> tuple[Scene, T.QA]:
    fam = SEED_FAMILY[dim]
    while True:
        scene = sample_scene(rng, n_objects=int(rng.integers(2, 5)) if dim in (6, 7, 8) else None,
                             word=WORDS[int(rng.integers(len(WORDS)))] if dim == 9 else None)
        qa = T.ask(fam, scene, rng)
        if qa is None or qa.options is None or len(qa.options) != 4:
            continue
        if fam == "count":
            if qa.answer == "0":
                continue
            # SEED writes counts as words ("One", "Two", ...).
            words = [T.NUM_WORDS[int(o)].capitalize() for o in qa.options if o != "0"]
            if len(words) != 4:
                extra = [T.NUM_WORDS[i].capitalize() for i in range(1, 7) if T.NUM_WORDS[i].capitalize() not in words]
                words = (words + extra)[:4]
            ans = T.NUM_WORDS[int(qa.answer)].capitalize()
            if ans not in words:
                words[0] = ans
            qa = T.QA(qa.question, ans, qa.family, qa.answer_type, words, qa.meta)
        return scene, qa


def _video_data_id(rng: np.random.Generator, dim: int) -> str:
    """Video file names shaped like the real ones (Something-Something v2, EPIC-KITCHENS, Breakfast)."""
    p = int(rng.integers(1, 40))
    if dim == 10:
        return f"{int(rng.integers(1, 99999))}.webm"
    if dim == 11:
        return f"P{p:02d}/P{p:02d}_{int(rng.integers(1, 30)):02d}.MP4"
    return f"P{p:02d}/cam01/P{p:02d}_cereals.avi"


def write_seed(root: Path, seed: int, n: int, size: Size = 48) -> dict:
    """``n`` image questions (dimensions 1-9, 4 options each) and ``n // 10`` video ones (10-12)."""
    out = Out(root / "seed_bench")
    rng = rng_for(seed, "seed_bench")
    questions, lines = [], []
    qids = unique_ints(rng, n, 1, 110000)
    for i in range(n):
        dim = 1 + i % 9
        scene, qa = _seed_image_question(rng, dim)
        data_id = f"{int(rng.integers(10**6, 4 * 10**6))}_{int(rng.integers(10**9, 4 * 10**9))}"
        out.image(f"SEED-Bench-image/{data_id}", render_scene(scene, size))  # no extension, JPEG bytes
        assert qa.options is not None
        opts = list(qa.options)
        qid = str(qids[i])
        questions.append({"answer": LETTERS[opts.index(qa.option_answer)], "choice_a": opts[0], "choice_b": opts[1],
                          "choice_c": opts[2], "choice_d": opts[3], "data_id": data_id, "data_type": "image",
                          "question": qa.question, "question_id": qid, "question_type_id": dim})
        name = next(k for k, v in SEED_QUESTION_TYPES.items() if v == dim)
        lines.append({"image": f"SEED-Bench-image/{data_id}", "text": qa.question + mc_block(opts) + MC_ANSWER,
                      "category": name, "question_id": int(qid)})
    vrng = rng_for(seed, "seed_bench", "video")
    for j in range(max(3, n // 10)):
        dim = 10 + j % 3
        scene = sample_scene(vrng, n_objects=1)
        shape = scene.objects[0].shape
        others = [s for s in SHAPES if s != shape]
        opts = [shape] + [others[i] for i in vrng.permutation(len(others))[:3].tolist()]
        opts = [opts[i] for i in vrng.permutation(4).tolist()]
        qid = f"v{1000 + j}"
        q = "Which shape appears in the video?"
        entry = {"answer": LETTERS[opts.index(shape)], "choice_a": opts[0], "choice_b": opts[1], "choice_c": opts[2],
                 "choice_d": opts[3], "data_id": _video_data_id(vrng, dim),
                 "data_type": "video", "question": q, "question_id": qid, "question_type_id": dim}
        if dim in (11, 12):
            start = int(vrng.integers(0, 100))
            entry["segment"] = [float(start), float(start + 10)] if dim == 11 else [start, start + 150]
        questions.append(entry)
        frame = f"{dim}_{qid}.png"
        out.image(f"SEED-Bench-video-image/{frame}", render_scene(scene, size))
        name = next(k for k, v in SEED_QUESTION_TYPES.items() if v == dim)
        lines.append({"image": f"SEED-Bench-video-image/{frame}", "text": q + mc_block(opts) + MC_ANSWER,
                      "category": name, "question_id": qid})
    out.json("SEED-Bench.json", {"questions": questions, "question_type": SEED_QUESTION_TYPES})
    out.jsonl("llava-seed-bench.jsonl", lines)
    dims = {k: 25.0 for k, v in SEED_QUESTION_TYPES.items() if v <= 9}
    return {"questions": n, "video_questions": len(questions) - n, "images": out.n_images,
            "chance": {"image_accuracy": 25.0, "dimensions": dims}}
