"""MME: the LLaVA-1.5 local layout and lmms-lab/MME.

Local layout (under ``--data-root``)::

    MME/llava_mme.jsonl                          question_id (= image path), image, text
    MME/MME_Benchmark_release_version/           the official release (optionally one more
                                                 ``MME_Benchmark/`` level, as newer zips have)
        <category>/images/*  + <category>/questions_answers_YN/<stem>.txt   (image-folder style)
        <category>/<stem>.jpg|png + <category>/<stem>.txt                   (flat style)

Ground truth is found exactly as LLaVA's ``convert_answer_to_mme.py`` finds it: category =
first component of ``question_id``; GT file = the last component up to its first ``.`` plus
``.txt``, in ``questions_answers_YN/`` when the category has an ``images/`` folder, else next to
the images; each GT line is ``question<TAB>Yes|No``. The prompt is turned back into the GT
question by removing "Answer the question using a single word or phrase.", stripping, and
appending " Please answer yes or no." (if absent), falling back to a two-space variant that
some GT files use.

The two questions of an image share one ``question_id`` in both sources, so our sample ids are
``"{question_id}#{k}"`` (k = 0, 1 by order of appearance); ``meta["answer_question_id"]`` keeps
the official id for answer files. The first ``/``-component and the file stem survive the
suffix, so LLaVA's converter still reads our ids.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aligngpt.errors import DataError
from aligngpt.io import iter_jsonl, iter_text_lines
from aligngpt.data.base import Sample, resolve_image_path
from aligngpt.data.lmms_lab import image_bytes, load_lmms_split, require_columns
from aligngpt.harness.task_registry import prompt_suffix

SHORT_ANSWER_SUFFIX = "\n" + prompt_suffix("mme")

QUESTIONS_JSONL = Path("MME") / "llava_mme.jsonl"
RELEASE_DIR = Path("MME") / "MME_Benchmark_release_version"

# Prompt strings used by LLaVA's MME converter (LLaVA eval.zip: MME/convert_answer_to_mme.py).
LLAVA_INSTRUCTION = "Answer the question using a single word or phrase."
MME_SUFFIX = " Please answer yes or no."
MME_SUFFIX_DOUBLE_SPACE = "  Please answer yes or no."

_MME_SUFFIX_RE = re.compile(r"\s*Please answer yes or no\.\s*$")


def category_and_file(question_id: str) -> tuple[str, str]:
    """convert_answer_to_mme.py: category = first path part; GT file = last part's stem + '.txt'."""
    parts = question_id.split("/")
    return parts[0], parts[-1].split(".")[0] + ".txt"


def gt_question_candidates(prompt: str) -> list[str]:
    """The GT-file question(s) a prompt maps to, in the order the converter tries them."""
    if LLAVA_INSTRUCTION in prompt:
        prompt = prompt.replace(LLAVA_INSTRUCTION, "").strip()
    if MME_SUFFIX.strip() in prompt:
        return [prompt]
    prompt = prompt + MME_SUFFIX
    return [prompt, prompt.replace(MME_SUFFIX, MME_SUFFIX_DOUBLE_SPACE)]


def benchmark_root(release: Path, category: str) -> Path:
    """The folder holding the category folders: the release itself or its ``MME_Benchmark/``."""
    if (release / category).is_dir() or not (release / "MME_Benchmark" / category).is_dir():
        return release
    return release / "MME_Benchmark"


def qa_folder(bench: Path, category: str) -> Path:
    """convert_answer_to_mme.py: ``questions_answers_YN/`` when ``images/`` exists, else the category folder."""
    cat = bench / category
    return cat / "questions_answers_YN" if (cat / "images").exists() else cat


def read_gt_file(path: Path) -> dict[str, str]:
    """``question<TAB>answer`` lines (each stripped first, as the converter does) -> {question: answer}.

    Blank lines are skipped (the converter would crash on them); any other line without exactly
    one tab is a DataError naming the line.
    """
    out: dict[str, str] = {}
    for lineno, line in iter_text_lines(path, universal_newlines=True):  # the converter reads in text mode
        if not line.strip():
            continue
        fields = line.strip().split("\t")
        if len(fields) != 2:
            raise DataError(path, f"expected 'question<TAB>answer', got {len(fields)} field(s)", line=lineno)
        out[fields[0]] = fields[1]
    return out


