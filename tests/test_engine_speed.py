"""The engine's speed paths on a CPU: token-budget batches, fixed-shape decoding (the CUDA-graph path
run eagerly), the pad-free prefill, attention selection and threaded image decoding all give the
batch-1 answers; the GPU-only parts are checked for shape and logic."""
from __future__ import annotations

import torch
import torch.nn.functional as F
import pytest
from PIL import Image
from transformers import AttentionInterface

import aligngpt
from aligngpt.constants import IMAGE_TOKEN_INDEX
from aligngpt.engine import attention, autobatch, static_decode
from aligngpt.engine.batched import InferenceEngine, _prefetched
from aligngpt.engine.bench import random_7b_model, synthetic_workload
from aligngpt.engine.planner import (GPU_RAMP, kv_bytes_per_token, plan_batches, sequence_length,
                                     token_budget_for_memory)


# ---------------------------------------------------------------------------- planner
def test_sequence_length_expands_images_and_counts_the_alignment_slot():
    assert sequence_length([1, 5, IMAGE_TOKEN_INDEX, 7, 8], 576) == 4 + 576 + 1
    assert sequence_length([1, 5, 7], 576) == 3  # text-only: no image, no slot
    assert sequence_length([1, IMAGE_TOKEN_INDEX] + [3] * 10, 576, max_length=100) == 99 + 1  # cut as plan_layout


def test_plan_batches_without_budget_is_fixed_counts_longest_first():
    lengths = [5, 9, 7, 9, 1]
    assert plan_batches(lengths, 2) == [[1, 3], [2, 0], [4]]


def test_plan_batches_respects_the_token_budget_and_the_row_cap():
    lengths = [100, 10, 50, 10, 10, 10, 10, 300]
    batches = plan_batches(lengths, max_batch=3, token_budget=240, reserve=20)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert batches[0] == [7]  # longer than the budget: alone rather than dropped
    for b in batches:
        assert len(b) <= 3
        assert len(b) == 1 or len(b) * (max(lengths[i] for i in b) + 20) <= 240
    assert [len(b) for b in batches] == [1, 2, 3, 2]  # 300 alone; 100 and 50 share; the cap splits the 10s


def test_budgeted_batches_ramp_up_so_the_device_starts_early():
    sizes = [len(b) for b in plan_batches([700] * 300, 256, token_budget=10**6, reserve=16, ramp=32)]
    assert sizes == [32, 64, 128, 76]
    assert [len(b) for b in plan_batches([700] * 300, 256, token_budget=100 * 716, reserve=16, ramp=32)] == [32, 64, 100, 100, 4]


def test_kv_budget_arithmetic_for_the_7b_shape():
    model = random_7b_model("cpu", torch.float32, num_hidden_layers=1, hidden_size=64, intermediate_size=128,
                            num_attention_heads=4, num_key_value_heads=4, vocab_size=64)
    config = model.config
    config.num_hidden_layers, config.hidden_size, config.num_attention_heads = 32, 4096, 32
    config.num_key_value_heads, config.intermediate_size = 32, 11008
    assert kv_bytes_per_token(config, torch.float16) == 2 * 32 * 4096 * 2  # 0.5 MiB per token
    budget = token_budget_for_memory(config, torch.float16, free_bytes=100 * 2**30, headroom=0.8)
    per_token = 2 * 32 * 4096 * 2 + 2 * (8 * 4096 + 3 * 11008)
    assert budget == int(0.8 * 100 * 2**30) // per_token
    assert 64 <= budget // (650 + 16) <= 256  # an H200's free memory holds 64-256 questions


# ---------------------------------------------------------------------------- fixed-shape decode
@pytest.fixture(scope="module")
def loaded(official_tiny):
    return aligngpt.load_pretrained(official_tiny / "checkpoint", dtype=torch.float32)


@pytest.fixture(scope="module")
def mixed_batch(loaded, official_tiny):
    model, processor = loaded
    images = sorted((official_tiny / "images").glob("*.png"))
    questions = ["What is in the image?", "Describe the colours of everything you can see in this picture, in detail.",
                 "Is there a shape?", "Count."]
    prompts = [processor.build_prompt(q, has_image=True, template="vicuna_v1") for q in questions]
    return processor(prompts, [Image.open(p) for p in images[: len(prompts)]])


