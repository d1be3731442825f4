"""The CLIP vision tower, wrapped so its keys are ``vision_tower.vision_tower.vision_model.*``."""
from __future__ import annotations

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

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        param = next(self.vision_tower.parameters())
        out = self.vision_tower(images.to(device=param.device, dtype=param.dtype), output_hidden_states=True)
        feats = out.hidden_states[self.select_layer]
        if self.select_feature == "patch":
            feats = feats[:, 1:]
        return feats.to(images.dtype)
