"""Per-task presets: per-sample records of a run -> the statistic, clusters and strata that
reproduce the task's official metric (chosen by the ``resampling`` section of its ``task.yaml``).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Hashable, Mapping, Sequence

import numpy as np

from ...io import iter_jsonl
from .resampling import bootstrap_ci, paired_test
from .results import CI, PairedResult
from .sum_statistic import SumStatistic, mean_statistic, ratio_statistic


#: MME subtasks (official calculation.py's eval_type_dict); names compared case-insensitively.
MME_PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene",
                  "landmark", "artwork", "ocr")
MME_COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")
POPE_SPLITS = ("random", "popular", "adversarial")


@dataclass
class TaskResampling:
    """What :func:`bootstrap_ci` / :func:`paired_test` need for one task's headline metric."""

    statistic: SumStatistic
    clusters: list[Hashable]
    strata: list[Hashable] | None
    question_ids: list[str] = field(default_factory=list)


def image_id(image: Any) -> str | None:
    """A stable id for an image reference: the path string, or a hash of encoded bytes."""
    if image is None:
        return None
    if isinstance(image, (bytes, bytearray)):
        return "sha1:" + hashlib.sha1(bytes(image)).hexdigest()
    return str(image)


def records_from_result(samples: Sequence[Any], result: Any) -> list[dict[str, Any]]:
    """One flat dict per sample: its meta, ``question_id``, ``image`` id, ``has_image``, and the
    evaluator's per-sample fields (``score``, ``target``, ...) -- the input of the task presets."""
    out = []
    for s in samples:
        per = result.per_sample.get(s.key)
        if per is None:
            raise KeyError(f"question {s.key!r} has no per-sample entry in the score result")
        rec = dict(s.meta)
        rec.update(question_id=s.question_id, image=image_id(s.image), has_image=s.has_image)
        rec.update(per)
        out.append(rec)
    return out


def load_records(samples_jsonl: str | Path) -> list[dict[str, Any]]:
    """Read a run's ``TASK/samples.jsonl`` (DataError names file and line on bad input)."""
    return [obj for _, obj in iter_jsonl(samples_jsonl)]


def _field(rec: Mapping[str, Any], names: Sequence[str], task: str, i: int) -> Any:
    for name in names:
        if name in rec and rec[name] is not None:
            return rec[name]
        meta = rec.get("meta")
        if isinstance(meta, Mapping) and meta.get(name) is not None:
            return meta[name]
    raise ValueError(f"{task}: record {i} (question {rec.get('question_id')!r}) lacks any of {list(names)}")


def _score(rec: Mapping[str, Any], task: str, i: int) -> float:
    value = _field(rec, ("score",), task, i)
    if isinstance(value, bool):
        return float(value)
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{task}: record {i} has a non-finite score")
    return value


def _one_hot_blocks(block_of: np.ndarray, values: np.ndarray, n_blocks: int) -> np.ndarray:
    """Place each item's k features into the column block of its group: (n, n_blocks*k)."""
    n, k = values.shape
    out = np.zeros((n, n_blocks * k))
    cols = block_of[:, None] * k + np.arange(k)[None, :]
    out[np.arange(n)[:, None], cols] = values
    return out


