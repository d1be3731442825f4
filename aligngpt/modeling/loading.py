"""Loading released AlignGPT / LLaVA-1.5 checkpoints and our own, offline-first.

Released checkpoints are sharded pickles (``pytorch_model-0000k-of-0000n.bin``) whose config
names the CLIP tower by ``mm_vision_tower`` rather than embedding it. We read them with
``torch.load(weights_only=True)`` (no arbitrary unpickling), drop legacy buffers, map LLaVA's
``model.mm_projector`` / ``model.vision_tower`` keys to the top level, and find the tower config
from an explicit override, a local folder, or the hub (only when asked for by a hub id).
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch

from ..constants import CLIP_L14_336
from ..errors import ConfigError
from ..processing.image import ImageProcessorSettings
from ..processing.processor import AlignGPTProcessor
from ..processing.conversation import auto_template
from ..processing.hf_tokenizer import load_tokenizer
from .configuration import AlignGPTConfig, parse_align_mode
from .llava_hf import is_llava_hf, llava_hf_config, llava_hf_key
from .modeling_aligngpt import AlignGPTForCausalLM
from .vision import FULL_MODEL_TYPES

log = logging.getLogger(__name__)

#: Buffers that transformers 4.31 saved but current versions compute (docs/reference-code.md,
#: section 6).
LEGACY_KEY_PATTERNS = (re.compile(r"\.rotary_emb\.inv_freq$"), re.compile(r"embeddings\.position_ids$"))

#: CLIP ViT-L/14-336 (the released models' tower): the vision config as published in
#: ``openai/clip-vit-large-patch14-336`` (``vision_config`` in its config.json).
#: Used only to build the tower offline when a checkpoint carries its weights.
CLIP_L14_336_VISION_CONFIG = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_attention_heads": 16,
    "num_hidden_layers": 24,
    "patch_size": 14,
    "image_size": 336,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
    "projection_dim": 768,
    "num_channels": 3,
}

WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass
class LoadingInfo:
    checkpoint: str
    vision_tower: str
    vision_weights_from: str
    ignored_legacy_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)
    missing_keys: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- locating files
def _looks_like_hub_id(name: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", name)) and not name.startswith((".", "/"))


def _snapshot(repo_id: str, patterns: list[str]) -> Path:
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, allow_patterns=patterns))


def resolve_checkpoint_dir(path_or_hub_id: str | os.PathLike) -> Path:
    path = Path(path_or_hub_id).expanduser()
    if path.is_dir():
        return path
    name = str(path_or_hub_id)
    if _looks_like_hub_id(name):
        try:
            return _snapshot(name, ["*.json", "*.model", "*.bin", "*.safetensors"])
        except Exception as exc:  # offline, not cached, not found
            raise ConfigError(f"checkpoint {name!r}: not a local folder, and the hub copy is unavailable ({exc})") from None
    raise ConfigError(f"checkpoint not found: {name!r} is neither a folder nor a hub id")


def weight_files(folder: Path) -> list[Path]:
    for index in WEIGHT_INDEXES:
        if (folder / index).is_file():
            mapping = json.loads((folder / index).read_text(encoding="utf-8"))["weight_map"]
            return [folder / f for f in sorted(set(mapping.values()))]
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return [folder / name]
    return []


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except SafetensorError as exc:  # truncated or not a safetensors file
            raise ConfigError(f"{path}: cannot read checkpoint weights ({exc})") from None
    # weights_only: tensors and plain containers only, never arbitrary pickled objects.
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        # torch's own message suggests weights_only=False; we never do that (it runs code).
        lines = [l.strip() for l in str(exc).splitlines() if l.strip()]
        why = next((l for l in lines if "GLOBAL" in l), lines[0] if lines else type(exc).__name__)
        raise ConfigError(f"{path}: refused: the file holds pickled objects other than tensors, which are "
                          f"never unpickled ({why[:200]}); convert the checkpoint to safetensors") from None
    except (RuntimeError, EOFError) as exc:  # truncated or not a torch zip/pickle file
        raise ConfigError(f"{path}: cannot read checkpoint weights ({str(exc).strip()[:200]})") from None


# ---------------------------------------------------------------------------- vision tower
@dataclass
class TowerSource:
    folder: Path | None
    description: str


def resolve_vision_tower(name: str | None, checkpoint_dir: Path, override: str | None) -> TowerSource:
    """Find the CLIP tower folder: override, then ``mm_vision_tower`` as a path, then the hub."""
    tried: list[str] = []
    for candidate in [override, name]:
        if not candidate:
            continue
        raw = Path(candidate).expanduser()
        paths = [raw] if raw.is_absolute() else [Path.cwd() / raw, checkpoint_dir.parent / raw, checkpoint_dir / raw]
        for p in paths:
            tried.append(str(p))
            if (p / "config.json").is_file():
                return TowerSource(p, str(p))
        hub_id = candidate
        if raw.name == CLIP_L14_336.split("/")[1]:
            hub_id = CLIP_L14_336  # released configs name a local copy of this repo
        if _looks_like_hub_id(hub_id):
            tried.append(f"hub:{hub_id}")
            try:
                folder = _snapshot(hub_id, ["config.json", "preprocessor_config.json", "*.safetensors", "pytorch_model.bin"])
                return TowerSource(folder, f"hub:{hub_id}")
            except Exception as exc:
                tried[-1] += f" ({type(exc).__name__})"
        if override:
            break  # an explicit override must resolve; do not silently fall back
    return TowerSource(None, "; ".join(tried) if tried else "(no mm_vision_tower in config)")


def tower_vision_config(folder: Path) -> dict:
    """The tower's vision config as we embed it: CLIP without ``model_type``, SigLIP with it."""
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    kind = cfg.get("model_type") or "clip_vision_model"
    if kind in FULL_MODEL_TYPES:  # a full two-tower folder (CLIPModel, SiglipModel): its vision half
        cfg, kind = cfg.get("vision_config", {}), FULL_MODEL_TYPES[kind]
    cfg = {k: v for k, v in cfg.items() if k not in ("architectures", "transformers_version", "torch_dtype", "dtype", "model_type", "_name_or_path")}
    if kind != "clip_vision_model":
        cfg["model_type"] = kind
    return cfg


