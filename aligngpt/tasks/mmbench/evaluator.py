"""MMBench / MMBench-CN dev scoring: OpenCompass ``tools/eval_mmbench.py`` (circular evaluation).

Algorithm (open-compass/opencompass @ 6ca2be66, ``tools/eval_mmbench.py``), reproduced here:

1. Rows are sorted by ``index``; each *main* row (index < 1e6) forms a question together with
   every row whose ``index % 1e6`` equals it (its circular copies, option order rotated).
2. ``can_infer`` on every row's prediction: a bare letter token, then letter patterns
   (``A.``, ``(A)``, ``:A`` ...), then a unique option-text substring. If any extracted letter
   differs from that row's answer, the question scores 0 at once.
3. Rows still unresolved go, in index order, to the LLM matcher (``gpt-3.5-turbo-0613`` with
   the fixed teddy-bear prompt, up to 3 tries, reply parsed with ``can_infer``); the first wrong
   one makes the question 0 and the rest are not asked.
4. A question scores 1 only if every row is right. Reported: the mean over main questions,
   per ``category`` and per ``l2-category``.

Deliberate differences, each documented where it happens:

* Without a judge, unresolved rows count as wrong and are reported in ``unresolved_rows``.
* With a judge, a row whose judgement fails (transport error, or 3 unparseable replies) is
  *missing*: the official code then draws a random letter (``random.seed(2680)``); we never
  guess. A question with a missing row and no wrong row has no score; it is left out of the
  means and counted in ``missing``.

Quirks kept by default (see ``xlsx_roundtrip``): the official scorer reads predictions (and the
question and option cells) back from the xlsx that LLaVA's converter wrote, so a text that
pandas reads as NA ("", "None", "NA", "null", ...) or that openpyxl stores as a formula (starts
with "=") becomes NaN: a prediction is then scored as "nan", an option disappears.
"""
from __future__ import annotations

import io
import string
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from aligngpt.data.base import Sample
from .loader import CIRCULAR_STRIDE, OPTION_LETTERS, PANDAS_NA_STRINGS
from aligngpt.errors import DataError
from aligngpt.io import atomic_write_bytes
from aligngpt.judge import Judge, JudgedScoreResult, judge_metrics

from aligngpt.evaluators.base import Evaluator

# OpenCompass tools/eval_mmbench.py, build_prompt(): the answer-matching prompt, verbatim
# (including "Your should", the trailing spaces, and the "?" appended to the question).
MATCH_PROMPT_TEMPLATE = (
    "You are an AI assistant who will help me to match an answer "
    "with several options of a single-choice question. "
    "You are provided with a question, several options, and an answer, "
    "and you need to find which option is most similar to the answer. "
    "If the meaning of all options are significantly different "
    "from the answer, output E. "
    "Your should output a single uppercase character in A, B, C, D "
    "(if they are valid options), and E. \n"
    "Example 1: \n"
    "Question: What is the main object in image?\nOptions: A. teddy bear "
    "B. rabbit C. cat D. dog\nAnswer: a cute teddy bear\nYour output: A\n"
    "Example 2: \n"
    "Question: What is the main object in image?\nOptions: A. teddy bear "
    "B. rabbit C. cat D. dog\nAnswer: Spider\nYour output: E\n"
    "Example 3: \n"
    "Question: {}?\nOptions: {}\nAnswer: {}\nYour output: "
)
# OpenCompass tools/eval_mmbench.py, build_option_str(): header of the option list.
OPTION_STR_HEADER = "There are several options: \n"
# OpenCompass tools/eval_mmbench.py, can_infer_option(): (prefix, suffix) letter patterns, in order.
LETTER_PATTERNS = (("", "."), ("", ","), ("", ":"), ("", ")"), ("", ")."), ("(", ")"),
                   ("(", ")."), (":", ""), (":", ","), (":", "."), (":", ")"), (":", ")."))
# OpenCompass' failure sentinel; a text containing it is never parsed as a choice.
API_FAILURE_TEXT = "Failed to obtain answer via API"

# Request parameters of OpenCompass' OpenAI wrapper as eval_mmbench.py uses it
# (opencompass/models/openai_api.py: generate() defaults max_out_len=512, temperature=0.7;
# the body carries n=1 and stop=None). The official judge model is gpt-3.5-turbo-0613.
OFFICIAL_JUDGE_MODEL = "gpt-3.5-turbo-0613"
JUDGE_TEMPERATURE = 0.7
JUDGE_MAX_TOKENS = 512
JUDGE_ATTEMPTS = 3


# --------------------------------------------------------------------------- choice extraction


