"""TextVQA v0.5.1 val (5,000 questions) with LLaVA-1.5's OCR-token prompt.

Local source = LLaVA layout under ``<data_root>/textvqa/``: ``llava_textvqa_val_v051_ocr.jsonl``
(``question_id`` = the *image* id, ``image``, ``text`` with the OCR line and suffix already in),
``TextVQA_0.5.1_val.json`` (answers), ``train_images/``.

LLaVA's ``eval_textvqa.py`` joins an answer to its annotation by ``(image_id, question.lower())``,
recovering the question from the prompt (:func:`prompt_question`). Its annotation dict keeps the
*last* annotation per key, so two identical questions on one image are both scored against the
later one's answers; we reproduce that by default (``collapse_duplicates=True``).

Because LLaVA's ids repeat across the questions of one image, our ``question_id`` is the TextVQA
``question_id`` of the matched annotation (the k-th line with a key takes the k-th annotation with
that key); LLaVA's id is kept in ``meta["answer_question_id"]``: an answer file the official
script reads must carry it as ``question_id``.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from aligngpt.errors import DataError
from aligngpt.io import iter_jsonl, read_json
from aligngpt.data.base import Sample, resolve_image_path
from aligngpt.data.lmms_lab import image_bytes, load_lmms_split
from aligngpt.harness.task_registry import prompt_suffix
from aligngpt.data.lmms_lab import benchmark_dir, require, undecoded_rows

TASK = "textvqa"
SHORT_ANSWER_SUFFIX = "\n" + prompt_suffix(TASK)

# Source: LLaVA llava_textvqa_val_v051_ocr.jsonl prompts (docs/protocol/textvqa.md) and
# llava/eval/eval_textvqa.py (prompt_processor).
OCR_PREFIX = "Reference OCR token: "


def build_prompt(question: str, ocr_tokens: list[str]) -> str:
    """The LLaVA file's prompt: question with its first letter upper-cased, the OCR line
    (``", "``-joined; omitted when there are no tokens), then the single-word suffix."""
    text = question[:1].upper() + question[1:]
    if ocr_tokens:
        text += "\n" + OCR_PREFIX + ", ".join(ocr_tokens)
    return text + SHORT_ANSWER_SUFFIX


def prompt_question(prompt: str) -> str:
    """LLaVA ``eval_textvqa.prompt_processor``: the lower-cased question inside a prompt.

    * ``"OCR tokens: ... Question: {q} Short answer: ..."`` (older files) -> ``q``;
    * 3 lines with a ``Reference OCR token: `` line -> line 2 if the prompt starts with it,
      else line 1;
    * 2 lines -> line 1; anything else is an error (the official code asserts).
    """
    lines = prompt.split("\n")
    if prompt.startswith("OCR tokens: "):
        match = re.search(r"Question: (.*?) Short answer:", prompt, re.DOTALL)
        if match is None:
            raise ValueError("prompt starts with 'OCR tokens: ' but has no 'Question: ... Short answer:'")
        question = match.group(1)
    elif OCR_PREFIX in prompt and len(lines) == 3:
        question = lines[1] if prompt.startswith("Reference OCR token:") else lines[0]
    elif len(lines) == 2:
        question = lines[0]
    else:
        raise ValueError(f"cannot find the question in a {len(lines)}-line prompt")
    return question.lower()


def load_local(data_root: Path, *, question_file: str = "llava_textvqa_val_v051_ocr.jsonl",
               annotation_file: str = "TextVQA_0.5.1_val.json", image_folder: str = "train_images",
               collapse_duplicates: bool = True) -> list[Sample]:
    """One sample per question-file line, in file order.

    ``collapse_duplicates=False`` scores each duplicate question against its own answers
    instead of the official last-annotation-wins lookup.
    """
    root = benchmark_dir(data_root, "textvqa", question_file)
    qpath, apath = root / question_file, root / annotation_file
    data = read_json(apath)
    annotations = data.get("data") if isinstance(data, dict) else None
    if not isinstance(annotations, list):
        raise DataError(apath, "expected an object with a 'data' list")
    by_key: dict[tuple[Any, str], list[dict]] = defaultdict(list)
    for i, ann in enumerate(annotations):
        where = f"data[{i}]: "
        image_id = require(ann, "image_id", (str, int), apath, where=where)
        question = require(ann, "question", str, apath, where=where)
        require(ann, "question_id", (str, int), apath, where=where)
        answers = require(ann, "answers", list, apath, where=where)
        if len(answers) != 10 or not all(isinstance(a, str) for a in answers):
            raise DataError(apath, f"{where}expected 10 answer strings (the m4c scorer asserts 10)")
        by_key[(image_id, question.lower())].append(ann)

    used: dict[tuple[Any, str], int] = defaultdict(int)
    samples = []
    for lineno, obj in iter_jsonl(qpath):
        llava_id = require(obj, "question_id", (str, int), qpath, lineno)
        prompt = require(obj, "text", str, qpath, lineno)
        try:
            key = (llava_id, prompt_question(prompt))
        except ValueError as exc:
            raise DataError(qpath, str(exc), line=lineno) from None
        matches = by_key.get(key)
        if not matches:
            raise DataError(qpath, f"no annotation in {apath.name} for image {llava_id!r} and "
                                   f"question {key[1]!r}", line=lineno)
        k = used[key]
        if k >= len(matches):
            raise DataError(qpath, f"question {key[1]!r} on image {llava_id!r} appears more often "
                                   f"than in {apath.name}", line=lineno)
        used[key] += 1
        own = matches[k]
        gold = matches[-1] if collapse_duplicates else own
        samples.append(Sample(
            question_id=own["question_id"],
            question=prompt,
            image=resolve_image_path(root / image_folder, require(obj, "image", str, qpath, lineno),
                                     source_file=qpath, line=lineno),
            target=list(gold["answers"]),
            meta={"answer_question_id": llava_id, "image_id": own["image_id"]},
        ))
    return samples


def load_hf(hf_path: str = "lmms-lab/textvqa", *, cache_dir: str | None = None,
            config: str | None = None, split: str = "validation", **kw: Any) -> list[Sample]:
    """lmms-lab/textvqa ``validation``: the prompt is rebuilt from ``question`` and the row's
    ``ocr_tokens`` exactly as the LLaVA file formats it (:func:`build_prompt`)."""
    ds = load_lmms_split(hf_path, config, split, cache_dir=cache_dir, **kw)
    source = f"{hf_path} [{split}]"
    samples = []
    for idx, row in enumerate(undecoded_rows(ds)):
        where = f"{source} row {idx}: "
        qid = require(row, "question_id", (str, int), None, where=where)
        question = require(row, "question", str, None, where=where)
        tokens = require(row, "ocr_tokens", list, None, where=where)
        answers = require(row, "answers", list, None, where=where)
        if len(answers) != 10:
            raise DataError(None, f"{where}expected 10 answers, got {len(answers)}")
        samples.append(Sample(
            question_id=qid,
            question=build_prompt(question, tokens),
            image=image_bytes(row.get("image"), source=source, row=idx),
            target=list(answers),
            meta={"answer_question_id": row.get("image_id"), "image_id": row.get("image_id")},
        ))
    return samples
