"""Building the model to train: a base LLM folder + a CLIP/SigLIP tower folder (+ a stage-1 file).

The base LM is any transformers decoder folder: a Llama one keeps the flat config of the released
checkpoints, any other family (Qwen2, Mistral, Phi3, Gemma2, ...) is nested as ``text_config``.
Its tokenizer decides the alignment slot's anchor (after BOS, or position 0 without one).

Mirrors the reference's construction order (docs/reference-code.md, section 8): the Vicuna/Llama
weights and the CLIP tower are loaded as they are, the projector, the alignment table and the
gate are fresh (``nn.Linear`` default init for the projector and gate, Xavier-uniform for the
table, as the reference creates them after ``from_pretrained``). At stage 2 the projector and
the table come from ``mm_projector_align.bin`` (reference ``load_pretrained_weights``), the gate
stays fresh.
"""
from __future__ import annotations

import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from aligngpt.errors import ConfigError
from aligngpt.modeling import AlignGPTConfig, AlignGPTForCausalLM, parse_align_mode
from aligngpt.modeling.loading import read_weights, tower_vision_config, tower_weights, weight_files
from aligngpt.modeling.vision import vision_config_from
from aligngpt.processing import AlignGPTProcessor, ImageProcessorSettings, load_tokenizer
from aligngpt.processing.conversation import CHAT_TEMPLATE, get_template

log = logging.getLogger(__name__)

#: The stage-1 artefact name the reference writes and reads (``--pretrain_mm_mlp_align``).
STAGE1_FILE = "mm_projector_align.bin"
INDICATOR_KEY = "align_indicators.indicator_embs"

_BASE_CONFIG_DROP = ("model_type", "architectures", "transformers_version", "torch_dtype", "dtype", "_name_or_path", "auto_map")


@dataclass
class ModelSpec:
    base: Path
    vision_tower: Path
    projector_type: str = "mlp2x_gelu"
    select_layer: int = -2
    select_feature: str = "patch"
    n_indicators: int | None = None
    align_mode: str = "gated"
    gate_text: str = "all"
    image_aspect_ratio: str = "square"
    model_max_length: int = 2048
    pretrain_mm_mlp_align: Path | None = None
    random_align_table: bool = False
    attn_implementation: str | None = None
    stage: str = "pretrain"
    conv_template: str | None = None
    """The stage-2 conversation template, recorded in the config for ``--conv-mode auto``."""


# ---------------------------------------------------------------------------- stage-1 file
def read_stage1_file(path: str | Path) -> tuple[OrderedDict, torch.Tensor | None]:
    """Projector weights (keys relative to ``mm_projector``) and the alignment table, if any.

    Key mapping as the reference's ``get_w``/``get_w_2``: everything up to ``mm_projector.`` is
    dropped (so LLaVA's ``model.mm_projector.*`` works too); any key ending in
    ``indicator_embs`` is the table. Accepts the released bf16 files and ours.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--pretrain-mm-mlp-align: {path} not found")
    state = read_weights(path)
    projector: OrderedDict = OrderedDict()
    table = None
    for key, value in state.items():
        if "mm_projector." in key:
            projector[key.split("mm_projector.", 1)[1]] = value
        elif key.split(".")[-1] == "indicator_embs":
            table = value
    if not projector:
        raise ConfigError(f"{path}: no mm_projector.* weights (keys: {sorted(state)[:6]})")
    return projector, table


def stage1_state(model: nn.Module, state_dict: dict[str, torch.Tensor] | None = None) -> OrderedDict:
    """The reference's stage-1 artefact: every ``mm_projector`` and ``indicator_embs`` tensor."""
    source = state_dict if state_dict is not None else dict(model.named_parameters())
    out: OrderedDict = OrderedDict()
    for key, value in source.items():
        if key.startswith("mm_projector.") or key == INDICATOR_KEY:
            out[key] = value.detach().to("cpu").clone()
    return out


