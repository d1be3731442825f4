"""``python -m aligngpt.toy.recipe all --work DIR``: see :mod:`aligngpt.toy.recipe.pipeline`."""
import sys

from .pipeline import main

sys.exit(main())
