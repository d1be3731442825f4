"""The recipe that trains the bundled toy AlignGPT, end to end, on a CPU.

Pieces (each usable alone): :mod:`.tokenizers` (the LLM's sentencepiece model and the CLIP
tokenizer files), :mod:`.clip` (a tiny CLIP trained contrastively on toy image-caption pairs),
:mod:`.base_lm` (a tiny Llama pretrained on toy text, standing in for Vicuna), :mod:`.pipeline`
(the one command that runs everything through ``aligngpt-train`` and ``aligngpt-eval``) and
:mod:`.results` (the ``results/toy/`` page). Run it from the repository root with
``python -m dev.train_toy_model --work DIR --install-to aligngpt/toy_assets/model --results-dir results/toy``.

A development tool: it lives outside the ``aligngpt`` package, is not installed with it, and
writes only into the folders named on its command line.
"""
from .base_lm import LMRecipe, train_base_lm
from .clip import ClipRecipe, train_clip
from .pipeline import LOCAL_TASKS, Recipe, StageArgs, main
from .tokenizers import build_clip_tokenizer, train_sentencepiece

__all__ = [
    "ClipRecipe", "LMRecipe", "LOCAL_TASKS", "Recipe", "StageArgs", "build_clip_tokenizer", "main",
    "train_base_lm", "train_clip", "train_sentencepiece",
]
