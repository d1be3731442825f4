"""``prepare``: lmms-lab/MME -> the official MME release layout plus LLaVA's question file."""
from __future__ import annotations

from typing import Any, Sequence

from aligngpt.data.base import Sample
from aligngpt.errors import DataError
from aligngpt.harness.prepare import LayoutWriter, _image_bytes, _counter

#: MME questions per subtask (2 per image; image counts from docs/protocol/mme.md).
MME_EXPECTED_CATEGORIES = {
    "existence": 60, "count": 60, "position": 60, "color": 60, "posters": 294, "celebrity": 340,
    "scene": 400, "landmark": 400, "artwork": 400, "OCR": 40, "commonsense_reasoning": 140,
    "numerical_calculation": 40, "text_translation": 40, "code_reasoning": 40,
}
#: Official MME release categories that keep images in ``images/`` and GT in ``questions_answers_YN/``.
MME_IMAGE_FOLDER_CATEGORIES = frozenset({"artwork", "celebrity", "landmark", "posters", "scene"})


def convert_mme(samples: list[Sample], w: LayoutWriter, source: str, hf_path: str, options: dict) -> None:
    """``MME/llava_mme.jsonl`` and ``MME/MME_Benchmark_release_version/`` in the official release
    layout: image-folder categories get ``images/`` + ``questions_answers_YN/``, the others keep
    the image and its ``question<TAB>answer`` file side by side."""
    from .loader import category_and_file, gt_question_candidates

    release = "MME/MME_Benchmark_release_version"
    rows = []
    gt_files: dict[str, list[str]] = {}
    for s in samples:
        qid = str(s.meta["answer_question_id"])
        category, gt_name = category_and_file(qid)
        image_name = qid.split("/")[-1]
        if category in MME_IMAGE_FOLDER_CATEGORIES:
            image_dir, gt_dir = f"{category}/images", f"{category}/questions_answers_YN"
        else:
            image_dir = gt_dir = category
        name = w.put_image(f"{release}/{image_dir}", image_name, _image_bytes(s, "mme"), where=source)
        rows.append({"question_id": qid, "image": f"{image_dir}/{name}", "text": s.question, "category": category})
        candidates = gt_question_candidates(s.question)
        original = str(s.meta.get("gt_question", "")).strip()
        gt_question = original if original in candidates else candidates[0]
        if "\t" in gt_question or "\n" in gt_question:
            raise DataError(source, f"mme: question of {qid} contains a tab or newline; the GT file format cannot hold it")
        gt_files.setdefault(f"{release}/{gt_dir}/{gt_name}", []).append(f"{gt_question}\t{s.target['answer']}\n")
    w.write_jsonl("MME/llava_mme.jsonl", rows)
    for rel, lines in gt_files.items():
        w.write_text(rel, "".join(lines), rows=len(lines))


def count_details(samples: Sequence[Sample], full: bool, result: dict[str, Any], problems: list[str]) -> None:
    """Questions per subtask, compared with the release for a full split."""
    per_cat = _counter(s.target["category"] for s in samples)
    result["categories"] = per_cat
    if full and per_cat != MME_EXPECTED_CATEGORIES:
        diff = sorted(c for c in set(per_cat) | set(MME_EXPECTED_CATEGORIES)
                      if per_cat.get(c, 0) != MME_EXPECTED_CATEGORIES.get(c, 0))
        problems.append(f"subtask counts differ from the protocol for {', '.join(diff)}")
