"""``AlignGPTProcessor``: prompts, tokenisation with ``<image>`` placeholders, images, batching."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image

from .conversation import CHAT_TEMPLATE, build_prompt as _build_prompt, get_template
from .hf_tokenizer import TokenizerProtocol
from .image import ImageProcessorSettings, preprocess_images


class AlignGPTProcessor:
    def __init__(
        self,
        tokenizer: TokenizerProtocol,
        image_settings: ImageProcessorSettings,
        *,
        image_aspect_ratio: str = "pad",
        template: str = "vicuna_v1",
    ):
        self.tokenizer = tokenizer
        self.image_settings = image_settings
        self.image_aspect_ratio = image_aspect_ratio
        self.template = template

    # -- text
    def build_prompt(self, question: str, has_image: bool = True, template: str | None = None) -> str:
        """The single-turn prompt; ``auto`` is this processor's template (the checkpoint's)."""
        template = template or self.template
        if template == "auto":
            template = self.template
        if template == CHAT_TEMPLATE:
            text = ("<image>\n" + question) if has_image else question
            return self.tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True)
        return _build_prompt(question, has_image, template)

    def stop_token_ids(self, template: str | None = None) -> list[int]:
        """EOS plus the template's end-of-turn marker when it is one token (chat models stop there)."""
        ids = [] if self.tokenizer.eos_token_id is None else [int(self.tokenizer.eos_token_id)]
        template = template or self.template
        stop = "" if template in (CHAT_TEMPLATE, "auto") else get_template(template).stop
        if stop:
            marker = self.tokenizer.encode(stop, add_bos=False)
            if len(marker) == 1 and marker[0] not in ids:
                ids.append(marker[0])
        return ids

    def tokenize(self, prompt: str) -> list[int]:
        return self.tokenizer.tokenize_with_images(prompt)

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens)

    def batch_decode(self, rows, skip_special_tokens: bool = True) -> list[str]:
        return self.tokenizer.batch_decode(rows, skip_special_tokens)

    # -- images
    def preprocess_images(self, images: Sequence[Image.Image], pad_to_square: bool | None = None) -> torch.Tensor:
        """``pad_to_square`` None follows the checkpoint (``image_aspect_ratio == 'pad'``)."""
        if pad_to_square is None:
            pad_to_square = self.image_aspect_ratio == "pad"
        return preprocess_images(list(images), self.image_settings, pad_to_square)

    # -- batches
    def pad(self, rows: Sequence[Sequence[int]], padding_side: str = "left") -> tuple[torch.Tensor, torch.Tensor]:
        width = max((len(r) for r in rows), default=0)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row)
            if n == 0:
                continue
            if padding_side == "left":
                ids[i, width - n :] = torch.tensor(row, dtype=torch.long)
                mask[i, width - n :] = 1
            else:
                ids[i, :n] = torch.tensor(row, dtype=torch.long)
                mask[i, :n] = 1
        return ids, mask

    def __call__(
        self,
        prompts: Sequence[str],
        images: Sequence[Image.Image | None] | None = None,
        *,
        padding_side: str = "left",
        pad_to_square: bool | None = None,
    ) -> dict:
        """Tokenise prompts (left padding by default) and preprocess the images of rows that have one.

        ``images[i]`` belongs to ``prompts[i]``; a prompt with ``<image>`` needs an image, a
        text-only prompt takes ``None``.
        """
        images = list(images) if images is not None else [None] * len(prompts)
        if len(images) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(images)} images")
        rows = [self.tokenize(p) for p in prompts]
        used = []
        for i, (prompt, image) in enumerate(zip(prompts, images)):
            n_slots = prompt.count("<image>")
            if n_slots and image is None:
                raise ValueError(f"prompt {i} has an <image> placeholder but no image")
            if not n_slots and image is not None:
                raise ValueError(f"prompt {i} has an image but no <image> placeholder")
            if n_slots > 1:
                raise ValueError(f"prompt {i} has {n_slots} <image> placeholders; one image per prompt is supported")
            if image is not None:
                used.append(image)
        input_ids, attention_mask = self.pad(rows, padding_side)
        pixel = self.preprocess_images(used, pad_to_square) if used else None
        return {"input_ids": input_ids, "attention_mask": attention_mask, "images": pixel}

    # -- persistence
    def save_pretrained(self, folder: str | Path) -> None:
        folder = Path(folder)
        self.tokenizer.save_pretrained(folder)
        cfg = self.image_settings.to_dict()
        (folder / "preprocessor_config.json").write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