def tower_weights(folder: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for f in weight_files(folder):
        for k, v in read_weights(f).items():
            if k.startswith("vision_model."):
                state["vision_tower.vision_tower." + k] = v
            elif k.split(".", 1)[0] in ("embeddings", "pre_layrnorm", "encoder", "post_layernorm", "head"):
                state["vision_tower.vision_tower.vision_model." + k] = v  # flattened (transformers 5) save
    return state


# ---------------------------------------------------------------------------- helpers
@contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _remap_key(key: str, is_llava: bool, llava_hf: bool = False) -> str:
    if llava_hf:
        return llava_hf_key(key)
    if is_llava:
        for prefix in ("model.mm_projector.", "model.vision_tower."):
            if key.startswith(prefix):
                return key[len("model.") :]
    return key


def _is_legacy(key: str) -> bool:
    return any(p.search(key) for p in LEGACY_KEY_PATTERNS)


def default_dtype_for(device: str) -> torch.dtype:
    """fp16 on GPU (what the reference evaluated with), fp32 on CPU."""
    return torch.float16 if str(device).startswith("cuda") else torch.float32


# ---------------------------------------------------------------------------- main entry
def load_pretrained(
    path_or_hub_id: str | os.PathLike,
    vision_tower: str | None = None,
    device: str = "cpu",
    dtype: torch.dtype | str | None = None,
    align_mode: str | None = "gated",
    *,
    vision_weights: str = "checkpoint",
    attn_implementation: str | None = None,
    device_map: str | dict | None = None,
) -> tuple[AlignGPTForCausalLM, AlignGPTProcessor]:
    """Load an AlignGPT or LLaVA-1.5 checkpoint (released layout or ours) and its processor.

    ``vision_weights``: ``checkpoint`` uses the tower weights stored in the checkpoint when present
    (else the tower folder); ``tower`` always reloads them from the tower folder, which is what
    the official loader does (it ignores the checkpoint's bf16 copy; docs/reference-code.md,
    quirk 2).
    ``device_map`` (``"auto"`` or an accelerate map) spreads a large model over the visible
    devices in one process instead of moving it to ``device``.
    """
    if vision_weights not in ("checkpoint", "tower"):
        raise ConfigError("vision_weights must be 'checkpoint' or 'tower'")
    if isinstance(dtype, str):
        dtype = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
                 "bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "auto": None}.get(dtype, "bad")
        if dtype == "bad":
            raise ConfigError("dtype must be float32, float16, bfloat16 or auto")
    dtype = dtype or default_dtype_for(device)

    ckpt = resolve_checkpoint_dir(path_or_hub_id)
    config_path = ckpt / "config.json"
    if not config_path.is_file():
        raise ConfigError(f"{config_path}: no config.json in the checkpoint folder")
    raw = json.loads(config_path.read_text(encoding="utf-8"))
    model_type = raw.get("model_type")
    is_llava = model_type in ("llava", "llava_llama")
    hf_layout = is_llava_hf(raw)
    if hf_layout:  # transformers-native LlavaForConditionalGeneration: mapped onto our config
        raw = llava_hf_config(raw, str(config_path))
    if model_type != "aligngpt" and not is_llava:
        raise ConfigError(f"{config_path}: model_type {model_type!r} is neither 'aligngpt' nor 'llava'")
    raw.pop("model_type", None)
    if is_llava:
        raw["use_alignment"] = False
        raw["align_mode"] = "none"

    files = weight_files(ckpt)
    if not files:
        raise ConfigError(f"{ckpt}: no weights (looked for {', '.join(WEIGHT_INDEXES + WEIGHT_FILES)})")

    # The tower: its config (embedded in our checkpoints; else from the tower folder).
    tower = TowerSource(None, "embedded in checkpoint config")
    if raw.get("vision_config") is None or vision_weights == "tower" or vision_tower:
        tower = resolve_vision_tower(raw.get("mm_vision_tower"), ckpt, vision_tower)
    if raw.get("vision_config") is None:
        if tower.folder is not None:
            raw["vision_config"] = tower_vision_config(tower.folder)
        elif _names_clip_l14_336(raw.get("mm_vision_tower")) and _checkpoint_has_vision(ckpt):
            raw["vision_config"] = dict(CLIP_L14_336_VISION_CONFIG)
            tower = TowerSource(None, f"built-in {CLIP_L14_336} config; weights from checkpoint")
        elif raw.get("mm_vision_tower"):
            raise ConfigError(
                f"vision tower {raw.get('mm_vision_tower')!r} of {config_path} not found; looked for: {tower.description}. "
                "Pass vision_tower=<folder or hub id>."
            )
    if raw.get("image_processor") is None:
        if tower.folder is not None and (tower.folder / "preprocessor_config.json").is_file():
            raw["image_processor"] = ImageProcessorSettings.from_folder(tower.folder).to_dict()
        elif (ckpt / "preprocessor_config.json").is_file():
            raw["image_processor"] = ImageProcessorSettings.from_folder(ckpt).to_dict()
        elif raw.get("vision_config") is not None:
            size = raw["vision_config"].get("image_size", 336)
            raw["image_processor"] = ImageProcessorSettings(shortest_edge=size, crop_height=size, crop_width=size).to_dict()
    if align_mode is not None and not is_llava:
        parse_align_mode(align_mode, raw.get("n_indicators", 8))
        raw["align_mode"] = align_mode
    config = AlignGPTConfig.from_dict(raw)
    if attn_implementation:
        config._attn_implementation = attn_implementation

    from transformers.initialization import no_init_weights

    with no_init_weights(), _default_dtype(dtype):
        model = AlignGPTForCausalLM(config)

    info = LoadingInfo(str(ckpt), tower.description, "checkpoint")
    expected = set(model.state_dict().keys())
    loaded: set[str] = set()
    for f in files:
        shard = {}
        for key, value in read_weights(f).items():
            if _is_legacy(key):
                info.ignored_legacy_keys.append(key)
                continue
            key = _remap_key(key, is_llava, hf_layout)
            if vision_weights == "tower" and key.startswith("vision_tower."):
                continue
            shard[key] = value
        result = model.load_state_dict(shard, strict=False)
        info.unexpected_keys.extend(result.unexpected_keys)
        loaded.update(k for k in shard if k not in result.unexpected_keys)
        del shard
    missing_vision = [k for k in expected - loaded if k.startswith("vision_tower.")]
    if missing_vision:
        if tower.folder is None:
            tower = resolve_vision_tower(raw.get("mm_vision_tower"), ckpt, vision_tower)
        if tower.folder is None:
            raise ConfigError(f"{ckpt}: the checkpoint has no vision weights and the tower was not found; looked for: {tower.description}")
        result = model.load_state_dict(tower_weights(tower.folder), strict=False)
        loaded.update(k for k in missing_vision if k not in result.missing_keys)
        info.vision_weights_from = f"tower:{tower.folder}"
        info.vision_tower = tower.description
    if "lm_head.weight" not in loaded and getattr(config.get_text_config(), "tie_word_embeddings", False):
        model.lm_head.weight = model.model.embed_tokens.weight  # tied LMs (Gemma) store one copy
        loaded.add("lm_head.weight")
    info.missing_keys = sorted(k for k in expected - loaded if not _is_legacy(k))
    if info.missing_keys:
        raise ConfigError(f"{ckpt}: weights missing for {len(info.missing_keys)} parameters, e.g. {info.missing_keys[:5]}")
    if info.unexpected_keys:
        log.warning("%s: %d unexpected keys ignored, e.g. %s", ckpt, len(info.unexpected_keys), info.unexpected_keys[:5])

    model = model.to(dtype=dtype)
    if device_map is not None:
        model = _dispatch(model, device_map, dtype)
    else:
        model = model.to(device=device)
    model.eval()
    model.loading_info = info

    tokenizer = load_tokenizer(ckpt)
    processor = AlignGPTProcessor(
        tokenizer,
        ImageProcessorSettings.from_dict(config.image_processor or {}),
        image_aspect_ratio=config.image_aspect_ratio,
        template=auto_template(config, tokenizer),
    )
    return model, processor


def _dispatch(model: AlignGPTForCausalLM, device_map, dtype: torch.dtype) -> AlignGPTForCausalLM:
    """Place modules with accelerate; the vision tower, projector and alignment modules stay
    together with the embeddings so image features never cross devices mid-assembly."""
    from accelerate import dispatch_model, infer_auto_device_map

    if device_map == "auto":
        no_split = list(model._no_split_modules) + ["VisionTower", "AlignIndicator", "GatedWeightLayer"]
        device_map = infer_auto_device_map(model, no_split_module_classes=no_split, dtype=dtype)
    elif isinstance(device_map, str):
        device_map = {"": device_map}
    return dispatch_model(model, device_map=device_map)


def _names_clip_l14_336(name: str | None) -> bool:
    return bool(name) and Path(name).name == CLIP_L14_336.split("/")[1]


def _checkpoint_has_vision(ckpt: Path) -> bool:
    for index in WEIGHT_INDEXES:
        if (ckpt / index).is_file():
            mapping = json.loads((ckpt / index).read_text(encoding="utf-8"))["weight_map"]
            return any(".vision_tower." in "." + k for k in mapping)
    return False


def save_pretrained(model: AlignGPTForCausalLM, processor: AlignGPTProcessor | None, folder: str | os.PathLike) -> None:
    """Our layout: config with the tower embedded, safetensors weights, tokenizer, preprocessor."""
    folder = Path(folder)
    model.save_pretrained(folder, safe_serialization=True)
    if processor is not None:
        processor.save_pretrained(folder)
