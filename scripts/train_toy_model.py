#!/usr/bin/env python
"""Train the bundled toy AlignGPT end to end and record its scores (one command, CPU, ~20 min).

    python scripts/train_toy_model.py --work /tmp/toyrun

Stages, flags and outputs: ``aligngpt/toy/recipe/pipeline.py`` (``--help`` lists the flags).
It overwrites ``aligngpt/toy_assets/model/`` and ``results/toy/`` unless ``--install-dir`` /
``--results-dir`` point elsewhere.
"""
import sys

from aligngpt.toy.recipe.pipeline import main

if __name__ == "__main__":
    sys.exit(main(["all", *sys.argv[1:]]))
