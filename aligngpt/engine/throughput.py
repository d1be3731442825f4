"""Whole-question throughput of the engine against the FLOP roofline.

``python -m aligngpt.engine.throughput`` times complete questions (tokenise, decode and
preprocess the PNG, batch, vision tower, prefill, 16 greedy tokens, detokenise) over a workload
of mixed prompt lengths, for the baseline configuration (32 rows, growing cache, padded SDPA) and
the fast one (token-budget batches, fixed-shape decode under CUDA graphs, FlashAttention varlen
prefill where installed), in interleaved rounds on the same card. It reports questions/s, the
share of wall time outside the model, and the fraction of the measured matmul peak that the
useful FLOPs of the run represent; a profiling pass splits prefill and decode. Answers are
checked against batch 1 (and CUDA graphs against the same batches decoded eagerly), and the toy
suite is scored at batch 1 and at the run's batching. ``--dry-run`` does all of it on a CPU with
the toy model, in CI time.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .autobatch import auto_batch_size
from .batched import InferenceEngine
from .bench import _llm_params, measured_peaks, random_7b_model, synthetic_workload
from .planner import GPU_RAMP, MAX_GPU_BATCH, kv_bytes_per_token, plan_batches

TEMPLATE = "vicuna_v1"


@dataclass
class Row:
    mode: str
    questions: int
    wall_s: float
    questions_per_s: float
    outside_model_share: float
    flop_fraction: float | None
    changed_vs_batch1: float | None
    batches: int


# ---------------------------------------------------------------------------- arithmetic
def question_flops(model, seq_len: int, new_tokens: int) -> float:
    """Useful FLOPs of one question: the vision tower and projector over its image, the causal
    prefill of ``seq_len`` tokens (logits for the last one only) and ``new_tokens - 1`` decode steps."""
    cfg = model.config
    hidden, layers = cfg.hidden_size, cfg.num_hidden_layers
    head = model.lm_head.weight.numel()
    linear = _llm_params(model) - head
    prefill = 2 * linear * seq_len + 2 * layers * hidden * seq_len**2 + 2 * head
    steps = max(0, new_tokens - 1)
    decode = sum(2 * (linear + head) + 4 * layers * hidden * (seq_len + k) for k in range(1, steps + 1))
    vision = 0.0
    if model.vision_tower is not None:
        tokens = (cfg.num_image_tokens or 0) + 1
        vcfg = model.vision_tower.config
        tower = sum(p.numel() for p in model.vision_tower.parameters())
        vision = 2 * tower * tokens + 4 * vcfg.num_hidden_layers * vcfg.hidden_size * tokens**2
        vision += 2 * sum(p.numel() for p in model.mm_projector.parameters()) * (tokens - 1)
    return float(prefill + decode + vision)


def device_peaks(device: torch.device, dtype: torch.dtype) -> dict:
    """Matmul FLOP/s and copy bandwidth measured here (GPU: the same measurement as
    ``aligngpt-eval bench``; CPU: a small float32 GEMM, only so that the dry run exercises the
    arithmetic)."""
    if device.type == "cuda":
        return measured_peaks(device)
    n = 512
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    t0 = time.perf_counter()
    for _ in range(10):
        a @ b
    flops = 2 * n**3 * 10 / (time.perf_counter() - t0)
    x = torch.empty(1 << 24, dtype=torch.uint8)
    t0 = time.perf_counter()
    x.clone()
    return {"matmul_flops": flops, "copy_bandwidth_bytes_per_s": 2 * x.numel() / (time.perf_counter() - t0)}


# ---------------------------------------------------------------------------- timing
def _texts(preds) -> dict:
    return {p.key: p.text for p in preds}


def changed_fraction(a: dict, b: dict) -> float:
    keys = [k for k in a if k in b]
    return sum(a[k] != b[k] for k in keys) / max(1, len(keys))


def make_engines(model, processor, *, token_budget: int | None, baseline_batch: int, decode: str = "auto") -> dict:
    """The baseline configuration (fixed row batches, growing cache, padded SDPA prefill) and the
    fast one (auto: token budget on a GPU)."""
    baseline = InferenceEngine(model, processor, batch_size=baseline_batch, decode="dynamic", pixel_cache=False,
                               prefetch_threads=1)
    baseline.packed_attention = ""  # padded SDPA prefill, never the varlen path
    fast = InferenceEngine(model, processor, batch_size=MAX_GPU_BATCH, decode=decode, pixel_cache=False)
    fast.token_budget = token_budget
    return {"baseline": baseline, "fast": fast}


def run_throughput(model, processor, *, questions: int, new_tokens: int, repeats: int, reference_questions: int,
                   baseline_batch: int = 32, token_budget: int | None = None, graph_check_questions: int = 128,
                   words_range: tuple[int, int] = (4, 40), decode: str = "auto") -> dict:
    """``words_range``: question lengths in words; the default gives LM sequences of about
    640-700 tokens with a 336-px image (the 7B estimate of about 8.5 TFLOP per prefill assumes
    650 tokens)."""
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    samples = synthetic_workload(questions, processor.image_settings.crop_height, words_range=words_range)
    engines = make_engines(model, processor, token_budget=token_budget, baseline_batch=baseline_batch, decode=decode)
    fast = engines["fast"]
    if token_budget is None and device.type == "cuda":
        fast.batch_size = auto_batch_size(fast, samples, template=TEMPLATE, max_new_tokens=new_tokens,
                                          pad_to_square=True)
    kw = dict(template=TEMPLATE, max_new_tokens=new_tokens, pad_to_square=True)
    token_ids = [processor.tokenize(fast.prompt_for(s, TEMPLATE)) for s in samples]
    lengths = fast.sequence_lengths(token_ids)
    plans = {name: plan_batches(lengths, e.batch_size, e.token_budget, reserve=new_tokens,
                                ramp=GPU_RAMP if e.token_budget is not None else None) for name, e in engines.items()}
    total_flops = sum(question_flops(model, n, new_tokens) for n in lengths)
    peaks = device_peaks(device, dtype)

    warm = samples[: min(len(samples), MAX_GPU_BATCH if device.type == "cuda" else 8)]
    for e in engines.values():
        e.generate(warm, **kw)
    best: dict = {}
    for _ in range(max(1, repeats)):  # interleaved rounds, fastest pass per mode
        for name, e in engines.items():
            preds, stats = e.generate(samples, **kw)
            if name not in best or stats.wall_s < best[name][1].wall_s:
                best[name] = (preds, stats)

    ref_set = samples[: min(reference_questions, len(samples))]
    single = InferenceEngine(model, processor, batch_size=1, decode="dynamic", pixel_cache=False)
    single.packed_attention = ""
    reference = _texts(single.generate(ref_set, **kw)[0])
    rows = []
    labels = {"baseline": f"baseline engine: {baseline_batch} rows, growing KV cache, padded SDPA prefill",
              "fast": f"token-budget batches, {fast.decode_mode()} decode"
                      f"{', varlen flash prefill' if _packed(fast) else ', padded SDPA prefill'}"}
    for name, (preds, stats) in best.items():
        rows.append(Row(labels[name], stats.samples, stats.wall_s, stats.samples_per_s, stats.outside_model_share,
                        total_flops / (peaks["matmul_flops"] * stats.wall_s), changed_fraction(reference, _texts(preds)),
                        len(plans[name])))

    # CUDA graphs against eager fixed-shape decoding on identical batches (same budget, same rows).
    check = samples[: min(graph_check_questions, len(samples))]
    graph_check = None
    if fast.decode_mode() == "graph":
        eager = InferenceEngine(model, processor, batch_size=fast.batch_size, decode="static", pixel_cache=False)
        eager.token_budget, eager.packed_attention = fast.token_budget, fast.packed_attention
        graphed = _texts(fast.generate(check, **kw)[0])
        graph_check = {"questions": len(check), "changed": changed_fraction(graphed, _texts(eager.generate(check, **kw)[0]))}

    # Profile pass: prefill and decode wall time of the fast configuration (device synchronised).
    fast.timings = {}
    _, prof = fast.generate(samples, **kw)
    timings, fast.timings = fast.timings, None
    profile = _profile(model, lengths, plans["fast"], new_tokens, timings, prof, peaks, dtype)
    return {
        "device": _device_name(device), "dtype": str(dtype).replace("torch.", ""), "questions": questions,
        "new_tokens": new_tokens, "mean_sequence_length": sum(lengths) / len(lengths),
        "min_sequence_length": min(lengths), "max_sequence_length": max(lengths),
        "token_budget": fast.token_budget, "max_rows": fast.batch_size,
        "batch_rows": [len(b) for b in plans["fast"]], "flops_per_question": total_flops / len(lengths),
        "roofline_questions_per_s": peaks["matmul_flops"] * len(lengths) / total_flops,
        "peaks": peaks, "rows": [asdict(r) for r in rows], "reference_questions": len(ref_set),
        "graph_vs_eager": graph_check, "profile": profile,
    }


def _packed(engine: InferenceEngine) -> bool:
    from .attention import packed_prefill_attention

    if engine.packed_attention is not None:
        return bool(engine.packed_attention)
    mode = engine.decode_mode()
    return packed_prefill_attention(engine.device, next(engine.model.parameters()).dtype, mode) is not None


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def _profile(model, lengths, batches, new_tokens, timings, stats, peaks, dtype) -> dict:
    """Prefill FLOP/s and decode bandwidth of the fast configuration against the peaks."""
    prefill_s, decode_s = timings.get("prefill_s", 0.0), timings.get("decode_s", 0.0)
    no_decode = [question_flops(model, n, 1) for n in lengths]
    weight_bytes = _llm_params(model) * torch.tensor([], dtype=dtype).element_size()
    kv = kv_bytes_per_token(model.config, dtype)
    steps = max(0, new_tokens - 1)
    decode_bytes = 0
    for batch in batches:
        width = max(lengths[i] for i in batch)
        for k in range(1, steps + 1):  # every step reads the weights and the whole fixed-shape cache
            decode_bytes += weight_bytes + kv * len(batch) * (width + steps)
    out = {"prefill_s": prefill_s, "decode_s": decode_s, "model_s": stats.model_s, "wall_s": stats.wall_s,
           "outside_model_share": stats.outside_model_share}
    if prefill_s > 0:
        out["prefill_fraction_of_peak"] = sum(no_decode) / prefill_s / peaks["matmul_flops"]
    if decode_s > 0:
        out["decode_fraction_of_bandwidth"] = decode_bytes / decode_s / peaks["copy_bandwidth_bytes_per_s"]
    return out


# ---------------------------------------------------------------------------- scores
def _answers(run_dir: Path) -> dict:
    """(task, question id, occurrence) -> answer text; ids can repeat within a task (e.g. MME)."""
    out, seen = {}, Counter()
    for path in sorted(run_dir.glob("*/answers.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            key = (path.parent.name, str(row["question_id"]))
            out[(*key, seen[key])] = row["text"]
            seen[key] += 1
    return out


def _numbers(tree, prefix: str = "") -> dict:
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(_numbers(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: float(tree)} if isinstance(tree, (int, float)) and not isinstance(tree, bool) else {}


def compare_run_dirs(a: Path, b: Path) -> dict:
    """Answers that differ between two ``run`` folders of the same tasks, and metric deltas (b - a)."""
    ans_a, ans_b = _answers(a), _answers(b)
    if set(ans_a) != set(ans_b):
        raise ValueError(f"{a} and {b} answered different questions")
    res_a = json.loads((a / "results.json").read_text())["tasks"]
    res_b = json.loads((b / "results.json").read_text())["tasks"]
    deltas = {}
    for task in res_a:
        ma, mb = _numbers(res_a[task]["metrics"]), _numbers(res_b[task]["metrics"])
        deltas.update({f"{task}.{k}": mb[k] - v for k, v in ma.items() if k in mb and mb[k] != v})
    changed = [k for k in ans_a if ans_a[k] != ans_b[k]]
    return {"answers": len(ans_a), "changed": len(changed), "changed_fraction": len(changed) / max(1, len(ans_a)),
            "metric_deltas": deltas}


def toy_score_check(device: str, dtype: str, tasks: str, limit: int, workdir: Path, batched_env: dict | None = None) -> dict:
    """The toy suite at batch 1 and at ``--batch-size auto`` (plus ``batched_env``, e.g. a token
    budget on a CPU), same device and dtype: answers and metrics compared."""
    import contextlib
    import io
    import os

    from ..cli.eval_cli import main

    dirs = {}
    for name, size, env in (("batch1", "1", {}), ("batched", "auto", batched_env or {})):
        out = workdir / f"{name}-{dtype}"
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the run's own tables
                code = main(["run", "--tasks", tasks, "--model", "toy", "--limit", str(limit), "--device", device,
                             "--dtype", dtype, "--batch-size", size, "--canary", "never", "--output-dir", str(out),
                             "--fresh"])
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        if code != 0:
            raise RuntimeError(f"toy run {name} ({dtype}) failed with exit code {code}")
        dirs[name] = next(d for d in out.iterdir() if d.is_dir())
    return {"dtype": dtype, "tasks": tasks, "limit": limit, **compare_run_dirs(dirs["batch1"], dirs["batched"])}


# ---------------------------------------------------------------------------- report
def render(report: dict) -> str:
    from tabulate import tabulate

    lines = [f"{report['device']} ({report['dtype']}), {report['questions']} questions, {report['new_tokens']} new tokens, "
             f"LM sequence {report['min_sequence_length']}-{report['max_sequence_length']} tokens "
             f"(mean {report['mean_sequence_length']:.0f})",
             f"token budget {report['token_budget']} per batch, at most {report['max_rows']} rows: batches of "
             f"{', '.join(str(n) for n in report['batch_rows'][:12])}{' ...' if len(report['batch_rows']) > 12 else ''}"]
    rows = [(r["mode"], r["batches"], f"{r['questions_per_s']:.2f}", f"{100 * r['outside_model_share']:.1f}%",
             "" if r["flop_fraction"] is None else f"{100 * r['flop_fraction']:.1f}%",
             f"{100 * r['changed_vs_batch1']:.1f}%") for r in report["rows"]]
    lines.append(tabulate(rows, headers=["configuration", "batches", "questions/s", "outside model",
                                         "FLOP roofline", f"changed vs batch 1 (first {report['reference_questions']})"],
                          tablefmt="github"))
    p = report["peaks"]
    lines.append(f"roofline: {report['flops_per_question'] / 1e12:.2f} TFLOP per question; measured peak "
                 f"{p['matmul_flops'] / 1e12:.1f} TFLOP/s and {p['copy_bandwidth_bytes_per_s'] / 1e9:.0f} GB/s "
                 f"-> at most {report['roofline_questions_per_s']:.1f} questions/s")
    prof = report["profile"]
    lines.append(f"profile (fast, synchronised): prefill {prof['prefill_s']:.2f} s"
                 + (f" = {100 * prof['prefill_fraction_of_peak']:.1f}% of peak" if "prefill_fraction_of_peak" in prof else "")
                 + f", decode {prof['decode_s']:.2f} s"
                 + (f" = {100 * prof['decode_fraction_of_bandwidth']:.1f}% of bandwidth" if "decode_fraction_of_bandwidth" in prof else "")
                 + f", outside the model {100 * prof['outside_model_share']:.1f}% of {prof['wall_s']:.2f} s")
    if report.get("graph_vs_eager"):
        g = report["graph_vs_eager"]
        lines.append(f"CUDA graphs vs eager fixed-shape decode, same batches: {100 * g['changed']:.1f}% of {g['questions']} answers differ")
    for s in report.get("scores", []):
        if "error" in s:
            lines.append(f"toy suite {s['dtype']}: failed: {s['error']}")
            continue
        lines.append(f"toy suite {s['dtype']} ({s['tasks']}, {s['limit']} each): batch 1 vs batched: "
                     f"{s['changed']} of {s['answers']} answers differ ({100 * s['changed_fraction']:.2f}%); "
                     f"metric deltas: {s['metric_deltas'] or 'none'}")
    return "\n".join(lines)


def load_model(name: str, device: str, dtype: torch.dtype):
    """``7b-random`` (7B-shaped, random weights, CLIP-L/336 preprocessing), ``toy`` or a checkpoint."""
    from ..harness.toy import toy_model_dir
    from ..modeling.loading import load_pretrained

    if name == "7b-random":
        from ..processing.image import ImageProcessorSettings

        model = random_7b_model(device, dtype)
        _, processor = load_pretrained(toy_model_dir())
        processor.image_settings = ImageProcessorSettings()
        return model, processor
    return load_pretrained(toy_model_dir() if name == "toy" else name, device=device, dtype=dtype)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m aligngpt.engine.throughput", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="7b-random")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    p.add_argument("--questions", type=int, default=512)
    p.add_argument("--new-tokens", type=int, default=16)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--reference-questions", type=int, default=32, help="answered at batch 1 to count changed answers")
    p.add_argument("--token-budget", type=int, default=None, help="default: from free GPU memory (auto)")
    p.add_argument("--score-tasks", default="gqa,pope,textvqa,scienceqa_img,mme", help="toy tasks for the score check ('' skips)")
    p.add_argument("--score-limit", type=int, default=64)
    p.add_argument("--max-words", type=int, default=40, help="questions have 4 to this many words")
    p.add_argument("--decode", default="auto", choices=["auto", "static", "graph", "dynamic"],
                   help="decode path of the fast configuration (auto: CUDA graphs on a GPU)")
    p.add_argument("--dry-run", action="store_true", help="CPU, toy model, tiny sizes: checks the script, not the speed")
    p.add_argument("--out", default=None, help="write the report here as JSON and beside it as .txt")
    args = p.parse_args(argv)
    score_dtypes = ["float32", args.dtype] if args.dtype != "float32" else ["float32"]
    batched_env = None
    if args.dry_run:
        args.model, args.device, args.dtype = "toy", "cpu", "float32"
        args.questions, args.new_tokens, args.repeats = min(args.questions, 24), min(args.new_tokens, 4), 1
        args.reference_questions = min(args.reference_questions, 8)
        args.token_budget, args.decode = args.token_budget or 2000, "static"
        args.score_limit, score_dtypes = min(args.score_limit, 6), ["float32"]
        batched_env = {"ALIGNGPT_DECODE": "static", "ALIGNGPT_TOKEN_BUDGET": str(args.token_budget)}
    dtype = getattr(torch, args.dtype)
    t0 = time.perf_counter()
    model, processor = load_model(args.model, args.device, dtype)
    report = run_throughput(model, processor, questions=args.questions, new_tokens=args.new_tokens,
                            repeats=args.repeats, reference_questions=args.reference_questions,
                            token_budget=args.token_budget, graph_check_questions=128, decode=args.decode,
                            words_range=(4, max(5, args.max_words)))
    report["model"] = args.model
    del model
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    report["scores"] = []
    report["script_s"] = time.perf_counter() - t0
    _write(report, args.out)  # the timing results survive a score check that fails or runs out of time
    if args.score_tasks:
        with tempfile.TemporaryDirectory(prefix="aligngpt-scores-") as tmp:
            for dt in score_dtypes:
                try:
                    report["scores"].append(toy_score_check(args.device, dt, args.score_tasks, args.score_limit,
                                                            Path(tmp), batched_env))
                except Exception as exc:  # reported, not fatal: the throughput numbers stand
                    report["scores"].append({"dtype": dt, "error": f"{type(exc).__name__}: {exc}"[:500]})
    report["script_s"] = time.perf_counter() - t0
    print(_write(report, args.out))
    return 1 if args.dry_run and any("error" in s for s in report["scores"]) else 0


def _write(report: dict, out: str | None) -> str:
    text = render(report)
    if out:
        from ..io import atomic_write_json

        path = Path(out)
        atomic_write_json(path, report)
        path.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
    return text


if __name__ == "__main__":
    sys.exit(main())
