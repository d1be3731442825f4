"""Reading LLaVA-format answer files (``question_id``, ``text`` per line) for ``score``.

The default reader is strict (every question answered exactly once, no unknown ids), so a
truncated or mixed-up answer file is refused instead of scored over the wrong questions.
Benchmarks whose official reader tolerates extra rows pass their own row matcher to
:func:`read_answer_rows`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence

from aligngpt.data.base import Sample
from aligngpt.errors import DataError
from aligngpt.io import iter_jsonl


def read_answers(path: str | Path, samples: Sequence[Sample]) -> dict[str, str]:
    """``question_id`` -> ``text`` from an answer JSONL; every question answered exactly once."""
    path = Path(path)
    known = {s.key for s in samples}
    # Official ids shared by several questions (MME) are matched in file order, k-th to k-th.
    shared: dict[str, list[str]] = {}
    for s in samples:
        if "answer_question_id" in s.meta:
            shared.setdefault(str(s.meta["answer_question_id"]), []).append(s.key)
    answers: dict[str, str] = {}
    for lineno, row in iter_jsonl(path):
        if not isinstance(row, dict) or "question_id" not in row or "text" not in row:
            raise DataError(path, "answer rows need 'question_id' and 'text'", line=lineno)
        key = str(row["question_id"])
        if key not in known and key in shared:
            pending = [k for k in shared[key] if k not in answers]
            key = pending[0] if pending else shared[key][-1]
        if key not in known:
            raise DataError(path, f"answer for unknown question id {row['question_id']!r}", line=lineno)
        if key in answers:
            raise DataError(path, f"duplicate answer for question id {row['question_id']!r}", line=lineno)
        if not isinstance(row["text"], str):
            raise DataError(path, f"'text' must be a string for question id {row['question_id']!r}", line=lineno)
        answers[key] = row["text"]
    missing = [s.question_id for s in samples if s.key not in answers]
    if missing:
        raise DataError(path, f"{len(missing)} of {len(samples)} questions have no answer, e.g. {missing[:3]!r}")
    return answers


def read_answer_rows(path: str | Path, samples: Sequence[Sample],
                     match: Callable[[Sequence[Sample], list[dict]], Mapping[str, str]]) -> dict[str, str]:
    """Answers chosen from the file's rows by ``match`` (the benchmark's official reader);
    every question must still get one."""
    rows = []
    for lineno, row in iter_jsonl(path):
        if not isinstance(row, dict) or "question_id" not in row or "text" not in row:
            raise DataError(path, "answer rows need 'question_id' and 'text'", line=lineno)
        rows.append(row)
    answers = dict(match(samples, rows))
    missing = [s.question_id for s in samples if s.key not in answers]
    if missing:
        raise DataError(path, f"{len(missing)} of {len(samples)} questions have no answer, e.g. {missing[:3]!r}")
    return answers
