"""Writers for tiny ScienceQA / TextVQA / SEED-Bench data in the real on-disk formats.

Local layouts follow LLaVA-1.5's ``playground/data/eval``; HF folders follow the lmms-lab parquet
layout (``<config>/<split>-00000-of-00001.parquet`` or ``data/<split>-...``) with HF ``Image``
features, so ``datasets`` reads them the way it reads the hub copies.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image


def png_bytes(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buf, format="PNG")
    return buf.getvalue()


def write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2), encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes())
    return path


def write_parquet(folder: Path, relpath: str, rows: list[dict], features: Any) -> Path:
    """Write ``rows`` (column -> value dicts) as one parquet file with HF ``features``."""
    import datasets

    columns = {name: [row[name] for row in rows] for name in features}
    ds = datasets.Dataset.from_dict(columns, features=features)
    out = folder / relpath
    out.parent.mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(out))
    return out


# ---------------------------------------------------------------- ScienceQA
def sqa_problem(question: str, choices: list[str], answer: int, hint: str = "",
                image: str | None = None, split: str = "test") -> dict:
    """One ``problems.json`` value, with the fields of the real file."""
    return {"question": question, "choices": choices, "answer": answer, "hint": hint,
            "image": image, "task": "closed choice", "grade": "grade4",
            "subject": "natural science", "topic": "geography", "category": "Geography",
            "skill": "Read a map", "lecture": "", "solution": "", "split": split}


def sqa_human_turn(prob: dict) -> str:
    """The human turn of LLaVA-1.5's ``llava_test_CQM-A.json`` for one problem."""
    context = f"Context: {prob['hint']}\n" if prob["hint"] else ""
    options = "\n".join(f"{'ABCDE'[i]}. {c}" for i, c in enumerate(prob["choices"]))
    body = f"{context}{prob['question']}\n{options}"
    return f"<image>\n{body}" if prob["image"] else body


def write_sqa_local(root: Path, problems: dict[str, dict], *, extra_problems: dict | None = None,
                    drop_from_questions: tuple[str, ...] = ()) -> Path:
    """``root/scienceqa/`` with the question file, problems.json, pid_splits.json and images."""
    base = root / "scienceqa"
    entries = []
    for pid, prob in problems.items():
        if pid in drop_from_questions:
            continue
        entry: dict[str, Any] = {"id": pid}
        if prob["image"]:
            entry["image"] = f"{pid}/{prob['image']}"
            write_image(base / "images" / "test" / pid / prob["image"])
        entry["conversations"] = [{"from": "human", "value": sqa_human_turn(prob)},
                                  {"from": "gpt", "value": "ABCDE"[prob["answer"]]}]
        entries.append(entry)
    write_json(base / "llava_test_CQM-A.json", entries)
    write_json(base / "problems.json", {**problems, **(extra_problems or {})})
    write_json(base / "pid_splits.json", {"train": list(extra_problems or {}), "val": [],
                                          "test": list(problems)})
    return base


def sqa_features():
    import datasets

    return datasets.Features({
        "image": datasets.Image(), "question": datasets.Value("string"),
        "choices": datasets.List(datasets.Value("string")), "answer": datasets.Value("int8"),
        "hint": datasets.Value("string"), "task": datasets.Value("string"),
        "grade": datasets.Value("string"), "subject": datasets.Value("string"),
        "topic": datasets.Value("string"), "category": datasets.Value("string"),
        "skill": datasets.Value("string"), "lecture": datasets.Value("string"),
        "solution": datasets.Value("string"),
    })


def write_sqa_hf(folder: Path, problems: list[dict], config: str = "ScienceQA-FULL") -> Path:
    rows = []
    for prob in problems:
        row = {k: prob[k] for k in sqa_features() if k != "image"}
        row["image"] = {"bytes": png_bytes(), "path": None} if prob["image"] else None
        rows.append(row)
    write_parquet(folder, f"{config}/test-00000-of-00001.parquet", rows, sqa_features())
    return folder


# ---------------------------------------------------------------- TextVQA
def textvqa_annotation(question_id: int, image_id: str, question: str,
                       answers: list[str]) -> dict:
    """One ``TextVQA_0.5.1_val.json`` ``data`` entry (subset of the real fields)."""
    return {"question": question, "image_id": image_id, "image_classes": ["Camera"],
            "flickr_original_url": "", "flickr_300k_url": "", "image_width": 1024,
            "image_height": 768, "answers": answers, "question_tokens": question.split(),
            "question_id": question_id, "set_name": "val"}


def textvqa_line(image_id: str, text: str) -> dict:
    """One ``llava_textvqa_val_v051_ocr.jsonl`` line: the id is the image id."""
    return {"question_id": image_id, "image": f"{image_id}.jpg", "text": text,
            "category": "default"}


