"""The vision tower (CLIP or SigLIP), wrapped so its keys are ``vision_tower.vision_tower.vision_model.*``.

One interface for every tower family: ``num_patches`` (the tokens one image becomes, which is the
gate's input width), ``has_cls`` (CLIP prepends a CLS token that ``select_feature='patch'`` drops;
SigLIP has none, so nothing is sliced) and ``features(images)`` (the hidden states of layer
``select_layer``, before any post-layernorm or pooling head). The family comes from the vision
config's ``model_type`` (``clip_vision_model`` when absent, as in released checkpoints).
"""
from __future__ import annotations

import functools
import inspect

import torch
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel, PretrainedConfig, SiglipVisionConfig, SiglipVisionModel

#: model_type -> (config class, model class, has a CLS token)
TOWER_FAMILIES: dict[str, tuple[type, type, bool]] = {
    "clip_vision_model": (CLIPVisionConfig, CLIPVisionModel, True),
    "siglip_vision_model": (SiglipVisionConfig, SiglipVisionModel, False),
}
#: Full two-tower model types whose vision half is the tower (``CLIPModel``/``SiglipModel`` folders).
FULL_MODEL_TYPES = {"clip": "clip_vision_model", "siglip": "siglip_vision_model", "siglip2": "siglip_vision_model"}


def vision_config_from(value: dict | PretrainedConfig) -> PretrainedConfig:
    """A CLIP or SigLIP vision config from a dict (``model_type`` picks the family; default CLIP)."""
    if isinstance(value, PretrainedConfig):
        return value
    fields = dict(value)
    kind = fields.pop("model_type", None) or "clip_vision_model"
    kind = FULL_MODEL_TYPES.get(kind, kind)
    if kind not in TOWER_FAMILIES:
        raise ValueError(f"vision tower model_type {kind!r} is not supported; expected one of {', '.join(TOWER_FAMILIES)}")
    return TOWER_FAMILIES[kind][0](**fields)


class _VisionHolder(nn.Module):
    """Keeps the released key prefix ``vision_model.`` (transformers 5 flattened the vision models)."""

    def __init__(self, vision_config: PretrainedConfig):
        super().__init__()
        model_class = TOWER_FAMILIES[vision_config.model_type][1]
        self.vision_model = model_class(vision_config)

    @property
    def config(self) -> PretrainedConfig:
        return self.vision_model.config

    def forward(self, pixel_values: torch.Tensor, **kwargs):
        return self.vision_model(pixel_values, **kwargs)


@functools.lru_cache(maxsize=None)
def _takes_causal_mask(layer_type: type) -> bool:
    """transformers 4's CLIP layers also take a (for vision: empty) causal mask positionally."""
    return "causal_attention_mask" in inspect.signature(layer_type.forward).parameters


class VisionTower(nn.Module):
    """Features of layer ``select_layer`` before the post-layernorm; CLIP's CLS dropped for 'patch'."""

    def __init__(self, vision_config: PretrainedConfig | dict, select_layer: int = -2, select_feature: str = "patch"):
        super().__init__()
        vision_config = vision_config_from(vision_config)
        if select_feature not in ("patch", "cls_patch"):
            raise ValueError(f"unknown mm_vision_select_feature {select_feature!r} (patch, cls_patch)")
        self.has_cls = TOWER_FAMILIES[vision_config.model_type][2]
        if select_feature == "cls_patch" and not self.has_cls:
            raise ValueError(f"mm_vision_select_feature 'cls_patch' needs a CLS token; {vision_config.model_type} has none")
        self.select_layer = select_layer
        self.select_feature = select_feature
        self.vision_tower = _VisionHolder(vision_config)
        self.vision_tower.requires_grad_(False)
        self.skip_unused_layers = True
        """Stop after the selected layer: the reference (``output_hidden_states=True``) also runs
        the layers after it, whose outputs nobody reads. Same features, bit for bit (later layers
        cannot change earlier ones); ``False`` restores the reference's full pass, e.g. to time it."""

    @property
    def config(self) -> PretrainedConfig:
        return self.vision_tower.config

    @property
    def num_patches(self) -> int:
        """Tokens per image after feature selection: the gate's input width."""
        side = self.config.image_size // self.config.patch_size
        return side * side + (1 if self.select_feature == "cls_patch" else 0)

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    def _layers_needed(self) -> int:
        """How many encoder layers produce ``hidden_states[select_layer]`` (index 0: embeddings)."""
        n = self.config.num_hidden_layers
        index = self.select_layer if self.select_layer >= 0 else n + 1 + self.select_layer
        if not 0 <= index <= n:
            raise ValueError(f"mm_vision_select_layer {self.select_layer} is outside a {n}-layer tower")
        return index

    def _truncated_pass(self, pixels: torch.Tensor) -> torch.Tensor | None:
        """embeddings -> (CLIP: pre-LN) -> the needed layers; ``None`` if this transformers' model differs."""
        tower = self.vision_tower.vision_model
        inner = getattr(tower, "vision_model", tower)  # transformers 4 nests the transformer one deeper
        embeddings = getattr(inner, "embeddings", None)
        layers = getattr(getattr(inner, "encoder", None), "layers", None)
        pre_ln = getattr(inner, "pre_layrnorm", None)
        if embeddings is None or layers is None or (self.has_cls and pre_ln is None):
            return None
        hidden = embeddings(pixels)
        if pre_ln is not None:
            hidden = pre_ln(hidden)
        needed = list(layers[: self._layers_needed()])
        extra = (None,) if needed and _takes_causal_mask(type(needed[0])) else ()
        for layer in needed:
            out = layer(hidden, None, *extra)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """[n, num_patches, hidden] features of layer ``select_layer``, in ``images``' dtype."""
        param = next(self.vision_tower.parameters())
        pixels = images.to(device=param.device, dtype=param.dtype)
        feats = self._truncated_pass(pixels) if self.skip_unused_layers else None
        if feats is None:
            feats = self.vision_tower(pixels, output_hidden_states=True).hidden_states[self.select_layer]
        if self.has_cls and self.select_feature == "patch":
            feats = feats[:, 1:]
        return feats.to(images.dtype)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)

