"""What the HTML report shows, gathered from run folders into one JSON-ready payload.

The payload is columnar (one list per field and task) so that a 50,000-question run stays a
few megabytes and the page can filter it without building one object per question. Runs are
joined on ``(task, str(question_id))``: a comparison shows every run's answer to the same
question side by side, and "flipped" questions are those whose right/wrong state differs.

Right and wrong: a question is *right* when its per-sample ``score`` is at least
:data:`RIGHT_THRESHOLD` (full credit on 0/1-scored tasks; on VQA-style soft scores
``min(#humans/3, 1)``, at least two annotators agree), *wrong* below it, and *unscored* when it
has no score (server-scored splits, missing judgements, MMBench orphan copies).  This is the
same cut the bootstrap statistics use for binary correctness (``report.stats``).
"""
from __future__ import annotations

import base64
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import AlignGPTError, ConfigError, DataError
from ..io import iter_jsonl, read_json

#: score >= this is "right" (see the module docstring).
RIGHT_THRESHOLD = 0.5
#: Per-sample fields that say what kind of question it is, first present wins (row, then meta).
TYPE_FIELDS = ("answer_type", "type", "split", "category", "dimension", "l2-category")
#: Per-sample fields holding the scorer's reading of the prediction.
PARSED_FIELDS = ("parsed", "compared", "pred_answer")
#: Gate weights are rounded for the bar chart (exact values stay in samples.jsonl).
WEIGHT_DIGITS = 4


@dataclass
class ViewRun:
    """One run folder as the report shows it."""

    label: str
    run_dir: Path
    results: dict
    grid_cell: dict | None = None
    """This run's cell of ``grid_results.json`` (CIs, paired tests) when it came from a grid."""


@dataclass
class ImageStore:
    """Thumbnails deduplicated by image identity, embedded as data URLs."""

    size: int = 160
    quality: int = 70
    urls: list[str] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, ref: Any) -> int:
        """Index of the thumbnail of ``ref`` (a path or encoded bytes); -1 if unreadable."""
        if key in self._index:
            return self._index[key]
        url = thumbnail_data_url(ref, self.size, self.quality)
        idx = -1
        if url is not None:
            idx = len(self.urls)
            self.urls.append(url)
        self._index[key] = idx
        return idx


def thumbnail_data_url(ref: Any, size: int, quality: int) -> str | None:
    """A JPEG thumbnail (longest side ``size``) as a ``data:`` URL, or None when unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        src = io.BytesIO(ref) if isinstance(ref, (bytes, bytearray)) else open(ref, "rb")
        with src, Image.open(src) as im:
            im = im.convert("RGB")
            im.thumbnail((size, size))
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=quality, optimize=True)
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# --------------------------------------------------------------------------- runs


def load_view_runs(paths: Sequence[str | Path]) -> tuple[list[ViewRun], str | None]:
    """Runs named on the command line (grid folders expand to their finished cells), and the
    grid's baseline label when one grid folder was given."""
    from .runs import RESULTS_FILE, load_runs

    if not paths:
        raise ConfigError("view needs at least one RUN_DIR")
    runs = [ViewRun(label, d, res) for d, label, res in load_runs(paths)]
    baseline = None
    grid_files = [Path(p) / RESULTS_FILE for p in paths if (Path(p) / RESULTS_FILE).is_file()]
    for gfile in grid_files:
        grid = read_json(gfile)
        cells = grid.get("cells") if isinstance(grid, Mapping) else None
        if not isinstance(cells, list):
            raise DataError(gfile, "no 'cells' list")
        by_dir = {(gfile.parent / c.get("run_dir", "")).resolve(): c for c in cells if isinstance(c, Mapping)}
        for run in runs:
            cell = by_dir.get(run.run_dir.resolve())
            if cell is not None:
                run.grid_cell = cell
        if len(paths) == 1 and grid.get("baseline"):  # the cell the grid's paired tests used
            baseline = next((str(c["baseline"]) for c in cells if isinstance(c, Mapping) and c.get("baseline")),
                            str(grid["baseline"]))
    return runs, baseline