def _static(model, batch, **kw):
    kw.setdefault("max_new_tokens", 12)
    kw.setdefault("eos_token_id", model.config.eos_token_id)
    return static_decode.static_generate(model, batch["input_ids"], batch["attention_mask"], batch["images"], **kw)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_fixed_shape_decode_gives_the_growing_cache_tokens(loaded, mixed_batch, attn):
    model, _ = loaded
    model.set_attn_implementation(attn)
    try:
        expected = model.generate(**mixed_batch, max_new_tokens=12, do_sample=False)
        got = _static(model, mixed_batch)
    finally:
        model.set_attn_implementation("sdpa")
    assert expected.shape == got.sequences.shape == (4, 12)
    assert torch.equal(got.sequences, expected)
    assert got.alignment_weights is not None and got.alignment_weights.shape == (4, 7)


def test_rows_that_finish_early_are_padded_as_generate_pads_them(loaded, mixed_batch):
    model, _ = loaded
    first = model.generate(**mixed_batch, max_new_tokens=12, do_sample=False)
    eos = int(first[0, 2])  # a token row 0 emits early: rows now stop at different steps
    expected = model.generate(**mixed_batch, max_new_tokens=12, do_sample=False, eos_token_id=eos, pad_token_id=0)
    got = _static(model, mixed_batch, eos_token_id=eos, pad_token_id=0)
    assert torch.equal(got.sequences, expected)
    assert (expected == 0).any()


def test_decode_steps_keep_every_tensor_in_place(loaded, mixed_batch, monkeypatch):
    """What CUDA graph capture needs: no step allocates the cache, mask, positions or logits anew."""
    model, _ = loaded
    seen = []
    real = static_decode._Stepper.step

    def recording(self):
        real(self)
        seen.append((self.visible.data_ptr(), self.positions.data_ptr(), self.logits.data_ptr(),
                     self.cache.keys[0].data_ptr(), tuple(self.cache.keys[0].shape), tuple(self.visible.shape)))

    monkeypatch.setattr(static_decode._Stepper, "step", recording)
    _static(model, mixed_batch)
    assert len(seen) == 11 and len(set(seen)) == 1


def test_graph_path_captures_once_and_replays_the_rest(loaded, mixed_batch, monkeypatch):
    """The CUDA-graph control flow on a CPU: one eager warm-up step, a capture that records without
    running (here: remembers ``step``), then replays. Same tokens as the eager path."""
    model, _ = loaded
    calls = {"capture": 0, "replay": 0}

    class FakeGraph:
        def __init__(self, step):
            self.step = step

        def replay(self):
            calls["replay"] += 1
            self.step()

    def capture(self):
        calls["capture"] += 1
        self.graph = FakeGraph(self.step)
        return True

    monkeypatch.setattr(static_decode._Stepper, "capture", capture)
    monkeypatch.setattr(static_decode._Stepper, "warm_up", static_decode._Stepper.advance)
    got = _static(model, mixed_batch, cuda_graph=True)
    assert got.graph_used and calls == {"capture": 1, "replay": 10}
    assert torch.equal(got.sequences, model.generate(**mixed_batch, max_new_tokens=12, do_sample=False))


def test_graph_decode_needs_cuda_and_unsupported_attention_falls_back(loaded):
    model, processor = loaded
    with pytest.raises(ValueError, match="CUDA"):
        InferenceEngine(model, processor, decode="graph").decode_mode()
    assert InferenceEngine(model, processor).decode_mode() == "dynamic"  # CPU default: today's path
    assert InferenceEngine(model, processor, decode="static").decode_mode() == "static"
    model.config._attn_implementation = "flash_attention_2"
    try:
        assert not static_decode.supports_static_decode(model)
        assert InferenceEngine(model, processor, decode="static").decode_mode() == "dynamic"
    finally:
        model.config._attn_implementation = "sdpa"


