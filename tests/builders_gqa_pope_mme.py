"""Fixture builders for the GQA / POPE / MME tests: tiny datasets in the exact on-disk formats.

Local builders write the LLaVA-1.5 ``playground/data/eval`` layout; ``write_hf_parquet`` writes
parquet shards the way the lmms-lab hub repositories store them (HF feature metadata included).
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Iterable

from PIL import Image

SUFFIX = "\nAnswer the question using a single word or phrase."


def png_bytes(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buf, format="PNG")
    return buf.getvalue()


def write_jsonl(path: Path, rows: Iterable[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes())
    return path


def write_hf_parquet(path: Path, columns: dict[str, list], image_column: str | None = "image") -> Path:
    """One parquet shard with HF ``datasets`` features (``image`` as an Image feature of PNG bytes)."""
    import datasets

    path.parent.mkdir(parents=True, exist_ok=True)
    cols = dict(columns)
    if image_column and image_column in cols:
        cols[image_column] = [{"bytes": b, "path": None} for b in cols[image_column]]
    ds = datasets.Dataset.from_dict(cols)
    if image_column and image_column in cols:
        ds = ds.cast_column(image_column, datasets.Image())
    ds.to_parquet(str(path))
    return path


# ---------------------------------------------------------------------------------------------
# GQA
# ---------------------------------------------------------------------------------------------

def gqa_question(image_id: str, question: str, answer: str, structural: str, semantic: str = "attr",
                 balanced: bool = True) -> dict:
    """A GQA v1.2 question record with the fields eval.py and our loader read (plus a few others)."""
    return {
        "imageId": image_id, "question": question, "answer": answer,
        "fullAnswer": f"The answer is {answer}.", "isBalanced": balanced,
        "groups": {"global": None, "local": "01-x"}, "entailed": [], "equivalent": [],
        "types": {"structural": structural, "semantic": semantic, "detailed": "x"},
        "annotations": {"answer": {}, "question": {}, "fullAnswer": {}},
        "semantic": [{"operation": "select", "dependencies": [], "argument": "x (1)"}],
        "semanticStr": "select: x",
    }


# qid -> question record. Structural types: verify/choose/logical are "binary", query is "open".
GQA_QUESTIONS = {
    "201307251": gqa_question("n161313", "Is the sky blue?", "yes", "verify"),
    "201640614": gqa_question("n161313", "What color is the car?", "red", "query"),
    "202225914": gqa_question("n235859", "Which side is the cup on?", "left", "choose", "rel"),
    "20968310": gqa_question("n235859", "What is on the table?", "plate", "query", "obj"),
    "201303228": gqa_question("n235859", "Are there both cars and trucks?", "no", "logical", "obj"),
    "207000001": gqa_question("n161313", "Is it sunny?", "yes", "verify", balanced=False),
}


def build_gqa_local(root: Path, questions: dict | None = None, jsonl_ids: list[str] | None = None) -> Path:
    """``gqa/llava_gqa_testdev_balanced.jsonl`` + ``gqa/data/testdev_balanced_questions.json`` + images."""
    questions = GQA_QUESTIONS if questions is None else questions
    ids = list(questions) if jsonl_ids is None else jsonl_ids
    rows = [{"question_id": qid, "image": f"{questions[qid]['imageId']}.jpg",
             "text": questions[qid]["question"] + SUFFIX, "category": "default"} for qid in ids]
    write_jsonl(root / "gqa" / "llava_gqa_testdev_balanced.jsonl", rows)
    qfile = root / "gqa" / "data" / "testdev_balanced_questions.json"
    qfile.parent.mkdir(parents=True, exist_ok=True)
    qfile.write_text(json.dumps(questions), encoding="utf-8")
    for image_id in {q["imageId"] for q in questions.values()}:
        write_image(root / "gqa" / "data" / "images" / f"{image_id}.jpg")
    return root


def build_gqa_hf(root: Path, questions: dict | None = None) -> Path:
    """lmms-lab/GQA layout: ``testdev_balanced_instructions/`` and ``testdev_balanced_images/`` shards."""
    questions = GQA_QUESTIONS if questions is None else questions
    qids = list(questions)
    write_hf_parquet(root / "testdev_balanced_instructions" / "testdev-00000-of-00001.parquet", {
        "id": qids,
        "imageId": [questions[q]["imageId"] for q in qids],
        "question": [questions[q]["question"] for q in qids],
        "answer": [questions[q]["answer"] for q in qids],
        "fullAnswer": [questions[q]["fullAnswer"] for q in qids],
        "isBalanced": [questions[q]["isBalanced"] for q in qids],
        "types": [questions[q]["types"] for q in qids],
    }, image_column=None)
    image_ids = sorted({q["imageId"] for q in questions.values()})
    write_hf_parquet(root / "testdev_balanced_images" / "testdev-00000-of-00001.parquet", {
        "id": image_ids, "image": [png_bytes((i * 40, 0, 0)) for i, _ in enumerate(image_ids)],
    })
    return root


# ---------------------------------------------------------------------------------------------
# POPE
# ---------------------------------------------------------------------------------------------

# Per split: (image, object, label) in label-file order.
POPE_LABELS = {
    "adversarial": [("COCO_val2014_000000310196.jpg", "snowboard", "yes"),
                    ("COCO_val2014_000000310196.jpg", "skis", "no"),
                    ("COCO_val2014_000000210789.jpg", "cat", "yes"),
                    ("COCO_val2014_000000210789.jpg", "dog", "no")],
    "popular": [("COCO_val2014_000000000042.jpg", "person", "yes"),
                ("COCO_val2014_000000000042.jpg", "chair", "yes"),
                ("COCO_val2014_000000000073.jpg", "car", "no"),
                ("COCO_val2014_000000000073.jpg", "cup", "no")],
    "random": [("COCO_val2014_000000000074.jpg", "dog", "yes"),
               ("COCO_val2014_000000000074.jpg", "bus", "no"),
               ("COCO_val2014_000000000133.jpg", "kite", "no"),
               ("COCO_val2014_000000000133.jpg", "train", "no")],
}
POPE_ORDER = ("adversarial", "popular", "random")


def pope_question(obj: str) -> str:
    article = "an" if obj[0] in "aeiou" else "a"
    return f"Is there {article} {obj} in the image?"


def build_pope_local(root: Path, labels: dict | None = None, adversarial_label_order: list[int] | None = None) -> Path:
    """LLaVA layout with *global* question ids (1..N over the splits in POPE_ORDER), like LLaVA's file.

    The label files number questions 1..n per split. ``adversarial_label_order`` permutes the
    adversarial label file's lines (its ids still match the first split's global ids).
    """
    labels = POPE_LABELS if labels is None else labels
    rows, qid = [], 0
    for split in POPE_ORDER:
        for image, obj, _ in labels[split]:
            qid += 1
            rows.append({"question_id": qid, "image": image, "text": pope_question(obj) + SUFFIX,
                         "category": split})
            write_image(root / "pope" / "val2014" / image)
    write_jsonl(root / "pope" / "llava_pope_test.jsonl", rows)
    for split in POPE_ORDER:
        lines = [{"question_id": i + 1, "image": image, "text": pope_question(obj), "label": label}
                 for i, (image, obj, label) in enumerate(labels[split])]
        if split == "adversarial" and adversarial_label_order is not None:
            lines = [lines[i] for i in adversarial_label_order]
        write_jsonl(root / "pope" / "coco" / f"coco_pope_{split}.json", lines)
    return root


def _pope_hf_columns(split: str, labels: dict, answer_case=str.lower) -> dict[str, list]:
    rows = labels[split]
    return {
        "id": [f"{split}-{i}" for i in range(len(rows))],
        "question_id": [str(i + 1) for i in range(len(rows))],
        "question": [pope_question(obj) for _, obj, _ in rows],
        "answer": [answer_case(label) for _, _, label in rows],
        "image_source": [image[:-4] for image, _, _ in rows],
        "image": [png_bytes() for _ in rows],
        "category": [split] * len(rows),
    }


def build_pope_hf(root: Path, labels: dict | None = None) -> Path:
    """lmms-lab/POPE layout: ``Full/{split}-00000-of-00001.parquet`` and the pooled ``data/test-*``."""
    labels = POPE_LABELS if labels is None else labels
    pooled: dict[str, list] = {}
    for split in POPE_ORDER:
        cols = _pope_hf_columns(split, labels, answer_case=str.capitalize)  # "Yes"/"No" on purpose
        write_hf_parquet(root / "Full" / f"{split}-00000-of-00001.parquet", cols)
        for k, v in cols.items():
            pooled.setdefault(k, []).extend(v)
    write_hf_parquet(root / "data" / "test-00000-of-00001.parquet", pooled)
    return root


# ---------------------------------------------------------------------------------------------
# MME
# ---------------------------------------------------------------------------------------------

MME_QA = {
    # image-folder style category (images/ + questions_answers_YN/)
    ("artwork", "10002"): [("Does this artwork exist in the form of painting? Please answer yes or no.", "Yes"),
                           ("Does this artwork exist in the form of glassware? Please answer yes or no.", "No")],
    ("artwork", "10003"): [("Is this artwork created by maris, jacob? Please answer yes or no.", "Yes"),
                           ("Is this artwork created by goya? Please answer yes or no.", "No")],
    # flat style; the first question uses the two-space variant some GT files have
    ("existence", "0001"): [("Is there a dog in this image?  Please answer yes or no.", "Yes"),
                            ("Is there a cat in this image? Please answer yes or no.", "No")],
    ("code_reasoning", "0020"): [("Is a python code shown in the picture? Please answer yes or no.", "Yes"),
                                 ("Is a c++ code shown in the picture? Please answer yes or no.", "No")],
}
IMAGE_FOLDER_STYLE = {"artwork"}


def mme_image_rel(category: str, stem: str) -> str:
    ext = "png" if category == "code_reasoning" else "jpg"
    return f"{category}/images/{stem}.{ext}" if category in IMAGE_FOLDER_STYLE else f"{category}/{stem}.{ext}"


def build_mme_release(bench: Path, qa: dict | None = None) -> Path:
    qa = MME_QA if qa is None else qa
    for (category, stem), lines in qa.items():
        write_image(bench / mme_image_rel(category, stem))
        folder = bench / category / "questions_answers_YN" if category in IMAGE_FOLDER_STYLE else bench / category
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{stem}.txt").write_text("".join(f"{q}\t{a}\n" for q, a in lines), encoding="utf-8")
    return bench


def llava_mme_text(gt_question: str, style: str = "llava") -> str:
    """The prompt LLaVA's file carries for a GT question.

    ``llava``: suffix replaced by the short-answer line; ``keep``: GT question unchanged;
    ``both``: GT question plus the short-answer line.
    """
    if style == "keep":
        return gt_question
    if style == "both":
        return gt_question + SUFFIX
    base = gt_question.replace("  Please answer yes or no.", "").replace(" Please answer yes or no.", "")
    return base + SUFFIX


def build_mme_local(root: Path, *, nested: bool = False, order: list[tuple[str, str, int]] | None = None,
                    styles: dict | None = None, qa: dict | None = None) -> Path:
    """``MME/llava_mme.jsonl`` + ``MME/MME_Benchmark_release_version/`` (``nested``: one more
    ``MME_Benchmark/`` level). ``order`` lists (category, stem, question index) rows."""
    qa = MME_QA if qa is None else qa
    release = root / "MME" / "MME_Benchmark_release_version"
    build_mme_release(release / "MME_Benchmark" if nested else release, qa)
    styles = styles or {}
    if order is None:
        order = [(c, s, i) for (c, s) in qa for i in range(2)]
    rows = []
    for category, stem, i in order:
        rel = mme_image_rel(category, stem)
        rows.append({"question_id": rel, "image": rel,
                     "text": llava_mme_text(qa[(category, stem)][i][0], styles.get((category, stem, i), "llava")),
                     "category": category})
    write_jsonl(root / "MME" / "llava_mme.jsonl", rows)
    return root


def build_mme_hf(root: Path, rows: list[tuple[str, str, int]] | None = None, qa: dict | None = None) -> Path:
    """lmms-lab/MME layout: ``data/test-00000-of-00001.parquet`` (question_id shared per image)."""
    qa = MME_QA if qa is None else qa
    if rows is None:
        rows = [(c, s, i) for (c, s) in qa for i in range(2)]
    write_hf_parquet(root / "data" / "test-00000-of-00001.parquet", {
        "question_id": [f"{c}/{s}.{'png' if c == 'code_reasoning' else 'jpg'}" for c, s, _ in rows],
        "question": [qa[(c, s)][i][0] for c, s, i in rows],
        "answer": [qa[(c, s)][i][1] for c, s, i in rows],
        "category": [c for c, _, _ in rows],
        "image": [png_bytes() for _ in rows],
    })
    return root
