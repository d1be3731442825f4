"""Toy training data: caption pairs for alignment pretraining and an instruction-tuning mix.

Pretraining pairs use the LLaVA pretrain JSON format (``blip_laion_cc_sbu_558k.json``: a list of
``{"id", "image", "conversations": [{"from": "human", "value": "<image>"}, {"from": "gpt",
"value": caption}]}``). Captions describe their image fully, partly or wrongly, so the
image-text alignment that AlignGPT buckets into levels really varies; the truth is kept in a
sidecar ``toy_alignment.json`` (id -> alignment label and coverage), not in the JSON, so the
file stays in the real format (``inline_alignment=True`` adds an ``_alignment`` field instead).

The instruction mix uses the ``llava_v1_5_mix665k.json`` format (``image`` optional, human first
turn starting ``<image>\\n`` when there is an image) and covers every question style the toy
benchmarks use, each with its benchmark's prompt suffix, plus descriptions, multi-turn
conversations and text-only samples.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np

from . import text as T
from aligngpt.tasks.llava_bench.toy import complex_question, conv_question
from aligngpt.tasks.mme.toy import MME_SUBTASKS, mme_item  # the benchmark's own generators
from .layout import LETTERS, MC_ANSWER, MC_ANSWER_CN, MME_YESNO, SHORT_ANSWER, VIZWIZ_SUFFIX, mc_block
from .world import (
    SHAPE_SIDES, SHAPES, WORDS, Scene, encode_image, render_scene, render_text_card, rng_for, sample_scene,
)

Size = Union[int, Sequence[int]]
ALIGNMENT_SIDECAR = "toy_alignment.json"
PRETRAIN_FILE = "blip_laion_cc_sbu_558k.json"
INSTRUCT_FILE = "llava_v1_5_mix665k.json"


def _dump(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(json.dumps(obj).encode("utf-8"))


def _save(path: Path, img) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_image(img, "JPEG"))


# --- pretraining ------------------------------------------------------------------------------

def write_pretrain(root: Union[str, Path], seed: int = 0, n: int = 2000, *, image_size: Size = 48,
                   mix: tuple[float, float, float] = (0.5, 0.3, 0.2), inline_alignment: bool = False) -> dict:
    """Write ``root/LLaVA-Pretrain/{blip_laion_cc_sbu_558k.json, images/, toy_alignment.json}``.

    ``mix`` = shares of full / partial / wrong captions.
    """
    base = Path(root) / "LLaVA-Pretrain"
    rng = rng_for(seed, "pretrain")
    p = np.asarray(mix, dtype=float)
    p = p / p.sum()
    records, sidecar = [], {}
    counts = {"full": 0, "partial": 0, "wrong": 0}
    for i in range(n):
        scene = sample_scene(rng, word_prob=0.2)
        rid = f"{i:09d}"
        rel = f"{i // 1000:05d}/{rid}.jpg"
        _save(base / "images" / rel, render_scene(scene, image_size))
        kind = ("full", "partial", "wrong")[int(rng.choice(3, p=p))]
        if kind == "full":
            caption, coverage = T.caption_full(scene, rng), 1.0
        elif kind == "partial":
            caption, coverage = T.caption_partial(scene, rng)
        else:
            caption, coverage = T.caption_wrong(scene, rng), 0.0
        rec = {"id": rid, "image": rel,
               "conversations": [{"from": "human", "value": "<image>"}, {"from": "gpt", "value": caption}]}
        if inline_alignment:
            rec["_alignment"] = kind
        records.append(rec)
        sidecar[rid] = {"alignment": kind, "coverage": coverage}
        counts[kind] += 1
    _dump(base / PRETRAIN_FILE, records)
    _dump(base / ALIGNMENT_SIDECAR, sidecar)
    return {"records": n, "alignment": counts, "json": f"LLaVA-Pretrain/{PRETRAIN_FILE}",
            "image_folder": "LLaVA-Pretrain/images", "sidecar": f"LLaVA-Pretrain/{ALIGNMENT_SIDECAR}"}


# --- instruction tuning -----------------------------------------------------------------------

Conv = list[tuple[str, str]]  # (human text without <image>, gpt text)
# A recipe returns (scene or a ready image or None for text-only, conversation) or None to retry.
Recipe = Callable[[np.random.Generator, Size], Optional[tuple[object, Conv]]]

_SHORT_FAMILIES = ("color", "count", "count_all", "exist", "exist_color", "verify_color", "choose_color", "size",
                   "position", "side", "left_of", "above", "relation_shape", "relative_position", "same_color",
                   "both", "background", "word", "text_color", "shape_at", "most_corners", "first_letter", "letters")


def short(ans: str) -> str:
    """How the instruction data writes a short answer: 'Yes'/'No' capitalised, others as they are."""
    return ans.capitalize() if ans in ("yes", "no") else ans


def _r_short(rng: np.random.Generator, size: Size = 48):
    scene = sample_scene(rng, word_prob=0.25)
    conv: Conv = []
    asked = set()
    for _ in range(int(rng.integers(1, 5))):
        qa = T.ask(_SHORT_FAMILIES[int(rng.integers(len(_SHORT_FAMILIES)))], scene, rng)
        if qa is None or qa.question in asked:
            continue
        asked.add(qa.question)
        conv.append((qa.question + SHORT_ANSWER, short(qa.answer)))
    return (scene, conv) if conv else None


def _r_pope(rng: np.random.Generator, size: Size = 48):
    scene = sample_scene(rng, n_objects=int(rng.integers(2, 5)))
    conv = []
    for present in (True, False):
        qa = T.q_exist(scene, rng, present=present)
        if qa is not None:
            conv.append((qa.question + SHORT_ANSWER, short(qa.answer)))
    if rng.random() < 0.5:
        conv.reverse()
    return scene, conv


def _mc(qa: T.QA) -> tuple[str, str]:
    assert qa.options is not None
    return qa.question + mc_block(list(qa.options)) + MC_ANSWER, LETTERS[qa.answer_index]


def _r_mc(rng: np.random.Generator, size: Size = 48):
    scene = sample_scene(rng, word_prob=0.25)
    fams = ("color", "shape_at", "position", "count", "background", "relative_position", "relation_shape",
            "most_corners", "word", "same_color", "scene_kind")
    qa = T.ask(fams[int(rng.integers(len(fams)))], scene, rng)
    if qa is None or qa.options is None:
        return None
    q, a = _mc(qa)
    if rng.random() < 0.2:
        q = "Context: Look at the picture.\n" + q
    return scene, [(q, a)]


def _r_mc_cn(rng: np.random.Generator, size: Size = 48):
    scene = sample_scene(rng, word_prob=0.25)
    fams = ("color", "shape_at", "position", "count", "background", "word", "same_color", "most_corners",
            "relative_position", "scene_kind")
    qa = T.ask(fams[int(rng.integers(len(fams)))], scene, rng)
    if qa is None:
        return None
    zh = T.zh_question(qa, scene)
    if zh is None:
        return None
    q, opts, ans = zh
    return scene, [(q + mc_block(opts) + MC_ANSWER_CN, LETTERS[opts.index(ans)])]


def _r_ocr(rng: np.random.Generator, size: Size = 48):
    word = WORDS[int(rng.integers(len(WORDS)))]
    scene = sample_scene(rng, n_objects=int(rng.integers(1, 3)), word=word)
    fam = ("word", "word", "text_color", "first_letter", "letters")[int(rng.integers(5))]
    qa = T.ask(fam, scene, rng)
    assert qa is not None
    q = qa.question
    if rng.random() < 0.6:
        q += "\nReference OCR token: " + (word if rng.random() < 0.9 else "")
    return scene, [(q + SHORT_ANSWER, short(qa.answer))]


def _r_describe(rng: np.random.Generator, size: Size = 48):
    scene = sample_scene(rng, word_prob=0.25)
    if rng.random() < 0.5:
        q = ("Describe this photo in detail.", "Describe the image in detail.")[int(rng.integers(2))]
        return scene, [(q, T.detailed_description(scene))]
    q = ("Give a short description of the image.", "Describe the image in one sentence.")[int(rng.integers(2))]
    return scene, [(q, T.caption_full(scene, rng))]


def _r_vizwiz(rng: np.random.Generator, size: Size = 48):
    blur = rng.random() < 0.4
    scene = sample_scene(rng, n_objects=1, blur=blur, word_prob=0.4)
    kind = int(rng.integers(3))
    q = ("What is this?", "What color is this?", "What does this say?")[kind]
    if blur or (kind == 2 and scene.text is None):
        a = "Unanswerable"
    else:
        o = scene.objects[0]
        a = (o.shape, o.color, scene.text.text.lower() if scene.text else "")[kind]
    return scene, [(q + VIZWIZ_SUFFIX, a)]


def _r_knowledge_yesno(rng: np.random.Generator, size: Size = 48):
    """MME-style pairs over the toy knowledge (characters, landmarks, places, translations, sums)."""
    sub = MME_SUBTASKS[int(rng.integers(len(MME_SUBTASKS)))][0]
    img, q_yes, q_no = mme_item(sub, rng, size)
    conv = [(q_yes + SHORT_ANSWER, "Yes"), (q_no + SHORT_ANSWER, "No")]
    if rng.random() < 0.5:
        conv.reverse()
    if rng.random() < 0.2:
        conv = [(q.replace(SHORT_ANSWER, MME_YESNO), a) for q, a in conv]
    return img, conv


def _r_text_only(rng: np.random.Generator, size: Size = 48):
    r = int(rng.integers(5))
    if r == 0:
        shape = [s for s in SHAPES if SHAPE_SIDES[s] > 0][int(rng.integers(6))]
        return None, [(f"How many corners does {T.with_article(shape)} have?" + SHORT_ANSWER, str(SHAPE_SIDES[shape]))]
    if r == 1:
        word = WORDS[int(rng.integers(len(WORDS)))]
        return None, [(f"What is the Spanish word for {word.lower()}?" + SHORT_ANSWER, T.SPANISH[word])]
    if r == 2:
        problem, value = T.arithmetic(rng)
        return None, [(f"What is {problem.rstrip('=')}?" + SHORT_ANSWER, str(value))]
    if r == 3:
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        return None, [(f"Which shape is the character {T.CHARACTER_NAMES[shape]}?" + SHORT_ANSWER, shape),
                      (f"What is {T.LANDMARK_NAMES[shape]} shaped like?", f"{T.capitalize(T.LANDMARK_NAMES[shape])} is shaped like {T.with_article(shape)}.")]
    color = ("red", "green", "blue", "yellow", "purple", "orange")[int(rng.integers(6))]
    return None, [("Name a shape that has no corners.", "A circle has no corners, and neither does an oval."),
                  (f"Is {color} a color?" + SHORT_ANSWER, "Yes")]


def _r_conversation(rng: np.random.Generator, size: Size = 48):
    """LLaVA-Bench / MM-Vet style: free-form answers, no suffix, several turns."""
    scene = sample_scene(rng, word_prob=0.3)
    conv = [conv_question(scene, rng)]
    if rng.random() < 0.6:
        conv.append(complex_question(scene, rng))
    return scene, conv


def _r_knowledge_open(rng: np.random.Generator, size: Size = 48):
    r = int(rng.integers(5))
    if r in (0, 1):
        scene = sample_scene(rng, n_objects=1)
        qa = (T.q_character if r == 0 else T.q_landmark)(scene, rng)
        assert qa is not None
        return scene, [(qa.question + SHORT_ANSWER, qa.option_answer)]
    if r == 2:
        scene = sample_scene(rng)
        qa = T.q_scene_kind(scene, rng)
        assert qa is not None
        return scene, [(qa.question + SHORT_ANSWER, qa.answer)]
    if r == 3:
        problem, qa = T.arithmetic_qa(rng)
        return render_text_card(problem, size=size), [(qa.question + SHORT_ANSWER, qa.answer)]
    word = WORDS[int(rng.integers(len(WORDS)))]
    return render_text_card(word, size=size), [("Translate the word in the image into Spanish." + SHORT_ANSWER,
                                              T.SPANISH[word])]


RECIPES: dict[str, tuple[Recipe, float]] = {
    "short_answer": (_r_short, 0.26),
    "yes_no_exist": (_r_pope, 0.10),
    "multiple_choice": (_r_mc, 0.12),
    "multiple_choice_cn": (_r_mc_cn, 0.05),
    "ocr": (_r_ocr, 0.08),
    "description": (_r_describe, 0.10),
    "vizwiz": (_r_vizwiz, 0.05),
    "knowledge_yes_no": (_r_knowledge_yesno, 0.08),
    "knowledge_open": (_r_knowledge_open, 0.04),
    "conversation": (_r_conversation, 0.06),
    "text_only": (_r_text_only, 0.06),
}




def write_instruct(root: Union[str, Path], seed: int = 0, n: int = 2000, *, image_size: Size = 48) -> dict:
    """Write ``root/llava_v1_5_mix665k.json`` with images under ``root/toy_instruct/images/``."""
    root = Path(root)
    rng = rng_for(seed, "instruct")
    names = list(RECIPES)
    w = np.asarray([RECIPES[k][1] for k in names], dtype=float)
    w = w / w.sum()
    records, counts = [], {k: 0 for k in names}
    text_only = 0
    while len(records) < n:
        kind = names[int(rng.choice(len(names), p=w))]
        made = RECIPES[kind][0](rng, image_size)
        if made is None or not made[1]:
            continue
        visual, conv = made
        rid = f"toy{len(records):07d}"
        rec: dict = {"id": rid}
        if visual is not None:
            img = render_scene(visual, image_size) if isinstance(visual, Scene) else visual
            rel = f"toy_instruct/images/{rid}.jpg"
            _save(root / rel, img)
            rec["image"] = rel
        else:
            text_only += 1
        turns = []
        for k, (q, a) in enumerate(conv):
            turns.append({"from": "human", "value": ("<image>\n" + q) if (k == 0 and visual is not None) else q})
            turns.append({"from": "gpt", "value": a})
        rec["conversations"] = turns
        records.append(rec)
        counts[kind] += 1
    _dump(root / INSTRUCT_FILE, records)
    return {"records": n, "text_only": text_only, "kinds": counts, "json": INSTRUCT_FILE, "image_folder": "."}
