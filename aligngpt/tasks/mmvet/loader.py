"""MM-Vet (v1, 218 questions): the LLaVA local layout or the lmms-lab HF copy.

Local layout (``mm-vet/``): ``llava-mm-vet.jsonl`` (question_id 0..217, image, text: the
questions LLaVA runs, raw, no suffix), ``mm-vet.json`` (``v1_<id>`` -> imagename, question,
answer with ``<AND>``/``<OR>``, capability list: the grader's ground truth), ``images/``
(AlignGPT's scripts use ``mm-vet/mm-vet/images``, accepted as a fallback).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from aligngpt.errors import DataError
from aligngpt.io import iter_jsonl, read_json
from aligngpt.data.base import Sample, resolve_image_path
from aligngpt.data.lmms_lab import cell_image_bytes as image_bytes, load_hf_rows

FOLDER = "mm-vet"
CAPABILITIES = ("rec", "ocr", "know", "gen", "spat", "math")


def mmvet_key(question_id: Any) -> str:
    """LLaVA ``convert_mmvet_for_eval.py``: answer of question_id N is graded as ``v1_N``."""
    return f"v1_{question_id}"


def _truth(entry: Any, path: Path, key: str) -> dict:
    if not isinstance(entry, dict):
        raise DataError(path, f"{key}: entry is not an object")
    for field in ("question", "answer", "capability"):
        if field not in entry:
            raise DataError(path, f"{key}: missing field {field!r}")
    caps = entry["capability"]
    if isinstance(caps, str):
        caps = [c.strip() for c in caps.split(",") if c.strip()]
    if not isinstance(caps, list) or not caps or not all(isinstance(c, str) for c in caps):
        raise DataError(path, f"{key}: capability must be a non-empty list of names")
    if not isinstance(entry["question"], str) or not isinstance(entry["answer"], str):
        raise DataError(path, f"{key}: question and answer must be strings")
    return {"question": entry["question"], "answer": entry["answer"], "capability": caps, "key": key}


def load_mmvet_local(data_root: Path, **_: Any) -> list[Sample]:
    root = Path(data_root) / FOLDER
    q_path, gt_path = root / "llava-mm-vet.jsonl", root / "mm-vet.json"
    truth = read_json(gt_path)
    if not isinstance(truth, dict):
        raise DataError(gt_path, "expected an object keyed v1_<id>")
    images = root / "images"
    if not images.is_dir() and (root / "mm-vet" / "images").is_dir():
        images = root / "mm-vet" / "images"
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    for line, obj in iter_jsonl(q_path):
        if not isinstance(obj, dict) or not all(k in obj for k in ("question_id", "image", "text")):
            raise DataError(q_path, "expected fields question_id, image, text", line=line)
        if str(obj["question_id"]) in seen:
            raise DataError(q_path, f"duplicate question_id {obj['question_id']!r} (first on line "
                            f"{seen[str(obj['question_id'])]})", line=line)
        seen[str(obj["question_id"])] = line
        key = mmvet_key(obj["question_id"])
        if key not in truth:
            raise DataError(q_path, f"question {obj['question_id']!r} has no entry {key!r} in {gt_path.name}",
                            line=line)
        target = _truth(truth[key], gt_path, key)
        image_path = resolve_image_path(images, obj["image"], source_file=q_path, line=line)
        if not image_path.is_file():
            raise DataError(q_path, f"image {obj['image']!r} not found in {images}", line=line)
        samples.append(Sample(
            question_id=obj["question_id"],
            question=obj["text"],
            image=image_path,
            target=target,
            meta={"capability": target["capability"], "key": key},
        ))
    return samples


def load_mmvet_hf(hf_path: str = "lmms-lab/MMVet", *, config: str | None = None, split: str = "test",
                  cache_dir: str | None = None, **_: Any) -> list[Sample]:
    """lmms-lab copy: question_id (``v1_N`` or N), image, question, answer, capability ("rec,ocr")."""
    ds = load_hf_rows(hf_path, config, split, cache_dir)
    where = Path(f"{hf_path}[{split}]")
    samples: list[Sample] = []
    for line, rec in enumerate(ds, start=1):
        raw_id = rec.get("question_id")
        text_id = str(raw_id)
        number = text_id[3:] if text_id.startswith("v1_") else text_id
        if not number.isdigit():
            raise DataError(where, f"question_id {raw_id!r} is neither N nor v1_N", line=line)
        qid = int(number)
        target = _truth(rec, where, mmvet_key(qid))
        samples.append(Sample(
            question_id=qid,
            question=rec["question"],
            image=image_bytes(rec.get("image"), where, line),
            target=target,
            meta={"capability": target["capability"], "key": target["key"]},
        ))
    return samples