def can_infer_option(answer: str, num_choice: int = 5) -> str | None:
    """Letter from the answer's tokens (OpenCompass ``can_infer_option``; None = not found).

    (a) exactly one of A..E appears as a whole token -> it, unless "A" is a token and there are
    more than 3 tokens ("A" may be the article); (b) the first pattern of ``LETTER_PATTERNS``
    matched by exactly one letter -> that letter.
    """
    choices = string.ascii_uppercase[:num_choice]
    if API_FAILURE_TEXT in answer:
        return None
    splits = [x.strip() for x in answer.split()]

    def count(prefix: str = "", suffix: str = "") -> int:
        return sum(1 for c in choices if prefix + c + suffix in splits)

    if count() == 1 and not ("A" in splits and len(splits) > 3):
        for ch in choices:
            if ch in splits:
                return ch
    for prefix, suffix in LETTER_PATTERNS:
        if count(prefix, suffix) == 1:
            for ch in choices:
                if prefix + ch + suffix in splits:
                    return ch
    return None


def can_infer_text(answer: str, choices: Mapping[str, str]) -> str | None:
    """The one option whose lower-cased text is a substring of the lower-cased answer."""
    answer = answer.lower()
    cands = [k for k, text in choices.items() if str(text).lower() in answer]
    return cands[0] if len(cands) == 1 else None


def can_infer(answer: str, choices: Mapping[str, str]) -> str | None:
    """OpenCompass ``can_infer``: letter patterns first, then option text."""
    return can_infer_option(answer) or can_infer_text(answer, choices)


def xlsx_reads_as_nan(text: str) -> bool:
    """Whether a text cell written by pandas/openpyxl comes back as NaN from ``pd.read_excel``.

    pandas' default NA strings do; so does a text starting with "=" (longer than one
    character), which openpyxl stores as a formula without a cached value.
    """
    return text in PANDAS_NA_STRINGS or (text.startswith("=") and len(text) > 1)


def xlsx_roundtrip_text(prediction: str) -> str:
    """The prediction as the official scorer sees it after LLaVA's xlsx export and pandas re-read
    (``str(x)`` of the cell, so a NaN cell is the text "nan")."""
    return "nan" if xlsx_reads_as_nan(prediction) else prediction


def build_option_str(options: Sequence[str]) -> str:
    return OPTION_STR_HEADER + "".join(f"{c}. {opt}\n" for c, opt in zip(string.ascii_uppercase, options))


def build_match_prompt(question: str, options: Sequence[str], prediction: str) -> str:
    """The user message the official matcher sends for one unresolved row."""
    return MATCH_PROMPT_TEMPLATE.format(question, build_option_str(options), prediction)


def leading_options(choices: Mapping[str, str]) -> list[str]:
    """OpenCompass ``extract_options``: option texts from A on, up to the first missing letter."""
    out: list[str] = []
    for letter in OPTION_LETTERS:
        if letter not in choices:
            break
        out.append(choices[letter])
    return out


# --------------------------------------------------------------------------- evaluator


