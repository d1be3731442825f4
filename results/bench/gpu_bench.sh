#!/usr/bin/env bash
# Whole-question throughput of a 7B-shaped AlignGPT (random weights built from config:
# no download), fp16, 336-px images, 512 questions of mixed prompt length, 16 new tokens. The
# baseline engine (32 rows, growing cache) and the fast one (token-budget batches, fixed-shape
# decode under CUDA graphs, FlashAttention varlen prefill when flash-attn is installed) timed in
# interleaved rounds on the same card, the FLOP roofline, the prefill/decode profile, answers vs
# batch 1, CUDA graphs vs eager decode, and the toy suite scored at batch 1 and batched in fp32
# and fp16. Writes results/bench/gpu_7b_throughput.{json,txt} (+ .log). About 4 minutes on an
# H200; `timeout` keeps it under 8.
#   DRY_RUN=1 bash results/bench/gpu_bench.sh   # the same steps on a CPU, toy model, CI-sized
#   BATCH_SWEEP=1 ...                           # also rerun the batch-size sweep (gpu_7b.{json,txt})
# Runs from a checkout without installing: PYTHONPATH suffices where torch+transformers exist.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
if [[ "${DRY_RUN:-0}" == 1 ]]; then
  out=${OUT_DIR:-$(mktemp -d)}
  mkdir -p "$out"
  $PY -m aligngpt.engine.throughput --dry-run --score-tasks "${SCORE_TASKS:-gqa,pope}" \
    --out "$out/gpu_7b_throughput.json" 2>&1 | tee "$out/gpu_7b_throughput.log"
  exit "${PIPESTATUS[0]}"
fi
out=${OUT_DIR:-results/bench}
mkdir -p "$out"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  $PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
  $PY -c "import importlib.util as u; print('flash-attn importable:', u.find_spec('flash_attn') is not None)"
  timeout "${TIMEOUT_S:-450}" $PY -m aligngpt.engine.throughput --model 7b-random --device cuda \
    --dtype "${DTYPE:-float16}" --questions "${QUESTIONS:-512}" --new-tokens 16 --repeats "${REPEATS:-2}" \
    --max-words "${MAX_WORDS:-40}" --score-limit "${SCORE_LIMIT:-64}" --out "$out/gpu_7b_throughput.json"
} 2>&1 | tee "$out/gpu_7b_throughput.log"
if [[ "${BATCH_SWEEP:-0}" == 1 ]]; then
  $PY -m aligngpt.cli.eval_cli bench --model 7b-random --device cuda --dtype float16 --questions 64 \
    --new-tokens 16 --batch-sizes 1,8,16,32 --repeats 1 --training-samples 8 \
    --out "$out/gpu_7b.json" 2>&1 | tee "$out/gpu_7b.txt"
fi