def _pope(records: Sequence[Mapping[str, Any]], task: str, metric: str) -> TaskResampling:
    split_names, feats, clusters = [], [], []
    for i, rec in enumerate(records):
        split = str(_field(rec, ("split", "category"), task, i)).lower()
        if split not in POPE_SPLITS:
            raise ValueError(f"{task}: record {i} has split {split!r}; expected one of {POPE_SPLITS}")
        gold_yes = str(_field(rec, ("label", "target"), task, i)) != "no"  # eval_pope.py: only "no" is negative
        right = _score(rec, task, i) >= 0.5
        parsed = rec.get("parsed")
        # LLaVA's POPE parser maps every answer to yes or no, so the score alone fixes the prediction
        pred_yes = parsed == "yes" if parsed in ("yes", "no") else gold_yes == right
        feats.append([gold_yes and pred_yes, (not gold_yes) and pred_yes, gold_yes and not pred_yes, right, 1.0])
        split_names.append(split)
        clusters.append((split, rec.get("image") if rec.get("image") is not None else rec.get("question_id")))
    present = [s for s in POPE_SPLITS if s in split_names]
    block = np.array([present.index(s) for s in split_names])
    k = 5
    x = _one_hot_blocks(block, np.asarray(feats, dtype=np.float64), len(present))

    def fn(s: np.ndarray) -> np.ndarray:
        per = []
        for j in range(len(present)):
            tp, fp, fn_, right, tot = (s[:, j * k + c] for c in range(k))
            if metric == "accuracy":
                per.append(right / tot)
            else:  # F1 = 2TP / (2TP + FP + FN); 0 when the split has no TP at all
                den = 2 * tp + fp + fn_
                per.append(np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), 0.0))
        return 100.0 * np.mean(per, axis=0)

    return TaskResampling(SumStatistic(x, fn, name=f"pope.{metric}"), clusters, split_names)


def _mme(records: Sequence[Mapping[str, Any]], task: str, metric: str) -> tuple[TaskResampling, list[int]]:
    wanted = MME_PERCEPTION if metric == "perception" else MME_COGNITION
    cats, rows, clusters, keep = [], [], [], []
    for i, rec in enumerate(records):
        cat = str(_field(rec, ("category",), task, i)).lower()
        if cat not in MME_PERCEPTION + MME_COGNITION:
            raise ValueError(f"{task}: record {i} has unknown subtask {cat!r}")
        if cat not in wanted:
            continue
        img = rec.get("image")
        if img is None:
            img = rec.get("answer_question_id")
        if img is None:  # the MME loader's question ids are "<image>#k"
            img = str(_field(rec, ("question_id",), task, i)).split("#")[0]
        keep.append(i)
        cats.append(cat)
        rows.append(_score(rec, task, i) >= 0.5)
        clusters.append((cat, str(img)))
    if not rows:
        raise ValueError(f"{task}: no {metric} questions in the records")
    present = [c for c in wanted if c in cats]
    # Feature per question: [correct, 1, 0, 0]; the first question of each image also carries
    # [.., .., all questions of the image correct, 1] so acc+ sums per image.
    first: dict[tuple, int] = {}
    feats = np.zeros((len(rows), 4))
    for j, (cl, ok) in enumerate(zip(clusters, rows)):
        feats[j, 0], feats[j, 1] = float(ok), 1.0
        first.setdefault(cl, j)
    all_ok: dict[tuple, bool] = {}
    for cl, ok in zip(clusters, rows):
        all_ok[cl] = all_ok.get(cl, True) and ok
    for cl, j in first.items():
        feats[j, 2], feats[j, 3] = float(all_ok[cl]), 1.0
    block = np.array([present.index(c) for c in cats])
    x = _one_hot_blocks(block, feats, len(present))

    def fn(s: np.ndarray) -> np.ndarray:
        total = np.zeros(s.shape[0])
        for j in range(len(present)):
            c, q, a, im = (s[:, j * 4 + t] for t in range(4))
            total = total + 100.0 * c / q + 100.0 * a / im  # official: score = acc + acc+ (x100)
        return total

    return TaskResampling(SumStatistic(x, fn, name=f"mme.{metric}"), clusters, cats), keep


def _mmbench(records: Sequence[Mapping[str, Any]], task: str) -> tuple[TaskResampling, list[int]]:
    groups: dict[int, bool] = {}
    clusters, keep = [], []
    for i, rec in enumerate(records):
        if rec.get("orphan") or ("score" in rec and rec["score"] is None):
            continue  # a copy without its main row, or a question whose judgement is missing
        try:
            idx = int(_field(rec, ("index", "question_id"), task, i))
        except (TypeError, ValueError):
            raise ValueError(f"{task}: record {i} question id is not an MMBench integer index") from None
        g = idx % 1_000_000  # circular copies: index + k * 1e6 (opencompass eval_mmbench.py)
        clusters.append(g)
        keep.append(i)
        groups[g] = groups.get(g, True) and _score(rec, task, i) >= 0.5
    # Feature on the first row of each group: [hit, 1]; later copies carry zeros.
    seen: set[int] = set()
    feats = np.zeros((len(clusters), 2))
    for j, g in enumerate(clusters):
        if g not in seen:
            seen.add(g)
            feats[j] = (float(groups[g]), 1.0)
    if not clusters:
        raise ValueError(f"{task}: no scored rows")
    stat = SumStatistic(feats, lambda s: 100.0 * s[:, 0] / s[:, 1], name="mmbench.circular_accuracy")
    return TaskResampling(stat, clusters, None), keep


