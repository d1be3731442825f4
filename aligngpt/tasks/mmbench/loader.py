"""MMBench (dev 20230712) and MMBench-CN (dev 20231003): OpenCompass TSVs or the lmms-lab HF copy.

Every TSV row (circular copies included, index ``k*1e6 + i``) is one ``Sample``; the question is
built exactly as LLaVA's ``llava/eval/model_vqa_mmbench.py --single-pred-prompt`` (no
``--all-rounds``) builds it::

    [hint + "\\n"] + question + "\\nA. opt" + "\\nB. opt" ... + "\\n" + suffix

Options are read A->D and stop at the first "none" value (``is_none``: None, NaN, or the strings
"nan"/"none" in any case). Cells are read the way the official pipeline reads them, with pandas'
default NA strings (so an option cell "NA" or "None" is missing, a pandas quirk the official
scripts inherit); the HF loader applies the same rule to its string cells so both sources give
identical questions.
"""
from __future__ import annotations

import base64
import binascii
import math
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from aligngpt.errors import DataError
from aligngpt.io import iter_text_lines
from aligngpt.data.lmms_lab import cell_image_bytes as image_bytes, load_hf_rows
from aligngpt.harness.task_registry import prompt_suffix
from aligngpt.data.base import Sample

#: Suffixes appended by ``model_vqa_mmbench.py --single-pred-prompt`` (haotian-liu/LLaVA,
#: llava/eval/model_vqa_mmbench.py; AlignGPT src/eval/model_vqa_mmbench.py is identical).
SUFFIX_EN = prompt_suffix("mmbench")
SUFFIX_CN = prompt_suffix("mmbench_cn")

#: pandas' default NA strings (pandas ``read_csv``/``read_excel`` docs, ``na_values``; pandas
#: ``_libs/parsers.pyx`` STR_NA_VALUES, pandas >= 2.0). The official pipeline reads the TSV and
#: the submission xlsx with pandas defaults, so these cell texts become NaN there.
PANDAS_NA_STRINGS = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})

OPTION_LETTERS = ("A", "B", "C", "D")
CIRCULAR_STRIDE = 1_000_000
# Columns the submission writer needs back; the image is not kept in meta (it is Sample.image).
_DROP_FROM_ROW = ("image",)

DEFAULT_FILES = {
    "mmbench": ("mmbench/mmbench_dev_20230712.tsv",),
    # Our documented place for the CN file is mmbench/ (docs/protocol/mmbench_cn.md); AlignGPT's
    # scripts keep it in mmbench_cn/, which is accepted too.
    "mmbench_cn": ("mmbench/mmbench_dev_cn_20231003.tsv", "mmbench_cn/mmbench_dev_cn_20231003.tsv"),
}


def is_none(value: Any) -> bool:
    """LLaVA ``model_vqa_mmbench.is_none``: None, float NaN, or "nan"/"none" in any case."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.lower() in ("nan", "none")


def pandas_cell(value: Any) -> str | None:
    """A cell as pandas (default NA handling) would hand it over: None for NA, else text."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return repr(value) if not value.is_integer() else str(value)
    text = str(value)
    return None if text in PANDAS_NA_STRINGS else text


def build_question(hint: str | None, question: str, options: list[str], lang: str) -> str:
    """The text after ``<image>\\n`` exactly as LLaVA's MMBench driver sends it."""
    text = question
    if not is_none(hint):
        text = f"{hint}\n{text}"
    for letter, option in zip(OPTION_LETTERS, options):
        text += f"\n{letter}. {option}"
    return text + "\n" + (SUFFIX_CN if lang == "cn" else SUFFIX_EN)


def prompt_options(row: Mapping[str, str | None]) -> list[str]:
    """LLaVA ``get_options``: option texts A->D until the first ``is_none`` one."""
    out: list[str] = []
    for letter in OPTION_LETTERS:
        value = row.get(letter)
        if is_none(value):
            break
        out.append(value)  # type: ignore[arg-type]
    return out


def present_choices(row: Mapping[str, str | None]) -> dict[str, str]:
    """OpenCompass ``build_choices``: every A-D option that pandas did not read as NaN."""
    return {L: row[L] for L in OPTION_LETTERS if row.get(L) is not None}  # type: ignore[misc]


def _column(row: Mapping[str, Any], name: str) -> Any:
    """Case-insensitive column access (the files spell ``l2-category`` / ``L2-category``)."""
    if name in row:
        return row[name]
    for key, value in row.items():
        if key.lower() == name:
            return value
    return None


def _decode_image(cell: str | None, by_index: Mapping[int, str | None], where: Path, line: int) -> bytes:
    if cell is None:
        raise DataError(where, "row has no image", line=line)
    text = cell.strip()
    # Some MMBench TSVs (VLMEvalKit's re-packs) store, for a repeated image, the index of the
    # row that holds it instead of the base64 text (one level of indirection only).
    if text.isdigit() and len(text) < 16 and int(text) in by_index:
        target = (by_index[int(text)] or "").strip()
        if target and not target.isdigit():
            text = target
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DataError(where, "image cell is not valid base64", line=line) from None


