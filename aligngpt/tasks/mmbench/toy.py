"""The toy MMBench copy (EN + CN dev TSVs) in LLaVA-1.5's layout (written by :func:`write_mmbench`).

MMBench (docs/protocol/mmbench.md, mmbench_cn.md): the dev TSV with columns ``index, question,
hint, A, B, C, D, answer, category, image (base64), source, l2-category, comment, split``; each
question of N options is followed by its N-1 circular copies (options rotated,
``index + k*1000000``). The CN file holds the translated subset of the same questions under the
same indices.
"""
from __future__ import annotations

import base64
import csv
import io
from pathlib import Path

import numpy as np

from aligngpt.toy import text as T
from aligngpt.toy.layout import LETTERS, Out
from aligngpt.toy.world import (
    WORDS, Scene, Size, encode_image, render_scene, render_text_card, rng_for, sample_scene,
)

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
