#!/usr/bin/env python
"""Where the batched engine's CPU time goes on the official-tiny bench, and what that bounds.

    python dev/cpu_attention_floor.py [--batch-size 16] [--questions 64]

The engine's speed target is 4x the reference-style batch-1 loop on this fixture. Its model is 64
wide with 577-token image sequences, so almost all arithmetic is attention, whose cost per question
does not shrink with the batch. This profiles one engine pass (torch.profiler, self CPU time per
operator) and prints per-question milliseconds of the attention kernel, of the matrix products,
and of the rest, next to the reference-faithful loop's per-question wall time; the ratio
``faithful / (attention + matmul)`` is the most any exact schedule of these operators can reach.
"""
from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from aligngpt.engine.batched import InferenceEngine
from aligngpt.engine.bench import run_bench, synthetic_workload
from aligngpt.modeling.loading import load_pretrained

ATTENTION = ("scaled_dot_product", "flash_attention")
MATMUL = ("aten::mm", "aten::addmm", "aten::bmm", "aten::mkldnn_convolution")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="../shared/fixtures/official-tiny/checkpoint")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--questions", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=12)
    args = ap.parse_args()
    model, processor = load_pretrained(args.model, device="cpu")
    # Timings as the bench takes them (warm-up, interleaved rounds, fastest pass kept).
    report = run_bench(model, processor, model_name=args.model, questions=args.questions, new_tokens=args.new_tokens,
                       batch_sizes=(args.batch_size,), repeats=3, training_samples=0)
    faithful_row, engine_row = report.rows[0], report.rows[-1]
    faithful_ms = faithful_row.wall_s / args.questions * 1e3
    engine_ms = engine_row.wall_s / args.questions * 1e3
    samples = synthetic_workload(args.questions, processor.image_settings.crop_height)
    engine = InferenceEngine(model, processor, pixel_cache=False)
    with profile(activities=[ProfilerActivity.CPU]) as prof:  # the engine is warm: run_bench used it
        engine.generate(samples, template="vicuna_v1", max_new_tokens=args.new_tokens, pad_to_square=True,
                        batch_size=args.batch_size)
    buckets = {"attention": 0.0, "matmul": 0.0, "other operators": 0.0}
    for event in prof.key_averages():
        if any(k in event.key for k in ATTENTION):
            buckets["attention"] += event.self_cpu_time_total
        elif event.key in MATMUL:
            buckets["matmul"] += event.self_cpu_time_total
        else:
            buckets["other operators"] += event.self_cpu_time_total
    per_q = {k: v / 1e3 / len(samples) for k, v in buckets.items()}
    print(f"official-tiny, {len(samples)} questions, {args.new_tokens} new tokens, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads")
    print(f"reference-faithful loop : {faithful_ms:6.2f} ms/question")
    print(f"engine (wall)           : {engine_ms:6.2f} ms/question  ({faithful_ms / engine_ms:.2f}x)")
    for k, v in per_q.items():
        print(f"  engine {k:<17}: {v:6.2f} ms/question (profiled)")
    floor = per_q["attention"] + per_q["matmul"]
    print(f"bound with zero cost outside attention and matmul: {faithful_ms / floor:.2f}x")
    print(f"bound with zero cost outside attention           : {faithful_ms / per_q['attention']:.2f}x")


if __name__ == "__main__":
    main()
