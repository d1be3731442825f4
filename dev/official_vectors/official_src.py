"""Where the official scorers come from, and how the drivers load them without changing them.

Sources are read from local mirrors of the public repositories (``git show COMMIT:PATH``) into a
scratch folder outside the repository; nothing of them is committed. ``OFFICIAL_MIRRORS``
(default ``/work/.mirror``) holds one ``owner+name/repo`` git directory per repository.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

MIRRORS = Path(os.environ.get("OFFICIAL_MIRRORS", "/work/.mirror"))
SCRATCH = Path(os.environ.get("OFFICIAL_SCRATCH", tempfile.gettempdir())) / "aligngpt-official"

# (repository, commit, path) of every official file the drivers run.
SOURCES = {
    "vqa_eval": ("GT-Vision-Lab/VQA", "a013f004", "PythonEvaluationTools/vqaEvaluation/vqaEval.py"),
    "vqa_eval_init": ("GT-Vision-Lab/VQA", "a013f004", "PythonEvaluationTools/vqaEvaluation/__init__.py"),
    "vqa_tools": ("GT-Vision-Lab/VQA", "a013f004", "PythonHelperTools/vqaTools/vqa.py"),
    "m4c": ("haotian-liu/LLaVA", "c121f043", "llava/eval/m4c_evaluator.py"),
    "eval_pope": ("haotian-liu/LLaVA", "c121f043", "llava/eval/eval_pope.py"),
    "eval_sqa": ("haotian-liu/LLaVA", "c121f043", "llava/eval/eval_science_qa.py"),
    "convert_seed": ("haotian-liu/LLaVA", "c121f043", "scripts/convert_seed_for_submission.py"),
    "convert_gqa": ("haotian-liu/LLaVA", "c121f043", "scripts/convert_gqa_for_eval.py"),
    "summarize_review": ("haotian-liu/LLaVA", "c121f043", "llava/eval/summarize_gpt_review.py"),
    "review_bench": ("haotian-liu/LLaVA", "c121f043", "llava/eval/eval_gpt_review_bench.py"),
    "rule_json": ("haotian-liu/LLaVA", "c121f043", "llava/eval/table/rule.json"),
    "gqa_eval": ("SHI-Labs/VCoder", "4e85ace", "playground/data/eval/gqa/data/eval/eval.py"),
    "mmvet": ("yuweihao/MM-Vet", "acde843", "mm-vet_evaluator.py"),
    "mme_calc": ("zjunlp/Deco", "fee8d757", "eval_tool/calculation.py"),
    "mmbench": ("open-compass/opencompass", "6ca2be66", "tools/eval_mmbench.py"),
    "convert_mmbench": ("haotian-liu/LLaVA", "c121f043", "scripts/convert_mmbench_for_submission.py"),
}


def materialise(key: str) -> Path:
    """Write the official file to the scratch folder (same relative path) and return it."""
    repo, commit, path = SOURCES[key]
    git_dir = MIRRORS / repo.replace("/", "+") / "repo"
    out = SCRATCH / repo.replace("/", "+") / path
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{commit}:{path}"],
                                   check=True, capture_output=True).stdout)
    return out


def checkout_root(key: str) -> Path:
    """Scratch root of the repository holding ``key`` (after :func:`materialise`)."""
    return SCRATCH / SOURCES[key][0].replace("/", "+")


def load_module(path: Path, name: str) -> ModuleType:
    """Import an official file as a module, unchanged."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
