"""GQA testdev-balanced: the LLaVA-1.5 local layout and the lmms-lab HF copy.

Local layout (under ``--data-root``)::

    gqa/llava_gqa_testdev_balanced.jsonl        questions the LLaVA driver ran (question_id, image, text)
    gqa/data/testdev_balanced_questions.json    the official GQA question file (answers, types, isBalanced)
    gqa/data/images/{imageId}.jpg

The JSONL ``text`` already carries the short-answer suffix, so it is used verbatim. The official
``eval.py`` refuses to score unless every balanced question has a prediction; the local loader
therefore checks by default that the JSONL covers every balanced question of the question file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from aligngpt.errors import DataError
from aligngpt.io import iter_jsonl, read_json
from aligngpt.harness.task_registry import prompt_suffix
from aligngpt.data.lmms_lab import image_bytes, load_lmms_split, require_columns
from aligngpt.data.base import Sample, resolve_image_path

# LLaVA-1.5 short-answer instruction (haotian-liu/LLaVA docs/Evaluation.md; lmms-eval
# lmms_eval/tasks/gqa/gqa.yaml post_prompt). Appended to the bare GQA question for the HF source.
SHORT_ANSWER_SUFFIX = "\n" + prompt_suffix("gqa")

QUESTIONS_JSONL = Path("gqa") / "llava_gqa_testdev_balanced.jsonl"
QUESTIONS_JSON = Path("gqa") / "data" / "testdev_balanced_questions.json"
IMAGES_DIR = Path("gqa") / "data" / "images"


# ----------------------------------------------------------------------------------------------
# GQA
# ----------------------------------------------------------------------------------------------

def _gqa_target(q: dict, *, source: Path | str, qid: str) -> dict:
    """Only the fields the official eval.py reads for accuracy / binary / open."""
    try:
        answer = q["answer"]
        balanced = q["isBalanced"]
        structural = q["types"]["structural"]
    except (KeyError, TypeError) as exc:
        raise DataError(source, f"question {qid}: missing field {exc} (need answer, isBalanced, types.structural)") from None
    if not isinstance(answer, str) or not isinstance(structural, str):
        raise DataError(source, f"question {qid}: answer and types.structural must be strings")
    return {"answer": answer, "balanced": bool(balanced), "structural": structural}


def load_gqa_local(data_root: Path, *, require_all_balanced: bool = True) -> list[Sample]:
    """GQA testdev-balanced from the LLaVA layout, in the JSONL's order.

    ``require_all_balanced`` (default, as the official eval.py): raise if a balanced question of
    the question file is missing from the JSONL, since the official script would refuse to score.
    """
    data_root = Path(data_root)
    jsonl = data_root / QUESTIONS_JSONL
    qfile = data_root / QUESTIONS_JSON
    image_root = data_root / IMAGES_DIR
    samples: list[Sample] = []
    seen: set[str] = set()
    rows = list(iter_jsonl(jsonl))  # parse (and report bad lines) before the big JSON load
    questions = read_json(qfile)
    if not isinstance(questions, dict):
        raise DataError(qfile, "expected a JSON object keyed by questionId")
    for lineno, row in rows:
        if not isinstance(row, dict):
            raise DataError(jsonl, "expected a JSON object", line=lineno)
        try:
            qid, image, text = row["question_id"], row["image"], row["text"]
        except KeyError as exc:
            raise DataError(jsonl, f"missing field {exc}", line=lineno) from None
        if not isinstance(text, str):
            raise DataError(jsonl, "field 'text' must be a string", line=lineno)
        key = str(qid)
        if key in seen:
            raise DataError(jsonl, f"duplicate question_id {key}", line=lineno)
        seen.add(key)
        if key not in questions:
            raise DataError(jsonl, f"question_id {key} is not in {qfile}", line=lineno)
        q = questions[key]
        samples.append(Sample(
            question_id=qid,
            question=text,
            image=resolve_image_path(image_root, image, source_file=jsonl, line=lineno),
            target=_gqa_target(q, source=qfile, qid=key),
            meta={"image_id": q.get("imageId"), "semantic_type": (q.get("types") or {}).get("semantic")},
        ))
    if require_all_balanced:
        missing = [k for k, q in questions.items() if isinstance(q, dict) and q.get("isBalanced") and k not in seen]
        if missing:
            raise DataError(jsonl, f"{len(missing)} balanced question(s) of {qfile} are not in this file "
                                   f"(e.g. {', '.join(missing[:3])}); the official eval.py cannot score without them")
    return samples


def load_gqa_hf(hf_path: str = "lmms-lab/GQA", *, cache_dir: str | None = None,
                instructions_config: str = "testdev_balanced_instructions",
                images_config: str = "testdev_balanced_images", split: str = "testdev",
                **kw: Any) -> list[Sample]:
    """GQA testdev-balanced from lmms-lab/GQA: questions joined with the image config by ``imageId``.

    Assumes the instructions config carries ``id``, ``imageId``, ``question``, ``answer``,
    ``isBalanced`` and the GQA ``types`` struct (``types.structural`` decides binary/open).
    The question gets LLaVA's short-answer suffix so prompts equal the local JSONL's.
    """
    source = str(hf_path)
    qs = load_lmms_split(hf_path, instructions_config, split, cache_dir=cache_dir, **kw)
    require_columns(qs, ["id", "imageId", "question", "answer", "isBalanced", "types"], source=source,
                    what=f"{instructions_config}/{split}")
    ims = load_lmms_split(hf_path, images_config, split, cache_dir=cache_dir, **kw)
    require_columns(ims, ["id", "image"], source=source, what=f"{images_config}/{split}")
    id2image = {str(r["id"]): image_bytes(r["image"], source=source, row=i) for i, r in enumerate(ims)}
    samples: list[Sample] = []
    for i, r in enumerate(qs.select_columns(["id", "imageId", "question", "answer", "isBalanced", "types"])):
        qid = str(r["id"])
        image_id = str(r["imageId"])
        if image_id not in id2image:
            raise DataError(source, f"{instructions_config} row {i}: imageId {image_id} not in {images_config}")
        samples.append(Sample(
            question_id=qid,
            question=f"{r['question']}{SHORT_ANSWER_SUFFIX}",
            image=id2image[image_id],
            target=_gqa_target(r, source=source, qid=qid),
            meta={"image_id": image_id, "semantic_type": (r.get("types") or {}).get("semantic")},
        ))
    return samples
