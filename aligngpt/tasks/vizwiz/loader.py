"""VizWiz-VQA: test (scored by the EvalAI server) and val (the local proxy).

Local layout (LLaVA-1.5 ``playground/data/eval``), under ``<data_root>/vizwiz/``::

    llava_test.jsonl    8,000 test questions LLaVA runs (question_id, image, text)
    test/VizWiz_test_*.jpg
    val.json            VizWiz annotation list: {image, question, answers: [{answer,
                        answer_confidence}] x10, answer_type, answerable}
    val/VizWiz_val_*.jpg

Task ``vizwiz``: one sample per ``llava_test.jsonl`` line, text verbatim (the "Unanswerable"
instruction and the short-answer suffix are already in it); ``question_id`` as in that file;
``meta["image"]`` = the file name the upload is keyed by. ``meta["submission_split"]`` records
the number of questions of the full list, so the submission writer can tell a complete run from
a ``--limit`` one (LLaVA's converter asserts that every test question has an answer).

Task ``vizwiz_val``: one sample per ``val.json`` entry in file order; ``question_id`` = the image
file name (VizWiz has one question per image); prompt = question + :data:`VIZWIZ_SUFFIX`.

HF source: ``lmms-lab/VizWiz-VQA`` (splits ``val``, ``test``; ``question_id`` = image stem,
``answers`` = strings, ``category``). Its question id becomes ``"<stem>.jpg"`` so that val ids
equal the local ones. The local test ids are LLaVA's (ints), which the HF copy does not carry:
HF test ids are the image file names instead; the upload (keyed by image) is the same.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from aligngpt.errors import DataError
from aligngpt.io import iter_jsonl, read_json
from aligngpt.data.base import Sample, resolve_image_path
from aligngpt.data.lmms_lab import image_bytes, load_lmms_split
from aligngpt.harness.task_registry import prompt_suffix
from aligngpt.data.lmms_lab import benchmark_dir, require, undecoded_rows

TASK_TEST = "vizwiz"
TASK_VAL = "vizwiz_val"

TEST_JSONL = "llava_test.jsonl"
TEST_IMAGES = "test"
VAL_JSON = "val.json"
VAL_IMAGES = "val"
HF_PATH = "lmms-lab/VizWiz-VQA"

# The VizWiz instruction LLaVA-1.5 put into llava_test.jsonl before the short-answer suffix.
# Source: haotian-liu/LLaVA playground/data/eval/vizwiz/llava_test.jsonl text
# (docs/protocol/vizwiz.md);
# lmms-eval lmms_eval/tasks/vizwiz_vqa/_default_template_vqa_yaml (post_prompt), same string.
VIZWIZ_SUFFIX = "\n" + prompt_suffix(TASK_TEST)

#: VizWiz answer types (the VizWiz API's accPerAnsType keys).
ANSWER_TYPES: tuple[str, ...] = ("yes/no", "number", "other", "unanswerable")


def _image_name(question_id: str) -> str:
    """lmms-lab ids are image stems; the upload and the local val ids use ``<stem>.jpg``."""
    return question_id if question_id.endswith(".jpg") else f"{question_id}.jpg"


# ------------------------------------------------------------------ task vizwiz (test)
def load_test_local(data_root: Path, *, question_file: str = TEST_JSONL,
                    image_folder: str = TEST_IMAGES) -> list[Sample]:
    root = benchmark_dir(data_root, "vizwiz", question_file)
    qpath = root / question_file
    ref: dict[str, Any] = {"kind": "llava_jsonl", "path": str(qpath.resolve())}
    samples: list[Sample] = []
    seen_ids: set[str] = set()
    seen_images: set[str] = set()
    for lineno, row in iter_jsonl(qpath):
        qid = require(row, "question_id", (int, str), qpath, lineno)
        text = require(row, "text", str, qpath, lineno)
        image = require(row, "image", str, qpath, lineno)
        if str(qid) in seen_ids:
            raise DataError(qpath, f"duplicate question_id {qid!r}", line=lineno)
        if image in seen_images:
            raise DataError(qpath, f"image {image!r} appears twice; the upload is keyed by image", line=lineno)
        seen_ids.add(str(qid))
        seen_images.add(image)
        samples.append(Sample(
            question_id=qid, question=text,
            image=resolve_image_path(root / image_folder, image, source_file=qpath, line=lineno),
            target=None, meta={"image": image, "submission_split": ref},
        ))
    ref["count"] = len(samples)
    return samples


def load_test_hf(hf_path: str = HF_PATH, *, cache_dir: str | None = None, config: str | None = None,
                 split: str = "test", **kw: Any) -> list[Sample]:
    """lmms-lab/VizWiz-VQA ``test``: question + :data:`VIZWIZ_SUFFIX`, id = image file name."""
    ds = load_lmms_split(hf_path, config, split, cache_dir=cache_dir, **kw)
    source = f"{hf_path} [{split}]"
    ref: dict[str, Any] = {"kind": "hf", "path": str(hf_path), "split": split}
    samples: list[Sample] = []
    for idx, row in enumerate(undecoded_rows(ds)):
        where = f"{source} row {idx}: "
        name = _image_name(require(row, "question_id", str, None, where=where))
        question = require(row, "question", str, None, where=where)
        samples.append(Sample(
            question_id=name, question=question + VIZWIZ_SUFFIX,
            image=image_bytes(row.get("image"), source=source, row=idx),
            target=None, meta={"image": name, "submission_split": ref},
        ))
    ref["count"] = len(samples)
    return samples


# ------------------------------------------------------------------ task vizwiz_val
def vizwiz_target(answers: list[str], answer_type: str | None, answerable: Any) -> dict:
    return {"answers": answers, "answer_type": answer_type, "answerable": answerable}


def load_val_local(data_root: Path, *, annotation_file: str = VAL_JSON,
                   image_folder: str = VAL_IMAGES) -> list[Sample]:
    """``val.json`` entries in file order; the question id is the image file name."""
    root = benchmark_dir(data_root, "vizwiz", annotation_file)
    apath = root / annotation_file
    entries = read_json(apath)
    if not isinstance(entries, list):
        raise DataError(apath, "expected a JSON list of VizWiz annotations")
    samples: list[Sample] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"entry {i}: "
        image = require(entry, "image", str, apath, where=where)
        where = f"entry {i} ({image}): "
        question = require(entry, "question", str, apath, where=where)
        raw = require(entry, "answers", list, apath, where=where)
        answer_type = require(entry, "answer_type", str, apath, where=where)
        if image in seen:
            raise DataError(apath, f"{where}duplicate image (VizWiz ids are image names)")
        seen.add(image)
        if not raw:
            raise DataError(apath, f"{where}'answers' is empty")
        answers = []
        for k, ans in enumerate(raw):
            answers.append(require(ans, "answer", str, apath, where=f"{where}answers[{k}]: "))
        if answer_type not in ANSWER_TYPES:
            raise DataError(apath, f"{where}answer_type {answer_type!r} is not one of {', '.join(ANSWER_TYPES)}")
        samples.append(Sample(
            question_id=image, question=question + VIZWIZ_SUFFIX,
            image=resolve_image_path(root / image_folder, image, source_file=apath),
            target=vizwiz_target(answers, answer_type, entry.get("answerable")),
            meta={"answer_type": answer_type},
        ))
    return samples


def load_val_hf(hf_path: str = HF_PATH, *, cache_dir: str | None = None, config: str | None = None,
                split: str = "val", **kw: Any) -> list[Sample]:
    """lmms-lab/VizWiz-VQA ``val``. The answer type is taken from ``category`` when it names one
    of the four VizWiz types; otherwise it is unknown (None) and only ``accuracy`` covers the
    question. Answer confidences and ``answerable`` are not in this copy."""
    ds = load_lmms_split(hf_path, config, split, cache_dir=cache_dir, **kw)
    source = f"{hf_path} [{split}]"
    samples: list[Sample] = []
    for idx, row in enumerate(undecoded_rows(ds)):
        where = f"{source} row {idx}: "
        name = _image_name(require(row, "question_id", str, None, where=where))
        question = require(row, "question", str, None, where=where)
        answers = require(row, "answers", list, None, where=where)
        if not answers or not all(isinstance(a, str) for a in answers):
            raise DataError(None, f"{where}'answers' must be a non-empty list of strings")
        category = row.get("category")
        answer_type = category if category in ANSWER_TYPES else None
        samples.append(Sample(
            question_id=name, question=question + VIZWIZ_SUFFIX,
            image=image_bytes(row.get("image"), source=source, row=idx),
            target=vizwiz_target(list(answers), answer_type, None),
            meta={"answer_type": answer_type},
        ))
    return samples
