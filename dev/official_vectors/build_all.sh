#!/usr/bin/env bash
# Regenerate tests/data/official_vectors/ from the official scorers (see its README.md).
# PY: a Python 3 with numpy, pandas, scikit-learn, tqdm (e.g. a venv: pip install scikit-learn pandas tqdm).
# PY27: Python 2.7 (pyenv install 2.7.18). VIZWIZ_EVAL: the VizWiz vqaEval.py (see README).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-python}
export PYTHONHASHSEED=0  # MM-Vet names integrations by joining a set: fix its order
"$PY" dev/official_vectors/build_vqa_family.py tests/data/official_vectors
"$PY" dev/official_vectors/build_choice_family.py tests/data/official_vectors
"$PY" dev/official_vectors/build_judged_family.py tests/data/official_vectors