# ---------------------------------------------------------------------------- pad-free prefill
VARLEN_CALLS: list[int] = []  # rows per packed prefill layer call


def _reference_varlen(module, query, key, value, attention_mask, dropout=0.0, scaling=None, cu_seq_lens_q=None,
                      **kwargs):
    """What FlashAttention's varlen kernel computes: causal attention within each packed row."""
    VARLEN_CALLS.append(len(cu_seq_lens_q) - 1)
    assert attention_mask is None and cu_seq_lens_q is not None and query.shape[0] == 1
    groups = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1)
    cu = cu_seq_lens_q.tolist()
    parts = [F.scaled_dot_product_attention(query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], is_causal=True,
                                            scale=scaling) for a, b in zip(cu[:-1], cu[1:])]
    return torch.cat(parts, dim=2).transpose(1, 2).contiguous(), None


AttentionInterface.register("test_varlen_reference", _reference_varlen)


def test_packed_prefill_gives_the_padded_prefill_tokens(loaded, mixed_batch):
    model, _ = loaded
    got = _static(model, mixed_batch, packed_attention="test_varlen_reference")
    assert torch.equal(got.sequences, model.generate(**mixed_batch, max_new_tokens=12, do_sample=False))
    assert model.config._attn_implementation == "sdpa"  # restored for the decode and for later calls


def test_prefill_attention_selection():
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    pick = attention.packed_prefill_attention
    assert pick(cuda, torch.float16, "graph", flash_available=True) == "flash_attention_2"
    assert pick(cuda, torch.bfloat16, "static", flash_available=True) == "flash_attention_2"
    assert pick(cuda, torch.float32, "graph", flash_available=True) is None  # no fp32 flash kernel
    assert pick(cuda, torch.float16, "graph", flash_available=False) is None
    assert pick(cuda, torch.float16, "dynamic", flash_available=True) is None  # generate prefills padded
    assert pick(cpu, torch.float16, "static", flash_available=True) is None
    assert isinstance(attention.flash_attn_importable(), bool)


# ---------------------------------------------------------------------------- the engine
def test_token_budget_batches_give_the_batch_1_answers(loaded):
    model, processor = loaded
    samples = synthetic_workload(12, processor.image_settings.crop_height, words_range=(2, 60))
    kw = dict(template="vicuna_v1", max_new_tokens=6, pad_to_square=True)
    single, _ = InferenceEngine(model, processor, batch_size=1, pixel_cache=False).generate(samples, **kw)
    engine = InferenceEngine(model, processor, batch_size=16, token_budget=2400, decode="static", pixel_cache=False)
    engine.packed_attention = "test_varlen_reference"
    sizes = []
    VARLEN_CALLS.clear()
    batched, _ = engine.generate(samples, on_batch=lambda preds: sizes.append(len(preds)), **kw)
    layers = model.config.num_hidden_layers
    assert VARLEN_CALLS == [n for n in sizes for _ in range(layers)]  # every batch prefilled pad-free
    lengths = engine.sequence_lengths([processor.tokenize(engine.prompt_for(s, "vicuna_v1")) for s in samples])
    assert sizes == [len(b) for b in plan_batches(lengths, 16, 2400, reserve=6, ramp=GPU_RAMP)]
    assert sum(sizes) == 12 and max(sizes) <= 2400 // (min(lengths) + 6) < 12  # the budget decided, not the count
    assert {p.key: p.text for p in batched} == {p.key: p.text for p in single}
    weights = {p.key: p.alignment_weights for p in single}
    for p in batched:
        assert p.alignment_weights == pytest.approx(weights[p.key], abs=1e-6)


def test_environment_switches_the_run_engine(loaded, monkeypatch):
    model, processor = loaded
    monkeypatch.setenv("ALIGNGPT_DECODE", "static")
    monkeypatch.setenv("ALIGNGPT_TOKEN_BUDGET", "1234")
    engine = InferenceEngine(model, processor)
    assert engine.decode_mode() == "static" and engine.token_budget == 1234
    monkeypatch.setenv("ALIGNGPT_DECODE", "fast")
    with pytest.raises(ValueError, match="decode must be one of"):
        InferenceEngine(model, processor)