def _check_answer(answer: str, *, source: Path | str, line: int | None) -> str:
    # calculation.py asserts gt.lower() in ("yes", "no").
    if not isinstance(answer, str) or answer.lower() not in ("yes", "no"):
        raise DataError(source, f"ground-truth answer must be Yes or No, got {answer!r}", line=line)
    return answer


def load_mme_local(data_root: Path) -> list[Sample]:
    """MME from the LLaVA layout, in the JSONL's order (calculation.py pairs consecutive lines)."""
    data_root = Path(data_root)
    jsonl = data_root / QUESTIONS_JSONL
    release = data_root / RELEASE_DIR
    gt_cache: dict[Path, dict[str, str]] = {}
    occurrences: dict[str, int] = {}
    first_line: dict[tuple[str, str], int] = {}
    samples: list[Sample] = []
    for lineno, row in iter_jsonl(jsonl):
        if not isinstance(row, dict):
            raise DataError(jsonl, "expected a JSON object", line=lineno)
        for name in ("question_id", "image", "text"):
            if not isinstance(row.get(name), str):
                raise DataError(jsonl, f"field {name!r} must be a string", line=lineno)
        qid, text = row["question_id"], row["text"]
        category, gt_name = category_and_file(qid)
        bench = benchmark_root(release, category)
        gt_path = qa_folder(bench, category) / gt_name
        if gt_path not in gt_cache:
            if not gt_path.is_file():
                raise DataError(gt_path, f"file not found (ground truth for {jsonl}:{lineno})")
            gt_cache[gt_path] = read_gt_file(gt_path)
        gt = gt_cache[gt_path]
        found = next((c for c in gt_question_candidates(text) if c in gt), None)
        if found is None:
            raise DataError(jsonl, f"no ground truth for this question in {gt_path}", line=lineno)
        image = resolve_image_path(bench, row["image"], source_file=jsonl, line=lineno)
        if (qid, text) in first_line:  # a repeated line would be scored twice for its image
            raise DataError(jsonl, f"duplicate question for {qid!r} (same text as line {first_line[qid, text]})",
                            line=lineno)
        first_line[qid, text] = lineno
        k = occurrences.get(qid, 0)
        occurrences[qid] = k + 1
        samples.append(Sample(
            question_id=f"{qid}#{k}",
            question=text,
            image=image,
            target={"answer": _check_answer(gt[found], source=gt_path, line=None), "category": category,
                    "image": f"{category}/{gt_name[:-4]}"},
            meta={"category": category, "answer_question_id": qid, "gt_question": found},
        ))
    return samples


def hf_prompt(question: str) -> str:
    """lmms-lab question -> LLaVA prompt: drop the trailing "Please answer yes or no." (one or two
    leading spaces), add LLaVA's short-answer instruction on a new line."""
    return _MME_SUFFIX_RE.sub("", question.strip()) + SHORT_ANSWER_SUFFIX


def load_mme_hf(hf_path: str = "lmms-lab/MME", *, cache_dir: str | None = None, split: str = "test",
                **kw: Any) -> list[Sample]:
    """MME from lmms-lab/MME (``question_id``, ``question``, ``answer``, ``category``, ``image``).

    Rows are stably grouped so the two questions of an image are adjacent (the official pairing is
    by consecutive lines); otherwise the dataset's order is kept.
    """
    source = str(hf_path)
    ds = load_lmms_split(hf_path, None, split, cache_dir=cache_dir, **kw)
    cols = ["question_id", "question", "answer", "category", "image"]
    require_columns(ds, cols, source=source, what=f"default/{split}")
    groups: dict[str, list[tuple[int, dict]]] = {}
    for i, r in enumerate(ds.select_columns(cols)):
        groups.setdefault(str(r["question_id"]), []).append((i, r))
    samples: list[Sample] = []
    for qid, rows in groups.items():
        category, gt_name = category_and_file(qid)
        for k, (i, r) in enumerate(rows):
            cat = str(r["category"] or category)
            samples.append(Sample(
                question_id=f"{qid}#{k}",
                question=hf_prompt(str(r["question"])),
                image=image_bytes(r["image"], source=source, row=i),
                target={"answer": _check_answer(r["answer"], source=source, line=None), "category": cat,
                        "image": f"{cat}/{gt_name[:-4]}"},
                meta={"category": cat, "answer_question_id": qid, "gt_question": str(r["question"]).strip()},
            ))
    return samples