def _make_samples(rows: Iterable[tuple[int, dict[str, str | None]]], lang: str, where: Path,
                  image_of: Any) -> list[Sample]:
    samples: list[Sample] = []
    seen: set[int] = set()
    for line, row in rows:
        raw_index = row.get("index")
        try:
            index = int(str(raw_index).strip())
        except (TypeError, ValueError):
            raise DataError(where, f"index {raw_index!r} is not an integer", line=line) from None
        if index in seen:
            raise DataError(where, f"duplicate index {index}", line=line)
        seen.add(index)
        question = row.get("question")
        if question is None:
            raise DataError(where, "row has no question", line=line)
        options = prompt_options(row)
        if len(options) < 2:
            raise DataError(where, f"question {index} has fewer than two options", line=line)
        answer = row.get("answer")
        if answer is not None and answer not in OPTION_LETTERS:
            raise DataError(where, f"answer {answer!r} is not one of A-D", line=line)
        kept = {k: v for k, v in row.items() if k not in _DROP_FROM_ROW}
        kept["index"] = index  # type: ignore[assignment]
        meta = {
            "index": index,
            "group": index % CIRCULAR_STRIDE,
            "round": index // CIRCULAR_STRIDE,
            "category": _column(row, "category"),
            "l2_category": _column(row, "l2-category"),
            "split": row.get("split"),
            "hint": row.get("hint"),
            "question_raw": question,
            "options": options,
            "option_char": list(OPTION_LETTERS[: len(options)]),
            "choices": present_choices(row),
            "row": kept,
            "lang": lang,
        }
        samples.append(Sample(
            question_id=index,
            question=build_question(row.get("hint"), question, options, lang),
            image=image_of(row, line),
            target=answer,
            meta=meta,
        ))
    return samples


def read_mmbench_tsv(path: str | Path, lang: str) -> list[Sample]:
    """Parse one OpenCompass MMBench TSV with the official reader (pandas, default NA strings)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        frame = pd.read_csv(path, sep="\t", dtype=str)
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason})", line=_first_non_utf8_line(path)) from None
    except (pd.errors.ParserError, ValueError) as exc:
        # pandas names the physical line in its message ("Expected 14 fields in line 5, saw 16").
        found = re.search(r"\bline (\d+)", str(exc))
        raise DataError(path, f"not a readable MMBench TSV: {str(exc).strip()}",
                        line=int(found.group(1)) if found else None) from None
    missing = [c for c in ("index", "question", "A", "B", "image") if c not in frame.columns]
    if missing:
        raise DataError(path, f"missing column(s) {', '.join(missing)}", line=1)
    columns = list(frame.columns)
    rows: list[tuple[int, dict[str, str | None]]] = []
    for i, values in enumerate(frame.itertuples(index=False, name=None)):
        # pandas gives NaN for NA cells; line = row + 2 (header is line 1), exact unless a
        # quoted cell spans several lines.
        rows.append((i + 2, {c: pandas_cell(v) if not isinstance(v, str) else v for c, v in zip(columns, values)}))
    by_index: dict[int, str | None] = {}
    for _, row in rows:
        try:
            by_index[int(str(row["index"]).strip())] = row.get("image")
        except (TypeError, ValueError):
            pass

    def image_of(row: Mapping[str, str | None], line: int) -> bytes:
        return _decode_image(row.get("image"), by_index, path, line)

    return _make_samples(rows, lang, path, image_of)


def _first_non_utf8_line(path: Path) -> int | None:
    """1-based number of the first line that is not UTF-8 (pandas reports only a byte offset)."""
    try:
        for _ in iter_text_lines(path):
            pass
    except DataError as exc:
        return exc.line
    return None


def _find_file(data_root: Path, task: str) -> Path:
    candidates = [Path(data_root) / rel for rel in DEFAULT_FILES[task]]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DataError(candidates[0], "file not found")


def load_mmbench_local(data_root: Path, *, file: str | Path | None = None, **_: Any) -> list[Sample]:
    """English dev set (``mmbench/mmbench_dev_20230712.tsv``, the file LLaVA/AlignGPT used)."""
    return read_mmbench_tsv(file or _find_file(Path(data_root), "mmbench"), "en")


def load_mmbench_cn_local(data_root: Path, *, file: str | Path | None = None, **_: Any) -> list[Sample]:
    """Chinese dev set (``mmbench/mmbench_dev_cn_20231003.tsv``), suffix "请直接回答选项字母。"."""
    return read_mmbench_tsv(file or _find_file(Path(data_root), "mmbench_cn"), "cn")


# --------------------------------------------------------------------------- HF (lmms-lab)


def _hf_samples(hf_path: str, config: str | None, split: str, lang: str, cache_dir: str | None) -> list[Sample]:
    ds = load_hf_rows(hf_path, config, split, cache_dir)
    where = f"{hf_path}[{config}/{split}]"
    rows: list[tuple[int, dict[str, str | None]]] = []
    images: dict[int, Any] = {}
    for i, record in enumerate(ds, start=1):  # "line" = 1-based row number in the split
        row = {k: pandas_cell(v) for k, v in record.items() if k != "image"}
        rows.append((i, row))
        images[i] = record.get("image")

    def image_of(_row: Mapping[str, str | None], line: int) -> bytes:
        data = image_bytes(images[line], where, line)
        if data is None:
            raise DataError(where, "row has no image", line=line)
        return data

    return _make_samples(rows, lang, Path(where), image_of)


def load_mmbench_hf(hf_path: str = "lmms-lab/MMBench", *, config: str | None = "en", split: str = "dev",
                    cache_dir: str | None = None, **_: Any) -> list[Sample]:
    """lmms-lab/MMBench ``en``/``dev`` (the 20231003 release; ``hf_path="lmms-lab/MMBench_EN",
    config=None`` is the 20230712 file LLaVA used). Questions are built as for the TSV."""
    return _hf_samples(hf_path, config, split, "en", cache_dir)


def load_mmbench_cn_hf(hf_path: str = "lmms-lab/MMBench", *, config: str | None = "cn", split: str = "dev",
                       cache_dir: str | None = None, **_: Any) -> list[Sample]:
    """lmms-lab/MMBench ``cn``/``dev`` (20231003, the file LLaVA/AlignGPT used for MMBench-CN)."""
    return _hf_samples(hf_path, config, split, "cn", cache_dir)