def save_stage1(model: AlignGPTForCausalLM, folder: str | Path, state_dict: dict | None = None) -> Path:
    """Write ``mm_projector_align.bin`` (reference key names, training dtype) and config.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = stage1_state(model, state_dict)
    tmp = folder / (STAGE1_FILE + ".tmp")
    torch.save(state, tmp)
    tmp.replace(folder / STAGE1_FILE)
    model.config.save_pretrained(folder)
    return folder / STAGE1_FILE


# ---------------------------------------------------------------------------- construction
def _base_config(base: Path) -> dict:
    """Flat Llama fields for a Llama base; ``{"text_config": ...}`` for any other decoder."""
    from transformers import CONFIG_MAPPING

    path = base / "config.json"
    if not path.is_file():
        raise ConfigError(f"--model {base}: no config.json (expected a transformers causal-LM folder)")
    raw = json.loads(path.read_text(encoding="utf-8"))
    model_type = raw.get("model_type")
    if model_type in ("llama", None):
        return {k: v for k, v in raw.items() if k not in _BASE_CONFIG_DROP}
    if model_type not in CONFIG_MAPPING or "text_config" in raw or "vision_config" in raw:
        raise ConfigError(f"{path}: model_type {model_type!r} is not a decoder-only LM transformers knows")
    return {"text_config": {k: v for k, v in raw.items() if k not in _BASE_CONFIG_DROP or k == "model_type"}}


def _tower_settings(tower: Path, vision_config: dict) -> ImageProcessorSettings:
    if (tower / "preprocessor_config.json").is_file():
        return ImageProcessorSettings.from_folder(tower)
    size = int(vision_config.get("image_size", 336))
    return ImageProcessorSettings(shortest_edge=size, crop_height=size, crop_width=size)


def build_config(spec: ModelSpec, tokenizer, table: torch.Tensor | None) -> AlignGPTConfig:
    base = _base_config(spec.base)
    if not (spec.vision_tower / "config.json").is_file():
        raise ConfigError(f"--vision-tower {spec.vision_tower}: no config.json (expected a CLIP or SigLIP folder)")
    vision = tower_vision_config(spec.vision_tower)
    try:
        vision_config_from(vision)
    except ValueError as exc:
        raise ConfigError(f"--vision-tower {spec.vision_tower}: {exc}") from None
    n = spec.n_indicators
    if table is not None and not spec.random_align_table:
        if n is not None and n != table.shape[0]:
            raise ConfigError(f"--n-indicators {n} but the stage-1 file has {table.shape[0]} alignment levels")
        n = int(table.shape[0])
    n = 8 if n is None else n
    if n < 2:
        raise ConfigError("--n-indicators must be at least 2")
    try:
        parse_align_mode(spec.align_mode, n)
    except ValueError as exc:
        raise ConfigError(f"--align-mode: {exc}") from None
    if spec.gate_text not in ("all", "prompt"):
        raise ConfigError("--gate-text must be 'all' or 'prompt'")
    if spec.image_aspect_ratio not in ("pad", "square"):
        raise ConfigError("--image-aspect-ratio must be 'pad' or 'square'")
    fields = base.get("text_config", base)
    if fields.get("pad_token_id") is None:
        fields["pad_token_id"] = tokenizer.pad_token_id  # the reference trains with pad = unk
    if spec.conv_template and spec.conv_template != CHAT_TEMPLATE:
        get_template(spec.conv_template)  # unknown names fail here
    if spec.conv_template and spec.conv_template != CHAT_TEMPLATE and get_template(spec.conv_template).stop:
        # Chat families stop at their end-of-turn marker as well as at EOS.
        stops = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        marker = get_template(spec.conv_template).stop
        ids = tokenizer.encode(marker, add_bos=False) if marker else []
        if len(ids) == 1 and ids[0] not in stops:
            stops.append(ids[0])
        if stops:
            fields["eos_token_id"] = stops if len(stops) > 1 else stops[0]
    settings = _tower_settings(spec.vision_tower, vision)
    config = AlignGPTConfig(
        **base,
        mm_vision_tower=str(spec.vision_tower),
        mm_hidden_size=int(vision["hidden_size"]),
        mm_projector_type=spec.projector_type,
        mm_vision_select_layer=spec.select_layer,
        mm_vision_select_feature=spec.select_feature,
        use_mm_proj=True,
        vision_config=vision,
        image_processor=settings.to_dict(),
        n_indicators=n,
        align_mode=spec.align_mode,
        use_alignment=spec.align_mode != "none",
        gate_text=spec.gate_text,
        image_aspect_ratio=spec.image_aspect_ratio,
        tokenizer_padding_side="right",
        tokenizer_model_max_length=spec.model_max_length,
        mm_use_im_start_end=False,
        mm_use_im_patch_token=False,
        tune_mm_mlp_adapter=spec.stage == "pretrain",
        freeze_mm_mlp_adapter=False,
        mm_projector_lr=None,
        alignment_anchor="after_bos" if tokenizer.adds_bos else "start",
        conv_template=spec.conv_template,
    )
    config.architectures = ["AlignGPTForCausalLM"]
    if spec.attn_implementation:
        config._attn_implementation = spec.attn_implementation
    return config


def _load_strict(model: nn.Module, state: dict[str, torch.Tensor], expected_prefixes: tuple[str, ...], source: Path) -> set[str]:
    own = model.state_dict()
    wanted = {k for k in own if k.startswith(expected_prefixes)}
    usable = {}
    for key, value in state.items():
        if key in wanted:
            if tuple(value.shape) != tuple(own[key].shape):
                raise ConfigError(f"{source}: {key} has shape {tuple(value.shape)}, the model expects {tuple(own[key].shape)}")
            usable[key] = value
    model.load_state_dict(usable, strict=False)
    return set(usable)


def init_fresh_modules(model: AlignGPTForCausalLM) -> None:
    """Initialise what the reference creates after loading: projector, table, gate."""
    for module in model.mm_projector.modules():
        if isinstance(module, nn.Linear):
            module.reset_parameters()
    if model.align_indicators is not None:
        nn.init.xavier_uniform_(model.align_indicators.indicator_embs)
    if model.gated_weight_layer is not None:
        for module in model.gated_weight_layer.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()


def build_model(spec: ModelSpec, dtype: torch.dtype = torch.float32) -> tuple[AlignGPTForCausalLM, AlignGPTProcessor]:
    """The model (all weights in ``dtype``) and its processor, ready for ``set_trainable``."""
    from transformers.initialization import no_init_weights

    spec.base, spec.vision_tower = Path(spec.base), Path(spec.vision_tower)
    tokenizer = load_tokenizer(spec.base)
    projector_state, table = None, None
    if spec.pretrain_mm_mlp_align is not None:
        projector_state, table = read_stage1_file(spec.pretrain_mm_mlp_align)
    config = build_config(spec, tokenizer, table)
    if len(tokenizer) > config.vocab_size:
        raise ConfigError(f"{spec.base}: tokenizer has {len(tokenizer)} pieces but vocab_size is {config.vocab_size}")

    with no_init_weights():
        model = AlignGPTForCausalLM(config)
    loaded: set[str] = set()
    files = weight_files(spec.base)
    if not files:
        raise ConfigError(f"--model {spec.base}: no weights (model.safetensors, pytorch_model.bin or an index)")
    for f in files:
        loaded |= _load_strict(model, read_weights(f), ("model.", "lm_head."), f)
    if "lm_head.weight" not in loaded and getattr(config, "tie_word_embeddings", False):
        model.lm_head.weight = model.model.embed_tokens.weight
        loaded.add("lm_head.weight")
    loaded |= _load_strict(model, tower_weights(spec.vision_tower), ("vision_tower.",), spec.vision_tower)
    missing = [k for k in model.state_dict() if k.startswith(("model.", "lm_head.", "vision_tower.")) and k not in loaded]
    missing = [k for k in missing if not k.endswith(("rotary_emb.inv_freq", "position_ids"))]
    if missing:
        raise ConfigError(f"weights missing from the base/tower folders for {len(missing)} tensors, e.g. {missing[:4]}")

    init_fresh_modules(model)
    if projector_state is not None:
        result = model.mm_projector.load_state_dict(
            {k: v.to(torch.float32) for k, v in projector_state.items()}, strict=False
        )
        if result.missing_keys or result.unexpected_keys:
            raise ConfigError(
                f"{spec.pretrain_mm_mlp_align}: projector keys do not match --mm-projector-type "
                f"{spec.projector_type} (missing {result.missing_keys}, unexpected {result.unexpected_keys})"
            )
        if model.align_indicators is not None and not spec.random_align_table:
            if table is None:
                raise ConfigError(
                    f"{spec.pretrain_mm_mlp_align}: no alignment table (align_indicators.indicator_embs); "
                    "pass --random-align-table or --align-mode none"
                )
            if tuple(table.shape) != tuple(model.align_indicators.indicator_embs.shape):
                raise ConfigError(f"{spec.pretrain_mm_mlp_align}: alignment table shape {tuple(table.shape)} does not fit")
            with torch.no_grad():
                model.align_indicators.indicator_embs.copy_(table.to(torch.float32))
    model = model.to(dtype)
    processor = AlignGPTProcessor(
        tokenizer, ImageProcessorSettings.from_dict(config.image_processor), image_aspect_ratio=config.image_aspect_ratio,
        template=spec.conv_template or "vicuna_v1",
    )
    return model, processor