def baseline_index(runs: Sequence[ViewRun], baseline: str | None) -> int:
    """The run the deltas are taken against: ``baseline`` (a label or folder name), else the first."""
    if baseline is None:
        return 0
    for i, r in enumerate(runs):
        if baseline in (r.label, r.run_dir.name):
            return i
    for i, r in enumerate(runs):  # a seedless grid baseline such as toy/none
        if r.label.startswith(baseline + "/"):
            return i
    raise ConfigError(f"--baseline {baseline!r} matches no run; runs: {', '.join(r.label for r in runs)}")


def run_tasks(runs: Sequence[ViewRun]) -> list[str]:
    """Task names in first-seen order over the runs."""
    out: list[str] = []
    for r in runs:
        for t in (r.results.get("tasks") or {}):
            if t not in out:
                out.append(t)
    return out


def task_info(task: str) -> dict:
    """Title, headline metric and scoring note from the task spec (blank for unknown tasks)."""
    from .runs import headline_metric
    from ..harness.tasks import load_task

    try:
        spec = load_task(task)
        return {"title": spec.title, "headline": spec.headline, "scoring": spec.scoring}
    except ConfigError:
        return {"title": task, "headline": headline_metric(task), "scoring": ""}


# --------------------------------------------------------------------------- samples


def _first(row: Mapping[str, Any], names: Sequence[str]) -> Any:
    meta = row.get("meta") if isinstance(row.get("meta"), Mapping) else {}
    for name in names:
        for where in (row, meta):
            if where.get(name) is not None:
                return where[name]
    return None


def _text(value: Any) -> str | None:
    """Display text of a target or parsed answer (lists joined, other objects as JSON)."""
    import json

    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return " | ".join(str(v) for v in value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _score(row: Mapping[str, Any], path: Path, line: int) -> float | None:
    if row.get("orphan"):
        return None
    value = row.get("score")
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, (int, float)):
        raise DataError(path, f"score {value!r} is not a number", line=line)
    value = float(value)
    return value if math.isfinite(value) else None


def _weights(value: Any) -> list[float] | None:
    if not isinstance(value, list) or not value:
        return None
    try:
        return [round(float(v), WEIGHT_DIGITS) for v in value]
    except (TypeError, ValueError):
        return None


def read_samples(path: Path) -> list[tuple[int, dict]]:
    """``(line, row)`` of a samples.jsonl; a row that is not an object is a DataError."""
    out = []
    for line, row in iter_jsonl(path):
        if not isinstance(row, dict):
            raise DataError(path, "a samples.jsonl line must be a JSON object", line=line)
        if "question_id" not in row:
            raise DataError(path, "row has no question_id", line=line)
        out.append((line, row))
    return out


def _common_affixes(texts: Sequence[str]) -> tuple[str, str]:
    """The chat template around the questions: the longest common prefix cut after a line break
    and the longest common suffix cut before one, so that each question's lines stay whole
    (what the page shows and searches) and the template is stored once."""
    if not texts:
        return "", ""
    prefix = os.path.commonprefix(list(texts))
    prefix = prefix[:prefix.rfind("\n") + 1]
    rest = [t[len(prefix):] for t in texts]
    suffix = os.path.commonprefix([t[::-1] for t in rest])[::-1]
    suffix = suffix[suffix.find("\n"):] if "\n" in suffix else ""
    return prefix, suffix


def task_samples(task: str, runs: Sequence[ViewRun], images: dict[str, Any] | None,
                 store: ImageStore | None) -> dict:
    """Columnar samples of one task over all runs, joined on question id."""
    order: list[str] = []
    first: dict[str, dict] = {}
    per_run: list[dict[str, dict]] = []
    for run in runs:
        path = run.run_dir / task / "samples.jsonl"
        rows: dict[str, dict] = {}
        if (run.results.get("tasks") or {}).get(task) is not None:
            if not path.is_file():
                raise DataError(path, "file not found (the run's results.json lists this task)")
            for line, row in read_samples(path):
                key = str(row["question_id"])
                if key in rows:
                    raise DataError(path, f"duplicate question_id {key!r}", line=line)
                rows[key] = {"row": row, "score": _score(row, path, line)}
                if key not in first:
                    first[key] = row
                    order.append(key)
        per_run.append(rows)
    prompts = [str(first[k].get("prompt") or "") for k in order]
    prefix, suffix = _common_affixes(prompts)
    cut = slice(len(prefix), (-len(suffix)) or None)
    out: dict[str, Any] = {
        "qid": order,
        "prompt_prefix": prefix, "prompt_suffix": suffix,
        "prompt": [p[cut] for p in prompts],
        "target": [_text(first[k].get("target")) for k in order],
        "type": [_text(_first(first[k], TYPE_FIELDS)) for k in order],
        "image": [], "runs": [],
    }
    for k in order:
        idx = -1
        if store is not None and images is not None:
            ref = images.get(k)
            ident = first[k].get("image")
            if ref is not None:
                idx = store.add(f"{task}\0{ident if ident is not None else k}", ref)
        out["image"].append(idx)
    for rows in per_run:
        col: dict[str, list] = {"pred": [], "parsed": [], "score": [], "weights": []}
        for k in order:
            rec = rows.get(k)
            row = rec["row"] if rec else {}
            col["pred"].append(row.get("prediction") if rec else None)
            col["parsed"].append(_text(_first(row, PARSED_FIELDS)) if rec else None)
            col["score"].append(rec["score"] if rec else None)
            col["weights"].append(_weights(row.get("alignment_weights")) if rec else None)
        col["present"] = len(rows)
        out["runs"].append(col)
    return out