def _llava_bench(records: Sequence[Mapping[str, Any]], task: str) -> tuple[TaskResampling, list[int]]:
    num, den, clusters, keep = [], [], [], []
    for i, rec in enumerate(records):
        ref = rec.get("reference_score", rec.get("gpt4_score"))
        mod = rec.get("model_score")
        if (ref is None or mod is None) and isinstance(rec.get("scores"), (list, tuple)) and len(rec["scores"]) == 2:
            ref, mod = rec["scores"]  # LLaVA review order: [reference (GPT-4 answer), model]
        if ref is None or mod is None:
            continue  # a missing judgement is excluded, as in the evaluator
        keep.append(i)
        den.append(float(ref))
        num.append(float(mod))
        clusters.append(rec.get("question_id", i))
    if not num:
        raise ValueError(f"{task}: no record has both reference and model judge scores "
                         "(fields reference_score/gpt4_score + model_score, or scores=[ref, model])")
    return TaskResampling(ratio_statistic(num, den, scale=100.0), clusters, None), keep


def _split_image(recs: Sequence[Mapping[str, Any]], task: str, metric: str) -> tuple[TaskResampling, list[int]]:
    return _pope(recs, task, metric), list(range(len(recs)))


#: ``resampling.scheme`` of a task.yaml -> (records, task, metric) -> (statistic, kept rows).
_SCHEMES = {
    "split_image": _split_image,
    "subtask_image": _mme,
    "circular_group": lambda recs, task, metric: _mmbench(recs, task),
    "judge_ratio": lambda recs, task, metric: _llava_bench(recs, task),
}

#: ``question_mean`` record filters: which records a metric averages over.
_KEEP = {
    "all": lambda r, task, i: True,
    "has_image": lambda r, task, i: bool(_field(r, ("has_image",), task, i)),
    "scored": lambda r, task, i: r.get("score") is not None,  # a missing judgement is left out
    "balanced": lambda r, task, i: r.get("balanced", True) is not False,  # GQA's eval.py: balanced only
}


def _resampling_of(task: str):
    """The task's ``resampling`` section, or None (unknown task, or no local metric)."""
    from ...harness.task_registry import all_specs

    spec = all_specs().get(task)
    return None if spec is None else spec.resampling


