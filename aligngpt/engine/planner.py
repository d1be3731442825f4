"""Batches sized by tokens: how long each question's LM sequence is, and which questions share a batch.

A 7B model's KV cache costs about half a megabyte per token, so on a GPU the number of questions
that fit depends on their lengths, not on a count. Questions are ordered longest first (the first
batch shows memory trouble early, equal lengths batch together) and a batch grows while its
padded size, rows x (longest row + answer budget), stays inside the token budget. Without a
budget the batches are fixed counts in the same order, which is what the CPU path uses.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..constants import IMAGE_TOKEN_INDEX

MAX_GPU_BATCH = 256
GPU_RAMP = 32  # rows of the first token-budget batch (then 64, 128, ...)


def sequence_length(token_ids: Sequence[int], num_image_tokens: int, max_length: int | None = None) -> int:
    """Length of the sequence the LM sees: each ``<image>`` placeholder becomes the image's
    tokens, and an image row gains the alignment slot (an estimate of one token when the mode
    has none, which is harmless for sizing). Multimodal rows are cut as ``plan_layout`` cuts them."""
    images = sum(1 for t in token_ids if t == IMAGE_TOKEN_INDEX)
    length = len(token_ids) - images + images * num_image_tokens
    if images and max_length is not None:
        length = min(length, max_length - 1)
    return length + (1 if images else 0)


def order_longest_first(lengths: Sequence[int]) -> list[int]:
    return sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))


def plan_batches(lengths: Sequence[int], max_batch: int, token_budget: int | None = None,
                 reserve: int = 0, ramp: int | None = None) -> list[list[int]]:
    """Indices grouped into batches, longest first. With ``token_budget`` a batch holds at most
    ``token_budget // (its longest row + reserve)`` rows (and never more than ``max_batch``);
    a row longer than the budget still gets a batch of its own. ``ramp``: the first batch holds
    at most that many rows and each next one at most twice the last, so the device starts after
    a few images are decoded instead of a full batch of them (the others decode meanwhile)."""
    order = order_longest_first(lengths)
    max_batch = max(1, int(max_batch))
    batches: list[list[int]] = []
    start = 0
    while start < len(order):
        size = max_batch
        if ramp is not None:
            size = min(size, max(1, int(ramp)) << len(batches))
        if token_budget is not None:
            size = min(size, max(1, int(token_budget) // max(1, lengths[order[start]] + reserve)))
        batches.append(order[start : start + size])
        start += size
    return batches


def kv_bytes_per_token(config, dtype: torch.dtype) -> int:
    """Keys and values of one token over every decoder layer."""
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    heads = text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    return 2 * text.num_hidden_layers * kv_heads * head_dim * torch.tensor([], dtype=dtype).element_size()


def prefill_bytes_per_token(config, dtype: torch.dtype) -> int:
    """Transient activations of one token in one decoder layer at prefill (hidden-state copies,
    q/k/v, the MLP's gate, up and product): freed layer by layer, but all tokens at once."""
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    size = torch.tensor([], dtype=dtype).element_size()
    return size * (8 * text.hidden_size + 3 * text.intermediate_size)


def token_budget_for_memory(config, dtype: torch.dtype, free_bytes: int, headroom: float = 0.8) -> int:
    """How many padded tokens (prompt + answer) a batch may hold in ``free_bytes`` of device memory."""
    per_token = kv_bytes_per_token(config, dtype) + prefill_bytes_per_token(config, dtype)
    return max(1, int(headroom * free_bytes) // per_token)
