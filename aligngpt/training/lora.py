"""LoRA / QLoRA for stage 2 through peft.

Adapters go on the LLM's linear layers only (attention q/k/v/o and MLP gate/up/down projections
of ``model.layers``); the projector, the gate (and the table with ``--tune-align-table``) stay
fully trainable and are saved with the adapter as peft ``modules_to_save``. The reference has no
LoRA path for AlignGPT; LLaVA's targets every LLM ``nn.Linear`` but ``lm_head``, which is the same
set for Llama.

QLoRA (``--bits 4`` / ``8``) quantises those LLM linear layers with bitsandbytes before adding the
adapters; it needs bitsandbytes and a CUDA device. A QLoRA run cannot be merged in place; its
output holds the adapter and ``merge-lora`` rebuilds the full-precision model and merges.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from aligngpt.errors import ConfigError
from aligngpt.extras import import_optional

log = logging.getLogger(__name__)

#: Full-match regex (peft semantics) for the LLM linear layers that receive adapters.
LLM_LINEAR_PATTERN = r"model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"
ADAPTER_DIR = "adapter"


@dataclass
class LoraOptions:
    r: int = 128
    alpha: int = 256
    dropout: float = 0.05
    bias: str = "none"
    bits: int = 16


def quantize_llm_linears(model: nn.Module, bits: int, compute_dtype: torch.dtype) -> None:
    """Swap the LLM linear layers for bitsandbytes 4-/8-bit ones (QLoRA); projector/gate untouched."""
    import_optional("bitsandbytes", "QLoRA (--bits 4/8)")
    if not torch.cuda.is_available():
        raise ConfigError("QLoRA (--bits 4/8) needs a CUDA device")
    import re

    import bitsandbytes as bnb

    pattern = re.compile(LLM_LINEAR_PATTERN)
    for name, module in list(model.named_modules()):
        if not (isinstance(module, nn.Linear) and pattern.fullmatch(name)):
            continue
        parent_name, child = name.rsplit(".", 1)
        parent = model.get_submodule(parent_name)
        weight = module.weight.data.to("cpu", torch.float16 if bits == 8 else compute_dtype)
        if bits == 4:
            new = bnb.nn.Linear4bit(
                module.in_features, module.out_features, bias=False, compute_dtype=compute_dtype,
                compress_statistics=True, quant_type="nf4",
            )
            new.weight = bnb.nn.Params4bit(weight, requires_grad=False, quant_type="nf4", compress_statistics=True)
        else:
            new = bnb.nn.Linear8bitLt(module.in_features, module.out_features, bias=False, has_fp16_weights=False)
            new.weight = bnb.nn.Int8Params(weight, requires_grad=False, has_fp16_weights=False)
        setattr(parent, child, new.cuda())  # quantisation happens on the move to the GPU


def wrap_lora(model: nn.Module, opts: LoraOptions, modules_to_save: list[str]) -> nn.Module:
    """Add adapters to the LLM linears; ``modules_to_save`` stay fully trainable."""
    import_optional("peft", "LoRA (--lora-enable)")
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if opts.bits in (4, 8):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    config = LoraConfig(
        r=opts.r,
        lora_alpha=opts.alpha,
        lora_dropout=opts.dropout,
        bias=opts.bias,
        target_modules=LLM_LINEAR_PATTERN,
        modules_to_save=modules_to_save or None,
    )
    # No task type: a plain PeftModel passes our forward arguments (images, align_ids) through.
    return get_peft_model(model, config)


def lora_modules_to_save(trainable_prefixes: tuple[str, ...]) -> list[str]:
    """Top-level modules that train in full next to the adapters."""
    names = []
    for prefix in trainable_prefixes:
        top = prefix.split(".", 1)[0]
        if top in ("mm_projector", "gated_weight_layer", "align_indicators") and top not in names:
            names.append(top)
    return names


def merge_into_base(peft_model: nn.Module) -> nn.Module:
    """The plain AlignGPT model with the adapters folded into the LLM weights."""
    return peft_model.merge_and_unload()
