"""``prepare``: lmms-lab/GQA -> the LLaVA-1.5 GQA files."""
from __future__ import annotations


from aligngpt.data.base import Sample
from aligngpt.harness.prepare import LayoutWriter, _image_bytes, _json_safe


def convert_gqa(samples: list[Sample], w: LayoutWriter, source: str, hf_path: str, options: dict) -> None:
    """``gqa/llava_gqa_testdev_balanced.jsonl``, ``gqa/data/testdev_balanced_questions.json``
    (every column of the instructions config, keyed by question id, as in the official file) and
    ``gqa/data/images/{imageId}.jpg``."""
    from aligngpt.data.lmms_lab import load_lmms_split

    config = options.get("instructions_config", "testdev_balanced_instructions")
    split = options.get("split", "testdev")
    raw = load_lmms_split(hf_path, config, split, cache_dir=options.get("cache_dir"))
    records: dict[str, dict] = {}
    for r in raw:
        record = {k: _json_safe(v) for k, v in r.items() if k != "id"}
        records[str(r["id"])] = record
    questions: dict[str, dict] = {}
    rows = []
    for s in samples:
        image_id = str(s.meta["image_id"])
        name = w.put_image("gqa/data/images", f"{image_id}.jpg", _image_bytes(s, "gqa"), where=source)
        rows.append({"question_id": str(s.question_id), "image": name, "text": s.question, "category": "default"})
        questions[str(s.question_id)] = records[str(s.question_id)]
    w.write_jsonl("gqa/llava_gqa_testdev_balanced.jsonl", rows)
    w.write_json("gqa/data/testdev_balanced_questions.json", questions, rows=len(questions))
