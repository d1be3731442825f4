"""Text drawn from the toy training data: what the tokenizers and the stand-in base LM learn from.

Only the *training* files are read (the 558K-format caption pairs and the mix665k-format
instruction data written by :func:`aligngpt.toy.generate_toy_data`), never the benchmark
files, so no evaluation text leaks into the vocabulary or the language model.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from aligngpt.constants import DEFAULT_IMAGE_TOKEN
from aligngpt.processing.conversation import get_template
from aligngpt.processing.training_preprocess import TrainingExample, preprocess_sample
from aligngpt.toy.training_data import INSTRUCT_FILE, PRETRAIN_FILE

PRETRAIN_JSON = Path("LLaVA-Pretrain") / PRETRAIN_FILE
INSTRUCT_JSON = Path(INSTRUCT_FILE)


def load_json(path: Path) -> list[dict]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def strip_image(text: str) -> str:
    """The turn text without the ``<image>`` placeholder (and the newline that follows it)."""
    return text.replace(DEFAULT_IMAGE_TOKEN + "\n", "").replace(DEFAULT_IMAGE_TOKEN, "").strip()


def captions(data_dir: Path) -> list[str]:
    """Every caption of the pretraining pairs, in file order."""
    return [rec["conversations"][1]["value"] for rec in load_json(Path(data_dir) / PRETRAIN_JSON)]


def turns(data_dir: Path) -> list[str]:
    """Every human and assistant turn of the instruction data, in file order, image tag removed."""
    out = []
    for rec in load_json(Path(data_dir) / INSTRUCT_JSON):
        for turn in rec["conversations"]:
            out.append(strip_image(turn["value"]))
    return out


def blind_conversations(data_dir: Path) -> list[list[dict]]:
    """The instruction records as text-only conversations (the ``<image>`` tag removed).

    Visual questions without their picture teach only the answer formats and the priors;
    the text-only records (shape knowledge, translations, sums) are kept whole.
    """
    out = []
    for rec in load_json(Path(data_dir) / INSTRUCT_JSON):
        out.append([{"from": t["from"], "value": strip_image(t["value"])} for t in rec["conversations"]])
    return out


def described_conversations(seed: int, n: int, stream: str = "described",
                            recipes: tuple[str, ...] | None = None) -> list[list[dict]]:
    """``n`` instruction-style conversations in which the image is replaced by a full description.

    Each chat comes from one of the instruction mix's own recipes (same question families,
    wordings, suffixes and answer formats, English and Chinese multiple choice included), drawn
    from the toy world's ``base_lm`` stream; the ``<image>`` is replaced by the scene's detailed
    description (or "The photo is too blurry to see anything." for a blurred one), so every
    answer can be read off the text. This is the reading-comprehension side of an LLM such as
    Vicuna, which the tiny stand-in does not have otherwise: find the fact the question asks
    about in the context, and answer in the requested format (a word, yes/no, an option letter).
    Recipes whose picture is not a scene (text cards, knowledge images) are skipped. ``stream``
    names the random stream, so drills and their held-out checks draw chats the text never holds;
    ``recipes`` keeps only those instruction recipes (with their relative weights).
    """
    import numpy as np

    from aligngpt.toy import text as T
    from aligngpt.toy.training_data import RECIPES
    from aligngpt.toy.world import Scene, rng_for

    rng = rng_for(seed, "base_lm", stream)
    names = [k for k in RECIPES if recipes is None or k in recipes]
    if not names:
        raise ValueError(f"no instruction recipe among {recipes!r} (known: {', '.join(RECIPES)})")
    weights = np.asarray([RECIPES[k][1] for k in names], dtype=float)
    weights = weights / weights.sum()
    docs: list[list[dict]] = []
    while len(docs) < n:
        kind = names[int(rng.choice(len(names), p=weights))]
        made = RECIPES[kind][0](rng, 48)
        if made is None or not made[1] or not isinstance(made[0], Scene):
            continue
        scene, conv = made
        if scene.blur:
            context = "The photo is too blurry to see anything."
        elif rng.random() < 0.7:
            context = T.detailed_description(scene)
        else:
            context = T.caption_full(scene, rng)
        turns = []
        for k, (q, a) in enumerate(conv):
            turns.append({"from": "human", "value": (context + "\n" + q) if k == 0 else q})
            turns.append({"from": "gpt", "value": a})
        docs.append(turns)
    return docs


def chat_example(turns: list[dict], tokenizer, template: str = "vicuna_v1") -> TrainingExample:
    """A text-only conversation masked as stage 2 masks it: only the answers (and ``</s>``) count."""
    return preprocess_sample(turns, tokenizer, template, has_image=False)


def tokenizer_sentences(data_dir: Path) -> Iterator[str]:
    """Lines for sentencepiece training: template strings, captions and turns split on newlines.

    The evaluation template's system prompt and role names are counted once per instruction
    record, as often as training sequences contain them, so they become whole-word pieces.
    Newlines are left to byte fallback (``<0x0A>``), as in LLaMA's tokenizer.
    """
    tpl = get_template("vicuna_v1")
    for _ in range(len(load_json(Path(data_dir) / INSTRUCT_JSON))):
        yield tpl.system
        yield f"{tpl.roles[0]}: {tpl.roles[1]}:"
    for text in captions(data_dir) + turns(data_dir):
        for line in text.split("\n"):
            if line.strip():
                yield line
