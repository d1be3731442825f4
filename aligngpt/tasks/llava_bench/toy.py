"""The toy LLaVA-Bench-in-the-Wild copy in LLaVA-1.5's layout (written by :func:`write_llava_bench`).

LLaVA-Bench (docs/protocol/llava_bench.md): ``questions.jsonl`` (question_id, image, text,
category in conv/detail/complex), ``context.jsonl`` (one line per image: id, image, caption =
the full scene description), ``answers_gpt4.jsonl`` (the reference answers, line-aligned with
the questions, in the LLaVA answer format with ``model_id`` "gpt-4-0314") and ``images/``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from aligngpt.toy import text as T
from aligngpt.toy.layout import Out, short_uuid
from aligngpt.toy.world import SHAPE_SIDES, Scene, Size, render_scene, rng_for, sample_scene

# --- LLaVA-Bench ------------------------------------------------------------------------------


def conv_question(scene: Scene, rng: np.random.Generator) -> tuple[str, str]:
    fams = ["color", "count", "position", "word", "background", "shape_at"]
    while True:
        qa = T.ask(fams[int(rng.integers(len(fams)))], scene, rng)
        if qa is not None:
            break
    f, a = qa.family, qa.answer
    if f == "color":
        ans = f"It is {a}."
    elif f == "count":
        k = int(a)
        shape = qa.meta["shape"]
        ans = f"There {'is' if k == 1 else 'are'} {T.count_phrase(k, shape) if k else 'no ' + T.PLURALS[shape]} in the image."
    elif f == "position":
        ans = f"It is {T.where(a)} of the image."
    elif f == "word":
        ans = f'The word written in the image is "{a.upper()}".'
    elif f == "background":
        ans = f"The background is {a}."
    else:
        ans = f"It is {T.with_article(a)}."
    return qa.question, ans


def complex_question(scene: Scene, rng: np.random.Generator) -> tuple[str, str]:
    shapes = scene.shapes()
    shape = shapes[int(rng.integers(len(shapes)))]
    k = scene.count(shape)
    if rng.random() < 0.5:
        q = f"If one more {shape} were added to this picture, how many {T.PLURALS[shape]} would there be, and why?"
        a = (f"There would be {T.NUM_WORDS[k + 1]} {T.PLURALS[shape]}. The picture now shows "
             f"{T.count_phrase(k, shape)}, and adding one more gives {k + 1}.")
        return q, a
    total = sum(SHAPE_SIDES[o.shape] for o in scene.objects)
    q = "How many corners do all the shapes in this picture have together? Explain your reasoning."
    parts = [f"{T.with_article(o.shape)} has {SHAPE_SIDES[o.shape]}" for o in scene.objects]
    a = f"Together they have {total} corners: {T.join_list(parts)}."
    return q, a


def write_llava_bench(root: Path, seed: int, n: int, size: Size = (64, 48)) -> dict:
    """About ``n`` questions on ``n // 2.5`` images (LLaVA-W has 60 questions on 24 images)."""
    out = Out(root / "llava-bench-in-the-wild")
    rng = rng_for(seed, "llava_bench")
    questions, contexts, refs = [], [], []
    cats: dict[str, int] = {"conv": 0, "detail": 0, "complex": 0}
    i_img = 0
    while len(questions) < n:
        i_img += 1
        scene = sample_scene(rng, n_objects=int(rng.integers(1, 5)), word_prob=0.3)
        name = f"{i_img:03d}.jpg"
        out.image(f"images/{name}", render_scene(scene, size))
        contexts.append({"id": f"{i_img:03d}", "image": name, "caption": T.detailed_description(scene)})
        items = [("conv", *conv_question(scene, rng))]
        if rng.random() < 0.5:
            items.append(("detail", "Describe this photo in detail.", T.detailed_description(scene)))
        items.append(("complex", *complex_question(scene, rng)))
        for cat, q, a in items:
            if len(questions) >= n:
                break
            qid = len(questions)
            questions.append({"question_id": qid, "image": name, "text": q, "category": cat})
            refs.append({"question_id": qid, "prompt": q, "text": a, "answer_id": short_uuid(rng),
                         "model_id": "gpt-4-0314", "metadata": {}})
            cats[cat] += 1
    out.jsonl("questions.jsonl", questions)
    out.jsonl("context.jsonl", contexts)
    out.jsonl("answers_gpt4.jsonl", refs)
    return {"questions": len(questions), "images": out.n_images, "categories": cats,
            "chance": {"relative_score": None}}