class MMBenchEvaluator(Evaluator):
    """Circular accuracy on MMBench dev; an optional judge resolves rows the rules cannot.

    ``judge``: a :class:`aligngpt.judge.JudgeClient` (or compatible); None = rules only.
    ``xlsx_roundtrip``: reproduce the official xlsx re-read of predictions (default True).
    ``judge_attempts``/``judge_temperature``/``judge_max_tokens``: the official 3 tries at
    temperature 0.7 with 512 tokens.
    """

    name = "mmbench"
    needs_judge = False

    def __init__(self, judge: Judge | None = None, *, xlsx_roundtrip: bool = True,
                 judge_attempts: int = JUDGE_ATTEMPTS, judge_temperature: float = JUDGE_TEMPERATURE,
                 judge_max_tokens: int = JUDGE_MAX_TOKENS):
        self.judge = judge
        self.xlsx_roundtrip = xlsx_roundtrip
        self.judge_attempts = judge_attempts
        self.judge_temperature = judge_temperature
        self.judge_max_tokens = judge_max_tokens

    # ---- the judge fallback for one row --------------------------------------------------

    def _ask_judge(self, row: dict) -> dict:
        """Up to ``judge_attempts`` replies; the first one ``can_infer`` parses decides."""
        assert self.judge is not None
        prompt = build_match_prompt(row["question_raw"], leading_options(row["choices"]), row["text"])
        last: dict = {"letter": None, "reply": None, "error": None, "served": None}
        for attempt in range(self.judge_attempts):
            reply = self.judge.chat(
                [{"role": "user", "content": prompt}],
                temperature=self.judge_temperature, max_tokens=self.judge_max_tokens,
                n=1, stop=None, salt=attempt or None,
            )
            if not reply.ok:
                last["error"] = reply.error
                continue
            content = (reply.content or "").strip()  # OpenCompass strips the reply
            last.update(reply=content, served=reply.served_model)
            letter = can_infer(content, row["choices"])
            if letter:
                last.update(letter=letter, error=None)
                return last
            last["error"] = f"reply names no single option: {content[:80]!r}"
        return last

    def _judge_group(self, rows: list[dict]) -> None:
        """Official order: unresolved rows one by one; stop at the first wrong answer."""
        for row in rows:
            if row["parsed"] is not None:
                continue
            outcome = self._ask_judge(row)
            row["judged"] = True
            row["judge_reply"] = outcome["reply"]
            row["served"] = outcome["served"]
            if outcome["letter"] is None:
                row["method"] = "missing"
                row["judge_error"] = outcome["error"]
                continue
            row["parsed"] = outcome["letter"]
            row["method"] = "judge"
            if row["parsed"] != row["target"]:
                break

    # ---- scoring ------------------------------------------------------------------------

    def score(self, samples: Sequence[Sample], predictions: Mapping[str, str]) -> JudgedScoreResult:
        rows: dict[int, dict] = {}
        for s in samples:
            if s.target is None:
                raise DataError(None, f"question {s.key} has no answer (test split?): MMBench test is scored by "
                                      "the OpenCompass server; write the submission xlsx instead")
            if s.key not in predictions:
                raise DataError(None, f"no prediction for MMBench question {s.key}")
            raw = predictions[s.key]
            choices = dict(s.meta["choices"])
            question = s.meta["question_raw"]
            text = raw
            if self.xlsx_roundtrip:  # the scorer reads question, options and prediction back from xlsx
                text = xlsx_roundtrip_text(raw)
                question = xlsx_roundtrip_text(question)
                choices = {k: v for k, v in choices.items() if not xlsx_reads_as_nan(v)}
            index = int(s.meta.get("index", s.question_id))
            rows[index] = {
                "index": index, "target": s.target, "raw": raw, "text": text,
                "choices": choices, "question_raw": question,
                "category": s.meta.get("category"), "l2": s.meta.get("l2_category"),
                "parsed": None, "method": None, "judged": False,
            }
        groups: dict[int, list[dict]] = defaultdict(list)
        for index in sorted(rows):
            groups[index % CIRCULAR_STRIDE].append(rows[index])
        mains = [i for i in sorted(rows) if i < CIRCULAR_STRIDE]

        # Stage 1: the rules, on every row.
        for row in rows.values():
            row["parsed"] = can_infer(row["text"], row["choices"])
            row["method"] = "rule" if row["parsed"] else "unresolved"

        def decided_wrong(group: list[dict]) -> bool:
            return any(r["parsed"] is not None and r["parsed"] != r["target"] for r in group)

        # Stage 2: the judge, only for questions the rules left open (official order/short-cut).
        pending = [groups[m] for m in mains
                   if not decided_wrong(groups[m]) and any(r["parsed"] is None for r in groups[m])]
        before = self.judge.stats() if self.judge is not None else None
        if self.judge is not None and pending:
            self.judge.map(self._judge_group, pending)
        if self.judge is not None:
            for m in mains:
                for r in groups[m]:
                    if r["method"] == "unresolved":
                        r["method"] = "not_needed"  # the question was already decided

        # Stage 3: circular hits.
        hits: dict[int, int | None] = {}
        for m in mains:
            group = groups[m]
            if decided_wrong(group):
                hits[m] = 0
            elif any(r["method"] == "missing" for r in group):
                hits[m] = None
            elif any(r["parsed"] is None for r in group):
                hits[m] = 0  # no judge: unresolved rows are wrong
            else:
                hits[m] = 1

        metrics = self._aggregate(mains, groups, hits)
        metrics["unresolved_rows"] = sum(1 for r in rows.values() if r["parsed"] is None)
        n_missing_rows = sum(1 for r in rows.values() if r["method"] == "missing")
        n_missing_questions = sum(1 for m in mains if hits[m] is None)
        if self.judge is not None and before is not None:
            judged = [r for r in rows.values() if r["judged"]]
            metrics["judge"] = judge_metrics(
                self.judge, before, n_judgements=len(judged), n_missing=n_missing_rows,
                served_models=[r.get("served") for r in judged],
            )
            metrics["judge"]["missing_questions"] = n_missing_questions
        per_sample = {str(i): self._row_record(r, hits.get(i % CIRCULAR_STRIDE)) for i, r in rows.items()}
        for i, r in rows.items():
            if i % CIRCULAR_STRIDE not in hits:
                per_sample[str(i)]["orphan"] = True  # a copy whose main row is absent: not scored
        return JudgedScoreResult(metrics=metrics, per_sample=per_sample, n=len(rows), missing=n_missing_questions)

    @staticmethod
    def _row_record(r: dict, hit: int | None) -> dict:
        rec: dict[str, Any] = {
            "target": r["target"],
            "target_text": r["choices"].get(r["target"]),
            "parsed": r["parsed"],
            "method": r["method"],
            "row_correct": (None if r["parsed"] is None and r["method"] in ("missing", "not_needed")
                            else r["parsed"] == r["target"]),
            "score": hit,
            "group": r["index"] % CIRCULAR_STRIDE,
        }
        if r["text"] != r["raw"]:
            rec["prediction_as_scored"] = r["text"]
        if r["judged"]:
            rec["judge_reply"] = r.get("judge_reply")
            if r.get("judge_error"):
                rec["judge_error"] = r["judge_error"]
        return rec

    @staticmethod
    def _aggregate(mains: list[int], groups: Mapping[int, list[dict]], hits: Mapping[int, int | None]) -> dict:
        """Means x100 over questions with a score (official ``report_acc``, split 'full')."""
        def mean(values: list[int]) -> float | None:
            return 100.0 * sum(values) / len(values) if values else None

        scored = [m for m in mains if hits[m] is not None]
        by_cat: dict[str, list[int]] = defaultdict(list)
        by_l2: dict[str, list[int]] = defaultdict(list)
        for m in scored:
            main_row = groups[m][0]  # sorted, so the main row (index m) comes first
            by_cat[main_row["category"] or "uncategorized"].append(hits[m])  # type: ignore[arg-type]
            by_l2[main_row["l2"] or "uncategorized"].append(hits[m])  # type: ignore[arg-type]
        return {
            "circular_accuracy": mean([hits[m] for m in scored]),  # type: ignore[misc]
            "n_questions": len(mains),
            "categories": {k: mean(v) for k, v in sorted(by_cat.items())},
            "l2_categories": {k: mean(v) for k, v in sorted(by_l2.items())},
        }


