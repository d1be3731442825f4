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


def chat_documents(data_dir: Path, template: str = "vicuna_v1") -> list[str]:
    """Each instruction record as a text-only chat in the evaluation template, ending in ``</s>``.

    This is how Vicuna saw conversations (system prompt, ``USER:``/``ASSISTANT:`` roles); with the
    image tag removed, visual questions teach only the answer format and priors.
    """
    tpl = get_template(template)
    docs = []
    for rec in load_json(Path(data_dir) / INSTRUCT_JSON):
        messages = []
        for i, turn in enumerate(rec["conversations"]):
            messages.append((tpl.roles[i % 2], strip_image(turn["value"])))
        docs.append(tpl.render(messages))
    return docs


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
