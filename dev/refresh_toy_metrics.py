"""Re-evaluate the bundled toy model and rewrite ``results/toy/metrics.json`` + README from it.

For a committed record that no longer matches the committed model (the training record is kept;
only the evaluated values are re-derived, by the recipe's own ``headline_rows``). Prints every
value that changed. From the repository root::

    python -m dev.refresh_toy_metrics --results-dir results/toy
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", required=True, metavar="DIR",
                        help="the folder of the committed metrics.json and README.md (results/toy)")
    args = parser.parse_args(argv)
    from aligngpt.cli.eval_cli import main as eval_main
    from dev.toy_recipe.results import refresh_results

    committed = json.loads((Path(args.results_dir) / "metrics.json").read_text())
    command = shlex.split(committed["eval_command"])  # aligngpt-eval run ... --fresh
    with tempfile.TemporaryDirectory() as tmp:
        if eval_main([*command[1:], "--output-dir", tmp]) != 0:
            return 1
        (results_file,) = Path(tmp).glob("*/results.json")
        changes = refresh_results(Path(args.results_dir), json.loads(results_file.read_text()))
    print("\n".join(changes) or "no value changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
