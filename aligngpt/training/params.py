"""Which parameters each stage trains (docs/reference-code.md, section 8; AlignGPT paper, §4.1).

Stage 1 (pretrain): the projector and the alignment table; the LLM and the CLIP tower are frozen
and the gate is not used. Stage 2 (finetune): the LLM (``model.*``, ``lm_head``), the projector
and the gate; the table and the tower are frozen. Variants: a gate-free alignment mode freezes the
gate (it would get no gradient), ``--freeze-mm-mlp-adapter`` freezes the projector,
``--tune-align-table`` trains the table at stage 2, and LoRA leaves the LLM to its adapters.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from aligngpt.errors import ConfigError

STAGES = ("pretrain", "finetune")
GATED_MODES = ("gated", "local")


@dataclass
class TrainableChoice:
    stage: str
    align_mode: str = "gated"
    freeze_projector: bool = False
    tune_align_table: bool = False
    lora: bool = False


def trainable_prefixes(choice: TrainableChoice) -> tuple[str, ...]:
    """Parameter-name prefixes that receive gradients."""
    if choice.stage not in STAGES:
        raise ConfigError(f"unknown stage {choice.stage!r}")
    uses_alignment = choice.align_mode != "none"
    prefixes: list[str] = []
    if choice.stage == "pretrain":
        if choice.lora:
            raise ConfigError("LoRA applies to stage 2 only (stage 1 keeps the LLM frozen)")
        if choice.freeze_projector:
            raise ConfigError("--freeze-mm-mlp-adapter at stage 1 would leave nothing to train but the table")
        prefixes.append("mm_projector.")
        if uses_alignment:
            prefixes.append("align_indicators.indicator_embs")
        return tuple(prefixes)
    if not choice.lora:
        prefixes += ["model.", "lm_head."]
    if not choice.freeze_projector:
        prefixes.append("mm_projector.")
    if uses_alignment and choice.align_mode in GATED_MODES:
        prefixes.append("gated_weight_layer.")
    if uses_alignment and choice.tune_align_table:
        prefixes.append("align_indicators.indicator_embs")
    return tuple(prefixes)


def set_trainable(model: nn.Module, choice: TrainableChoice) -> list[str]:
    """Set ``requires_grad`` by stage; returns the names of the trainable parameters."""
    prefixes = trainable_prefixes(choice)
    names = []
    for name, param in model.named_parameters():
        train = name.startswith(prefixes) and not name.startswith("vision_tower.")
        param.requires_grad_(train)
        if train:
            names.append(name)
    if not names:
        raise ConfigError(f"stage {choice.stage}: no parameter is trainable with these options")
    return names


def upcast_trainable(model: nn.Module, dtype: torch.dtype = torch.float32) -> None:
    """Keep trainable weights in fp32 (master weights) when the frozen rest is in 16 bits.

    Used without DeepSpeed: the HF Trainer's optimizer steps the parameters themselves, and
    AdamW on bf16 weights loses small updates. DeepSpeed keeps its own fp32 copies instead.
    """
    for param in model.parameters():
        if param.requires_grad and param.dtype != dtype:
            param.data = param.data.to(dtype)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
