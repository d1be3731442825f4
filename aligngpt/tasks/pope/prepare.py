"""``prepare``: lmms-lab/POPE -> LLaVA's POPE question and label files."""
from __future__ import annotations

from typing import Any, Sequence

from aligngpt.data.base import Sample
from aligngpt.errors import DataError
from aligngpt.harness.prepare import LayoutWriter, _image_bytes, _image_extension, _counter, sha256_bytes

#: POPE per split at the POPE commit LLaVA pins (e3e39262): random 2,910, popular/adversarial 3,000.
POPE_EXPECTED_SPLITS = {"random": 2_910, "popular": 3_000, "adversarial": 3_000}
#: lmms-lab/POPE (config Full) holds 3,000 per split; the known difference to LLaVA's copy.
POPE_LMMS_LAB_SPLITS = {"random": 3_000, "popular": 3_000, "adversarial": 3_000}


def _pope_image_names(hf_path: str, options: dict, samples: list[Sample]) -> list[str | None]:
    """The ``image_source`` column (COCO file stem) of each sample, aligned by split and row."""
    from aligngpt.data.lmms_lab import load_lmms_split
    from .loader import POPE_SPLITS

    names: list[str | None] = []
    config = options.get("config", "Full")
    if config != "Full":
        return [None] * len(samples)
    for split in options.get("splits", POPE_SPLITS):
        ds = load_lmms_split(hf_path, "Full", split, cache_dir=options.get("cache_dir"))
        cols = ["question_id"] + (["image_source"] if "image_source" in ds.column_names else [])
        for r in ds.select_columns(cols):
            names.append(None if r.get("image_source") in (None, "") else str(r["image_source"]))
    if len(names) != len(samples):
        raise DataError(hf_path, f"pope: {len(names)} rows in the Full splits but the loader gave {len(samples)} questions")
    return names


def convert_pope(samples: list[Sample], w: LayoutWriter, source: str, hf_path: str, options: dict) -> None:
    """``pope/llava_pope_test.jsonl``, ``pope/coco/coco_pope_{split}.json`` (label JSONL in the
    question order of the split) and ``pope/val2014/`` images named after ``image_source``."""
    from .loader import SHORT_ANSWER_SUFFIX
    from .loader import label_file_name

    names = _pope_image_names(hf_path, options, samples)
    questions, labels = [], {}
    for s, stem in zip(samples, names):
        data = _image_bytes(s, "pope")
        if stem is None:
            stem = "pope_" + sha256_bytes(data)[:16]
            wanted = stem + _image_extension(data)
        else:
            wanted = stem if "." in stem else stem + ".jpg"
        name = w.put_image("pope/val2014", wanted, data, where=source)
        split = s.target["split"]
        questions.append({"question_id": s.question_id, "image": name, "text": s.question, "category": split})
        raw_id = str(s.question_id).split("/", 1)[1]
        labels.setdefault(split, []).append({
            "question_id": int(raw_id) if raw_id.isdigit() else raw_id,
            "image": name,
            "text": s.question.removesuffix(SHORT_ANSWER_SUFFIX),
            "label": s.target["label"],
        })
    w.write_jsonl("pope/llava_pope_test.jsonl", questions)
    for split, lines in labels.items():
        w.write_jsonl(f"pope/coco/{label_file_name(split)}", lines)


def count_details(samples: Sequence[Sample], full: bool, result: dict[str, Any], problems: list[str]) -> None:
    """Per-split counts; lmms-lab's 3,000 per split is a known difference, reported as a warning."""
    per_split = _counter(s.target["split"] for s in samples)
    result["splits"] = per_split
    if full and per_split == POPE_LMMS_LAB_SPLITS:
        result["status"] = "warning"
        result["message"] = ("lmms-lab/POPE has 3,000 questions per split (9,000); LLaVA-1.5/AlignGPT used "
                             "8,910 (random 2,910, POPE commit e3e39262). POPE numbers on this copy are not "
                             "directly comparable with the papers'.")
        return
    if full and per_split != POPE_EXPECTED_SPLITS:
        problems.append(f"questions per split {per_split}; LLaVA's copy has {POPE_EXPECTED_SPLITS}")

