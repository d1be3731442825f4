"""The toy MME copy (14 subtasks) in LLaVA-1.5's layout (written by :func:`write_mme`).

MME (docs/protocol/mme.md): every image has two questions, the first true ("Yes") and the second
false ("No"); ground truth is ``question Please answer yes or no.<TAB>Yes|No`` per line in a
``.txt`` next to the image (flat subtasks) or in ``questions_answers_YN/`` (the five subtasks
with an ``images/`` folder). ``llava_mme.jsonl`` carries each image's two questions on adjacent
lines, ``question_id`` = the image path (shared by both), and the MME phrase " Please answer yes
or no." replaced by LLaVA's single-word suffix.
"""
from __future__ import annotations

from pathlib import Path
import numpy as np
from PIL import Image

from aligngpt.toy import text as T
from aligngpt.toy.layout import MME_YESNO, SHORT_ANSWER, Out, hex_id
from aligngpt.toy.world import (
    COLORS, SHAPE_SIDES, SHAPES, WORDS, Scene, Size, render_scene, render_text_card, rng_for, sample_scene,
)

# --- MME --------------------------------------------------------------------------------------

# (name, group, images in the real release, extension, has images/ + questions_answers_YN/)
MME_SUBTASKS: tuple[tuple[str, str, int, str, bool], ...] = (
    ("code_reasoning", "cognition", 20, "png", False),
    ("artwork", "perception", 200, "jpg", True),
    ("celebrity", "perception", 170, "jpg", True),
    ("color", "perception", 30, "jpg", False),
    ("commonsense_reasoning", "cognition", 70, "png", False),
    ("count", "perception", 30, "jpg", False),
    ("existence", "perception", 30, "jpg", False),
    ("landmark", "perception", 200, "jpg", True),
    ("numerical_calculation", "cognition", 20, "png", False),
    ("OCR", "perception", 20, "jpg", False),
    ("position", "perception", 30, "jpg", False),
    ("posters", "perception", 147, "jpg", True),
    ("scene", "perception", 200, "jpg", True),
    ("text_translation", "cognition", 20, "png", False),
)
MME_PERCEPTION = tuple(s[0] for s in MME_SUBTASKS if s[1] == "perception")
MME_COGNITION = tuple(s[0] for s in MME_SUBTASKS if s[1] == "cognition")

Item = tuple[Image.Image, str, str]  # image, question whose answer is Yes, question whose answer is No


def _other(rng: np.random.Generator, pool, not_this):
    cands = [p for p in pool if p != not_this]
    return cands[int(rng.integers(len(cands)))]


def _count_q(k: int, shape: str) -> str:
    if k == 1:
        return f"Is there only one {shape} in this image?"
    return f"Are there {T.NUM_WORDS[k]} {T.PLURALS[shape]} in this image?"


