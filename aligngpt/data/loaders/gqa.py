"""GQA testdev-balanced: the LLaVA-1.5 local layout and the lmms-lab HF copy.

Local layout (under ``--data-root``)::

    gqa/llava_gqa_testdev_balanced.jsonl        questions the LLaVA driver ran (question_id, image, text)
    gqa/data/testdev_balanced_questions.json    the official GQA question file (answers, types, isBalanced)
    gqa/data/images/{imageId}.jpg

The JSONL ``text`` already carries the short-answer suffix, so it is used verbatim. The official
``eval.py`` refuses to score unless every balanced question has a prediction; the local loader
therefore checks by default that the JSONL covers every balanced question of the question file.

This module also holds the small helpers the lmms-lab loaders of POPE and MME share
(:func:`load_lmms_split`, :func:`image_bytes`, :func:`require_columns`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from ...errors import DataError
from ...extras import import_optional
from ...io import iter_jsonl, read_json
from ..base import Sample, register_loader, resolve_image_path

# LLaVA-1.5 short-answer instruction (haotian-liu/LLaVA docs/Evaluation.md; lmms-eval
# lmms_eval/tasks/gqa/gqa.yaml post_prompt). Appended to the bare GQA question for the HF source.
SHORT_ANSWER_SUFFIX = "\nAnswer the question using a single word or phrase."

QUESTIONS_JSONL = Path("gqa") / "llava_gqa_testdev_balanced.jsonl"
QUESTIONS_JSON = Path("gqa") / "data" / "testdev_balanced_questions.json"
IMAGES_DIR = Path("gqa") / "data" / "images"


# ----------------------------------------------------------------------------------------------
# Shared lmms-lab helpers (also used by the POPE and MME loaders)
# ----------------------------------------------------------------------------------------------

def _local_parquet_files(root: Path, config: str | None, split: str) -> list[Path]:
    """Find one split's parquet shards in a local copy of an lmms-lab dataset repository.

    The hub repositories keep a config's shards in a folder named after the config (``data/``
    for the default one) as ``{split}-00000-of-0000N.parquet``; the parquet-converter branch
    uses ``{config}/{split}/0000.parquet``. Both are accepted.
    """
    folders = [config] if config else ["data", "default"]
    for folder in folders:
        base = root / folder
        for pattern in (f"{split}-*.parquet", f"{split}/*.parquet", f"{split}.parquet"):
            found = sorted(base.glob(pattern))
            if found:
                return found
    raise DataError(root, f"no parquet files for config {config or 'default'!r}, split {split!r} "
                          f"(looked for {folders[0]}/{split}-*.parquet and {folders[0]}/{split}/*.parquet)")


def load_lmms_split(hf_path: str, config: str | None, split: str, *, cache_dir: str | None = None,
                    **kw: Any):
    """One split of an lmms-lab dataset as a ``datasets.Dataset`` with undecoded images.

    ``hf_path`` is a hub id (passed to ``datasets.load_dataset`` with ``config``) or a local folder
    holding the repository's parquet files (read with the ``parquet`` builder, so no hub access).
    Images stay encoded (``{"bytes", "path"}``): samples carry raw bytes, never decoded pixels.
    """
    datasets = import_optional("datasets", "the hf data source")
    local = Path(hf_path).expanduser()
    try:
        if local.is_dir():
            files = _local_parquet_files(local, config, split)
            ds = datasets.load_dataset("parquet", data_files={split: [str(f) for f in files]},
                                       split=split, cache_dir=cache_dir)
        else:
            ds = datasets.load_dataset(hf_path, config, split=split, cache_dir=cache_dir, **kw)
    except DataError:
        raise
    except Exception as exc:  # datasets raises many types; the user needs the source and the cause
        raise DataError(hf_path, f"cannot load config {config or 'default'!r} split {split!r}: {exc}") from exc
    image_feature = ds.features.get("image")
    if isinstance(image_feature, datasets.Image) and image_feature.decode:
        ds = ds.cast_column("image", datasets.Image(decode=False))
    return ds


def require_columns(ds, names: Iterable[str], *, source: str, what: str) -> None:
    """Fail with the missing column's name instead of a KeyError deep inside a loader."""
    missing = [n for n in names if n not in ds.column_names]
    if missing:
        raise DataError(source, f"{what}: missing column(s) {', '.join(missing)}; have {', '.join(ds.column_names)}")


def image_bytes(cell: Any, *, source: str, row: int) -> bytes:
    """The encoded image file of a parquet image cell (``{"bytes", "path"}`` or raw bytes).

    Paths stored in a cell are not followed: a data file must not make us read the local disk.
    """
    if isinstance(cell, dict):
        cell = cell.get("bytes")
    if isinstance(cell, (bytes, bytearray, memoryview)) and len(cell) > 0:
        return bytes(cell)
    raise DataError(source, f"row {row}: image cell holds no encoded bytes")


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


@register_loader("gqa", "local")
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


@register_loader("gqa", "hf")
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
