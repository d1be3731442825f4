"""CLIP image preprocessing, bit-for-bit as transformers 4.31's slow ``CLIPImageProcessor``.

Written on PIL + numpy (no torchvision): resize the shortest edge with PIL bicubic, centre crop
with floor offsets, rescale in float64 then cast to float32, normalise in float32. The reference
pads to a square with the mean colour first (``expand2square``) when the task says so.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class ImageProcessorSettings:
    shortest_edge: int = 336
    crop_height: int = 336
    crop_width: int = 336
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD
    rescale_factor: float = 1 / 255
    resample: int = 3  # PIL bicubic
    do_resize: bool = True
    do_center_crop: bool = True
    do_normalize: bool = True

    @classmethod
    def from_dict(cls, cfg: dict) -> "ImageProcessorSettings":
        size = cfg.get("size", {})
        shortest = size.get("shortest_edge", size) if isinstance(size, dict) else size
        if isinstance(shortest, dict):  # {"height": h, "width": w}
            shortest = shortest.get("height", 336)
        crop = cfg.get("crop_size", shortest)
        if isinstance(crop, dict):
            ch, cw = crop.get("height", shortest), crop.get("width", shortest)
        else:
            ch = cw = crop
        return cls(
            shortest_edge=int(shortest),
            crop_height=int(ch),
            crop_width=int(cw),
            image_mean=tuple(cfg.get("image_mean", CLIP_MEAN)),
            image_std=tuple(cfg.get("image_std", CLIP_STD)),
            rescale_factor=float(cfg.get("rescale_factor", 1 / 255)),
            resample=int(cfg.get("resample", 3)),
            do_resize=bool(cfg.get("do_resize", True)),
            do_center_crop=bool(cfg.get("do_center_crop", True)),
            do_normalize=bool(cfg.get("do_normalize", True)),
        )

    @classmethod
    def from_folder(cls, folder: str | Path) -> "ImageProcessorSettings":
        path = Path(folder) / "preprocessor_config.json"
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def to_dict(self) -> dict:
        return {
            "image_processor_type": "CLIPImageProcessor",
            "size": {"shortest_edge": self.shortest_edge},
            "crop_size": {"height": self.crop_height, "width": self.crop_width},
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
            "rescale_factor": self.rescale_factor,
            "resample": self.resample,
            "do_resize": self.do_resize,
            "do_center_crop": self.do_center_crop,
            "do_normalize": self.do_normalize,
            "do_rescale": True,
            "do_convert_rgb": True,
        }

    @property
    def pad_color(self) -> tuple[int, int, int]:
        """``tuple(int(x*255) for x in image_mean)``: (122, 116, 104) for CLIP."""
        return tuple(int(x * 255) for x in self.image_mean)


def expand_to_square(image: Image.Image, background: tuple[int, ...]) -> Image.Image:
    """Pad the short side symmetrically (floor on the leading side) with the background colour."""
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    canvas = Image.new(image.mode, (side, side), background)
    if width > height:
        canvas.paste(image, (0, (width - height) // 2))
    else:
        canvas.paste(image, ((height - width) // 2, 0))
    return canvas


def _resize_shortest_edge(image: Image.Image, shortest: int, resample: int) -> Image.Image:
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    if short == shortest:
        return image
    new_short, new_long = shortest, int(shortest * long / short)
    new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
    return image.resize((new_w, new_h), resample=resample)


def clip_preprocess(image: Image.Image, settings: ImageProcessorSettings) -> np.ndarray:
    """One RGB image -> float32 array [3, H, W]."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    if settings.do_resize:
        image = _resize_shortest_edge(image, settings.shortest_edge, settings.resample)
    array = np.asarray(image)
    if settings.do_center_crop:
        h, w = array.shape[:2]
        ch, cw = settings.crop_height, settings.crop_width
        if h < ch or w < cw:  # pad like the reference center_crop would (rare: tiny images)
            padded = np.zeros((max(h, ch), max(w, cw), 3), dtype=array.dtype)
            top_pad, left_pad = (max(h, ch) - h) // 2, (max(w, cw) - w) // 2
            padded[top_pad : top_pad + h, left_pad : left_pad + w] = array
            array, h, w = padded, padded.shape[0], padded.shape[1]
        top, left = (h - ch) // 2, (w - cw) // 2
        array = array[top : top + ch, left : left + cw]
    pixels = (array.astype(np.float64) * settings.rescale_factor).astype(np.float32)
    if settings.do_normalize:
        mean = np.asarray(settings.image_mean, dtype=np.float32)
        std = np.asarray(settings.image_std, dtype=np.float32)
        pixels = (pixels - mean) / std
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def preprocess_images(images: list[Image.Image], settings: ImageProcessorSettings, pad_to_square: bool) -> torch.Tensor:
    arrays = []
    for image in images:
        if pad_to_square:
            rgb = image.convert("RGB") if image.mode != "RGB" else image
            image = expand_to_square(rgb, settings.pad_color)
        arrays.append(clip_preprocess(image, settings))
    if not arrays:
        return torch.zeros(0, 3, settings.crop_height, settings.crop_width)
    return torch.from_numpy(np.stack(arrays))
