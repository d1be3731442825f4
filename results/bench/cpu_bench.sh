#!/usr/bin/env bash
# Issue 7, criterion 1: CPU, the official-tiny fixture, 64 questions, 12 new tokens.
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${ALIGNGPT_SHARED:-../shared}
aligngpt-eval bench --model "$SHARED/fixtures/official-tiny/checkpoint" --device cpu \
  --questions 64 --new-tokens 12 --batch-sizes 1,8,16,32 --repeats 5 \
  --out results/bench/cpu_official_tiny.json | tee results/bench/cpu_official_tiny.txt
