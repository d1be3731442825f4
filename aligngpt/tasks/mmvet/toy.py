"""The toy MM-Vet copy in LLaVA-1.5's layout (written by :func:`write_mmvet`).

MM-Vet (docs/protocol/mmvet.md): ``mm-vet.json`` keyed ``v1_{qid}`` (imagename, capability list,
question, answer with ``<AND>``/``<OR>``), LLaVA's ``llava-mm-vet.jsonl`` (image, text, category
"conv", question_id) and ``images/``; an image shared by several questions is named after the
first.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from aligngpt.toy import text as T
from aligngpt.toy.layout import Out
from aligngpt.toy.world import (
    COLORS, SHAPE_SIDES, WORDS, Size, render_scene, render_text_card, rng_for, sample_scene,
)

# --- MM-Vet -----------------------------------------------------------------------------------


def _mmvet_item(scene_rng: np.random.Generator, size: Size):
    """(image, [(question, answer, capabilities), ...]) for one image (1-2 questions)."""
    rng = scene_rng
    kind = int(rng.integers(8))
    if kind == 0:  # ocr + math on a card
        problem, value = T.arithmetic(rng, "+-*")
        return render_text_card(problem, size=size), [("What is the answer to the equation in the image?", str(value), ["ocr", "math"])]
    scene = sample_scene(rng, n_objects=1 if kind == 1 else int(rng.integers(2, 5)),
                         word=WORDS[int(rng.integers(len(WORDS)))] if kind in (2, 3) else None)
    img = render_scene(scene, size)
    o = scene.objects[int(rng.integers(len(scene.objects)))]
    items = []
    if kind == 1:
        items.append(("How many corners does the shape in the image have?",
                      f"{SHAPE_SIDES[o.shape]}<OR>{T.NUM_WORDS[SHAPE_SIDES[o.shape]] if SHAPE_SIDES[o.shape] <= 10 else 'twelve'}",
                      ["rec", "know"]))
        items.append(("Who is this character and what shape is it?", f"{T.CHARACTER_NAMES[o.shape]}<AND>{o.shape}",
                      ["rec", "know", "gen"]))
    elif kind == 2:
        items.append(("What word is written in the image?", scene.text.text, ["ocr"]))  # type: ignore[union-attr]
    elif kind == 3:
        t = scene.text
        assert t is not None
        items.append(("Where is the word written in the image?", f"{T.ROW_PHRASES[t.row]}<OR>{('top', 'middle', 'bottom')[t.row]}",
                      ["ocr", "spat"]))
    elif kind == 4:
        items.append((f"What shape is {T.where(o.position)}?", o.shape, ["rec", "spat"]))
    elif kind == 5:
        colors = sorted({x.color for x in scene.objects}, key=list(COLORS).index)
        items.append(("What colors are the shapes in the image?", "<AND>".join(colors), ["rec"]))
    elif kind == 6:
        n_all = len(scene.objects)
        items.append(("How many shapes are there in total?", f"{n_all}<OR>{T.NUM_WORDS[n_all]}", ["rec", "math"]))
    else:
        items.append(("Describe the image in one sentence.", T.caption_full(scene, rng), ["rec", "gen"]))
    if rng.random() < 0.3 and kind != 1:
        items.append((f"What color is the {T.ref(scene, o, ('color',))}?", o.color, ["rec"]))
    return img, items


def write_mmvet(root: Path, seed: int, n: int, size: Size = (64, 48)) -> dict:
    out = Out(root / "mm-vet")
    rng = rng_for(seed, "mmvet")
    meta: dict[str, dict] = {}
    lines = []
    caps: dict[str, int] = {c: 0 for c in ("rec", "ocr", "know", "gen", "spat", "math")}
    while len(lines) < n:
        img, items = _mmvet_item(rng, size)
        qid0 = len(lines)
        name = f"v1_{qid0}.{'png' if rng.random() < 0.5 else 'jpg'}"
        out.image(f"images/{name}", img)
        for q, a, cap in items:
            if len(lines) >= n:
                break
            qid = len(lines)
            meta[f"v1_{qid}"] = {"imagename": name, "capability": cap, "question": q, "answer": a}
            lines.append({"image": name, "text": q, "category": "conv", "question_id": qid})
            for c in cap:
                caps[c] += 1
    out.json("mm-vet.json", meta, indent=4)
    out.jsonl("llava-mm-vet.jsonl", lines)
    return {"questions": len(lines), "images": out.n_images, "capabilities": caps, "chance": {"total": None}}