class MMBenchCNEvaluator(MMBenchEvaluator):
    """MMBench-CN: the same procedure on the CN TSV."""

    name = "mmbench_cn"


# --------------------------------------------------------------------------- submission


def _drop_columns(keep_categories: bool) -> tuple[str, ...]:
    # LLaVA scripts/convert_mmbench_for_submission.py drops these columns; AlignGPT's copy keeps
    # category and l2-category.
    base = ("hint", "source", "image", "comment")
    return base if keep_categories else base + ("category", "l2-category")


def submission_frame(samples: Sequence[Sample], predictions: Mapping[str, str], *, keep_categories: bool = False):
    """The DataFrame LLaVA's converter builds: TSV columns minus hint/category/source/image/
    comment/l2-category, with ``prediction`` inserted as the 7th column (None where unanswered)."""
    import pandas as pd

    columns: list[str] = []
    for s in samples:
        for c in s.meta.get("row", {}):
            if c not in columns:
                columns.append(c)
    frame = pd.DataFrame([s.meta.get("row", {}) for s in samples], columns=columns)
    drop = {d.lower() for d in _drop_columns(keep_categories)}
    frame = frame.drop(columns=[c for c in frame.columns if c.lower() in drop])
    frame.insert(min(6, len(frame.columns)), "prediction", [predictions.get(s.key) for s in samples])
    return frame


def write_submission_xlsx(samples: Sequence[Sample], predictions: Mapping[str, str], path: str | Path, *,
                          keep_categories: bool = False) -> Path:
    """Write the xlsx the MMBench server accepts (openpyxl), atomically.

    Characters that openpyxl refuses (ASCII control characters) are removed from text cells;
    LLaVA's converter would crash on them instead.
    """
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    frame = submission_frame(samples, predictions, keep_categories=keep_categories)
    for col in frame.columns:
        frame[col] = [ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in frame[col]]
    buf = io.BytesIO()
    frame.to_excel(buf, index=False, engine="openpyxl")
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _write_submission(self, samples: Sequence[Sample], predictions: Mapping[str, str], out_dir: Path) -> list[Path]:
    """The xlsx for the MMBench evaluation server (LLaVA converter columns)."""
    return [write_submission_xlsx(samples, predictions, Path(out_dir) / "submission.xlsx")]


MMBenchEvaluator.write_submission = _write_submission
