"""``aligngpt-eval bench``: our engine against the official batch-1 loop, same process, same work.

The reference-style loop is what ``model_vqa_loader.py`` does per question: preprocess one
image, tokenise one prompt, one ``generate`` call at batch size 1. Our engine runs the same
questions (images stored as encoded PNG bytes, so both decode them) at several batch sizes.
On a GPU it also measures the device's own peaks (a large fp16 GEMM, a large copy) and reports
prefill FLOP/s and decode bandwidth against them.
"""
from __future__ import annotations

import io
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from PIL import Image

from ..data.base import Sample
from ..data.images import open_image
from .batched import InferenceEngine


@dataclass
class BenchRow:
    mode: str
    batch_size: int
    samples_per_s: float
    wall_s: float
    outside_model_share: float
    speedup_vs_reference: float = 1.0
    identical_to_reference: bool = True
    speedup_vs_own_batch1_loop: float | None = None


@dataclass
class BenchReport:
    model: str
    device: str
    dtype: str
    questions: int
    new_tokens: int
    rows: list[BenchRow] = field(default_factory=list)
    gpu: dict | None = None
    training: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        return d


def synthetic_workload(n: int, image_size: int, seed: int = 0, words_range: tuple[int, int] = (4, 40)) -> list[Sample]:
    """Deterministic questions of varied length (``words_range`` words) over random-colour
    images (PNG bytes)."""
    rng = np.random.default_rng(seed)
    words = "what colour shape is left right top bottom of the large small object near far".split()
    samples = []
    for i in range(n):
        pixels = rng.integers(0, 256, size=(image_size, int(image_size * rng.uniform(0.6, 1.4)), 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="PNG")
        length = int(rng.integers(*words_range))
        question = " ".join(rng.choice(words, size=length)) + "?\nAnswer the question using a single word or phrase."
        samples.append(Sample(question_id=i, question=question, image=buf.getvalue()))
    return samples


def reference_loop(model, processor, samples, *, max_new_tokens: int, pad_to_square: bool, template: str = "vicuna_v1"):
    """One question at a time, as the official driver: preprocess, tokenise, generate, decode."""
    device = next(model.parameters()).device
    texts = []
    model_s = 0.0
    start = time.perf_counter()
    for s in samples:
        prompt = processor.build_prompt(s.question, has_image=True, template=template)
        image = open_image(s.image)
        batch = processor([prompt], [image], pad_to_square=pad_to_square)
        t0 = time.perf_counter()
        out = model.generate(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                             images=batch["images"].to(device), max_new_tokens=max_new_tokens, do_sample=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
        model_s += time.perf_counter() - t0
        texts.append(processor.batch_decode(out.tolist())[0].strip())
    wall = time.perf_counter() - start
    return texts, wall, model_s


def faithful_reference_loop(model, processor, samples, *, max_new_tokens: int, pad_to_square: bool,
                            template: str = "vicuna_v1"):
    """The official driver's numerics at batch 1: transformers 4.31 had eager attention only and
    its ``generate`` computed the LM head over the whole prompt at prefill. Same weights (the
    model's attention implementation is switched to eager for the duration), same greedy rule."""
    from transformers.cache_utils import DynamicCache

    device = next(model.parameters()).device
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    tower = getattr(model, "vision_tower", None)
    skipped = getattr(tower, "skip_unused_layers", None)
    if skipped is not None:
        tower.skip_unused_layers = False  # the reference runs every tower layer
    texts, model_s = [], 0.0
    start = time.perf_counter()
    try:
        for s in samples:
            prompt = processor.build_prompt(s.question, has_image=True, template=template)
            batch = processor([prompt], [open_image(s.image)], pad_to_square=pad_to_square)
            t0 = time.perf_counter()
            with torch.no_grad():
                out = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                            images=batch["images"].to(device), use_cache=True, cache=DynamicCache(config=model.config))
                cache, pos = out.cache, out.position_ids[:, -1:] + 1
                logits, produced = out.logits[:, -1], []
                for step in range(max_new_tokens):
                    token = logits.argmax(-1)
                    produced.append(int(token))
                    if int(token) == model.config.eos_token_id or step == max_new_tokens - 1:
                        break
                    hidden, cache = model._lm(input_ids=token[:, None], position_ids=pos, cache=cache, use_cache=True)
                    pos = pos + 1
                    logits = model.lm_head(hidden[:, -1]).float()
            if device.type == "cuda":
                torch.cuda.synchronize()
            model_s += time.perf_counter() - t0
            texts.append(processor.batch_decode([produced])[0].strip())
    finally:
        model.set_attn_implementation(previous)
        if skipped is not None:
            tower.skip_unused_layers = skipped
    return texts, time.perf_counter() - start, model_s


def run_bench(model, processor, *, model_name: str, questions: int = 64, new_tokens: int = 12,
              batch_sizes=(1, 8, 16, 32), pad_to_square: bool = True, repeats: int = 2,
              training_samples: int = 16) -> BenchReport:
    """Each mode is warmed up, then timed in ``repeats`` interleaved rounds; each mode's fastest
    pass is reported (one-time costs such as kernel selection and allocator growth are not the
    steady state)."""
    device = next(model.parameters()).device
    size = processor.image_settings.crop_height
    samples = synthetic_workload(questions, size)
    engine = InferenceEngine(model, processor, pixel_cache=False)  # every pass decodes, as a fresh run does
    warm = samples[: max(batch_sizes)]
    reference_loop(model, processor, warm[:4], max_new_tokens=new_tokens, pad_to_square=pad_to_square)
    for bs in batch_sizes:
        engine.generate(warm, template="vicuna_v1", max_new_tokens=new_tokens, pad_to_square=pad_to_square, batch_size=bs)
    # Rounds: every mode once per round, in the same order, so a machine whose speed drifts
    # (shared hosts, thermal limits) slows all modes alike; each mode's fastest pass is kept.
    best: dict = {}

    def keep_fastest(mode, run, wall: float) -> None:
        if mode not in best or wall < best[mode][1]:
            best[mode] = (run, wall)

    for _ in range(repeats):
        run = reference_loop(model, processor, samples, max_new_tokens=new_tokens, pad_to_square=pad_to_square)
        keep_fastest("reference", run, run[1])
        run = faithful_reference_loop(model, processor, samples, max_new_tokens=new_tokens, pad_to_square=pad_to_square)
        keep_fastest("faithful", run, run[1])
        for bs in batch_sizes:
            out = engine.generate(samples, template="vicuna_v1", max_new_tokens=new_tokens,
                                  pad_to_square=pad_to_square, batch_size=bs)
            keep_fastest(bs, out, out[1].wall_s)
    ref_texts, ref_wall, ref_model = best["reference"][0]
    faithful = best["faithful"][0]
    report = BenchReport(model_name, str(device), str(next(model.parameters()).dtype).replace("torch.", ""),
                         questions, new_tokens)
    ref_rate = questions / ref_wall
    faithful_rate = questions / faithful[1]
    report.rows.append(BenchRow("reference-faithful batch-1 loop (eager, full prefill logits)", 1, faithful_rate,
                                faithful[1], 1 - faithful[2] / faithful[1], 1.0, faithful[0] == ref_texts))
    report.rows.append(BenchRow("batch-1 loop with our kernels (one generate per question)", 1, ref_rate, ref_wall,
                                1 - ref_model / ref_wall, ref_rate / faithful_rate, True))
    for bs in batch_sizes:
        preds, stats = best[bs][0]
        texts = {p.key: p.text for p in preds}
        same = all(texts[str(i)] == t for i, t in enumerate(ref_texts))
        report.rows.append(BenchRow("engine", bs, stats.samples_per_s, stats.wall_s, stats.outside_model_share,
                                    stats.samples_per_s / faithful_rate, same))
        report.rows[-1].speedup_vs_own_batch1_loop = stats.samples_per_s / ref_rate
    if device.type == "cuda":
        report.gpu = gpu_roofline(model, processor, samples, batch_size=max(batch_sizes), pad_to_square=pad_to_square)
    if model.config.vision_config is not None and training_samples > 0:
        try:
            report.training = training_step_bench(model, processor, samples=training_samples)
        except torch.OutOfMemoryError as exc:  # the inference rows are still worth reporting
            report.training = [{"mode": "skipped: out of memory", "batch": training_samples, "tokens": 0,
                                "step_s": 0.0, "tokens_per_s": 0.0, "loss": float("nan"), "error": str(exc)[:200]}]
            torch.cuda.empty_cache()
    return report


# ---------------------------------------------------------------------------- GPU roofline
def measured_peaks(device) -> dict:
    """fp16 dense GEMM FLOP/s and device-to-device copy bandwidth, measured here."""
    n = 8192
    a = torch.randn(n, n, device=device, dtype=torch.float16)
    b = torch.randn(n, n, device=device, dtype=torch.float16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    flops = 2 * n**3 * reps / (time.perf_counter() - t0)
    x = torch.empty(1 << 30, dtype=torch.uint8, device=device)
    y = torch.empty_like(x)
    y.copy_(x)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(10):
        y.copy_(x)
    torch.cuda.synchronize()
    bandwidth = 2 * x.numel() * 10 / (time.perf_counter() - t0)  # read + write
    del a, b, x, y
    torch.cuda.empty_cache()
    return {"matmul_flops": flops, "copy_bandwidth_bytes_per_s": bandwidth}


def _llm_params(model) -> int:
    return sum(p.numel() for p in model.model.layers.parameters()) + model.lm_head.weight.numel()


def gpu_roofline(model, processor, samples, *, batch_size: int, pad_to_square: bool) -> dict:
    device = next(model.parameters()).device
    peaks = measured_peaks(device)
    chosen = samples[:batch_size]
    prompts = [processor.build_prompt(s.question, has_image=True) for s in chosen]
    images = [open_image(s.image) for s in chosen]
    batch = processor(prompts, images, pad_to_square=pad_to_square)
    batch = {k: v.to(device) for k, v in batch.items()}
    with torch.no_grad():
        for _ in range(2):
            out = model(**batch, use_cache=False, logits_to_keep=1)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        reps = 5
        for _ in range(reps):
            out = model(**batch, use_cache=False, logits_to_keep=1)
        torch.cuda.synchronize()
        prefill_s = (time.perf_counter() - t0) / reps
    tokens = int(out.attention_mask.sum().item())
    cfg = model.config
    seq = out.attention_mask.shape[1]
    attn_flops = 4 * cfg.num_hidden_layers * cfg.hidden_size * seq * seq * batch_size  # QK^T and AV
    vision = sum(p.numel() for p in model.vision_tower.parameters()) * 2 * batch_size * (cfg.num_image_tokens + 1)
    llm_flops = 2 * (_llm_params(model) - model.lm_head.weight.numel()) * tokens + attn_flops + vision
    prefill_flops = llm_flops / prefill_s
    # decode: time 16 steps at this batch, bytes = weights + KV cache read per step
    gen_t0 = time.perf_counter()
    model.generate(**batch, max_new_tokens=17, do_sample=False, eos_token_id=-1)
    torch.cuda.synchronize()
    total = time.perf_counter() - gen_t0
    decode_s = max(total - prefill_s, 1e-9) / 16
    weight_bytes = _llm_params(model) * next(model.parameters()).element_size()
    kv_bytes = 2 * cfg.num_hidden_layers * (seq + 8) * cfg.num_key_value_heads * (cfg.hidden_size // cfg.num_attention_heads) * 2 * batch_size
    bandwidth = (weight_bytes + kv_bytes) / decode_s
    return {
        **peaks,
        "batch_size": batch_size,
        "prefill_tokens": tokens,
        "prefill_s": prefill_s,
        "prefill_flops_per_s": prefill_flops,
        "prefill_fraction_of_peak": prefill_flops / peaks["matmul_flops"],
        "decode_step_s": decode_s,
        "decode_bandwidth_bytes_per_s": bandwidth,
        "decode_fraction_of_peak": bandwidth / peaks["copy_bandwidth_bytes_per_s"],
    }


def random_7b_model(device: str = "cuda", dtype=torch.float16, **overrides):
    """A 7B-shaped AlignGPT (Vicuna-7B + CLIP-L/336) with random weights: no download needed.
    ``overrides`` replace language-model config fields (tests shrink it to run on a CPU)."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # transformers < 5
        from transformers.modeling_utils import no_init_weights

    from ..modeling import AlignGPTConfig, AlignGPTForCausalLM
    from ..modeling.loading import CLIP_L14_336_VISION_CONFIG, _default_dtype

    config = AlignGPTConfig(
        vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=32, max_position_embeddings=4096, rms_norm_eps=1e-5, pad_token_id=0,
        mm_vision_tower="openai/clip-vit-large-patch14-336", mm_hidden_size=1024, mm_projector_type="mlp2x_gelu",
        vision_config=dict(CLIP_L14_336_VISION_CONFIG), image_aspect_ratio="pad", tokenizer_model_max_length=2048,
        image_processor={"size": {"shortest_edge": 336}, "crop_size": {"height": 336, "width": 336}},
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    with torch.device(device), _default_dtype(dtype), no_init_weights():
        model = AlignGPTForCausalLM(config)
    if torch.device(device).type == "meta":  # shapes only (FLOP arithmetic), nothing to fill
        return model.eval()
    gen = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and "norm" in name:
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02, generator=gen)
    return model.eval()


# ---------------------------------------------------------------------------- training step
def training_step_bench(model, processor, *, samples: int = 16, steps: int = 3, answer_words: int = 12) -> list[dict]:
    """Tokens/s of one forward+backward training step with the vectorised assembly vs the
    reference-style per-sample loop (same batch, same model; the loss is checked equal)."""
    from ..constants import IGNORE_INDEX
    from ..modeling.modeling_aligngpt import causal_lm_loss
    from .reference_assembly import assemble_per_sample

    device = next(model.parameters()).device
    work = synthetic_workload(samples, processor.image_settings.crop_height, seed=1)
    rows, labels = [], []
    for s in work:
        prompt = processor.build_prompt(s.question, has_image=True) + " " + " ".join(["yes"] * answer_words)
        ids = processor.tokenize(prompt)
        rows.append(ids)
        labels.append([IGNORE_INDEX] * (len(ids) - answer_words) + ids[-answer_words:])
    input_ids, mask = processor.pad(rows, padding_side="right")
    lab = torch.full_like(input_ids, IGNORE_INDEX)
    for i, l in enumerate(labels):
        lab[i, : len(l)] = torch.tensor(l)
    images = processor.preprocess_images([open_image(s.image) for s in work]).to(device)
    input_ids, mask, lab = input_ids.to(device), mask.to(device), lab.to(device)
    was_training = model.training
    model.train()

    def vectorised():
        out = model(input_ids=input_ids, attention_mask=mask, images=images, labels=lab, padding_side="right")
        out.loss.backward()
        return out.loss.detach(), int(out.attention_mask.sum())

    def per_sample():
        feats = model.encode_images(images)
        slots = model.align_indicators.compose("global", None, input_ids.shape[0]) if model.align_indicators is not None else None
        embeds, attn, pos, new_labels = assemble_per_sample(model, input_ids, mask, feats, lab, slots)
        hidden = model.model(inputs_embeds=embeds, attention_mask=attn, position_ids=pos).last_hidden_state
        loss = causal_lm_loss(model.lm_head(hidden).float(), new_labels)
        loss.backward()
        return loss.detach(), int(attn.sum())

    results = []
    mode_backup = model.config.align_mode
    model.config.align_mode = "global"  # both paths build the same sequence
    try:
        for name, fn in (("vectorised assembly", vectorised), ("per-sample assembly (reference style)", per_sample)):
            fn()  # warm-up
            model.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(steps):
                loss, tokens = fn()
                model.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize()
            elapsed = (time.perf_counter() - t0) / steps
            results.append({"mode": name, "batch": samples, "tokens": tokens, "step_s": elapsed,
                            "tokens_per_s": tokens / elapsed, "loss": float(loss)})
    finally:
        model.config.align_mode = mode_backup
        model.train(was_training)
    return results
