"""Training sequences and label masks, as the reference preprocessing builds them.

``plain`` (stage 1): ``<image>`` + caption + ``\\n``; the BOS and image placeholder are masked.
``v1`` (stage 2, vicuna_v1 conversations): everything but the assistant answers (and their
``</s>``) is masked, round by round, by re-tokenising each round; a length mismatch masks the
whole sample (reference ``preprocess_v1``, LLaVA at 4a77fb4, without the later legacy-tokenizer
adjustment).

``turns`` templates (llama3, qwen2, mistral, phi3, gemma) and ``chat_template`` (the tokenizer's
own template) are masked by character spans instead of re-tokenised rounds: the prompt is
rendered once, the trained spans are each assistant answer plus its end-of-turn marker
(``<|im_end|>``, ``<|eot_id|>``, ``</s>``, ...), and a token is trained iff it starts inside a span
(fast-tokenizer offsets; with a sentencepiece tokenizer the pieces are encoded one by one).
Everything else, BOS, system, user turns, role headers and the whitespace after a marker, is
masked.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from ..constants import DEFAULT_IMAGE_TOKEN, IGNORE_INDEX
from .conversation import CHAT_TEMPLATE, Template, get_template
from .tokenizer import LlamaSPTokenizer, tokenize_with_images

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


def _alternating(conversation: list[dict]) -> list[tuple[int, str]]:
    """(role index, text) turns: human first (a leading assistant turn is skipped), alternating."""
    turns = list(conversation)
    if turns and ROLE_MAP.get(turns[0]["from"]) != 0:
        turns = turns[1:]
    out = []
    for i, turn in enumerate(turns):
        role = ROLE_MAP.get(turn["from"])
        if role is None or role != i % 2:
            raise ValueError(f"turn {i}: expected alternating human/gpt turns, got {turn['from']!r}")
        out.append((role, turn["value"]))
    return out


def _label_spans(text: str, spans: list[tuple[int, int]], tokenizer) -> TrainingExample:
    """Tokenise ``text`` once; tokens starting inside a span keep their ids as labels."""
    ids, offsets = tokenizer.encode_with_offsets(text)
    labels = [
        tok if any(a <= start < b for a, b in spans) and start < end else IGNORE_INDEX
        for tok, (start, end) in zip(ids, offsets)
    ]
    return TrainingExample(ids, labels)


def preprocess_turns(conversation: list[dict], tokenizer, tpl: Template) -> TrainingExample:
    """Masking for the ``turns`` templates: only answers and their end-of-turn markers are trained."""
    messages = [(tpl.roles[role], text) for role, text in _alternating(conversation)]
    pieces = tpl.segments(messages)
    if hasattr(tokenizer, "encode_with_offsets"):
        spans, cursor = [], 0
        for piece, trained in pieces:
            if trained:
                spans.append((cursor, cursor + len(piece)))
            cursor += len(piece)
        return _label_spans("".join(p for p, _ in pieces), spans, tokenizer)
    ids: list[int] = []
    labels: list[int] = []
    for n, (piece, trained) in enumerate(pieces):  # sentencepiece: encode piece by piece
        part = tokenize_with_images(lambda t, add_bos=True: tokenizer.encode(t, add_bos=add_bos and n == 0), piece)
        ids.extend(part)
        labels.extend(part if trained else [IGNORE_INDEX] * len(part))
    return TrainingExample(ids, labels)


def preprocess_chat_template(conversation: list[dict], tokenizer) -> TrainingExample:
    """Masking with the tokenizer's own chat template: each answer's span is found in the render."""
    turns = _alternating(conversation)
    messages = [{"role": ("user", "assistant")[role], "content": text} for role, text in turns]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=False)
    specials = tokenizer.special_strings()
    spans, cursor = [], 0
    for role, content in turns:
        needle = content.strip()
        pos = text.find(needle, cursor)
        if pos < 0:
            raise ValueError(f"the chat template changed a turn's text; cannot find {needle[:40]!r} in its render")
        end = pos + len(needle)
        if role == 1:
            marker = next((s for s in specials if text.startswith(s, end)), "")
            spans.append((pos, end + len(marker)))
        cursor = end
    return _label_spans(text, spans, tokenizer)


def preprocess_sample(
    conversation: list[dict], tokenizer: LlamaSPTokenizer, template: str, has_image: bool
) -> TrainingExample:
    if has_image:
        conversation = move_image_token_first(conversation)
    if template == CHAT_TEMPLATE:
        return preprocess_chat_template(conversation, tokenizer)
    tpl = get_template(template)
    if tpl.style == "plain":
        return preprocess_plain(conversation, tokenizer)
    if tpl.style == "turns":
        return preprocess_turns(conversation, tokenizer, tpl)
    return preprocess_conversation(conversation, tokenizer, template, has_image)


def collate(examples: list[TrainingExample], pad_token_id: int, max_length: int | None = None):
    """Right-pad ids with the pad id and labels with IGNORE; the mask covers each row's own tokens.

    The reference collator's mask is ``ids != pad``; with LLaMA's pad (= unk, which its byte-fallback
    sentencepiece never emits) that is the same mask. Families whose pad is their EOS (Llama-3,
    Mistral without a pad token) need the length-based mask, or a trained EOS would vanish.
    """
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
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        mask[i, : min(len(e.input_ids), width)] = 1
    return ids, labels, mask
