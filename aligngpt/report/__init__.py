"""Reporting: bootstrap statistics, published reference numbers and paper-layout tables."""
from .literature import ALL_ROWS, MAIN_ROWS, LiteratureRow, literature_keys, literature_row
from .stats import (CI, McNemarResult, PairedResult, SumStatistic, bootstrap_ci, evaluator_metric,
                    mcnemar_exact, mean_statistic, metric_at, paired_test, ratio_statistic,
                    records_from_result, sign_flip_test, task_bootstrap_ci, task_paired_test,
                    task_statistic)
from .tables import Column, TableRow, columns, layouts, load_run_row, render_table, rows_from_run_dirs

__all__ = [
    "ALL_ROWS", "MAIN_ROWS", "LiteratureRow", "literature_keys", "literature_row",
    "CI", "McNemarResult", "PairedResult", "SumStatistic", "bootstrap_ci", "evaluator_metric",
    "mcnemar_exact", "mean_statistic", "metric_at", "paired_test", "ratio_statistic",
    "records_from_result", "sign_flip_test", "task_bootstrap_ci", "task_paired_test", "task_statistic",
    "COLUMNS", "LAYOUTS", "columns", "layouts", "Column", "TableRow", "load_run_row", "render_table", "rows_from_run_dirs",
]


def __getattr__(name: str):
    # COLUMNS / LAYOUTS are built from the task registry on each access.
    if name in ("COLUMNS", "LAYOUTS"):
        from . import tables

        return getattr(tables, name)
    raise AttributeError(name)
