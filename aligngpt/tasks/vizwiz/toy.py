"""The toy VizWiz copy (test + val) in LLaVA-1.5's layout (written by :func:`write_vizwiz`).

The writer produces the files of the LLaVA-1.5 evaluation layout (docs/protocol/vizwiz.md) with
the field names, id types and file-name conventions of the real files, and returns a small stats
dict (question/image counts and the task's chance-level baselines).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from aligngpt.toy import text as T
from aligngpt.toy.layout import VIZWIZ_SUFFIX, Out
from aligngpt.toy.world import COLORS, SHAPES, Scene, Size, render_scene, rng_for, sample_scene

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
