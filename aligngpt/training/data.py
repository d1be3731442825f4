"""Training samples and batches in the reference's formats (docs/reference-code.md, section 8).

Stage 1 reads the 558K caption file with its integer ``similarity`` level (the ``align_id``) and
the ``plain`` template; stage 2 reads mix665k conversations with ``vicuna_v1``, including
text-only samples (no ``image`` key). Samples are tokenised lazily, as the reference does.

Batches: right-padded ids (pad id), labels (IGNORE), ``attention_mask = ids != pad`` and ids cut
to ``model_max_length`` (reference collator). Images are stacked only for rows that have one (the
model takes one image per ``<image>`` placeholder; the reference's zero dummy image for text-only
rows is unnecessary). ``align_ids`` is present only at stage 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from aligngpt.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from aligngpt.data.images import truncated_images_allowed
from aligngpt.data.base import resolve_image_path
from aligngpt.errors import DataError
from aligngpt.processing import ImageProcessorSettings, LlamaSPTokenizer
from aligngpt.processing.image import preprocess_images
from aligngpt.processing.training_preprocess import TrainingExample, collate, preprocess_sample

from .records import load_records, where
from .sampler import modality_length

TEXT_TRUNCATIONS = ("none", "reference")


class TrainingDataset(torch.utils.data.Dataset):
    """LLaVA-format records -> ``{input_ids, labels, image, align_id}`` per sample."""

    def __init__(
        self,
        data_path: str | Path,
        image_folder: str | Path | None,
        tokenizer: LlamaSPTokenizer,
        template: str,
        image_settings: ImageProcessorSettings,
        image_aspect_ratio: str = "square",
        *,
        n_levels: int | None = None,
        limit: int | None = None,
    ):
        self.path = Path(data_path)
        self.records = load_records(self.path)
        if limit is not None:
            self.records = self.records[:limit]
        if not self.records:
            raise DataError(self.path, "no training records")
        self.image_folder = Path(image_folder) if image_folder is not None else None
        self.tokenizer = tokenizer
        self.template = template
        self.settings = image_settings
        self.pad_to_square = image_aspect_ratio == "pad"
        self.n_levels = n_levels
        if any("image" in r for r in self.records) and self.image_folder is None:
            raise DataError(self.path, "records have images but no --image-folder was given")
        if n_levels is not None:
            self._check_levels()

    def _check_levels(self) -> None:
        for k, rec in enumerate(self.records):
            if "image" not in rec:
                continue
            level = rec.get("similarity")
            if isinstance(level, bool) or not isinstance(level, int):
                raise DataError(
                    self.path,
                    f"{where(rec, k)}: needs an integer 'similarity' level (run aligngpt-train score-alignment), got {level!r}",
                )
            if not 0 <= level < self.n_levels:
                raise DataError(self.path, f"{where(rec, k)}: similarity {level} outside 0..{self.n_levels - 1}")

    def __len__(self) -> int:
        return len(self.records)

    @property
    def modality_lengths(self) -> list[int]:
        return [modality_length(r) for r in self.records]

    def _image(self, rec: dict, k: int) -> torch.Tensor:
        path = resolve_image_path(self.image_folder, rec["image"], source_file=self.path)
        try:
            with truncated_images_allowed(), Image.open(path) as im:  # as the reference dataset
                image = im.convert("RGB")
        except (OSError, ValueError) as exc:
            raise DataError(self.path, f"{where(rec, k)}: cannot read image {path}: {exc}") from None
        return preprocess_images([image], self.settings, self.pad_to_square)[0]

    def __getitem__(self, k: int) -> dict[str, Any]:
        rec = self.records[k]
        has_image = "image" in rec
        try:
            example = preprocess_sample(rec["conversations"], self.tokenizer, self.template, has_image)
        except ValueError as exc:
            raise DataError(self.path, f"{where(rec, k)}: {exc}") from None
        return {
            "input_ids": example.input_ids,
            "labels": example.labels,
            "image": self._image(rec, k) if has_image else None,
            "align_id": rec.get("similarity") if (has_image and self.n_levels is not None) else None,
        }


@dataclass
class TrainingCollator:
    """Pads a list of samples into the model's training inputs.

    ``text_truncation="reference"`` reproduces reference quirk 9: in a batch that also holds image
    samples, text-only rows are cut to the longest image row's length (image tokens expanded, cut
    to ``tokenizer_model_max_length - 1``) plus one. The default ``"none"`` keeps them whole; the
    model itself never truncates them.
    """

    pad_token_id: int
    model_max_length: int
    num_image_tokens: int
    text_truncation: str = "none"
    tokenizer_model_max_length: int | None = None

    def __post_init__(self) -> None:
        if self.text_truncation not in TEXT_TRUNCATIONS:
            raise ValueError(f"text_truncation must be one of {TEXT_TRUNCATIONS}")

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor | None]:
        examples = [TrainingExample(f["input_ids"], f["labels"]) for f in features]
        ids, labels, mask = collate(examples, self.pad_token_id, self.model_max_length)
        if self.text_truncation == "reference":
            self._truncate_text_rows(ids, labels, mask)
        images = [f["image"] for f in features if f["image"] is not None]
        batch: dict[str, torch.Tensor | None] = {
            "input_ids": ids,
            "labels": labels,
            "attention_mask": mask,
            "images": torch.stack(images) if images else None,
        }
        levels = [f.get("align_id") for f in features]
        if any(level is not None for level in levels):
            # Text-only rows get no alignment slot; their entry is a placeholder the model ignores.
            batch["align_ids"] = torch.tensor([0 if x is None else x for x in levels], dtype=torch.long)
        return batch

    def _truncate_text_rows(self, ids: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> None:
        n_img = (ids == IMAGE_TOKEN_INDEX).sum(dim=1)
        has_image = n_img > 0
        if not bool(has_image.any()) or bool(has_image.all()):
            return
        expanded = mask.sum(dim=1) - n_img + n_img * self.num_image_tokens
        if self.tokenizer_model_max_length is not None:
            expanded = expanded.clamp(max=self.tokenizer_model_max_length - 1)
        keep = int(expanded[has_image].max().item()) + 1
        for row in (~has_image).nonzero(as_tuple=True)[0].tolist():
            ids[row, keep:] = self.pad_token_id
            labels[row, keep:] = IGNORE_INDEX
            mask[row, keep:] = 0
