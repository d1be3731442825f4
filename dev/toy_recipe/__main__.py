"""``python -m dev.toy_recipe all --work DIR ...`` (from the repository root): see :mod:`dev.toy_recipe.pipeline`."""
import sys

from .pipeline import main

sys.exit(main())
