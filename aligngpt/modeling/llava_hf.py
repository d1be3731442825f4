"""Reading transformers-native LLaVA checkpoints (``LlavaForConditionalGeneration``, e.g.
``llava-hf/llava-1.5-7b-hf``) as our ``align_mode='none'`` baseline.

Two layouts exist in the wild. The hub's (saved by transformers 4.36-4.51): ``language_model.model.*``,
``language_model.lm_head.*``, ``vision_tower.vision_model.*``, ``multi_modal_projector.linear_{1,2}.*``
and a sparse config (only the fields that differ from the Llama / CLIP defaults). What
transformers 5's ``save_pretrained`` writes: the same prefixes but a flattened tower
(``vision_tower.embeddings.*``, no ``vision_model.``) and a full config; its in-memory names
(``model.language_model.*``, ``model.vision_tower.*``, ...) are accepted too. The config is
parsed by transformers' own ``LlavaConfig`` (so sparse fields get exactly the defaults
transformers gives them) and mapped onto ours; weights are renamed key by key.
"""
from __future__ import annotations

import re

from ..errors import ConfigError

#: (pattern, replacement) applied in order; the first that matches renames the key.
_KEY_RULES = (
    (re.compile(r"^(?:model\.)?language_model\.model\."), "model."),  # hub: language_model.model.*
    (re.compile(r"^(?:model\.)?language_model\.lm_head\."), "lm_head."),
    (re.compile(r"^model\.language_model\."), "model."),  # transformers 5: model.language_model.*
    (re.compile(r"^(?:model\.)?vision_tower\.(?:vision_model\.)?"), "vision_tower.vision_tower.vision_model."),
    (re.compile(r"^(?:model\.)?multi_modal_projector\.linear_1\."), "mm_projector.0."),
    (re.compile(r"^(?:model\.)?multi_modal_projector\.linear_2\."), "mm_projector.2."),
)


def is_llava_hf(raw: dict) -> bool:
    """A ``LlavaForConditionalGeneration`` config (not the original LLaVA repo's ``llava`` one)."""
    archs = raw.get("architectures") or []
    return raw.get("model_type") == "llava" and ("text_config" in raw or "LlavaForConditionalGeneration" in archs)


def llava_hf_key(key: str) -> str:
    for pattern, replacement in _KEY_RULES:
        if pattern.match(key):
            return pattern.sub(replacement, key, count=1)
    return key


def llava_hf_config(raw: dict, source: str) -> dict:
    """Our config fields (``none`` mode, MLP projector, embedded towers) for a llava-hf config."""
    from transformers import LlavaConfig

    fields = {k: v for k, v in raw.items() if k not in ("architectures", "transformers_version", "torch_dtype", "dtype")}
    try:
        cfg = LlavaConfig.from_dict(fields)
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"{source}: not a readable LlavaForConditionalGeneration config ({exc})") from None
    if not isinstance(cfg.vision_feature_layer, int):
        raise ConfigError(f"{source}: vision_feature_layer {cfg.vision_feature_layer!r}: only one layer is supported")
    if cfg.projector_hidden_act != "gelu" or not cfg.multimodal_projector_bias:
        raise ConfigError(f"{source}: only the gelu projector with biases (LLaVA-1.5's) is supported")
    strategy = {"default": "patch", "full": "cls_patch"}.get(cfg.vision_feature_select_strategy)
    if strategy is None:
        raise ConfigError(f"{source}: unknown vision_feature_select_strategy {cfg.vision_feature_select_strategy!r}")
    text = cfg.text_config.to_dict()
    vision = cfg.vision_config.to_dict()
    for d in (text, vision):
        for key in ("architectures", "transformers_version", "torch_dtype", "dtype", "_name_or_path"):
            d.pop(key, None)
    if vision.get("model_type") == "clip_vision_model":
        vision.pop("model_type")
    return {
        "text_config": text,
        "vision_config": vision,
        "mm_projector_type": "mlp2x_gelu",
        "mm_hidden_size": vision["hidden_size"],
        "mm_vision_select_layer": cfg.vision_feature_layer,
        "mm_vision_select_feature": strategy,
        "use_alignment": False,
        "align_mode": "none",
        "image_aspect_ratio": "pad",
        "tie_word_embeddings": bool(cfg.tie_word_embeddings),
        "architectures": ["AlignGPTForCausalLM"],
    }
