"""The toy SEED-Bench copy in LLaVA-1.5's layout (written by :func:`write_seed`).

SEED-Bench (docs/protocol/seed_image.md): ``SEED-Bench.json`` (``questions`` + ``question_type``
map, string ids, ``data_id`` = an extension-less image file name) plus a few video questions
(dimensions 10-12, ``data_type`` "video", ids ``v123``), whose middle frames LLaVA stored as
``SEED-Bench-video-image/{type}_{qid}.png``; ``llava-seed-bench.jsonl`` has int ids for image
questions and the string id for video ones.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from aligngpt.toy import text as T
from aligngpt.toy.layout import LETTERS, MC_ANSWER, Out, mc_block, unique_ints
from aligngpt.toy.world import SHAPES, WORDS, Scene, Size, render_scene, rng_for, sample_scene

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
