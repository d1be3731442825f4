"""Which attention the engine's prefill runs: pad-free FlashAttention (varlen) or padded SDPA.

SDPA is the default everywhere (LM, vision tower, decode). Where the ``flash-attn`` package is
importable, the model is on a CUDA device in fp16/bf16 and decoding runs at fixed shapes, the
prefill packs every row into one sequence and runs FlashAttention's varlen kernel over it: no
compute on padding. FlashAttention has no fp32 kernel, so fp32 runs (the exact-score checks)
always take the SDPA prefill.
"""
from __future__ import annotations

import importlib.util

import torch

FLASH = "flash_attention_2"
HALF = (torch.float16, torch.bfloat16)


def flash_attn_importable() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def packed_prefill_attention(device: torch.device, dtype: torch.dtype, decode_mode: str,
                             flash_available: bool | None = None) -> str | None:
    """The attention implementation for a pad-free prefill, or None for the padded SDPA one."""
    if flash_available is None:
        flash_available = flash_attn_importable()
    if not flash_available or device.type != "cuda" or dtype not in HALF or decode_mode == "dynamic":
        return None
    return FLASH