def task_statistic(task: str, records: Sequence[Mapping[str, Any]], metric: str | None = None) -> TaskResampling:
    """Fast-path statistic, clusters and strata that reproduce a task's headline metric.

    Records are :func:`records_from_result` dicts or ``samples.jsonl`` lines; all need a numeric
    ``score`` (1 right / 0 wrong; soft for VQA-style and MM-Vet). The task's ``task.yaml``
    ``resampling`` section picks the scheme and, per metric, the records kept (the first metric
    listed is the default):

    * ``question_mean``: ``100 * mean(score)``, one cluster per question, over the records the
      metric's filter keeps (``all``; ``has_image``; ``scored``: ``score`` not None, i.e. a
      judgement is not missing; ``balanced``: ``balanced`` not False, as GQA's eval.py);
    * ``split_image`` (POPE ``f1``/``accuracy``): mean over splits of the per-split metric,
      strata = split (``split`` or ``category``), clusters = (split, image); gold =
      ``label``/``target`` (only ``"no"`` is negative, as eval_pope.py), prediction = ``parsed``
      or implied by ``score``;
    * ``subtask_image`` (MME ``perception``/``cognition``): sum over subtasks of
      ``100*acc + 100*acc+``, strata = subtask (``category``), clusters = (subtask, image), the
      image taken from ``image``, ``answer_question_id`` or the loader's ``"<image>#k"`` id;
    * ``circular_group`` (MMBench ``circular_accuracy``): cluster = ``index % 1e6``, hit = every
      copy right; orphan copies and questions with a missing judgement are left out;
    * ``judge_ratio`` (LLaVA-W ``relative_score``): ``100 * sum(model) / sum(reference)``.

    ``question_ids`` of the result lists the records the statistic uses, in row order.
    """
    recs = list(records)
    if not recs:
        raise ValueError(f"{task}: no records")
    qids = [str(r.get("question_id", i)) for i, r in enumerate(recs)]
    plan = _resampling_of(task)
    if plan is None:
        raise ValueError(f"no fast statistic for task {task!r}; use bootstrap_ci with evaluator_metric")
    metric = metric or next(iter(plan.metrics))
    if metric not in plan.metrics:
        raise ValueError(f"{task}: no fast statistic for {metric!r} (have {', '.join(plan.metrics)}); "
                         "use bootstrap_ci with evaluator_metric")
    if plan.scheme == "question_mean":
        keep = [i for i, r in enumerate(recs) if _KEEP[plan.metrics[metric]](r, task, i)]
        if not keep:
            raise ValueError(f"{task}: no scored records for {metric}")
        stat = mean_statistic([_score(recs[i], task, i) for i in keep], scale=100.0)
        out = TaskResampling(stat, [qids[i] for i in keep], None)
    else:
        out, keep = _SCHEMES[plan.scheme](recs, task, metric)
    out.question_ids = [qids[i] for i in keep]
    return out


def task_bootstrap_ci(task: str, records: Sequence[Mapping[str, Any]], metric: str | None = None, *,
                      n_resamples: int = 1000, alpha: float = 0.05, seed: int = 0) -> CI:
    """Bootstrap CI of a task's headline metric from per-sample records (see :func:`task_statistic`)."""
    tr = task_statistic(task, records, metric)
    return bootstrap_ci(None, tr.statistic, cluster_key=tr.clusters, strata_key=tr.strata,
                        n_resamples=n_resamples, alpha=alpha, seed=seed)


def task_paired_test(task: str, records_a: Sequence[Mapping[str, Any]], records_b: Sequence[Mapping[str, Any]],
                     metric: str | None = None, *, n_resamples: int = 1000, alpha: float = 0.05,
                     seed: int = 0) -> PairedResult:
    """Paired bootstrap of ``metric(A) - metric(B)``; both runs must cover the same questions.

    B's records are re-ordered to A's question order so the same clusters are drawn for both.
    Questions one run could not score (a missing judgement) are dropped from both runs.
    """
    ids_a = [str(r.get("question_id")) for r in records_a]
    by_id = {str(r.get("question_id")): r for r in records_b}
    if len(by_id) != len(records_b) or len(set(ids_a)) != len(ids_a):
        raise ValueError(f"{task}: duplicate question ids; cannot pair")
    if set(ids_a) != set(by_id):
        only_a, only_b = set(ids_a) - set(by_id), set(by_id) - set(ids_a)
        raise ValueError(f"{task}: runs cover different questions ({len(only_a)} only in A, "
                         f"{len(only_b)} only in B, e.g. {sorted(only_a | only_b)[:3]})")
    records_b = [by_id[q] for q in ids_a]
    ta, tb = task_statistic(task, records_a, metric), task_statistic(task, records_b, metric)
    if ta.question_ids != tb.question_ids:
        # Judge-scored tasks: a question missing in either run is dropped from both.
        common = set(ta.question_ids) & set(tb.question_ids)
        pairs = [(ra, rb) for ra, rb in zip(records_a, records_b) if str(ra.get("question_id")) in common]
        ta = task_statistic(task, [ra for ra, _ in pairs], metric)
        tb = task_statistic(task, [rb for _, rb in pairs], metric)
    return paired_test(None, ta.statistic, tb.statistic, cluster_key=ta.clusters, strata_key=ta.strata,
                       n_resamples=n_resamples, alpha=alpha, seed=seed)