def mme_item(sub: str, rng: np.random.Generator, size: Size) -> Item:
    if sub == "existence":
        sc = sample_scene(rng)
        yes = sc.shapes()[int(rng.integers(len(sc.shapes())))]
        no = _other(rng, [s for s in SHAPES if not sc.has(s)], None)
        return render_scene(sc, size), f"Is there {T.with_article(yes)} in this image?", f"Is there {T.with_article(no)} in this image?"
    if sub == "count":
        sc = sample_scene(rng, n_objects=int(rng.integers(1, 5)), n_distinct=1 if rng.random() < 0.5 else None)
        shape = sc.shapes()[int(rng.integers(len(sc.shapes())))]
        k = sc.count(shape)
        wrong = k + 1 if (k == 1 or rng.random() < 0.5) else k - 1
        return render_scene(sc, size), _count_q(k, shape), _count_q(wrong, shape)
    if sub == "position":
        while True:
            sc = sample_scene(rng, n_objects=int(rng.integers(2, 4)))
            pairs = [(a, b) for a in sc.objects for b in sc.objects if a.col < b.col
                     and T.is_unique(sc, a, ("position",)) and T.is_unique(sc, b, ("position",))]
            if pairs:
                break
        a, b = pairs[int(rng.integers(len(pairs)))]
        ra, rb = T.ref(sc, a, ("position",)), T.ref(sc, b, ("position",))
        return (render_scene(sc, size), f"Is the {ra} on the left side of the {rb}?",
                f"Is the {ra} on the right side of the {rb}?")
    if sub == "color":
        sc = sample_scene(rng)
        o = sc.objects[int(rng.integers(len(sc.objects)))]
        wrong = _other(rng, [c for c in COLORS if not any(x.shape == o.shape and x.color == c for x in sc.objects)], None)
        return (render_scene(sc, size), f"Is there {T.with_article(o.color + ' ' + o.shape)} in this image?",
                f"Is there {T.with_article(wrong + ' ' + o.shape)} in this image?")
    if sub == "posters":
        word = WORDS[int(rng.integers(len(WORDS)))]
        sc = sample_scene(rng, n_objects=int(rng.integers(1, 3)), word=word)
        return (render_scene(sc, size), f"Is this movie poster titled {word}?",
                f"Is this movie poster titled {_other(rng, WORDS, word)}?")
    if sub == "celebrity":
        sc = sample_scene(rng, n_objects=1)
        name = T.CHARACTER_NAMES[sc.objects[0].shape]
        return (render_scene(sc, size), f"Is the character in this image named {name}?",
                f"Is the character in this image named {_other(rng, list(T.CHARACTER_NAMES.values()), name)}?")
    if sub == "scene":
        sc = sample_scene(rng)
        place = T.SCENE_NAMES[sc.background]
        return (render_scene(sc, size), f"Is this picture captured in a place of {place}?",
                f"Is this picture captured in a place of {_other(rng, list(T.SCENE_NAMES.values()), place)}?")
    if sub == "landmark":
        sc = sample_scene(rng, n_objects=1)
        name = T.LANDMARK_NAMES[sc.objects[0].shape]
        return (render_scene(sc, size), f"Is this a photo of {name}?",
                f"Is this a photo of {_other(rng, list(T.LANDMARK_NAMES.values()), name)}?")
    if sub == "artwork":
        sc = sample_scene(rng, n_objects=int(rng.integers(2, 5)))
        color = sc.objects[0].color
        sc = Scene(tuple(type(o)(o.shape, color, o.size, o.row, o.col, o.dx, o.dy) for o in sc.objects), sc.background)
        return (render_scene(sc, size), f"Is this artwork painted mainly in {color}?",
                f"Is this artwork painted mainly in {_other(rng, list(COLORS), color)}?")
    if sub == "OCR":
        word = WORDS[int(rng.integers(len(WORDS)))]
        sc = sample_scene(rng, n_objects=int(rng.integers(1, 3)), word=word)
        return (render_scene(sc, size), f'Is the word in the image "{word}"?',
                f'Is the word in the image "{_other(rng, WORDS, word)}"?')
    if sub == "commonsense_reasoning":
        polys = [s for s in SHAPES if SHAPE_SIDES[s] > 0]
        shape = polys[int(rng.integers(len(polys)))]
        sc = sample_scene(rng, n_objects=1)
        o = sc.objects[0]
        sc = Scene((type(o)(shape, o.color, "large", o.row, o.col, o.dx, o.dy),), sc.background)
        k = SHAPE_SIDES[shape]
        wrong = _other(rng, sorted({v for v in SHAPE_SIDES.values() if v > 0}), k)
        return (render_scene(sc, size), f"Does the shape in this image have {k} corners?",
                f"Does the shape in this image have {wrong} corners?")
    if sub == "numerical_calculation":
        problem, value = T.arithmetic(rng)
        wrong = value + int(rng.choice([-3, -2, -1, 1, 2, 3, 10]))
        return (render_text_card(problem, size=size), f"Is the answer to the arithmetic question in the image {value}?",
                f"Is the answer to the arithmetic question in the image {wrong}?")
    if sub == "text_translation":
        word = WORDS[int(rng.integers(len(WORDS)))]
        es = T.SPANISH[word]
        wrong = T.SPANISH[_other(rng, WORDS, word)]
        q = "Is it appropriate to translate the word in the image into Spanish '{}'?"
        return render_text_card(word, size=size), q.format(es), q.format(wrong)
    if sub == "code_reasoning":
        a, b = int(rng.integers(1, 10)), int(rng.integers(2, 10))
        op = "+-*"[int(rng.integers(3))]
        value = {"+": a + b, "-": a - b, "*": a * b}[op]
        wrong = value + int(rng.choice([-2, -1, 1, 2]))
        img = render_text_card("", lines=[f"A={a}", f"B=A{op}{b}", "PRINT B"], size=size)
        q = "The image shows a python code. Is the output of the code '{}'?"
        return img, q.format(value), q.format(wrong)
    raise ValueError(sub)


