"""The toy POPE copy (three splits) in LLaVA-1.5's layout (written by :func:`write_pope`).

POPE (docs/protocol/pope.md): per image three objects that are present ("yes") alternate with
three that are not ("no"). Negatives follow POPE's three samplers, over the toy world's
statistics: ``random`` (any absent shape), ``popular`` (the absent shapes present in most images
of the split) and ``adversarial`` (the absent shapes that co-occur most with the present ones).
File details copied from the real files: ``llava_pope_test.jsonl`` lists adversarial (ids 1..),
then random (ids 10000001..), then popular (ids 20000001..); the label files
``coco/coco_pope_{split}.json`` are JSON lines with per-split ids from 1 and no category, so
answers pair with labels by position within a split (ids differ by the offset); and an object
name starting with a vowel is asked as "Is there an X in the imange?" (sic).
"""
from __future__ import annotations

from pathlib import Path
import numpy as np

from aligngpt.toy import text as T
from aligngpt.toy.layout import SHORT_ANSWER, Out, unique_ints
from aligngpt.toy.world import SHAPES, Size, render_scene, rng_for, sample_scene

# --- POPE -------------------------------------------------------------------------------------

POPE_SPLITS = ("adversarial", "random", "popular")  # order of LLaVA's llava_pope_test.jsonl
POPE_ID_OFFSET = {"adversarial": 0, "random": 10_000_000, "popular": 20_000_000}


def pope_question(shape: str) -> str:
    """The POPE question; reproduces the real files' "an ... imange" typo for vowel-initial names."""
    if T.article(shape) == "an":
        return f"Is there an {shape} in the imange?"
    return f"Is there a {shape} in the image?"


def pope_negatives(split: str, present: list[str], rng: np.random.Generator,
                   freq: dict[str, int], cooc: dict[tuple[str, str], int], k: int = 3) -> list[str]:
    absent = [s for s in SHAPES if s not in present]
    if split == "random":
        return [absent[i] for i in rng.permutation(len(absent))[:k].tolist()]
    if split == "popular":
        ranked = sorted(absent, key=lambda s: (-freq[s], SHAPES.index(s)))
    elif split == "adversarial":
        ranked = sorted(absent, key=lambda s: (-sum(cooc[(p, s)] for p in present), SHAPES.index(s)))
    else:
        raise ValueError(split)
    return ranked[:k]


def write_pope(root: Path, seed: int, n: int, size: Size = 48) -> dict:
    """``n`` questions per split (6 per image), the same images in all three splits."""
    out = Out(root / "pope")
    rng = rng_for(seed, "pope")
    n_images = max(2, -(-n // 6))
    scenes = [sample_scene(rng, n_objects=int(rng.integers(3, 5)), n_distinct=3) for _ in range(n_images)]
    ids = unique_ints(rng, n_images, 1, 581930)
    names = [f"COCO_val2014_{i:012d}.jpg" for i in ids]
    for name, scene in zip(names, scenes):
        out.image(f"val2014/{name}", render_scene(scene, size))
    freq = {s: sum(sc.has(s) for sc in scenes) for s in SHAPES}
    cooc = {(a, b): sum(sc.has(a) and sc.has(b) for sc in scenes) for a in SHAPES for b in SHAPES}
    lines = []
    for split in POPE_SPLITS:
        srng = rng_for(seed, "pope", split)
        labels = []
        for name, scene in zip(names, scenes):
            present = [scene.shapes()[i] for i in srng.permutation(3).tolist()]
            negatives = pope_negatives(split, present, srng, freq, cooc)
            for yes_shape, no_shape in zip(present, negatives):
                for shape, label in ((yes_shape, "yes"), (no_shape, "no")):
                    if len(labels) >= n:
                        break
                    qid = len(labels) + 1
                    q = pope_question(shape)
                    labels.append({"question_id": qid, "image": name, "text": q, "label": label})
                    lines.append({"question_id": POPE_ID_OFFSET[split] + qid, "image": name,
                                  "text": q + SHORT_ANSWER, "category": split})
        out.jsonl(f"coco/coco_pope_{split}.json", labels)
    out.jsonl("llava_pope_test.jsonl", lines)
    split_chance = {s: {"accuracy": 50.0, "precision": 50.0, "recall": 50.0, "f1": 50.0, "yes_ratio": 50.0}
                    for s in POPE_SPLITS}
    return {"questions": len(lines), "images": out.n_images,
            "chance": {"f1": 50.0, "accuracy": 50.0, "splits": split_chance,
                       "always_yes": {"f1": 200 / 3, "accuracy": 50.0}}}
