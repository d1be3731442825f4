"""The preprocessed-image cache: keys, bounds, the disk layer, and identical answers with it."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

from aligngpt.data.base import Sample
from aligngpt.engine import batched
from aligngpt.engine.batched import InferenceEngine
from aligngpt.engine.pixel_cache import PixelCache, settings_fingerprint
from aligngpt.processing.image import ImageProcessorSettings


def _png(color: tuple[int, int, int], size=(20, 12)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def test_keys_follow_image_and_every_pixel_setting():
    cache = PixelCache()
    s = ImageProcessorSettings(shortest_edge=48, crop_height=48, crop_width=48)
    red, blue = _png((255, 0, 0)), _png((0, 0, 255))
    assert cache.key(red, s, True) == cache.key(bytes(red), s, True)
    assert cache.key(red, s, True) != cache.key(blue, s, True)
    assert cache.key(red, s, True) != cache.key(red, s, False)  # pad-to-square changes pixels
    other = ImageProcessorSettings(shortest_edge=48, crop_height=48, crop_width=48, image_mean=(0.5, 0.5, 0.5))
    assert settings_fingerprint(s, True) != settings_fingerprint(other, True)
    assert cache.keys([None, red], s, True)[0] is None


def test_file_identity_changes_when_the_file_does(tmp_path):
    cache = PixelCache()
    s = ImageProcessorSettings()
    path = tmp_path / "a.png"
    path.write_bytes(_png((1, 2, 3)))
    first = cache.key(path, s, True)
    assert first == cache.key(str(path), s, True)
    path.write_bytes(_png((1, 2, 3), size=(30, 30)))  # new size (and mtime)
    os.utime(path, ns=(1, 1))
    assert cache.key(path, s, True) != first
    assert cache.key(tmp_path / "missing.png", s, True) is None  # the loader reports it, not the cache


def test_memory_layer_is_a_byte_bounded_lru():
    t = torch.zeros(3, 4, 4)  # 192 bytes
    cache = PixelCache(max_bytes=2 * 192)
    cache.put("a", t)
    cache.put("b", t + 1)
    assert cache.get("a") is not None  # touch a: b is now the oldest
    cache.put("c", t + 2)
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert len(cache) == 2
    assert cache.hits == 3 and cache.misses == 1


def test_disk_layer_is_exact_shared_and_survives_a_torn_file(tmp_path):
    tensor = torch.from_numpy(np.random.default_rng(0).standard_normal((3, 8, 8)).astype(np.float32))
    key = "0123456789abcdef-bdeadbeef"
    PixelCache(tmp_path).put(key, tensor)
    fresh = PixelCache(tmp_path)  # another run: empty memory, same folder
    got = fresh.get(key)
    assert got is not None and torch.equal(got, tensor) and got.dtype == torch.float32
    (path,) = tmp_path.rglob("*.npy")
    path.write_bytes(path.read_bytes()[:40])  # torn
    assert PixelCache(tmp_path).get(key) is None
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.fixture(scope="module")
def tiny(official_tiny):
    import aligngpt

    return aligngpt.load_pretrained(official_tiny / "checkpoint", dtype=torch.float32)


def test_engine_decodes_a_repeated_image_once_and_answers_the_same(tiny, monkeypatch):
    model, processor = tiny
    images = [_png((200, 30, 30)), _png((30, 200, 30)), _png((30, 30, 200))]
    # POPE-like: every image asked about four times, questions of different lengths
    samples = [Sample(question_id=i, question=("Is there a thing here? " * (1 + i % 4)).strip(), image=images[i % 3])
               for i in range(12)]
    opened = []
    real_open = batched.open_image
    monkeypatch.setattr(batched, "open_image", lambda ref, item="": opened.append(ref) or real_open(ref, item=item))
    kwargs = dict(template="vicuna_v1", max_new_tokens=4, pad_to_square=True, batch_size=4)
    cached, _ = InferenceEngine(model, processor).generate(samples, **kwargs)
    assert len(opened) == 3
    opened.clear()
    plain, _ = InferenceEngine(model, processor, pixel_cache=False).generate(samples, **kwargs)
    assert len(opened) == 12
    assert [p.text for p in cached] == [p.text for p in plain]
    assert [p.key for p in cached] == [p.key for p in plain]


def test_run_with_an_image_cache_folder_fills_it_and_answers_the_same(tmp_path):
    from aligngpt.cli.eval_cli import main

    common = ["run", "--tasks", "pope", "--model", "toy", "--limit", "12", "--batch-size", "4", "--fresh",
              "--canary", "never"]
    assert main([*common, "--output-dir", str(tmp_path / "plain")]) == 0
    cache = tmp_path / "pixels"
    assert main([*common, "--output-dir", str(tmp_path / "cold"), "--image-cache", str(cache)]) == 0
    files = list(cache.rglob("*.npy"))
    assert files  # pope's 12 questions over their images
    assert main([*common, "--output-dir", str(tmp_path / "warm"), "--image-cache", str(cache)]) == 0
    assert sorted(cache.rglob("*.npy")) == sorted(files)

    def answers(folder):
        (f,) = folder.glob("*/pope/answers.jsonl")
        return f.read_text()

    assert answers(tmp_path / "plain") == answers(tmp_path / "cold") == answers(tmp_path / "warm")
