"""Prompt constants and a small writer shared by the toy benchmark writers.

Files are written the way the official tools wrote them, so byte-level details match the real
files: JSONL lines are ``json.dumps(row)`` with Python's default separators and ASCII escapes
(as LLaVA's conversion scripts produced them).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np
from PIL import Image

from .world import encode_image, format_for_name

# Prompt suffixes inside LLaVA-1.5's question files / added by its drivers.
# Source: haotian-liu/LLaVA docs/Evaluation.md, llava/eval/model_vqa_mmbench.py,
# llava/eval/model_vqa_science.py and playground/data/eval/*/*.jsonl (quoted in the pages of
# docs/protocol/).
SHORT_ANSWER = "\nAnswer the question using a single word or phrase."
MC_ANSWER = "\nAnswer with the option's letter from the given choices directly."
MC_ANSWER_CN = "\n请直接回答选项字母。"
VIZWIZ_SUFFIX = "\nWhen the provided information is insufficient, respond with 'Unanswerable'." + SHORT_ANSWER
MME_YESNO = " Please answer yes or no."
LETTERS = "ABCDEFGH"


class Out:
    """Writes one benchmark's files under ``root`` and counts what it wrote."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.n_images = 0

    def path(self, rel: str) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def text(self, rel: str, text: str) -> None:
        self.path(rel).write_bytes(text.encode("utf-8"))

    def json(self, rel: str, obj: Any, indent: Optional[int] = None) -> None:
        self.text(rel, json.dumps(obj, indent=indent))

    def jsonl(self, rel: str, rows: Iterable[Any]) -> None:
        self.text(rel, "".join(json.dumps(r) + "\n" for r in rows))

    def image(self, rel: str, img: Image.Image) -> None:
        self.path(rel).write_bytes(encode_image(img, format_for_name(rel)))
        self.n_images += 1


def unique_ints(rng: np.random.Generator, n: int, low: int, high: int) -> list[int]:
    """``n`` distinct integers in ``[low, high)`` in random order (ids that look like the real ones)."""
    if high - low < n:
        raise ValueError("id range too small")
    out: list[int] = []
    seen: set[int] = set()
    while len(out) < n:
        for v in rng.integers(low, high, size=2 * (n - len(out))).tolist():
            if v not in seen:
                seen.add(v)
                out.append(v)
                if len(out) == n:
                    break
    return out


def hex_id(rng: np.random.Generator, n_bytes: int = 8) -> str:
    return bytes(rng.integers(0, 256, size=n_bytes, dtype=np.uint8).tolist()).hex()


def short_uuid(rng: np.random.Generator, length: int = 22) -> str:
    """An id in the style of ``shortuuid`` (the ``answer_id`` of LLaVA answer files)."""
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), size=length).tolist())


def mc_block(options: list[str]) -> str:
    """``"\\nA. opt\\nB. opt..."`` as LLaVA's MMBench/SEED/SQA prompts list options."""
    return "".join(f"\n{LETTERS[i]}. {o}" for i, o in enumerate(options))


def majority_rate(answers: list[str]) -> float:
    """Share of questions a constant guess of the most common answer gets right (a blind baseline)."""
    if not answers:
        return 0.0
    counts: dict[str, int] = {}
    for a in answers:
        counts[a] = counts.get(a, 0) + 1
    return max(counts.values()) / len(answers)