def task_images(task: str, settings: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """``question_id -> image ref`` by reloading the run's data as it was run; or the reason not."""
    from ..harness.settings import RunSettings
    from ..harness.samples import load_samples
    from ..harness.tasks import load_task

    keys = ("data_root", "source", "limit", "hf_paths")
    try:
        rs = RunSettings(**{k: settings[k] for k in keys if k in settings})
        samples = load_samples(load_task(task), rs)
    except (AlignGPTError, OSError, ImportError, ValueError, TypeError) as exc:
        return None, f"images of {task} not found ({exc})"
    return {s.key: s.image for s in samples if s.image is not None}, None


def _float_keys(metrics: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys of the float metrics: JSON cannot tell 50.0 from 50, and the page prints
    floats with two decimals and integers (counts) as they are, as the CLI's tables do."""
    out = []
    for k, v in metrics.items():
        if isinstance(v, Mapping):
            out += _float_keys(v, f"{prefix}{k}.")
        elif isinstance(v, float):
            out.append(prefix + k)
    return out


def _json_safe(value: Any) -> Any:
    """NaN/inf -> None so the payload is strict JSON (JSON.parse rejects NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


ImageFinder = Callable[[str, Mapping[str, Any]], "tuple[dict[str, Any] | None, str | None]"]


def build_payload(runs: Sequence[ViewRun], *, baseline: int = 0, with_images: bool = True,
                  thumb_size: int = 160, find_images: ImageFinder | None = None) -> dict:
    """Everything the page shows, as one JSON-ready dict (see the module docstring).

    ``find_images(task, settings)`` maps question ids to images (default :func:`task_images`,
    which reloads the run's data; benchmarks pass synthetic images)."""
    find_images = find_images or task_images
    tasks = run_tasks(runs)
    store = ImageStore(size=thumb_size) if with_images else None
    notes: list[str] = []
    samples = {}
    for task in tasks:
        images = None
        if with_images:
            settings = next((r.results.get("settings") or {} for r in runs
                             if task in (r.results.get("tasks") or {})), {})
            images, why = find_images(task, settings)
            if why:
                notes.append(why)
        samples[task] = task_samples(task, runs, images, store)
    run_out = []
    for r in runs:
        grid_tasks = (r.grid_cell or {}).get("tasks") or {}
        run_out.append({
            "label": r.label, "run_dir": str(r.run_dir), "run_name": r.run_dir.name,
            "model": r.results.get("model"), "settings": r.results.get("settings"),
            "environment": r.results.get("environment"),
            "tasks": {t: {**{k: v for k, v in (res or {}).items() if k != "timing"},
                          "float_metrics": _float_keys((res or {}).get("metrics") or {}),
                          "ci": (grid_tasks.get(t) or {}).get("ci") or {},
                          "vs_baseline": (grid_tasks.get(t) or {}).get("vs_baseline") or {}}
                      for t, res in (r.results.get("tasks") or {}).items()},
            "grid_baseline": (r.grid_cell or {}).get("baseline"),
        })
    return _json_safe({
        "format": 1,
        "right_threshold": RIGHT_THRESHOLD,
        "baseline": baseline,
        "tasks": tasks,
        "task_info": {t: task_info(t) for t in tasks},
        "runs": run_out,
        "samples": samples,
        "images": store.urls if store is not None else [],
        "notes": notes,
    })
