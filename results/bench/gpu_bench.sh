#!/usr/bin/env bash
# Issue 7, criterion 3: 7B-shaped AlignGPT (random weights, built from config: no download),
# fp16, 336-px images, 16-token answers. Our engine at batch 1/8/16/32 against the
# reference-style batch-1 loops, plus prefill FLOP/s and decode bandwidth against this GPU's
# measured GEMM and copy peaks, and a training step (vectorised vs per-sample assembly).
# Writes results/bench/gpu_7b.json and gpu_7b.txt. Runs from a checkout without installing:
# the package is pure Python, so PYTHONPATH suffices on a machine that has torch+transformers.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
  python3 -m aligngpt.cli.eval_cli bench --model 7b-random --device cuda --dtype float16 \
    --questions "${QUESTIONS:-64}" --new-tokens 16 --batch-sizes 1,8,16,32 --repeats "${REPEATS:-1}" \
    --training-samples "${TRAINING_SAMPLES:-8}" --out results/bench/gpu_7b.json
} 2>&1 | tee results/bench/gpu_7b.txt
