"""Published numbers for AlignGPT and LLaVA-1.5, to print next to our own runs.

Values are in the units the papers print (percent; MME = perception score out of 2000).  Keys
are our task names (as listed in docs/protocol/README.md); the published VQAv2 number is
test-dev and VizWiz is test (both server-scored), so they sit under ``vqav2`` / ``vizwiz`` even
though local runs report ``vqav2_val`` / ``vizwiz_val``.  Each row says where it comes from;
per-task caveats are in ``notes``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

ALIGNGPT_CITATION = "Zhao et al., AlignGPT, arXiv:2405.14129"
LLAVA15_CITATION = "Liu et al., Improved Baselines with Visual Instruction Tuning (LLaVA-1.5), arXiv:2310.03744"



def _published_order() -> tuple[str, ...]:
    """The ``literature`` keys of the built-in benchmarks in paper column order: the order of
    the paper's combined 12-benchmark listing (AlignGPT README), which the rows below follow.
    Only built-in task folders carry published numbers here."""
    from ..harness.task_registry import ordered_specs

    return tuple(s.literature for s in ordered_specs() if s.literature and s.package.startswith("aligngpt.tasks."))


TASK_ORDER = _published_order()


@dataclass(frozen=True)
class LiteratureRow:
    """One published result row."""

    key: str
    label: str
    metrics: Mapping[str, float]
    citation: str
    source: str
    """Table/file the numbers were read from."""
    llm: str = ""
    resolution: int | None = None
    notes: Mapping[str, str] = field(default_factory=dict)
    """Per-task caveats (e.g. a different split or metric definition)."""
    extra: Mapping[str, float] = field(default_factory=dict)
    """Published numbers that do not match a task column (e.g. SEED all-dimension)."""


def _row(key: str, label: str, values: tuple, tasks: tuple[str, ...], **kw) -> LiteratureRow:
    metrics = {t: float(v) for t, v in zip(tasks, values, strict=True) if v is not None}
    return LiteratureRow(key=key, label=label, metrics=metrics, **kw)


_SEED_SHAREGPT4V = {"seed_image": "SEED-I baseline taken from ShareGPT4V, as the AlignGPT paper states"}

# Main results: AlignGPT paper (Zhao et al., 2024), v2 Table 2 (academic VQA) and Table 1
# (instruction following), checked against the table images on the project page and the
# AlignGPT README (the README repeats the AlignGPT rows exactly).
# LLaVA-1.5 rows are the baselines printed in those same AlignGPT tables (cited to LLaVA-1.5).
MAIN_ROWS: tuple[LiteratureRow, ...] = (
    _row("aligngpt-7b", "AlignGPT-7B",
         (79.1, 62.9, 54.2, 68.5, 58.4, 86.0, 1527.4, 67.3, 59.9, 66.5, 68.4, 30.8), TASK_ORDER,
         citation=ALIGNGPT_CITATION, source="AlignGPT paper v2 Tables 1-2; AlignGPT README",
         llm="Vicuna-7B", resolution=336),
    _row("aligngpt-13b", "AlignGPT-13B",
         (80.0, 63.6, 56.4, 70.3, 60.2, 86.2, 1572.0, 69.5, 63.7, 67.8, 75.2, 35.6), TASK_ORDER,
         citation=ALIGNGPT_CITATION, source="AlignGPT paper v2 Tables 1-2; AlignGPT README",
         llm="Vicuna-13B", resolution=336),
    _row("llava-1.5-7b", "LLaVA-1.5-7B",
         (78.5, 62.0, 50.0, 66.8, 58.2, 85.9, 1510.7, 64.3, 58.3, 66.2, 63.4, 30.5), TASK_ORDER,
         citation=LLAVA15_CITATION, source="baseline rows of AlignGPT paper v2 Tables 1-2",
         llm="Vicuna-7B", resolution=336, notes=_SEED_SHAREGPT4V),
    _row("llava-1.5-13b", "LLaVA-1.5-13B",
         (80.0, 63.3, 53.6, 71.6, 61.3, 85.9, 1531.3, 67.7, 63.6, 68.2, 70.7, 35.4), TASK_ORDER,
         citation=LLAVA15_CITATION, source="baseline rows of AlignGPT paper v2 Tables 1-2",
         llm="Vicuna-13B", resolution=336, notes=_SEED_SHAREGPT4V),
)

# LLaVA's own MODEL_ZOO numbers (LLaVA repo docs/MODEL_ZOO.md; also listed in
# docs/protocol/README.md, "Published numbers"). They differ from the AlignGPT tables on LLaVA-W
# and MM-Vet (later re-judged), and their SEED is the all-dimension score (image + video), so it
# is kept in ``extra`` rather than in the seed_image column.
_ZOO_NOTES = {"llava_bench": "LLaVA MODEL_ZOO value (the AlignGPT table prints an older one)",
              "mmvet": "LLaVA MODEL_ZOO value (the AlignGPT table prints an older one)"}
MODEL_ZOO_ROWS: tuple[LiteratureRow, ...] = (
    _row("llava-1.5-7b-zoo", "LLaVA-1.5-7B (model zoo)",
         (78.5, 62.0, 50.0, 66.8, 58.2, 85.9, 1510.7, 64.3, 58.3, None, 65.4, 31.1), TASK_ORDER,
         citation=LLAVA15_CITATION, source="LLaVA docs/MODEL_ZOO.md", llm="Vicuna-7B", resolution=336,
         notes=_ZOO_NOTES, extra={"seed_all": 58.6}),
    _row("llava-1.5-13b-zoo", "LLaVA-1.5-13B (model zoo)",
         (80.0, 63.3, 53.6, 71.6, 61.3, 85.9, 1531.3, 67.7, 63.6, None, 72.5, 36.1), TASK_ORDER,
         citation=LLAVA15_CITATION, source="LLaVA docs/MODEL_ZOO.md", llm="Vicuna-13B", resolution=336,
         notes=_ZOO_NOTES, extra={"seed_all": 61.6}),
)

#: Columns of the paper's ablation Tables 3 and 4 (all AlignGPT-7B).
ABLATION_TASKS = ("vqav2", "gqa", "vizwiz", "scienceqa_img", "textvqa", "pope", "mme", "mmbench", "seed_image")

# AlignGPT paper (Zhao et al., 2024), v2 Table 3 (number of alignment levels N; both stages
# re-run per N).
LEVELS_ROWS: tuple[LiteratureRow, ...] = tuple(
    _row(f"aligngpt-7b-n{n}", f"AlignGPT-7B (N={n})", vals, ABLATION_TASKS, citation=ALIGNGPT_CITATION,
         source="AlignGPT paper v2 Table 3", llm="Vicuna-7B", resolution=336)
    for n, vals in (
        (4, (79.0, 62.9, 52.3, 68.7, 58.3, 86.2, 1463.8, 67.2, 66.5)),
        (6, (79.0, 62.7, 51.2, 68.9, 58.3, 85.8, 1436.3, 67.3, 66.2)),
        (8, (79.1, 62.9, 54.2, 68.5, 58.4, 86.0, 1527.4, 67.3, 66.5)),
        (10, (79.1, 62.6, 53.0, 67.8, 58.4, 86.2, 1481.4, 66.4, 66.7)),
    )
)

# AlignGPT paper (Zhao et al., 2024), v2 Table 4 (local vs global alignment; each variant
# trained that way). Our align_mode names: (a) local, (b) global, (c) average,
# (d) gated (the full model).
ALIGNMENT_ROWS: tuple[LiteratureRow, ...] = tuple(
    _row(f"aligngpt-7b-{mode}", f"AlignGPT-7B ({tag} {mode})", vals, ABLATION_TASKS, citation=ALIGNGPT_CITATION,
         source="AlignGPT paper v2 Table 4", llm="Vicuna-7B", resolution=336)
    for tag, mode, vals in (
        ("(a)", "local", (79.1, 62.7, 53.3, 67.9, 58.6, 85.9, 1467.1, 66.9, 66.3)),
        ("(b)", "global", (79.1, 62.9, 52.6, 68.3, 58.4, 85.9, 1502.9, 66.3, 66.2)),
        ("(c)", "average", (79.0, 62.8, 52.5, 68.6, 58.4, 85.6, 1492.5, 67.0, 66.0)),
        ("(d)", "gated", (79.1, 62.9, 54.2, 68.5, 58.4, 86.0, 1527.4, 67.3, 66.5)),
    )
)

# AlignGPT paper (Zhao et al., 2024), v2 Table 5 (input resolution; the family code suggests
# S2 multi-scale features).
_RES_TASKS = ("vqav2", "gqa", "scienceqa_img", "textvqa", "pope", "mmbench", "seed_image")
RESOLUTION_ROWS: tuple[LiteratureRow, ...] = tuple(
    _row(f"aligngpt-7b-{res}px", f"AlignGPT-7B ({res}px)", vals, _RES_TASKS, citation=ALIGNGPT_CITATION,
         source="AlignGPT paper v2 Table 5", llm="Vicuna-7B", resolution=res)
    for res, vals in (
        (336, (79.1, 62.9, 68.5, 58.4, 86.0, 67.3, 66.5)),
        (672, (79.7, 63.3, 68.3, 60.3, 86.8, 67.2, 66.5)),
        (1008, (79.8, 63.4, 68.2, 60.3, 86.8, 67.2, 66.6)),
    )
)

# AlignGPT paper (Zhao et al., 2024), v2 Table 6 (different LLMs).
_LLM_TASKS = ("vqav2", "gqa", "scienceqa_img", "mme", "mmbench", "mmbench_cn", "seed_image")
LLM_ROWS: tuple[LiteratureRow, ...] = tuple(
    _row(f"aligngpt-{slug}", f"AlignGPT ({llm})", vals, _LLM_TASKS, citation=ALIGNGPT_CITATION,
         source="AlignGPT paper v2 Table 6", llm=llm, resolution=336)
    for slug, llm, vals in (
        ("llama2-7b-chat", "LLaMA2-7B-Chat", (79.1, 62.9, 65.9, 1500.8, 66.6, 57.9, 66.4)),
        ("vicuna-v1.5-7b", "Vicuna-v1.5-7B", (79.1, 62.9, 68.5, 1527.4, 67.3, 59.9, 66.5)),
        ("llama3-8b-base", "LLaMA3-8B-Base", (79.6, 63.1, 70.4, 1539.7, 72.0, 67.7, 68.2)),
    )
)

# AlignGPT paper (Zhao et al., 2024), v2 Fig. 5 radar chart (randomly initialised alignment
# table). The chart prints its values without benchmark labels next to them: the assignment to
# benchmarks follows the order in which they appear, and the MMBench and MMBench-CN readings
# are uncertain.
_RANDOM_TASKS = ("vqav2", "gqa", "vizwiz", "scienceqa_img", "textvqa", "pope", "mme", "mmbench",
                 "mmbench_cn", "seed_image")
RANDOM_TABLE_ROWS: tuple[LiteratureRow, ...] = (
    _row("aligngpt-7b-random", "AlignGPT-7B (random table)",
         (79.0, 62.6, 49.1, 68.2, 58.2, 85.7, 1448.1, 65.5, 59.4, 66.4), _RANDOM_TASKS,
         citation=ALIGNGPT_CITATION, source="AlignGPT paper v2 Fig. 5 (radar chart; values read from text)",
         llm="Vicuna-7B", resolution=336,
         notes={"mmbench": "uncertain reading of the radar chart",
                "mmbench_cn": "uncertain reading of the radar chart"}),
)

ALL_ROWS: tuple[LiteratureRow, ...] = (MAIN_ROWS + MODEL_ZOO_ROWS + LEVELS_ROWS + ALIGNMENT_ROWS
                                       + RESOLUTION_ROWS + LLM_ROWS + RANDOM_TABLE_ROWS)
_BY_KEY = {r.key: r for r in ALL_ROWS}
if len(_BY_KEY) != len(ALL_ROWS):  # pragma: no cover - guards the data above
    raise RuntimeError("duplicate literature row keys")


def literature_row(key: str) -> LiteratureRow:
    """Look a published row up by key (e.g. ``"llava-1.5-7b"``)."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"unknown literature row {key!r}; known: {', '.join(_BY_KEY)}") from None


def literature_keys() -> list[str]:
    return list(_BY_KEY)