def _mme_name(sub: str, rng: np.random.Generator, i: int, ext: str) -> str:
    if sub in ("existence", "count", "position", "color"):
        return f"{int(rng.integers(1, 581930)):012d}.{ext}"
    if sub == "posters":
        return f"tt{int(rng.integers(10**6, 10**7)):07d}.{ext}"
    if sub == "celebrity":
        return f"tt{int(rng.integers(10**6, 10**7)):07d}_shot_{int(rng.integers(10000)):04d}_img_0.{ext}"
    if sub == "scene":
        return f"Places365_val_{int(rng.integers(1, 36500)):08d}.{ext}"
    if sub == "landmark":
        return f"{hex_id(rng)}.{ext}"
    if sub == "artwork":
        return f"{int(rng.integers(1, 50000))}.{ext}"
    return f"{i + 1:04d}.{ext}"


def mme_allocation(n_images: int) -> dict[str, int]:
    """Images per subtask: proportional to the real release, at least two each."""
    total = sum(s[2] for s in MME_SUBTASKS)
    alloc = {s[0]: max(2, round(n_images * s[2] / total)) for s in MME_SUBTASKS}
    return alloc


def write_mme(root: Path, seed: int, n: int, size: Size = 48) -> dict:
    """About ``n`` questions (two per image) over the 14 subtasks."""
    out = Out(root / "MME")
    base = "MME_Benchmark_release_version"
    alloc = mme_allocation(max(14, n // 2))
    lines = []
    for sub, _group, _real, ext, split_style in MME_SUBTASKS:
        rng = rng_for(seed, "mme", sub)
        used: set[str] = set()
        for i in range(alloc[sub]):
            img, q_yes, q_no = mme_item(sub, rng, size)
            name = _mme_name(sub, rng, i, ext)
            while name in used:
                name = _mme_name(sub, rng, i, ext)
            used.add(name)
            stem = name.rsplit(".", 1)[0]
            rel_img = f"{sub}/images/{name}" if split_style else f"{sub}/{name}"
            rel_gt = f"{sub}/questions_answers_YN/{stem}.txt" if split_style else f"{sub}/{stem}.txt"
            out.image(f"{base}/{rel_img}", img)
            # Some real GT files carry a double space before "Please answer yes or no."; LLaVA's
            # converter falls back to that form. Reproduce it on every 7th landmark image.
            sep = " " if (sub == "landmark" and i % 7 == 3) else ""
            out.text(f"{base}/{rel_gt}", "".join(f"{q}{sep}{MME_YESNO}\t{a}\n" for q, a in ((q_yes, "Yes"), (q_no, "No"))))
            for q in (q_yes, q_no):
                lines.append({"question_id": rel_img, "image": rel_img, "text": q + SHORT_ANSWER, "category": sub})
    out.jsonl("llava_mme.jsonl", lines)
    # Random yes/no guessing: acc 50 %, acc+ (both right) 25 % -> 75 points per subtask.
    subtasks = {s[0]: 75.0 for s in MME_SUBTASKS}
    return {"questions": len(lines), "images": out.n_images, "allocation": alloc,
            "chance": {"perception": 75.0 * len(MME_PERCEPTION), "cognition": 75.0 * len(MME_COGNITION),
                       "subtasks": subtasks}}
