"""What one benchmark declares in its ``task.yaml``, as typed records.

The spec is the only place the rest of the tool learns about a benchmark: how to load it, how
to prompt and decode, how to score and resample it, how tables, plots and the toy suite show
it. Code refers to a task's objects by ``module:Name``; a leading dot resolves inside the
task's own folder (``.evaluator:GQAEvaluator``), two dots in its parent (a sibling folder).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from .task_yaml import Node, Reader, parse, positive_int, reference

PROTOCOLS = ("llava15",)
IMAGE_HANDLING = ("config", "pad", "crop")
SCORING = ("local", "server", "judge")
"""``local``: scored here; ``server``: only an upload file is written; ``judge``: needs an LLM judge."""
JUDGE_USE = ("none", "optional", "required")
SOURCES = ("local", "hf")
RESAMPLING = ("question_mean", "split_image", "subtask_image", "circular_group", "judge_ratio")
"""How confidence intervals resample a task (see :mod:`aligngpt.report.stats`)."""
RECORD_FILTERS = ("all", "has_image", "scored", "balanced")
GROUPS = ("academic", "instruction")

_TOP_KEYS = ("name", "title", "protocol", "template", "max_new_tokens", "image_handling", "prompt_suffix",
             "scoring", "judge", "loader", "evaluator", "headline", "sources", "resampling", "column", "order",
             "literature", "prepare", "toy")


@dataclass(frozen=True)
class Resampling:
    """The unit a bootstrap resamples and which records each metric keeps."""

    scheme: str
    metrics: dict[str, str]
    """metric -> record filter (``question_mean``) or ``all``; the first metric is the default."""


@dataclass(frozen=True)
class ColumnSpec:
    """How the paper tables show the task: its own column, or a fallback for another's."""

    key: str
    metric: str
    markdown: str = ""
    latex: str = ""
    group: str = ""
    ablation: bool = False
    note: str = ""
    axis_max: float = 100.0
    fallback_for: str = ""
    """When set, the task only fills ``fallback_for``'s column where a row lacks that task."""


@dataclass(frozen=True)
class PrepareSpec:
    """``aligngpt-eval prepare``: HF copy -> LLaVA local layout."""

    converter: str
    hub: str
    options: dict = field(default_factory=dict)
    expected_questions: int | None = None
    counts: str | None = None
    """Optional ``module:function(samples, full, result, problems) -> dict | None`` for finer counts."""


@dataclass(frozen=True)
class ToySpec:
    """The task's part of the bundled synthetic suite."""

    benchmark: str
    """The toy folder writer providing the task (several tasks can share one writer)."""
    writer: str | None = None
    wide_images: bool = False
    chance: dict = field(default_factory=dict)
    chance_rule: str = ""


@dataclass(frozen=True)
class TaskSpec:
    name: str
    title: str
    protocol: str
    evaluator: str
    """The name :func:`aligngpt.evaluators.get_evaluator` takes (the task's name)."""
    evaluator_ref: str
    """``module:Class`` of the evaluator, from ``task.yaml``."""
    scoring: str
    template: str
    max_new_tokens: int
    image_handling: str  # config | pad | crop
    headline: str
    sources: dict = field(default_factory=dict)
    judge: str = "none"
    loaders: dict = field(default_factory=dict)
    prompt_suffix: str = ""
    resampling: Resampling | None = None
    column: ColumnSpec | None = None
    order: int = 1000
    literature: str | None = None
    prepare: PrepareSpec | None = None
    toy: ToySpec | None = None
    package: str = ""
    """Python package of the task's folder: where relative references resolve."""
    path: str = ""
    """The ``task.yaml`` this spec was read from."""

    def pad_to_square(self, checkpoint_aspect_ratio: str) -> bool:
        if self.image_handling == "pad":
            return True
        if self.image_handling == "crop":
            return False
        return checkpoint_aspect_ratio == "pad"

    def resolve(self, ref: str) -> Any:
        """The object a ``module:Name`` reference of this spec names."""
        module_name, _, attr = ref.partition(":")
        try:
            if module_name.startswith("."):
                module = importlib.import_module(module_name, package=self.package)
            else:
                module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise ConfigError(f"{self.path}: task {self.name!r}: cannot import {module_name!r} ({exc})") from exc
        try:
            return getattr(module, attr)
        except AttributeError:
            raise ConfigError(f"{self.path}: task {self.name!r}: {module.__name__} has no {attr!r}") from None

    def make_evaluator(self):
        """A fresh evaluator instance (evaluators hold per-run state such as a judge)."""
        return self.resolve(self.evaluator_ref)()

    def loader(self, source: str):
        if source not in self.loaders:
            raise ConfigError(f"task {self.name!r} has no {source!r} data source; "
                              f"available: {', '.join(sorted(self.loaders)) or 'none'}")
        return self.resolve(self.loaders[source])


def _text(r: Reader, key: str, default: Any = ...) -> str:
    return r.get(key, str, default)


