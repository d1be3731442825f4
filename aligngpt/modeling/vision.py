"""The CLIP vision tower, wrapped so its keys are ``vision_tower.vision_tower.vision_model.*``."""
from __future__ import annotations

import functools
import inspect

import torch
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel


class _VisionHolder(nn.Module):
    """Keeps the released key prefix ``vision_model.`` (transformers 5 flattened CLIPVisionModel)."""

    def __init__(self, vision_config: CLIPVisionConfig):
        super().__init__()
        self.vision_model = CLIPVisionModel(vision_config)

    @property
    def config(self) -> CLIPVisionConfig:
        return self.vision_model.config

    def forward(self, pixel_values: torch.Tensor, **kwargs):
        return self.vision_model(pixel_values, **kwargs)


@functools.lru_cache(maxsize=None)
def _takes_causal_mask(layer_type: type) -> bool:
    """transformers 4's CLIP layers also take a (for vision: empty) causal mask positionally."""
    return "causal_attention_mask" in inspect.signature(layer_type.forward).parameters


class CLIPVisionTower(nn.Module):
    """Features of layer ``select_layer`` before the post-layernorm, CLS dropped for 'patch'."""

    def __init__(self, vision_config: CLIPVisionConfig, select_layer: int = -2, select_feature: str = "patch"):
        super().__init__()
        if select_feature not in ("patch", "cls_patch"):
            raise ValueError(f"unknown mm_vision_select_feature {select_feature!r} (patch, cls_patch)")
        self.select_layer = select_layer
        self.select_feature = select_feature
        self.vision_tower = _VisionHolder(vision_config)
        self.vision_tower.requires_grad_(False)
        self.skip_unused_layers = True
        """Stop after the selected layer: the reference (``output_hidden_states=True``) also runs
        the layers after it, whose outputs nobody reads. Same features, bit for bit (later layers
        cannot change earlier ones); ``False`` restores the reference's full pass, e.g. to time it."""

    @property
    def config(self) -> CLIPVisionConfig:
        return self.vision_tower.config

    @property
    def num_patches(self) -> int:
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
        """embeddings -> pre-LN -> the needed layers; ``None`` if this transformers' CLIP differs."""
        clip = self.vision_tower.vision_model
        inner = getattr(clip, "vision_model", clip)  # transformers 4 nests the transformer one deeper
        embeddings, pre_ln = getattr(inner, "embeddings", None), getattr(inner, "pre_layrnorm", None)
        layers = getattr(getattr(inner, "encoder", None), "layers", None)
        if embeddings is None or pre_ln is None or layers is None:
            return None
        hidden = pre_ln(embeddings(pixels))
        needed = list(layers[: self._layers_needed()])
        extra = (None,) if needed and _takes_causal_mask(type(needed[0])) else ()
        for layer in needed:
            out = layer(hidden, None, *extra)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        param = next(self.vision_tower.parameters())
        pixels = images.to(device=param.device, dtype=param.dtype)
        feats = self._truncated_pass(pixels) if self.skip_unused_layers else None
        if feats is None:
            feats = self.vision_tower(pixels, output_hidden_states=True).hidden_states[self.select_layer]
        if self.select_feature == "patch":
            feats = feats[:, 1:]
        return feats.to(images.dtype)