def test_auto_batch_on_cpu_stays_eight_without_budget(loaded):
    model, processor = loaded
    engine = InferenceEngine(model, processor)
    samples = synthetic_workload(2, processor.image_settings.crop_height)
    assert autobatch.auto_batch_size(engine, samples, template="vicuna_v1", max_new_tokens=4, pad_to_square=True) == 8
    assert engine.token_budget is None


def test_auto_batch_on_cuda_sets_the_memory_budget(loaded, monkeypatch):
    """The GPU branch, with the device queries faked: 256-row cap, budget from free memory."""
    model, processor = loaded
    engine = InferenceEngine(model, processor)
    monkeypatch.setattr(InferenceEngine, "device", property(lambda self: torch.device("cuda", 0)))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (10 * 2**30, 80 * 2**30))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 2 * 2**30)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 2**30)
    samples = synthetic_workload(2, processor.image_settings.crop_height)
    assert autobatch.auto_batch_size(engine, samples, template="vicuna_v1", max_new_tokens=4, pad_to_square=True) == 256
    assert engine.token_budget == token_budget_for_memory(model.config, torch.float32, 11 * 2**30, 0.8)


class _SlowDataset:
    def __init__(self):
        import threading

        self.threads = set()
        self.lock = threading.Lock()

    def __getitem__(self, i):
        import threading
        import time

        with self.lock:
            self.threads.add(threading.get_ident())
        time.sleep(0.01)
        return i, f"pixels-{i}"


def test_prefetch_threads_keep_order_and_share_the_work():
    dataset = _SlowDataset()
    batches = [[3, 1, 2], [0, 5], [4]]
    got = list(_prefetched(dataset, batches, threads=3))
    assert got == [[(i, f"pixels-{i}") for i in b] for b in batches]
    assert len(dataset.threads) > 1


def test_a_batch_out_of_device_memory_is_answered_in_halves(loaded, monkeypatch):
    model, processor = loaded
    samples = synthetic_workload(6, processor.image_settings.crop_height)
    kw = dict(template="vicuna_v1", max_new_tokens=4, pad_to_square=True)
    expected = {p.key: (p.text, p.alignment_weights)
                for p in InferenceEngine(model, processor, batch_size=1, pixel_cache=False).generate(samples, **kw)[0]}
    engine = InferenceEngine(model, processor, batch_size=6, token_budget=100_000, pixel_cache=False)
    real, seen = InferenceEngine._answer, []

    def tight_memory(self, input_ids, *args):
        seen.append(input_ids.shape[0])
        if input_ids.shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self, input_ids, *args)

    monkeypatch.setattr(InferenceEngine, "_answer", tight_memory)
    got, stats = engine.generate(samples, **kw)
    assert seen == [6, 3, 1, 2, 3, 1, 2]
    assert engine.token_budget == 100_000 // 8  # halved at each split
    assert stats.samples == 6
    for p in got:
        text, weights = expected[p.key]
        assert p.text == text and p.alignment_weights == pytest.approx(weights, abs=1e-6)


@pytest.mark.parametrize("fixture", ["official_tiny", "llava15_tiny"])
def test_fixed_shape_decode_with_a_text_only_row_and_without_alignment(fixture, request, official_tiny):
    """A LLaVA-1.5 checkpoint (no alignment slot) and a batch mixing image and text-only rows."""
    model, processor = aligngpt.load_pretrained(request.getfixturevalue(fixture) / "checkpoint", dtype=torch.float32)
    images = sorted((official_tiny / "images").glob("*.png"))[:2]
    prompts = [processor.build_prompt(q, has_image=True, template="vicuna_v1") for q in ("What is it?", "Count them.")]
    prompts.append(processor.build_prompt("A text-only question about nothing at all?", has_image=False,
                                          template="vicuna_v1"))
    batch = processor(prompts, [Image.open(p) for p in images] + [None])
    expected = model.generate(**batch, max_new_tokens=10, do_sample=False)
    assert torch.equal(_static(model, batch, max_new_tokens=10).sequences, expected)
