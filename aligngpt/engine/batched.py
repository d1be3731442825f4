"""The batched inference engine behind ``run``.

Questions are sorted by the length of the sequence the LM sees, so each batch pads little, and
batches are a fixed count (CPU) or sized by a token budget (GPU, ``planner``). Images are
decoded and preprocessed on worker threads (or DataLoader workers) while the model runs, and
every batch's answers are handed to a callback (the journal) as soon as they exist. Greedy
answers do not depend on the batch: rows are left-padded with the alignment slot after each
row's own BOS. On a GPU, decoding runs at fixed shapes under CUDA graphs (``static_decode``).
"""
from __future__ import annotations

import logging
import os
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
from .attention import packed_prefill_attention
from .pixel_cache import PixelCache
from .planner import GPU_RAMP, plan_batches, sequence_length
from .static_decode import static_generate, supports_static_decode

log = logging.getLogger(__name__)
DECODE_MODES = ("auto", "dynamic", "static", "graph")


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


def _prefetched(dataset: _PromptDataset, batches: list[list[int]], threads: int = 1):
    """Batches of ``dataset`` with the next one decoded on ``threads`` background threads while
    the caller runs the model on the current one (``--num-workers 0``: no worker processes to
    start, and PIL decoding, numpy and torch all release the GIL for their heavy parts). One
    thread decoded and preprocessed 36-87 CLIP-336 PNGs/s on this repo's shared CPU host, about
    what a fast GPU answers, hence several threads beside one."""
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="aligngpt-prefetch") as pool:
        def submit(k: int):
            return [pool.submit(dataset.__getitem__, i) for i in batches[k]] if k < len(batches) else None

        pending = submit(0)
        for k in range(len(batches)):
            current, pending = pending, submit(k + 1)
            yield [f.result() for f in current]


