"""Preprocessed images, kept so an image asked about several times is decoded once.

POPE asks about each image in three splits, MME twice per image, MMBench's circular copies four
times, and an ablation grid re-reads the same benchmark for every checkpoint; decoding and CLIP
preprocessing are the largest cost outside the model for small models. Entries are keyed by the
image's identity (the bytes' SHA-1, or a file's resolved path, size and modification time) and by
every processor setting that can change a pixel (sizes, mean/std, resampling, crop, padding
colour, pad-to-square), so a different checkpoint's processor never reads another's pixels.

An in-memory LRU bounded by bytes serves one run; ``folder`` adds an on-disk layer (float32
``.npy``, exact, written atomically) that later runs and other processes share.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..data.base import ImageRef
from ..io import atomic_write_bytes
from ..processing.image import ImageProcessorSettings

CACHE_VERSION = 1
DEFAULT_MEMORY_BYTES = 512 * 2**20


def settings_fingerprint(settings: ImageProcessorSettings, pad_to_square: bool) -> str:
    fields = dataclasses.asdict(settings)
    fields.update(pad_to_square=bool(pad_to_square), version=CACHE_VERSION)
    return hashlib.sha1(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


def image_identity(ref: ImageRef) -> Optional[str]:
    """A stable id for the image, or ``None`` when it cannot be had cheaply (then: no caching)."""
    if isinstance(ref, (bytes, bytearray)):
        return "b" + hashlib.sha1(bytes(ref)).hexdigest()
    try:
        path = os.path.abspath(os.fspath(ref))
        stat = os.stat(path)
    except (OSError, TypeError):
        return None  # a missing file: let the loader raise its clear error
    return "f" + hashlib.sha1(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()


class PixelCache:
    def __init__(self, folder: str | Path | None = None, max_bytes: int = DEFAULT_MEMORY_BYTES):
        self.folder = Path(folder) if folder else None
        self.max_bytes = max(0, int(max_bytes))
        self._items: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def key(self, ref: ImageRef, settings: ImageProcessorSettings, pad_to_square: bool) -> Optional[str]:
        return self.keys([ref], settings, pad_to_square)[0]

    def keys(self, refs, settings: ImageProcessorSettings, pad_to_square: bool) -> list[Optional[str]]:
        """One key per image (``None`` for no image or an image that cannot be identified)."""
        prefix = settings_fingerprint(settings, pad_to_square)
        out = []
        for ref in refs:
            identity = None if ref is None else image_identity(ref)
            out.append(None if identity is None else f"{prefix}-{identity}")
        return out

    def _disk_path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / key[:16] / f"{key[17:]}.npy"

    def get(self, key: Optional[str]) -> Optional[torch.Tensor]:
        if key is None:
            return None
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return hit
        if self.folder is not None:
            path = self._disk_path(key)
            if path.is_file():
                try:
                    tensor = torch.from_numpy(np.load(path, allow_pickle=False))
                except (OSError, ValueError):
                    tensor = None  # a torn or foreign file: recompute and overwrite
                if tensor is not None:
                    self._remember(key, tensor)
                    self.hits += 1
                    return tensor
        self.misses += 1
        return None

    def put(self, key: Optional[str], tensor: torch.Tensor) -> None:
        if key is None:
            return
        self._remember(key, tensor)
        if self.folder is not None:
            path = self._disk_path(key)
            if not path.is_file():
                buffer = io.BytesIO()
                np.save(buffer, tensor.numpy(), allow_pickle=False)
                atomic_write_bytes(path, buffer.getvalue(), durable=False)

    def _remember(self, key: str, tensor: torch.Tensor) -> None:
        size = tensor.element_size() * tensor.numel()
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = tensor
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.element_size() * old.numel()

    def __len__(self) -> int:
        return len(self._items)
