"""The batched inference engine behind ``run``.

Questions are sorted by prompt length so each batch pads little, images are decoded and
preprocessed in DataLoader workers while the model runs, and every batch's answers are handed
to a callback (the journal) as soon as they exist. Greedy answers do not depend on the batch:
rows are left-padded with the alignment slot after each row's own BOS.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from ..data.base import Sample
from ..data.images import open_image
from ..errors import DataError
from ..processing.processor import AlignGPTProcessor
from .pixel_cache import PixelCache


@dataclass
class Prediction:
    key: str
    question_id: object
    prompt: str
    text: str
    alignment_weights: list[float] | None


@dataclass
class EngineStats:
    samples: int = 0
    wall_s: float = 0.0
    model_s: float = 0.0

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.wall_s if self.wall_s else 0.0

    @property
    def outside_model_share(self) -> float:
        return 1.0 - self.model_s / self.wall_s if self.wall_s else 0.0


@dataclass
class _ItemError:
    """A bad input met while decoding, carried to the main process as data: torch re-raises a
    worker's exception as ``RuntimeError(traceback text)``, which would turn the one-line
    :class:`DataError` (question id + file) into a traceback under ``--num-workers``."""

    path: str | None
    message: str
    line: int | None


class _PromptDataset(Dataset):
    """Decodes and preprocesses one question's image (in a DataLoader worker when there are
    any), or takes it from the pixel cache (a worker sees the cache as it was at its start)."""

    def __init__(self, samples, processor, pad_to_square, cache: PixelCache | None, keys):
        self.samples, self.processor, self.pad_to_square = samples, processor, pad_to_square
        self.cache, self.keys = cache, keys

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        sample = self.samples[i]
        pixels = None
        if sample.image is not None:
            key = self.keys[i]
            pixels = self.cache.get(key) if self.cache is not None else None
            if pixels is None:
                try:
                    image = open_image(sample.image, item=f"question {sample.question_id}")
                except DataError as exc:
                    return i, _ItemError(exc.path, exc.message, exc.line)
                pixels = self.processor.preprocess_images([image], self.pad_to_square)[0]
                if self.cache is not None:
                    self.cache.put(key, pixels)
        return i, pixels


def _collate(items):
    return items


def _prefetched(dataset: _PromptDataset, batches: list[list[int]]):
    """Batches of ``dataset`` with the next one decoded in a background thread while the
    caller runs the model on the current one (``--num-workers 0``: no worker processes to
    start, and PIL decoding, numpy and torch all release the GIL for their heavy parts)."""
    def load(indices: list[int]):
        return [dataset[i] for i in indices]

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="aligngpt-prefetch") as pool:
        pending = pool.submit(load, batches[0]) if batches else None
        for k in range(len(batches)):
            items = pending.result()
            pending = pool.submit(load, batches[k + 1]) if k + 1 < len(batches) else None
            yield items


class InferenceEngine:
    def __init__(
        self,
        model,
        processor: AlignGPTProcessor,
        *,
        batch_size: int = 8,
        num_workers: int = 0,
        align_mode: str | None = None,
        pixel_cache: PixelCache | None | bool = True,
    ):
        """``pixel_cache``: ``True`` (default) keeps preprocessed images in memory for the
        engine's lifetime (bounded LRU), a :class:`PixelCache` brings its own (e.g. on disk),
        ``False``/``None`` decodes every image every time."""
        self.model = model
        if pixel_cache is True:
            pixel_cache = PixelCache()
        self.pixel_cache = pixel_cache if isinstance(pixel_cache, PixelCache) else None
        self.processor = processor
        self.batch_size = max(1, int(batch_size))
        self.num_workers = num_workers
        self.align_mode = align_mode

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def prompt_for(self, sample: Sample, template: str) -> str:
        return self.processor.build_prompt(sample.question, has_image=sample.image is not None, template=template)

    def generate(
        self,
        samples: Sequence[Sample],
        *,
        template: str,
        max_new_tokens: int,
        pad_to_square: bool,
        on_batch: Callable[[list[Prediction]], None] | None = None,
        progress: Callable[[int], None] | None = None,
        batch_size: int | None = None,
    ) -> tuple[list[Prediction], EngineStats]:
        start = time.perf_counter()
        stats = EngineStats()
        prompts = [self.prompt_for(s, template) for s in samples]
        token_ids = [self.processor.tokenize(p) for p in prompts]
        # Longest first: the first batch shows memory trouble early; equal lengths batch together.
        order = sorted(range(len(samples)), key=lambda i: (-len(token_ids[i]), i))
        size = batch_size or self.batch_size
        batches = [order[i : i + size] for i in range(0, len(order), size)]
        cache = self.pixel_cache
        settings = self.processor.image_settings
        keys = (cache.keys([s.image for s in samples], settings, pad_to_square) if cache is not None
                else [None] * len(samples))
        dataset = _PromptDataset(samples, self.processor, pad_to_square, cache, keys)
        if self.num_workers:
            loader = DataLoader(dataset, batch_sampler=batches, collate_fn=_collate, num_workers=self.num_workers,
                                persistent_workers=False)
        else:
            loader = _prefetched(dataset, batches)
        results: list[Prediction] = []
        eos = self.model.config.eos_token_id
        for items in loader:
            bad = next((p for _, p in items if isinstance(p, _ItemError)), None)
            if bad is not None:  # stop before this batch; the earlier ones are already handed over
                raise DataError(bad.path, bad.message, bad.line)
            if cache is not None and self.num_workers:
                for i, p in items:  # workers filled their own copies; keep them here too
                    if p is not None:
                        cache.put(keys[i], p)
            rows = [token_ids[i] for i, _ in items]
            input_ids, attention_mask = self.processor.pad(rows, padding_side="left")
            pixels = [p for _, p in items if p is not None]
            images = torch.stack(pixels) if pixels else None
            device = self.device
            t0 = time.perf_counter()
            out = self.model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                images=None if images is None else images.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                align_mode=self.align_mode,
                eos_token_id=eos,
                return_dict=True,
            )
            if device.type == "cuda":
                torch.cuda.synchronize()
            stats.model_s += time.perf_counter() - t0
            sequences = out.sequences.cpu().tolist()
            weights = out.alignment_weights
            batch_preds = []
            for row, (i, _) in enumerate(items):
                text = self.processor.batch_decode([sequences[row]], skip_special_tokens=True)[0].strip()
                if text.endswith("</s>"):
                    text = text[: -len("</s>")].strip()
                w = None
                if weights is not None and not torch.isnan(weights[row]).any():
                    w = [float(x) for x in weights[row].float().cpu()]
                s = samples[i]
                batch_preds.append(Prediction(s.key, s.question_id, prompts[i], text, w))
            results.extend(batch_preds)
            stats.samples += len(batch_preds)
            if on_batch is not None:
                on_batch(batch_preds)
            if progress is not None:
                progress(len(batch_preds))
        stats.wall_s = time.perf_counter() - start
        return results, stats
