"""The evaluator base class and the scoring helpers several benchmarks share.

Each benchmark's own evaluator lives in its task folder (``aligngpt/tasks/<name>/evaluator.py``)
and is named by its ``task.yaml``; :func:`get_evaluator` finds it by task name.
"""
from .base import Evaluator, ScoreResult, available_evaluators, get_evaluator

__all__ = ["Evaluator", "ScoreResult", "get_evaluator", "available_evaluators"]
