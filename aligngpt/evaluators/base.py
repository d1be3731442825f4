"""The evaluator contract and the registry that finds evaluators by name."""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Mapping, Sequence

from aligngpt.data.base import Sample
from aligngpt.errors import ConfigError

ENTRY_POINT_GROUP = "aligngpt.evaluators"

# Fallback when the package is used from a source tree without its metadata installed.
_BUILTIN = {
    "gqa": "aligngpt.evaluators.gqa:GQAEvaluator",
    "pope": "aligngpt.evaluators.pope:POPEEvaluator",
    "mme": "aligngpt.evaluators.mme:MMEEvaluator",
    "scienceqa_img": "aligngpt.evaluators.scienceqa:ScienceQAEvaluator",
    "textvqa": "aligngpt.evaluators.textvqa:TextVQAEvaluator",
    "seed_image": "aligngpt.evaluators.seed:SEEDImageEvaluator",
    "mmbench": "aligngpt.evaluators.mmbench:MMBenchEvaluator",
    "mmbench_cn": "aligngpt.evaluators.mmbench:MMBenchCNEvaluator",
    "llava_bench": "aligngpt.evaluators.llava_bench:LLaVABenchEvaluator",
    "mmvet": "aligngpt.evaluators.mmvet:MMVetEvaluator",
    "vqav2": "aligngpt.evaluators.vqav2:VQAv2SubmissionEvaluator",
    "vqav2_val": "aligngpt.evaluators.vqav2:VQAv2ValEvaluator",
    "vizwiz": "aligngpt.evaluators.vizwiz:VizWizSubmissionEvaluator",
    "vizwiz_val": "aligngpt.evaluators.vizwiz:VizWizValEvaluator",
}


@dataclass
class ScoreResult:
    metrics: dict[str, Any]
    """Nested metric dict, percent values (x100), unrounded, keys as in interface.md."""
    per_sample: dict[str, dict[str, Any]] = field(default_factory=dict)
    """str(question_id) -> per-sample fields (e.g. parsed prediction, correct/score)."""
    n: int = 0


class Evaluator(ABC):
    """Scores predictions against the samples a loader produced.

    ``predictions`` maps ``str(question_id)`` to the raw model text (already ``.strip()``-ed as
    the official driver did). Every sample must have a prediction; the harness checks ids first.
    """

    name: str = ""

    @abstractmethod
    def score(self, samples: Sequence[Sample], predictions: Mapping[str, str]) -> ScoreResult: ...


def _registry() -> dict[str, str]:
    found = dict(_BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep.value
    return found


def available_evaluators() -> list[str]:
    return sorted(_registry())


def get_evaluator(name: str) -> Evaluator:
    target = _registry().get(name)
    if target is None:
        raise ConfigError(f"unknown evaluator {name!r}; known: {', '.join(available_evaluators())}")
    module_name, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    return cls()
