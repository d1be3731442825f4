"""LLaVA-Bench-in-the-Wild: the LLaVA local layout or the lmms-lab HF copy.

Local layout (``llava-bench-in-the-wild/``): ``questions.jsonl`` (question_id, image, text,
category), ``context.jsonl`` (image, caption), ``answers_gpt4.jsonl`` (the GPT-4 reference
answers), ``images/``. The question is sent raw (no suffix). As in LLaVA's
``eval_gpt_review_bench.py``, reference answers are paired with questions by *line position*
(zip), and the context is looked up by image name (the last context line for an image wins).
Unlike the official zip, unequal line counts or a reference whose ``question_id`` names a
different question are refused instead of silently mis-pairing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from aligngpt.errors import DataError
from aligngpt.io import iter_jsonl
from aligngpt.data.base import Sample, resolve_image_path
from aligngpt.data.lmms_lab import cell_image_bytes as image_bytes, load_hf_rows

FOLDER = "llava-bench-in-the-wild"


def _field(obj: Any, key: str, path: Path, line: int, kinds: tuple = (str,)) -> Any:
    if not isinstance(obj, dict):
        raise DataError(path, "line is not a JSON object", line=line)
    if key not in obj:
        raise DataError(path, f"missing field {key!r}", line=line)
    value = obj[key]
    if not isinstance(value, kinds) or isinstance(value, bool):
        raise DataError(path, f"field {key!r} has type {type(value).__name__}", line=line)
    return value


def _caption(value: Any, path: Path, line: int) -> str | list[str]:
    if isinstance(value, str) or (isinstance(value, list) and all(isinstance(x, str) for x in value)):
        return value
    raise DataError(path, "caption must be a string or a list of strings", line=line)


def load_llava_bench_local(data_root: Path, **_: Any) -> list[Sample]:
    root = Path(data_root) / FOLDER
    q_path, c_path, a_path = root / "questions.jsonl", root / "context.jsonl", root / "answers_gpt4.jsonl"
    contexts: dict[str, str | list[str]] = {}
    for line, obj in iter_jsonl(c_path):
        contexts[_field(obj, "image", c_path, line)] = _caption(
            _field(obj, "caption", c_path, line, (str, list)), c_path, line)
    references = list(iter_jsonl(a_path))
    questions = list(iter_jsonl(q_path))
    if len(references) < len(questions):
        raise DataError(q_path, f"question has no reference answer: {a_path.name} has {len(references)} lines for "
                                f"{len(questions)} questions (the official scorer pairs them line by line)",
                        line=questions[len(references)][0])
    if len(references) > len(questions):
        raise DataError(a_path, f"reference answer without a question: {q_path.name} has {len(questions)} lines",
                        line=references[len(questions)][0])
    samples: list[Sample] = []
    first_line: dict[str, int] = {}
    for (q_line, q), (a_line, a) in zip(questions, references):
        qid = _field(q, "question_id", q_path, q_line, (int, str))
        if str(qid) in first_line:
            raise DataError(q_path, f"duplicate question_id {qid!r} (first on line {first_line[str(qid)]})", line=q_line)
        first_line[str(qid)] = q_line
        image = _field(q, "image", q_path, q_line)
        category = _field(q, "category", q_path, q_line)
        reference = _field(a, "text", a_path, a_line)
        if isinstance(a, dict) and "question_id" in a and a["question_id"] != qid:
            raise DataError(a_path, f"reference answer is for question {a['question_id']!r}, but line "
                                    f"{q_line} of {q_path.name} is question {qid!r}", line=a_line)
        if image not in contexts:
            raise DataError(q_path, f"image {image!r} has no line in {c_path.name}", line=q_line)
        image_path = resolve_image_path(root / "images", image, source_file=q_path, line=q_line)
        if not image_path.is_file():
            raise DataError(q_path, f"image {image!r} not found in {root / 'images'}", line=q_line)
        samples.append(Sample(
            question_id=qid,
            question=_field(q, "text", q_path, q_line),
            image=image_path,
            target={"reference": reference, "caption": contexts[image], "category": category},
            meta={"category": category, "image_file": image,
                  "reference_answer_id": a.get("answer_id", a.get("question_id"))},
        ))
    return samples


def load_llava_bench_hf(hf_path: str = "lmms-lab/llava-bench-in-the-wild", *, config: str | None = None,
                        split: str = "train", cache_dir: str | None = None, **_: Any) -> list[Sample]:
    """lmms-lab copy: fields question_id, question, image, caption, gpt_answer, category, image_id."""
    ds = load_hf_rows(hf_path, config, split, cache_dir)
    where = Path(f"{hf_path}[{split}]")
    samples: list[Sample] = []
    for line, rec in enumerate(ds, start=1):
        for key in ("question_id", "question", "caption", "gpt_answer", "category"):
            if rec.get(key) is None:
                raise DataError(where, f"row has no {key!r}", line=line)
        samples.append(Sample(
            question_id=rec["question_id"],
            question=rec["question"],
            image=image_bytes(rec.get("image"), where, line),
            target={"reference": rec["gpt_answer"], "caption": _caption(rec["caption"], where, line),
                    "category": rec["category"]},
            meta={"category": rec["category"], "image_file": rec.get("image_id")},
        ))
    return samples
