"""POPE (COCO; random / popular / adversarial): the LLaVA-1.5 local layout and lmms-lab/POPE.

Local layout (under ``--data-root``)::

    pope/llava_pope_test.jsonl                   question_id, image, text (suffix included), category
    pope/coco/coco_pope_{random,popular,adversarial}.json   JSONL: question_id, image, text, label
    pope/val2014/COCO_val2014_*.jpg

A sample's split is its question's ``category``; its gold label comes from that split's label
file. The official scorer (LLaVA ``eval_pope.py``) never joins on ids: it zips the answers of a
category, in file order, with the label file's lines. LLaVA's question file numbers questions
globally, so its ids generally differ from the label files' per-split ids. We therefore join
per split by ``question_id`` when every question of the split finds a label line with the same
id *and* the same image; otherwise by position (k-th question of the split <-> k-th label line),
as the official script does, checking that counts and image names agree line by line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from aligngpt.errors import DataError
from aligngpt.io import iter_jsonl
from aligngpt.data.base import Sample, resolve_image_path
from aligngpt.data.lmms_lab import image_bytes, load_lmms_split, require_columns
from aligngpt.harness.task_registry import prompt_suffix

SHORT_ANSWER_SUFFIX = "\n" + prompt_suffix("pope")

POPE_SPLITS = ("random", "popular", "adversarial")
QUESTIONS_JSONL = Path("pope") / "llava_pope_test.jsonl"
LABEL_DIR = Path("pope") / "coco"
IMAGES_DIR = Path("pope") / "val2014"


def label_file_name(split: str) -> str:
    """``coco_pope_{split}.json``: eval_pope.py reads the category from this name."""
    return f"coco_pope_{split}.json"


def _read_labels(path: Path) -> list[tuple[int, dict]]:
    rows = []
    for lineno, row in iter_jsonl(path):
        if not isinstance(row, dict) or "label" not in row:
            raise DataError(path, "expected a JSON object with a 'label' field", line=lineno)
        rows.append((lineno, row))
    return rows


def _join_split(split: str, questions: list[tuple[int, dict]], label_path: Path,
                jsonl: Path) -> tuple[list[tuple[int, dict]], str]:
    """Pair each question of one split with its label line; returns (pairs in question order, mode)."""
    labels = _read_labels(label_path)
    by_id = {str(row.get("question_id")): (idx, lineno, row) for idx, (lineno, row) in enumerate(labels)}
    paired = []
    for _, q in questions:
        hit = by_id.get(str(q["question_id"]))
        if hit is None or hit[2].get("image") != q["image"]:
            break
        paired.append((hit[0], hit[2]))
    else:
        return paired, "question_id"
    # Positional, as eval_pope.py: the k-th question of the split goes with the k-th label line.
    if len(questions) != len(labels):
        raise DataError(label_path, f"{len(labels)} labels but {jsonl} has {len(questions)} '{split}' "
                                    "questions, and their question_ids do not match; cannot pair them")
    paired = []
    for idx, ((qline, q), (lline, lab)) in enumerate(zip(questions, labels)):
        if "image" in lab and lab["image"] != q["image"]:
            raise DataError(label_path, f"label image {lab['image']!r} differs from {jsonl}:{qline} "
                                        f"image {q['image']!r}; the two files are not in the same order",
                            line=lline)
        paired.append((idx, lab))
    return paired, "position"


def load_pope_local(data_root: Path) -> list[Sample]:
    """POPE from the LLaVA layout, in the question file's order (the order the official scorer uses)."""
    data_root = Path(data_root)
    jsonl = data_root / QUESTIONS_JSONL
    by_split: dict[str, list[tuple[int, dict]]] = {}
    order: list[tuple[int, dict]] = []
    seen: set[str] = set()
    for lineno, row in iter_jsonl(jsonl):
        if not isinstance(row, dict):
            raise DataError(jsonl, "expected a JSON object", line=lineno)
        for name in ("question_id", "image", "text", "category"):
            if name not in row:
                raise DataError(jsonl, f"missing field {name!r}", line=lineno)
        if not isinstance(row["text"], str) or not isinstance(row["category"], str):
            raise DataError(jsonl, "fields 'text' and 'category' must be strings", line=lineno)
        key = str(row["question_id"])
        if key in seen:
            raise DataError(jsonl, f"duplicate question_id {key} (eval_pope.py keys questions by id)", line=lineno)
        seen.add(key)
        by_split.setdefault(row["category"], []).append((lineno, row))
        order.append((lineno, row))

    targets: dict[str, dict] = {}
    for split, questions in by_split.items():
        label_path = data_root / LABEL_DIR / label_file_name(split)
        if not label_path.is_file():
            raise DataError(label_path, f"file not found (needed for the {len(questions)} questions with "
                                        f"category {split!r} in {jsonl})")
        paired, mode = _join_split(split, questions, label_path, jsonl)
        for (_, q), (label_index, lab) in zip(questions, paired):
            targets[str(q["question_id"])] = {"label": str(lab["label"]), "split": split,
                                              "label_index": label_index, "join": mode}

    image_root = data_root / IMAGES_DIR
    return [
        Sample(
            question_id=row["question_id"],
            question=row["text"],
            image=resolve_image_path(image_root, row["image"], source_file=jsonl, line=lineno),
            target=targets[str(row["question_id"])],
            meta={"category": row["category"], "image_name": row["image"]},
        )
        for lineno, row in order
    ]


def load_pope_hf(hf_path: str = "lmms-lab/POPE", *, cache_dir: str | None = None, config: str = "Full",
                 splits: tuple[str, ...] = POPE_SPLITS, **kw: Any) -> list[Sample]:
    """POPE from lmms-lab/POPE (3,000 questions per split, not LLaVA's 2,910-question ``random``).

    ``config="Full"`` (default): one HF split per POPE split, the split name is the category.
    ``config="default"``: the pooled ``test`` split; its ``category`` column names the POPE split.
    Question ids repeat across POPE splits, so ids here are ``"{split}/{question_id}"``. The prompt
    is the stripped question plus LLaVA's short-answer suffix; the gold label is ``answer``,
    lower-cased and stripped as lmms-eval does (the local label files are used verbatim).
    """
    source = str(hf_path)
    tables: list[tuple[str | None, Any]] = []
    if config == "Full":
        tables = [(s, load_lmms_split(hf_path, "Full", s, cache_dir=cache_dir, **kw)) for s in splits]
    else:
        tables = [(None, load_lmms_split(hf_path, None if config == "default" else config, "test",
                                         cache_dir=cache_dir, **kw))]
    samples: list[Sample] = []
    positions: dict[str, int] = {}
    for fixed_split, ds in tables:
        cols = ["question_id", "question", "answer", "image"] + ([] if fixed_split else ["category"])
        require_columns(ds, cols, source=source, what=f"{config}/{fixed_split or 'test'}")
        for i, r in enumerate(ds.select_columns(cols)):
            split = fixed_split or str(r["category"])
            if fixed_split is None and split not in splits:
                continue
            index = positions.get(split, 0)
            positions[split] = index + 1
            samples.append(Sample(
                question_id=f"{split}/{r['question_id']}",
                question=f"{str(r['question']).strip()}{SHORT_ANSWER_SUFFIX}",
                image=image_bytes(r["image"], source=source, row=i),
                target={"label": str(r["answer"]).strip().lower(), "split": split, "label_index": index, "join": "hf"},
                meta={"category": split},
            ))
    return samples