def write_textvqa_local(root: Path, annotations: list[dict], lines: list[dict]) -> Path:
    base = root / "textvqa"
    write_json(base / "TextVQA_0.5.1_val.json",
               {"dataset_type": "val", "dataset_name": "textvqa", "dataset_version": "0.5.1",
                "data": annotations})
    write_jsonl(base / "llava_textvqa_val_v051_ocr.jsonl", lines)
    for line in lines:
        write_image(base / "train_images" / line["image"])
    return base


def textvqa_features():
    import datasets

    return datasets.Features({
        "image_id": datasets.Value("string"), "question_id": datasets.Value("int32"),
        "question": datasets.Value("string"),
        "question_tokens": datasets.List(datasets.Value("string")),
        "image": datasets.Image(), "image_width": datasets.Value("int32"),
        "image_height": datasets.Value("int32"),
        "answers": datasets.List(datasets.Value("string")),
        "ocr_tokens": datasets.List(datasets.Value("string")),
        "set_name": datasets.Value("string"),
    })


def write_textvqa_hf(folder: Path, rows: list[dict]) -> Path:
    full = [{**{"question_tokens": r["question"].split(), "image": {"bytes": png_bytes(), "path": None},
                "image_width": 1024, "image_height": 768, "set_name": "val"}, **r} for r in rows]
    write_parquet(folder, "data/validation-00000-of-00001.parquet", full, textvqa_features())
    return folder


# ---------------------------------------------------------------- SEED-Bench
SEED_TYPES = {"Scene Understanding": 1, "Instance Identity": 2, "Instance Attributes": 3,
              "Instance Location": 4, "Instances Counting": 5, "Spatial Relation": 6,
              "Instance Interaction": 7, "Visual Reasoning": 8, "Text Understanding": 9,
              "Action Recognition": 10, "Action Prediction": 11, "Procedure Understanding": 12}


def seed_question(question_id: str, type_id: int, answer: str, question: str = "How many towels?",
                  data_type: str | None = None) -> dict:
    """One ``SEED-Bench.json`` question (image ids are digit strings, video ids "v...")."""
    dtype = data_type or ("image" if type_id <= 9 else "video")
    return {"answer": answer, "choice_a": "One", "choice_b": "Two", "choice_c": "Three",
            "choice_d": "Four", "data_id": f"{question_id}_2591111986" if dtype == "image"
            else f"{question_id}.webm", "data_type": dtype, "question": question,
            "question_id": question_id, "question_type_id": type_id}


def seed_prompt(q: dict) -> str:
    return (f"{q['question']}\nA. {q['choice_a']}\nB. {q['choice_b']}\nC. {q['choice_c']}\n"
            f"D. {q['choice_d']}\nAnswer with the option's letter from the given choices directly.")


def seed_line(q: dict) -> dict:
    """One ``llava-seed-bench.jsonl`` line (image questions carry an int id, video a str)."""
    qid = q["question_id"]
    folder = "SEED-Bench-image" if q["data_type"] == "image" else "SEED-Bench-video-image"
    stem = q["data_id"] if q["data_type"] == "image" else qid
    return {"image": f"{folder}/{stem}", "text": seed_prompt(q),
            "category": next(n for n, t in SEED_TYPES.items() if t == q["question_type_id"]),
            "question_id": int(qid) if qid.isdigit() else qid}


def write_seed_local(root: Path, annotated: list[dict], lines: list[dict]) -> Path:
    base = root / "seed_bench"
    write_json(base / "SEED-Bench.json", {"questions": annotated, "question_type": SEED_TYPES})
    write_jsonl(base / "llava-seed-bench.jsonl", lines)
    for line in lines:
        write_image(base / line["image"])
    return base


def seed_features():
    import datasets

    return datasets.Features({
        "answer": datasets.Value("string"), "choice_a": datasets.Value("string"),
        "choice_b": datasets.Value("string"), "choice_c": datasets.Value("string"),
        "choice_d": datasets.Value("string"), "data_id": datasets.Value("string"),
        "data_type": datasets.Value("string"), "question": datasets.Value("string"),
        "question_id": datasets.Value("string"), "question_type_id": datasets.Value("int16"),
        "image": datasets.List(datasets.Image()),
    })


def write_seed_hf(folder: Path, questions: list[dict]) -> Path:
    rows = []
    for q in questions:
        n_frames = 1 if q["data_type"] == "image" else 8
        rows.append({**q, "image": [{"bytes": png_bytes(), "path": None}] * n_frames})
    write_parquet(folder, "data/test-00000-of-00001.parquet", rows, seed_features())
    return folder