def _resampling(r: Reader | None, headline: str) -> Resampling | None:
    if r is None:
        return None
    r.only(("scheme", "metrics"))
    scheme = r.choice("scheme", RESAMPLING)
    metrics = r.get("metrics", (Node, list), [headline])
    if isinstance(metrics, list):
        if not metrics or not all(isinstance(m, str) for m in metrics):
            raise r.fail("metrics", "expected a list of metric names or a mapping metric -> record filter")
        return Resampling(scheme, {m: "all" for m in metrics})
    sub = Reader(metrics, r.where, r.prefix + "metrics.")
    out = {}
    for name in metrics:
        out[name] = sub.choice(name, RECORD_FILTERS)
        if out[name] != "all" and scheme != "question_mean":
            raise sub.fail(name, f"record filters apply to the question_mean scheme, not {scheme}")
    return Resampling(scheme, out)


def _column(r: Reader | None) -> ColumnSpec | None:
    if r is None:
        return None
    r.only(("key", "metric", "markdown", "latex", "group", "ablation", "note", "max", "fallback_for"))
    fallback = _text(r, "fallback_for", "")
    if fallback:
        for key in ("markdown", "latex", "group", "ablation", "note", "max", "key"):
            if r.has(key):
                raise r.fail(key, f"a fallback column takes its look from {fallback!r}; only 'metric' is allowed")
        return ColumnSpec(key=fallback, metric=_text(r, "metric"), fallback_for=fallback)
    markdown = _text(r, "markdown")
    return ColumnSpec(
        key=_text(r, "key"), metric=_text(r, "metric"), markdown=markdown, latex=_text(r, "latex", markdown),
        group=r.choice("group", GROUPS), ablation=r.get("ablation", bool, False), note=_text(r, "note", ""),
        axis_max=float(r.get("max", (int, float), 100.0, lambda v: None if v > 0 else "must be positive")),
    )


def _prepare(r: Reader | None) -> PrepareSpec | None:
    if r is None:
        return None
    r.only(("converter", "hub", "options", "expected_questions", "counts"))
    options = r.get("options", Node, Node())
    return PrepareSpec(
        converter=r.get("converter", str, check=reference), hub=_text(r, "hub"), options=dict(options),
        expected_questions=r.get("expected_questions", int, None, positive_int),
        counts=r.get("counts", str, None, reference),
    )


def _toy(r: Reader | None) -> ToySpec | None:
    if r is None:
        return None
    r.only(("benchmark", "writer", "wide_images", "chance", "chance_rule"))
    chance = r.get("chance", Node, Node())
    for metric, value in chance.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise Reader(chance, r.where, r.prefix + "chance.").fail(metric, f"expected a number or null, got {value!r}")
    return ToySpec(
        benchmark=_text(r, "benchmark"), writer=r.get("writer", str, None, reference),
        wide_images=r.get("wide_images", bool, False),
        chance={k: (None if v is None else float(v)) for k, v in chance.items()},
        chance_rule=_text(r, "chance_rule", ""),
    )


def _loaders(r: Reader) -> dict[str, str]:
    value = r.get("loader", (str, Node))
    if isinstance(value, str):
        raise r.fail("loader", "expected a mapping source -> 'module:function' (sources: local, hf)")
    sub = Reader(value, r.where, "loader.")
    sub.only(SOURCES)
    if "local" not in value:
        raise sub.fail(None, "a task needs at least a 'local' loader (the toy suite and --data-root use it)")
    return {s: sub.get(s, str, check=reference) for s in SOURCES if sub.has(s)}


def read_spec(text: str, where: str, *, folder_name: str, package: str) -> TaskSpec:
    """Parse and check one ``task.yaml``; ``folder_name`` must equal its ``name``."""
    r = Reader(parse(text, where), where)
    r.only(_TOP_KEYS)
    name = r.get("name", str, check=lambda v: None if v.isidentifier() else "must be a Python identifier")
    if name != folder_name:
        raise r.fail("name", f"must equal the task's folder name {folder_name!r}, got {name!r}")
    headline = _text(r, "headline")
    sources = r.sub("sources")
    if sources is not None:
        sources.only(SOURCES)
        for key in SOURCES:
            if sources.has(key):
                sources.get(key, (str, list))
    scoring = r.choice("scoring", SCORING)
    judge = r.choice("judge", JUDGE_USE, "required" if scoring == "judge" else "none")
    if (scoring == "judge") != (judge == "required"):
        raise r.fail("judge", f"scoring {scoring!r} and judge {judge!r} disagree (judge-scored tasks require a judge)")
    spec = TaskSpec(
        name=name,
        title=_text(r, "title"),
        protocol=r.choice("protocol", PROTOCOLS),
        evaluator=name,
        evaluator_ref=r.get("evaluator", str, check=reference),
        scoring=scoring,
        judge=judge,
        template=_text(r, "template"),
        max_new_tokens=r.get("max_new_tokens", int, check=positive_int),
        image_handling=r.choice("image_handling", IMAGE_HANDLING),
        headline=headline,
        prompt_suffix=_text(r, "prompt_suffix", ""),
        sources=dict(sources.node) if sources is not None else {},
        loaders=_loaders(r),
        resampling=_resampling(r.sub("resampling"), headline),
        column=_column(r.sub("column")),
        order=r.get("order", int, 1000),
        literature=_text(r, "literature", None),
        prepare=_prepare(r.sub("prepare")),
        toy=_toy(r.sub("toy")),
        package=package,
        path=where,
    )
    if spec.resampling is not None and headline not in spec.resampling.metrics and scoring != "server":
        raise r.fail("resampling", f"must cover the headline metric {headline!r}")
    return spec
