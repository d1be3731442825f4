#!/usr/bin/env bash
# Issue 7, criterion 3: 7B-shaped AlignGPT (random weights, built from config: no download),
# fp16, 336-px images, 16-token answers. Our engine at batch 1/8/16/32 against the
# reference-style batch-1 loop, plus prefill FLOP/s and decode bandwidth against this GPU's
# measured GEMM and copy peaks. Writes results/bench/gpu_7b.json and gpu_7b.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
aligngpt-eval bench --model 7b-random --device cuda --dtype float16 \
  --questions 128 --new-tokens 16 --batch-sizes 1,8,16,32 \
  --out results/bench/gpu_7b.json | tee results/bench/gpu_7b.txt
