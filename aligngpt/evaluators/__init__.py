"""Metric plugins, one per metric family, each reproducing an official scorer.

Built-ins and third-party plugins register through the ``aligngpt.evaluators`` entry-point
group (name -> ``module:Class``); :func:`get_evaluator` finds either.
"""
from .base import Evaluator, ScoreResult, get_evaluator, available_evaluators

__all__ = ["Evaluator", "ScoreResult", "get_evaluator", "available_evaluators"]
