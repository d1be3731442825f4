"""Upload files for server-scored splits (VQAv2, VizWiz, MMBench), written beside a task's results.

A submission is a by-product of scoring: when its writer needs an optional package that is not
installed (MMBench's xlsx needs openpyxl, the ``xlsx`` extra), the local score still stands, so
the file is skipped with a warning that says how to get it, instead of failing a run whose
answers were already generated.
"""
from __future__ import annotations

import logging
from pathlib import Path

from ..extras import EXTRA_OF, install_hint

log = logging.getLogger(__name__)


def write_submissions(evaluator, samples, predictions, out_dir: Path) -> list[Path]:
    """The evaluator's upload files in ``out_dir`` (none for locally scored tasks)."""
    try:
        return list(evaluator.write_submission(samples, predictions, out_dir))
    except ModuleNotFoundError as err:
        package = (err.name or "").split(".")[0]
        if package not in EXTRA_OF:
            raise
        log.warning("%s: submission file not written, %s is not installed; %s, then "
                    "`aligngpt-eval score --task %s --answers <run>/%s/answers.jsonl` writes it",
                    evaluator.name, package, install_hint(package), evaluator.name, evaluator.name)
        return []
