#!/usr/bin/env python
"""The paper's ablations (Table 3, Table 4, the LLaVA-1.5 baseline, Fig. 5) re-run on the toy world.

    python scripts/train_toy_model.py --work /tmp/toyrun      # once: data, CLIP, base LM, N=8 model
    python scripts/toy_ablation.py --work /tmp/toyrun          # variants, grid, tables, figures

Writes ``results/toy_ablation/``; details in ``aligngpt/toy/recipe/ablation.py``.
"""
import sys

from aligngpt.toy.recipe.ablation import main

if __name__ == "__main__":
    sys.exit(main())
