"""Writers for tiny VQAv2 / VizWiz data in the real on-disk formats.

Local layouts follow LLaVA-1.5's ``playground/data/eval`` (``vqav2/``, ``vizwiz/``) with the
official VQA question/annotation JSON and the VizWiz annotation list; HF folders follow the
lmms-lab parquet layout (``data/<split>-00000-of-00001.parquet``) with the features of the
``lmms-lab/VQAv2`` and ``lmms-lab/VizWiz-VQA`` dataset cards.
"""
from __future__ import annotations

from pathlib import Path

from .builders_sqa_textvqa_seed import png_bytes, write_image, write_json, write_jsonl, write_parquet

SHORT = "\nAnswer the question using a single word or phrase."
VIZWIZ = "\nWhen the provided information is insufficient, respond with 'Unanswerable'." + SHORT

# The official VQA file headers (values as in the 2017 release).
VQA_INFO = {"description": "This is v2.0 of the VQA dataset.", "url": "http://visualqa.org",
            "version": "2.0", "year": 2017, "contributor": "VQA Team", "date_created": "2017-04-26 17:07:13"}
VQA_LICENSE = {"url": "http://creativecommons.org/licenses/by/4.0/", "name": "Creative Commons Attribution 4.0 International License"}


# ---------------------------------------------------------------- VQAv2 test-dev / test2015
def vqav2_line(qid: int, image_id: int, question: str) -> dict:
    """One line of LLaVA's ``llava_vqav2_mscoco_test*.jsonl``."""
    return {"question_id": qid, "image": f"COCO_test2015_{image_id:012d}.jpg",
            "text": question + SHORT, "category": "default"}


def write_vqav2_test(root: Path, dev: list[dict], full: list[dict]) -> Path:
    base = root / "vqav2"
    write_jsonl(base / "llava_vqav2_mscoco_test-dev2015.jsonl", dev)
    write_jsonl(base / "llava_vqav2_mscoco_test2015.jsonl", full)
    for row in full:
        write_image(base / "test2015" / row["image"])
    return base


# ---------------------------------------------------------------- VQAv2 val2014
def vqa_question(qid: int, image_id: int, question: str) -> dict:
    return {"image_id": image_id, "question": question, "question_id": qid}


def vqa_annotation(qid: int, image_id: int, answers: list[str], answer_type: str,
                   question_type: str = "what") -> dict:
    """One entry of ``v2_mscoco_val2014_annotations.json`` (answer ids 1..10, confidences)."""
    conf = ["yes", "maybe", "no"]
    return {"question_type": question_type, "multiple_choice_answer": answers[0],
            "answers": [{"answer": a, "answer_confidence": conf[i % 3], "answer_id": i + 1}
                        for i, a in enumerate(answers)],
            "image_id": image_id, "answer_type": answer_type, "question_id": qid}


def write_vqav2_val(root: Path, questions: list[dict], annotations: list[dict]) -> Path:
    base = root / "vqav2"
    write_json(base / "v2_OpenEnded_mscoco_val2014_questions.json", {
        "info": VQA_INFO, "task_type": "Open-Ended", "data_type": "mscoco", "license": VQA_LICENSE,
        "data_subtype": "val2014", "questions": questions})
    write_json(base / "v2_mscoco_val2014_annotations.json", {
        "info": VQA_INFO, "license": VQA_LICENSE, "data_subtype": "val2014",
        "annotations": annotations, "data_type": "mscoco"})
    for q in questions:
        write_image(base / "val2014" / f"COCO_val2014_{q['image_id']:012d}.jpg")
    return base


def vqav2_hf_features():
    import datasets

    answer = {"answer": datasets.Value("string"), "answer_confidence": datasets.Value("string"),
              "answer_id": datasets.Value("int64")}
    return datasets.Features({
        "question_type": datasets.Value("string"), "multiple_choice_answer": datasets.Value("string"),
        "answers": [answer], "image_id": datasets.Value("int64"), "answer_type": datasets.Value("string"),
        "question_id": datasets.Value("int64"), "question": datasets.Value("string"),
        "image": datasets.Image(),
    })


def vqav2_hf_row(qid: int, image_id: int, question: str, ann: dict | None = None) -> dict:
    """A row of lmms-lab/VQAv2; test rows carry no annotation fields (None)."""
    ann = ann or {}
    return {"question_type": ann.get("question_type"), "multiple_choice_answer": ann.get("multiple_choice_answer"),
            "answers": ann.get("answers"), "image_id": image_id, "answer_type": ann.get("answer_type"),
            "question_id": qid, "question": question, "image": {"bytes": png_bytes(), "path": None}}


def write_vqav2_hf(folder: Path, splits: dict[str, list[dict]]) -> Path:
    for split, rows in splits.items():
        write_parquet(folder, f"data/{split}-00000-of-00001.parquet", rows, vqav2_hf_features())
    return folder


# ---------------------------------------------------------------- VizWiz
def vizwiz_line(qid: int, question: str) -> dict:
    """One line of LLaVA's ``vizwiz/llava_test.jsonl``."""
    return {"question_id": qid, "image": f"VizWiz_test_{qid:08d}.jpg", "text": question + VIZWIZ,
            "category": "default"}


def vizwiz_entry(index: int, question: str, answers: list[str], answer_type: str) -> dict:
    """One entry of VizWiz ``val.json`` (answers with confidences, ``answerable``)."""
    conf = ["yes", "maybe", "no"]
    return {"image": f"VizWiz_val_{index:08d}.jpg", "question": question,
            "answers": [{"answer": a, "answer_confidence": conf[i % 3]} for i, a in enumerate(answers)],
            "answer_type": answer_type, "answerable": 0 if answer_type == "unanswerable" else 1}


def write_vizwiz(root: Path, test_lines: list[dict], val_entries: list[dict]) -> Path:
    base = root / "vizwiz"
    write_jsonl(base / "llava_test.jsonl", test_lines)
    for row in test_lines:
        write_image(base / "test" / row["image"])
    write_json(base / "val.json", val_entries)
    for e in val_entries:
        write_image(base / "val" / e["image"])
    return base


def vizwiz_hf_features():
    import datasets

    return datasets.Features({
        "question_id": datasets.Value("string"), "image": datasets.Image(),
        "question": datasets.Value("string"), "answers": datasets.Sequence(datasets.Value("string")),
        "category": datasets.Value("string"),
    })


def vizwiz_hf_row(stem: str, question: str, answers: list[str], category: str | None) -> dict:
    return {"question_id": stem, "image": {"bytes": png_bytes(), "path": None}, "question": question,
            "answers": answers, "category": category}


def write_vizwiz_hf(folder: Path, splits: dict[str, list[dict]]) -> Path:
    for split, rows in splits.items():
        write_parquet(folder, f"data/{split}-00000-of-00001.parquet", rows, vizwiz_hf_features())
    return folder
