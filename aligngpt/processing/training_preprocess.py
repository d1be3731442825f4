"""Training sequences and label masks, as the reference preprocessing builds them.

``plain`` (stage 1): ``<image>`` + caption + ``\\n``; the BOS and image placeholder are masked.
``v1`` (stage 2, vicuna_v1 conversations): everything but the assistant answers (and their
``</s>``) is masked, round by round, by re-tokenising each round; a length mismatch masks the
whole sample (reference ``preprocess_v1``, LLaVA at 4a77fb4, without the later legacy-tokenizer
adjustment).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from ..constants import DEFAULT_IMAGE_TOKEN, IGNORE_INDEX
from .conversation import get_template
from .tokenizer import LlamaSPTokenizer

log = logging.getLogger(__name__)

ROLE_MAP = {"human": 0, "user": 0, "gpt": 1, "assistant": 1}


@dataclass
class TrainingExample:
    input_ids: list[int]
    labels: list[int]


def move_image_token_first(conversation: list[dict]) -> list[dict]:
    """``preprocess_multimodal``: an ``<image>`` anywhere in a turn moves to its front + newline."""
    out = []
    for turn in conversation:
        value = turn["value"]
        if DEFAULT_IMAGE_TOKEN in value:
            value = value.replace(DEFAULT_IMAGE_TOKEN, "").strip()
            value = (DEFAULT_IMAGE_TOKEN + "\n" + value).strip()
        out.append({**turn, "value": value})
    return out


def preprocess_plain(conversation: list[dict], tokenizer: LlamaSPTokenizer, sep: str = "\n") -> TrainingExample:
    if len(conversation) != 2 or DEFAULT_IMAGE_TOKEN not in conversation[0]["value"]:
        raise ValueError("plain (pretraining) samples need exactly a human <image> turn and a caption turn")
    text = DEFAULT_IMAGE_TOKEN + conversation[1]["value"] + sep
    ids = tokenizer.tokenize_with_images(text)
    n_prompt = len(tokenizer.tokenize_with_images(DEFAULT_IMAGE_TOKEN))
    labels = [IGNORE_INDEX] * n_prompt + ids[n_prompt:]
    return TrainingExample(ids, labels)


def _tokenize(tokenizer: LlamaSPTokenizer, text: str, has_image: bool) -> list[int]:
    return tokenizer.tokenize_with_images(text) if has_image else tokenizer.encode(text)


def preprocess_conversation(
    conversation: list[dict], tokenizer: LlamaSPTokenizer, template: str = "vicuna_v1", has_image: bool = True
) -> TrainingExample:
    tpl = get_template(template)
    if tpl.style != "two":
        raise ValueError(f"conversation masking is implemented for separator style TWO, not {tpl.name!r}")
    turns = list(conversation)
    if turns and ROLE_MAP.get(turns[0]["from"]) != 0:
        turns = turns[1:]  # the reference skips a leading assistant turn
    messages = []
    for i, turn in enumerate(turns):
        role = ROLE_MAP.get(turn["from"])
        if role is None or role != i % 2:
            raise ValueError(f"turn {i}: expected alternating human/gpt turns, got {turn['from']!r}")
        messages.append((tpl.roles[role], turn["value"]))
    prompt = tpl.render(messages)
    ids = _tokenize(tokenizer, prompt, has_image)
    labels = list(ids)
    sep = tpl.sep + tpl.roles[1] + ": "
    total = sum(1 for t in ids if t != tokenizer.pad_token_id)
    cur = 1
    labels[:cur] = [IGNORE_INDEX] * cur
    for chunk in prompt.split(tpl.sep2):
        if chunk == "":
            break
        parts = chunk.split(sep)
        if len(parts) != 2:
            break
        parts[0] += sep
        round_len = len(_tokenize(tokenizer, chunk, has_image))
        instruction_len = len(_tokenize(tokenizer, parts[0], has_image)) - 2
        labels[cur : cur + instruction_len] = [IGNORE_INDEX] * len(labels[cur : cur + instruction_len])
        cur += round_len
    labels[cur:] = [IGNORE_INDEX] * len(labels[cur:])
    if cur != total:
        log.warning("tokenization mismatch: %d vs %d; the sample is ignored (reference behaviour)", cur, total)
        labels = [IGNORE_INDEX] * len(labels)
    return TrainingExample(ids, labels)


def preprocess_sample(
    conversation: list[dict], tokenizer: LlamaSPTokenizer, template: str, has_image: bool
) -> TrainingExample:
    if has_image:
        conversation = move_image_token_first(conversation)
    if get_template(template).style == "plain":
        return preprocess_plain(conversation, tokenizer)
    return preprocess_conversation(conversation, tokenizer, template, has_image)


def collate(examples: list[TrainingExample], pad_token_id: int, max_length: int | None = None):
    """Right-pad ids with the pad id and labels with IGNORE; mask = ids != pad (reference collator)."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    if max_length is not None:
        width = min(width, max_length)
    ids = torch.full((len(examples), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    for i, e in enumerate(examples):
        n = min(len(e.input_ids), width)
        ids[i, :n] = torch.tensor(e.input_ids[:n])
        labels[i, :n] = torch.tensor(e.labels[:n])
    return ids, labels, ids.ne(pad_token_id).long()
