"""The paper's ablations (Table 3, Table 4, the LLaVA-1.5 baseline, Fig. 5) re-run on the toy world.

From the repository root::

    python -m dev.train_toy_model --work /tmp/toyrun --until base_lm   # once: data, CLIP, base LM
    python -m dev.toy_ablation --work /tmp/toyrun --out results/toy_ablation --bundled-results results/toy

Writes the tables, figures and README into ``--out``; details in ``dev/toy_recipe/ablation.py``.
"""
import sys

from dev.toy_recipe.ablation import main

if __name__ == "__main__":
    sys.exit(main())
