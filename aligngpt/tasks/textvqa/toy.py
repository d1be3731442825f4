"""The toy TextVQA val copy in LLaVA-1.5's layout (written by :func:`write_textvqa`).

The writer produces the files of the LLaVA-1.5 evaluation layout (docs/protocol/textvqa.md) with
the field names, id types and file-name conventions of the real files, and returns a small stats
dict (question/image counts and the task's chance-level baselines).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from aligngpt.toy import text as T
from aligngpt.toy.layout import SHORT_ANSWER, Out, hex_id, majority_rate
from aligngpt.toy.world import COLORS, WORDS, Scene, Size, render_scene, rng_for, sample_scene

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