def default_prefetch_threads(device: torch.device) -> int:
    """One on a CPU (the model needs the cores), up to 8 beside a GPU."""
    return 1 if device.type != "cuda" else max(1, min(8, (os.cpu_count() or 2) - 1))


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
        token_budget: int | None = None,
        decode: str | None = None,
        prefetch_threads: int | None = None,
    ):
        """``pixel_cache``: ``True`` (default) keeps preprocessed images in memory for the
        engine's lifetime (bounded LRU), a :class:`PixelCache` brings its own (e.g. on disk),
        ``False``/``None`` decodes every image every time. ``token_budget``: a batch holds at
        most this many padded tokens (prompt + answer budget) and at most ``batch_size`` rows;
        None: ``batch_size`` rows. ``decode``: ``dynamic`` (``model.generate``, growing cache),
        ``static`` (fixed shapes, eager), ``graph`` (fixed shapes under CUDA graphs), ``auto``
        (graph on CUDA, dynamic elsewhere). Unset, both come from ``ALIGNGPT_TOKEN_BUDGET`` and
        ``ALIGNGPT_DECODE`` when those are set (so ``run`` can be switched without a flag)."""
        decode = decode or os.environ.get("ALIGNGPT_DECODE") or "auto"
        if token_budget is None and os.environ.get("ALIGNGPT_TOKEN_BUDGET"):
            token_budget = int(os.environ["ALIGNGPT_TOKEN_BUDGET"])
        if decode not in DECODE_MODES:
            raise ValueError(f"decode must be one of {', '.join(DECODE_MODES)}, got {decode!r}")
        self.token_budget = token_budget
        self.decode = decode
        self.prefetch_threads = prefetch_threads
        self.timings: dict | None = None
        """When a dict, fixed-shape decoding adds its ``prefill_s``/``decode_s`` to it (profiling:
        the device is synchronised between the phases)."""
        self.packed_attention: str | None = None
        """Attention implementation of a pad-free prefill; None: chosen by ``attention.py``
        (FlashAttention varlen on a GPU that has it), "" forces the padded SDPA prefill."""
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

    def decode_mode(self) -> str:
        """The decode path this engine runs now: ``dynamic``, ``static`` or ``graph``."""
        mode = self.decode
        if mode == "auto":
            mode = "graph" if self.device.type == "cuda" else "dynamic"
        if mode == "graph" and self.device.type != "cuda":
            raise ValueError("decode='graph' (CUDA graphs) needs the model on a CUDA device")
        if mode != "dynamic" and not supports_static_decode(self.model):
            log.warning("fixed-shape decoding needs sdpa or eager attention on a Llama-style LM; using generate")
            mode = "dynamic"
        return mode

    def sequence_lengths(self, token_ids: Sequence[Sequence[int]]) -> list[int]:
        """Length of each prompt as the LM sees it (images expanded), for ordering and budgets."""
        cfg = self.model.config
        tokens = cfg.num_image_tokens or 0
        return [sequence_length(ids, tokens, getattr(cfg, "tokenizer_model_max_length", None)) for ids in token_ids]

    def _answer(self, input_ids, attention_mask, images, max_new_tokens: int, mode: str):
        """New tokens and gate weights of one padded batch, on the model's device."""
        eos = self.model.config.eos_token_id
        if mode == "dynamic":
            out = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, images=images,
                                      max_new_tokens=max_new_tokens, do_sample=False, align_mode=self.align_mode,
                                      eos_token_id=eos, return_dict=True)
            return out.sequences, out.alignment_weights
        pad = self.model.config.pad_token_id
        packed = self.packed_attention
        if packed is None:
            packed = packed_prefill_attention(self.device, next(self.model.parameters()).dtype, mode)
        out = static_generate(self.model, input_ids, attention_mask, images, max_new_tokens=max_new_tokens,
                              eos_token_id=eos, pad_token_id=0 if pad is None else pad, align_mode=self.align_mode,
                              cuda_graph=mode == "graph", packed_attention=packed or None, timings=self.timings)
        return out.sequences, out.alignment_weights

    def _answer_items(self, items, token_ids, max_new_tokens: int, mode: str, stats: EngineStats):
        """Pad, run and fetch one batch: token lists and gate weights on the CPU. A batch that
        runs out of device memory (the token budget is an estimate) is answered in two halves,
        and later batches get half the budget; answers do not depend on the batch."""
        rows = [token_ids[i] for i, _ in items]
        input_ids, attention_mask = self.processor.pad(rows, padding_side="left")
        pixels = [p for _, p in items if p is not None]
        images = torch.stack(pixels) if pixels else None
        device = self.device
        t0 = time.perf_counter()
        try:
            out_ids, weights = self._answer(input_ids.to(device, non_blocking=True),
                                            attention_mask.to(device, non_blocking=True),
                                            None if images is None else images.to(device, non_blocking=True),
                                            max_new_tokens, mode)
            sequences = out_ids.cpu().tolist()  # waits for the device
            weights = None if weights is None else weights.float().cpu()  # one copy, not one per row
            return sequences, weights
        except torch.OutOfMemoryError:
            if len(items) == 1:
                raise
        finally:
            stats.model_s += time.perf_counter() - t0
        del input_ids, attention_mask, images
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if self.token_budget:
            self.token_budget = max(1, self.token_budget // 2)
        log.warning("out of device memory on a batch of %d; answering it in halves (token budget now %s)",
                    len(items), self.token_budget)
        half = len(items) // 2
        first, w1 = self._answer_items(items[:half], token_ids, max_new_tokens, mode, stats)
        second, w2 = self._answer_items(items[half:], token_ids, max_new_tokens, mode, stats)
        weights = None if w1 is None or w2 is None else torch.cat([w1, w2])
        return first + second, weights

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
        # Longest first (by LM sequence length): the first batch shows memory trouble early;
        # equal lengths batch together; image and text-only rows do not share a padded batch.
        size = batch_size or self.batch_size  # the row cap; the token budget (when set) bounds it too
        ramp = GPU_RAMP if self.token_budget is not None else None  # budgeted batches start small
        batches = plan_batches(self.sequence_lengths(token_ids), size, self.token_budget, reserve=max_new_tokens,
                               ramp=ramp)
        mode = self.decode_mode()
        threads = self.prefetch_threads or default_prefetch_threads(self.device)
        cache = self.pixel_cache
        settings = self.processor.image_settings
        keys = (cache.keys([s.image for s in samples], settings, pad_to_square) if cache is not None
                else [None] * len(samples))
        dataset = _PromptDataset(samples, self.processor, pad_to_square, cache, keys)
        if self.num_workers:
            loader = DataLoader(dataset, batch_sampler=batches, collate_fn=_collate, num_workers=self.num_workers,
                                persistent_workers=False)
        else:
            loader = _prefetched(dataset, batches, threads)
        results: list[Prediction] = []
        for items in loader:
            bad = next((p for _, p in items if isinstance(p, _ItemError)), None)
            if bad is not None:  # stop before this batch; the earlier ones are already handed over
                raise DataError(bad.path, bad.message, bad.line)
            if cache is not None and self.num_workers:
                for i, p in items:  # workers filled their own copies; keep them here too
                    if p is not None:
                        cache.put(keys[i], p)
            sequences, weights = self._answer_items(items, token_ids, max_new_tokens, mode, stats)
            texts = self.processor.batch_decode(sequences, skip_special_tokens=True)
            batch_preds = []
            for row, (i, _) in enumerate(items):
                text = texts[row].strip()
                if text.endswith("</s>"):
                    text = text[: -len("</s>")].strip()
                w = None
                if weights is not None and not torch.isnan(weights[row]).any():
                    w = [float(x) for x in weights[row]]
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
