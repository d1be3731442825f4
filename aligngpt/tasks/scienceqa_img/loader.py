"""ScienceQA (test split, 4,241 problems; the 2,017 with an image are "SQA-I").

Local source = LLaVA-1.5 layout under ``<data_root>/scienceqa/``: ``llava_test_CQM-A.json``
(the prompts LLaVA ran), ``problems.json`` + ``pid_splits.json`` (what ``eval_science_qa.py``
scores against), ``images/test/<pid>/image.png``.

The question sent is what LLaVA's ``model_vqa_science.py --single-pred-prompt`` sends after
``<image>\\n``: the human turn with ``<image>`` removed and stripped, then
``"\\nAnswer with the option's letter from the given choices directly."``. A problem has an image
iff its entry has an ``image`` key (the driver's test), and only then is ``<image>`` sent.
``eval_science_qa.py`` counts a problem as "IMG" iff the answer file's ``prompt`` contains
``<image>``; image samples therefore carry ``meta["answer_prompt"]`` = ``"<image>\\n" + question``
(the driver's ``cur_prompt``), which an answer file must use as ``prompt``.

This module also holds the small helpers the TextVQA and SEED loaders share (benchmark folder
lookup, field checks, undecoded HF rows); lmms-lab parquet loading is :mod:`.gqa`'s.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from aligngpt.errors import DataError
from aligngpt.io import read_json
from aligngpt.harness.task_registry import prompt_suffix
from aligngpt.data.base import Sample, resolve_image_path
from aligngpt.data.lmms_lab import benchmark_dir, load_lmms_split, optional_image_bytes, require, undecoded_rows

TASK = "scienceqa_img"

# Source: haotian-liu/LLaVA llava/eval/model_vqa_science.py (--single-pred-prompt suffix).
SQA_SUFFIX = prompt_suffix(TASK)
# Source: haotian-liu/LLaVA llava/eval/eval_science_qa.py (--options default).
SQA_OPTIONS: tuple[str, ...] = ("A", "B", "C", "D", "E")


# ---------------------------------------------------------------- ScienceQA
def _sqa_meta(question: str, has_image: bool, subject: Any, grade: Any) -> dict:
    meta = {"has_image": has_image, "subject": subject, "grade": grade}
    if has_image:
        meta["answer_prompt"] = "<image>\n" + question
    return meta


def sqa_question_from_choices(question: str, choices: list[str], hint: str | None) -> str:
    """The LLaVA-1.5 ``llava_test_CQM-A.json`` human turn rebuilt from raw fields, plus suffix.

    ``"Context: {hint}\\n"`` (only for a non-empty hint) + question + ``"\\nA. {c1}\\nB. {c2}..."``,
    stripped like the driver strips the human turn (docs/protocol/scienceqa_img.md).
    """
    if len(choices) > len(SQA_OPTIONS):
        raise ValueError(f"{len(choices)} choices; ScienceQA letters stop at E")
    context = f"Context: {hint}\n" if hint else ""
    options = "\n".join(f"{letter}. {choice}" for letter, choice in zip(SQA_OPTIONS, choices))
    return f"{context}{question}\n{options}".strip() + "\n" + SQA_SUFFIX


def _sqa_target(prob: dict, path: Path, pid: str) -> dict:
    where = f"problem {pid}: "
    choices = require(prob, "choices", list, path, where=where)
    answer = require(prob, "answer", int, path, where=where)
    if not 0 <= answer < len(choices):
        raise DataError(path, f"{where}answer index {answer} outside its {len(choices)} choices")
    return {"answer": answer, "n_choices": len(choices)}


def load_local(data_root: Path, *, question_file: str = "llava_test_CQM-A.json",
               image_folder: str = "images/test", split: str = "test") -> list[Sample]:
    """All ``split`` problems, in question-file order; every split pid must have a prompt."""
    root = benchmark_dir(data_root, "scienceqa", question_file)
    qpath, ppath, spath = root / question_file, root / "problems.json", root / "pid_splits.json"
    entries = read_json(qpath)
    problems = read_json(ppath)
    splits = read_json(spath)
    if not isinstance(entries, list):
        raise DataError(qpath, "expected a JSON list of LLaVA conversation entries")
    if not isinstance(problems, dict):
        raise DataError(ppath, "expected a JSON object keyed by problem id")
    if not isinstance(splits, dict) or not isinstance(splits.get(split), list):
        raise DataError(spath, f"no {split!r} list of problem ids")
    wanted = {str(pid) for pid in splits[split]}

    samples: list[Sample] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"entry {i}: "
        pid = str(require(entry, "id", (str, int), qpath, where=where))
        where = f"entry {i} (id {pid}): "
        if pid in seen:
            raise DataError(qpath, f"{where}duplicate id")
        seen.add(pid)
        if pid not in wanted:
            raise DataError(qpath, f"{where}not in pid_splits.json[{split!r}]")
        turns = require(entry, "conversations", list, qpath, where=where)
        human = require(turns[0] if turns else None, "value", str, qpath, where=where)
        image = None
        if "image" in entry:  # the driver's test: `if 'image' in line`
            image = resolve_image_path(root / image_folder, entry["image"], source_file=qpath)
        prob = problems.get(pid)
        if not isinstance(prob, dict):
            raise DataError(ppath, f"problem {pid} (from {qpath.name}) not found")
        question = human.replace("<image>", "").strip() + "\n" + SQA_SUFFIX
        samples.append(Sample(
            question_id=pid, question=question, image=image, target=_sqa_target(prob, ppath, pid),
            meta=_sqa_meta(question, image is not None, prob.get("subject"), prob.get("grade")),
        ))
    missing = sorted(wanted - seen, key=lambda p: (len(p), p))
    if missing:
        raise DataError(qpath, f"{len(missing)} {split} problems have no prompt "
                               f"(e.g. {', '.join(missing[:5])}); the official accuracy counts them")
    return samples


def load_hf(hf_path: str = "lmms-lab/ScienceQA", *, cache_dir: str | None = None,
            config: str = "ScienceQA-FULL", split: str = "test", **kw: Any) -> list[Sample]:
    """lmms-lab/ScienceQA (``ScienceQA-FULL`` = all 4,241 test problems, as the local source;
    ``ScienceQA-IMG`` = the 2,017 with an image).

    The HF copy carries no problem id, so ``question_id`` is the row index in the split: it does
    not equal the local source's pid (the prompts do).
    """
    ds = load_lmms_split(hf_path, config, split, cache_dir=cache_dir, **kw)
    source = f"{hf_path} [{config}/{split}]"
    samples = []
    for idx, row in enumerate(undecoded_rows(ds)):
        where = f"{source} row {idx}: "
        question = require(row, "question", str, None, where=where)
        choices = require(row, "choices", list, None, where=where)
        answer = require(row, "answer", int, None, where=where)
        if not 0 <= answer < len(choices) or len(choices) > len(SQA_OPTIONS):
            raise DataError(None, f"{where}answer {answer} / {len(choices)} choices not scorable")
        image = optional_image_bytes(row.get("image"), source=source, row=idx)
        text = sqa_question_from_choices(question, choices, row.get("hint"))
        samples.append(Sample(
            question_id=idx, question=text, image=image,
            target={"answer": answer, "n_choices": len(choices)},
            meta=_sqa_meta(text, image is not None, row.get("subject"), row.get("grade")),
        ))
    return samples
