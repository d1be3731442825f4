"""The evaluator contract: scoring plus every optional hook the harness may call.

Each hook has a default here, so the harness calls methods instead of probing evaluators for
attributes, and a new benchmark sees in one place what it can override.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from aligngpt.data.base import Sample
from aligngpt.errors import ConfigError


@dataclass
class ScoreResult:
    metrics: dict[str, Any]
    """Nested metric dict, percent values (x100), unrounded; the keys are listed in the "Metric keys"
    section of each docs/protocol/ page."""
    per_sample: dict[str, dict[str, Any]] = field(default_factory=dict)
    """str(question_id) -> per-sample fields (e.g. parsed prediction, correct/score)."""
    n: int = 0


class Evaluator(ABC):
    """Scores predictions against the samples a loader produced.

    ``predictions`` maps ``str(question_id)`` to the raw model text (already ``.strip()``-ed as
    the official driver did). Every sample must have a prediction; the harness checks ids first.
    """

    name: str = ""
    needs_judge: bool = False
    """True when no score exists without an LLM judge (the task's ``scoring: judge``)."""
    official_judge_model: str = ""
    """The judge the benchmark's official script pins (named in table footnotes)."""

    @abstractmethod
    def score(self, samples: Sequence[Sample], predictions: Mapping[str, str]) -> ScoreResult: ...

    def attach_judge(self, judge: Any) -> None:
        """Use ``judge`` (an :class:`aligngpt.judge.Judge`); called for tasks whose spec says
        ``judge: optional`` or ``required``."""
        self.judge = judge

    def write_submission(self, samples: Sequence[Sample], predictions: Mapping[str, str],
                         out_dir: Path) -> list[Path]:
        """Files for a benchmark's evaluation server, written into ``out_dir``; none by default."""
        return []

    def read_answers(self, path: str | Path, samples: Sequence[Sample]) -> dict[str, str]:
        """``question_id`` -> answer text from a LLaVA answer file (``aligngpt-eval score``)."""
        from .answers import read_answers

        return read_answers(path, samples)

    def set_submission_processor(self, enabled: bool) -> None:
        """``score --no-submission-processor``: only evaluators that run LLaVA's answer
        processor before an official API can switch it off."""
        if not enabled:
            raise ConfigError(f"--no-submission-processor applies to {' and '.join(_raw_capable())}, not {self.name}")


def _raw_capable() -> list[str]:
    """Tasks whose evaluator can score raw text (overrides :meth:`Evaluator.set_submission_processor`)."""
    from aligngpt.harness.task_registry import ordered_specs

    names = []
    for spec in ordered_specs():
        cls = spec.resolve(spec.evaluator_ref)
        if cls.set_submission_processor is not Evaluator.set_submission_processor:
            names.append(spec.name)
    return names


def available_evaluators() -> list[str]:
    """Names :func:`get_evaluator` accepts: the registered tasks."""
    from aligngpt.harness.task_registry import all_specs

    return sorted(all_specs())


def get_evaluator(name: str) -> Evaluator:
    """A fresh evaluator for task ``name`` (the class its ``task.yaml`` names)."""
    from aligngpt.harness.task_registry import all_specs

    specs = all_specs()
    if name not in specs:
        raise ConfigError(f"unknown evaluator {name!r}; known: {', '.join(sorted(specs))}")
    return specs[name].make_evaluator()
