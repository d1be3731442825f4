"""SEED-Bench v1, image part (evaluation dimensions 1-9, 14,233 questions in the release).

Local source = LLaVA layout under ``<data_root>/seed_bench/``: ``llava-seed-bench.jsonl``
(``image``, ``text`` with options and suffix already in, ``question_id``), ``SEED-Bench.json``
(``questions`` with ``answer``/``data_type``/``question_type_id``, and the ``question_type``
name -> id map), images ``SEED-Bench-image/`` (and ``SEED-Bench-video-image/`` for video).

Video questions are recognised exactly as ``convert_seed_for_submission.py`` separates image from
video accuracy: by the annotation's ``data_type`` (``"video"``: dimensions 10-12). They are not
loaded. Question-file lines that have no annotation at all (LLaVA's file predates the 2023-11-30
re-screening of video questions) are ignored, as the official script ignores them.

Ids join as the official script does: an annotation id is ``int()``-ed when it can be.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from aligngpt.errors import DataError
from aligngpt.io import iter_jsonl, read_json
from aligngpt.harness.task_registry import prompt_suffix
from aligngpt.data.base import Sample, resolve_image_path
from aligngpt.data.lmms_lab import image_bytes, load_lmms_split
from aligngpt.data.lmms_lab import benchmark_dir, require, undecoded_rows

TASK = "seed_image"
log = logging.getLogger(__name__)

# Source: LLaVA llava-seed-bench.jsonl prompts (LLaVA#964); docs/Evaluation.md MCQ format.
SEED_SUFFIX = prompt_suffix(TASK)

# Dimension names for sources without SEED-Bench.json (the HF copy has only question_type_id).
# Source: AILab-CVC/SEED-Bench DATASET.md / SEED-Bench.json "question_type" as LLaVA-1.5 used it.
# Note AILab-CVC/SEED-Bench#28: a 2024-05 edit of SEED-Bench.json swapped the names of ids 3 and
# 4 ("Instance Location": 3, "Instance Attributes": 4); the local source always uses the names of
# the JSON it is given, as the official script does. Pass ``type_names`` to override here.
SEED_QUESTION_TYPES: dict[int, str] = {
    1: "Scene Understanding", 2: "Instance Identity", 3: "Instance Attributes",
    4: "Instance Location", 5: "Instances Counting", 6: "Spatial Relation",
    7: "Instance Interaction", 8: "Visual Reasoning", 9: "Text Understanding",
    10: "Action Recognition", 11: "Action Prediction", 12: "Procedure Understanding",
}


def official_id(question_id: Any) -> Any:
    """``convert_seed_for_submission.py``: ``int(question_id)`` where possible, else as is."""
    try:
        return int(question_id)
    except (TypeError, ValueError):
        return question_id


def build_prompt(question: str, choices: list[str]) -> str:
    """``"{q}\\nA. {a}\\nB. {b}\\nC. {c}\\nD. {d}\\nAnswer with the option's letter ..."``."""
    options = "\n".join(f"{letter}. {choice}" for letter, choice in zip("ABCD", choices))
    return f"{question}\n{options}\n{SEED_SUFFIX}"


def load_local(data_root: Path, *, question_file: str = "llava-seed-bench.jsonl",
               annotation_file: str = "SEED-Bench.json", strict: bool = True) -> list[Sample]:
    """The image questions of the question file, in file order.

    ``strict`` (default): every image question of the annotation file must be in the question
    file, since the official image accuracy counts absent ones as wrong.
    """
    root = benchmark_dir(data_root, "seed_bench", question_file)
    qpath, apath = root / question_file, root / annotation_file
    data = read_json(apath)
    questions = data.get("questions") if isinstance(data, dict) else None
    type_map = data.get("question_type") if isinstance(data, dict) else None
    if not isinstance(questions, list) or not isinstance(type_map, dict):
        raise DataError(apath, "expected an object with 'questions' and 'question_type'")
    names = {tid: name for name, tid in type_map.items()}
    by_id: dict[Any, dict] = {}
    for i, ann in enumerate(questions):
        where = f"questions[{i}]: "
        qid = official_id(require(ann, "question_id", (str, int), apath, where=where))
        require(ann, "answer", str, apath, where=where)
        require(ann, "data_type", str, apath, where=where)
        tid = require(ann, "question_type_id", int, apath, where=where)
        if tid not in names:
            raise DataError(apath, f"{where}question_type_id {tid} not in 'question_type'")
        by_id[qid] = ann

    samples, seen, unannotated = [], set(), 0
    for lineno, obj in iter_jsonl(qpath):
        raw_id = require(obj, "question_id", (str, int), qpath, lineno)
        ann = by_id.get(official_id(raw_id))
        if ann is None:
            unannotated += 1
            continue
        if ann["data_type"] != "image":
            continue
        if official_id(raw_id) in seen:
            raise DataError(qpath, f"duplicate question_id {raw_id!r}", line=lineno)
        seen.add(official_id(raw_id))
        tid = ann["question_type_id"]
        samples.append(Sample(
            question_id=raw_id,
            question=require(obj, "text", str, qpath, lineno),
            image=resolve_image_path(root, require(obj, "image", str, qpath, lineno),
                                     source_file=qpath, line=lineno),
            target=ann["answer"],
            meta={"question_type_id": tid, "dimension": names[tid], "data_type": "image"},
        ))
    if unannotated:
        log.warning("%s: %d lines have no annotation in %s; ignored (as the official script does)",
                    qpath, unannotated, apath.name)
    absent = [qid for qid, ann in by_id.items() if ann["data_type"] == "image" and qid not in seen]
    if strict and absent:
        raise DataError(qpath, f"{len(absent)} image questions of {apath.name} are missing "
                               f"(e.g. {', '.join(map(str, absent[:5]))}); the official image "
                               f"accuracy counts them wrong (strict=False to load the rest)")
    return samples


def load_hf(hf_path: str = "lmms-lab/SEED-Bench", *, cache_dir: str | None = None,
            config: str | None = None, split: str = "test",
            type_names: Mapping[int, str] = SEED_QUESTION_TYPES, **kw: Any) -> list[Sample]:
    """lmms-lab/SEED-Bench ``test``, image rows only (``data_type == "image"``; the first
    image of the ``image`` list); the prompt is rebuilt as LLaVA's file has it."""
    ds = load_lmms_split(hf_path, config, split, cache_dir=cache_dir, **kw)
    if "data_type" not in ds.column_names:
        raise DataError(hf_path, "no 'data_type' column; cannot tell image from video questions")
    ds = ds.filter(lambda t: t == "image", input_columns="data_type")
    source = f"{hf_path} [{split}] image rows"
    samples = []
    for idx, row in enumerate(undecoded_rows(ds)):
        where = f"{source}: row {idx}: "
        tid = require(row, "question_type_id", int, None, where=where)
        if tid not in type_names:
            raise DataError(None, f"{where}unknown question_type_id {tid}")
        choices = [require(row, f"choice_{c}", str, None, where=where) for c in "abcd"]
        images = row.get("image")
        first = images[0] if isinstance(images, list) and images else None
        samples.append(Sample(
            question_id=official_id(require(row, "question_id", (str, int), None, where=where)),
            question=build_prompt(require(row, "question", str, None, where=where), choices),
            image=image_bytes(first, source=source, row=idx),
            target=require(row, "answer", str, None, where=where),
            meta={"question_type_id": tid, "dimension": type_names[tid], "data_type": "image"},
        ))
    return samples
