"""Train the bundled toy AlignGPT end to end and record its scores (one command, CPU, ~20 min).

From the repository root::

    python -m dev.train_toy_model --work /tmp/toyrun \
        --install-to aligngpt/toy_assets/model --results-dir results/toy

Stages, flags and outputs: ``dev/toy_recipe/pipeline.py`` (``--help`` lists the flags).
``--install-to`` and ``--results-dir`` say where the checkpoint and the results page go (the
paths above replace the bundled model and its committed results); relative paths are taken
from the current directory.
"""
import sys

from dev.toy_recipe.pipeline import main

if __name__ == "__main__":
    sys.exit(main(["all", *sys.argv[1:]]))
