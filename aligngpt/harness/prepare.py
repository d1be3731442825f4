"""``aligngpt-eval prepare``: turn lmms-lab HF copies into the LLaVA local layout, with a manifest.

Air-gapped clusters cannot reach the hub, and the official scripts want the LLaVA
``playground/data/eval`` files. ``prepare`` reads each benchmark through our own HF loader
(a hub id when online, or a local folder of the repository's parquet files), writes the files
the *local* loader reads, then loads them back with the local loader and checks that every
question id, prompt, target and image byte equals what the HF loader gave. So ``run --source
local`` on the result answers exactly what ``run --source hf`` answers.

``DIR/manifest.json`` records, per task: the source, every written file with its sha256 and size
(row counts for question files), the number of questions, a hash of the question-id set, the
comparison with the protocol's expected counts, and warnings. ``prepare --check --out DIR``
re-hashes the files on the cluster side.

Counts (protocol.md §3): GQA testdev-balanced 12,578; POPE 8,910 as LLaVA used (lmms-lab/POPE
has 3,000 per split = 9,000: a known mismatch, recorded as a warning); MME 2,374; MMBench dev
(20230712) 4,377; MMBench-CN dev (20231003) 4,329. Counts are enforced only when the full split
was converted: a hub download, or ``--strict-counts`` for a local copy. For other local copies
(e.g. small test copies) the check is recorded as skipped.

Layout deviations (needed so ids match the HF source exactly; the local loaders accept them):
POPE question ids are ``"{split}/{id}"`` strings rather than LLaVA's global integers (the label
files keep the per-split integer ids and are joined by position, as eval_pope.py does); MME's
``question_id`` is the lmms-lab id (``artwork/10002.jpg``) while ``image`` points into the
official release folders.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .. import __version__
from ..data.base import Sample, get_loader, resolve_image_path
from ..errors import ConfigError, DataError
from ..io import atomic_write_bytes, atomic_write_json

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "aligngpt-prepare/1"

#: Question counts of the splits LLaVA-1.5 / AlignGPT evaluated (protocol.md §3.2, 3.6-3.9).
EXPECTED_QUESTIONS = {"gqa": 12_578, "pope": 8_910, "mme": 2_374, "mmbench": 4_377, "mmbench_cn": 4_329}

#: POPE per split at the POPE commit LLaVA pins (e3e39262): random 2,910, popular/adversarial 3,000.
POPE_EXPECTED_SPLITS = {"random": 2_910, "popular": 3_000, "adversarial": 3_000}
#: lmms-lab/POPE (config Full) holds 3,000 per split; the known difference to LLaVA's copy.
POPE_LMMS_LAB_SPLITS = {"random": 3_000, "popular": 3_000, "adversarial": 3_000}

#: MME questions per subtask (2 per image; image counts from protocol.md §3.7).
MME_EXPECTED_CATEGORIES = {
    "existence": 60, "count": 60, "position": 60, "color": 60, "posters": 294, "celebrity": 340,
    "scene": 400, "landmark": 400, "artwork": 400, "OCR": 40, "commonsense_reasoning": 140,
    "numerical_calculation": 40, "text_translation": 40, "code_reasoning": 40,
}
#: Official MME release categories that keep images in ``images/`` and GT in ``questions_answers_YN/``.
MME_IMAGE_FOLDER_CATEGORIES = frozenset({"artwork", "celebrity", "landmark", "posters", "scene"})

#: Hints for counts that identify a different release of the same benchmark.
KNOWN_OTHER_COUNTS = {
    ("mmbench", 4_329): "4,329 rows is the 20231003 release (lmms-lab/MMBench 'en'); LLaVA's "
                        "mmbench_dev_20230712.tsv has 4,377 (lmms-lab/MMBench_EN)",
}


@dataclass(frozen=True)
class HubSource:
    """Where a task comes from when no ``--hf-path`` is given, and the loader options for it."""

    hf_path: str
    options: dict = field(default_factory=dict)


#: Hub defaults. MMBench uses lmms-lab/MMBench_EN, the 20230712 file LLaVA/AlignGPT evaluated
#: (lmms-lab/MMBench 'en' is the 20231003 release, 4,329 rows).
HUB_SOURCES = {
    "gqa": HubSource("lmms-lab/GQA"),
    "pope": HubSource("lmms-lab/POPE"),
    "mme": HubSource("lmms-lab/MME"),
    "mmbench": HubSource("lmms-lab/MMBench_EN", {"config": None, "split": "dev"}),
    "mmbench_cn": HubSource("lmms-lab/MMBench", {"config": "cn", "split": "dev"}),
}


# ---------------------------------------------------------------------------------------------
# Writing files (atomic, inside DIR only, checksummed)
# ---------------------------------------------------------------------------------------------

def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _plain_file_name(name: str, *, where: str) -> str:
    """A name taken from the data must be one path component (no folders, no ``..``)."""
    if (not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name
            or "\x00" in name):
        raise DataError(where, f"image name {name!r} is not a plain file name; refused")
    return name


def _image_extension(data: bytes) -> str:
    """File extension for encoded image bytes (used only where the data gives no file name)."""
    from PIL import Image

    try:
        fmt = (Image.open(io.BytesIO(data)).format or "").upper()
    except Exception:  # undecodable bytes are reported by the verification step, not here
        fmt = ""
    return {"PNG": ".png", "GIF": ".gif", "BMP": ".bmp", "WEBP": ".webp", "TIFF": ".tif"}.get(fmt, ".jpg")


class LayoutWriter:
    """Writes files under ``root`` atomically and records their checksums for the manifest.

    Every path goes through :func:`resolve_image_path`, so nothing derived from the data can
    land outside ``root``. Images are content-addressed per name: the same name with different
    bytes gets a suffixed name (and a warning) instead of silently overwriting the first.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.files: dict[str, dict] = {}
        self.warnings: list[str] = []
        self._images: dict[str, str] = {}  # relative path -> sha256

    def _target(self, rel: str, where: str) -> Path:
        return resolve_image_path(self.root, rel, source_file=Path(where) if where else None)

    def write_bytes(self, rel: str, data: bytes, *, rows: int | None = None, where: str = "") -> Path:
        path = self._target(rel, where)
        atomic_write_bytes(path, data)
        info: dict[str, Any] = {"sha256": sha256_bytes(data), "bytes": len(data)}
        if rows is not None:
            info["rows"] = rows
        self.files[rel] = info
        return path

    def write_text(self, rel: str, text: str, *, rows: int | None = None) -> Path:
        return self.write_bytes(rel, text.encode("utf-8"), rows=rows)

    def write_jsonl(self, rel: str, rows: Sequence[Any]) -> Path:
        return self.write_text(rel, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), rows=len(rows))

    def write_json(self, rel: str, obj: Any, *, rows: int | None = None) -> Path:
        return self.write_text(rel, json.dumps(obj, ensure_ascii=False), rows=rows)

    def put_image(self, folder: str, name: str, data: bytes, *, where: str) -> str:
        """Store one image as ``folder/name``; returns the name used (relative to ``folder``)."""
        name = _plain_file_name(name, where=where)
        digest = sha256_bytes(data)
        rel = f"{folder}/{name}"
        previous = self._images.get(rel)
        if previous == digest:
            return name
        if previous is not None:
            stem, dot, ext = name.rpartition(".")
            name = f"{stem}__{digest[:10]}.{ext}" if dot else f"{name}__{digest[:10]}"
            self.warnings.append(f"{where}: two different images are both called {rel}; the second is "
                                 f"stored as {folder}/{name}")
            rel = f"{folder}/{name}"
            if self._images.get(rel) == digest:
                return name
        self._images[rel] = digest
        self.write_bytes(rel, data, where=where)
        return name


# ---------------------------------------------------------------------------------------------
# Per-task converters: HF samples (+ raw columns where the layout needs more) -> LLaVA layout
# ---------------------------------------------------------------------------------------------

def _image_bytes(sample: Sample, task: str) -> bytes:
    if not isinstance(sample.image, (bytes, bytearray)) or not sample.image:
        raise DataError(None, f"{task}: question {sample.question_id} has no encoded image in the HF copy")
    return bytes(sample.image)


def _json_safe(value: Any) -> Any:
    """Raw HF cells as plain JSON values (bytes are never expected in question records)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def convert_gqa(samples: list[Sample], w: LayoutWriter, source: str, hf_path: str, options: dict) -> None:
    """``gqa/llava_gqa_testdev_balanced.jsonl``, ``gqa/data/testdev_balanced_questions.json``
    (every column of the instructions config, keyed by question id, as in the official file) and
    ``gqa/data/images/{imageId}.jpg``."""
    from ..data.loaders.gqa import load_lmms_split

    config = options.get("instructions_config", "testdev_balanced_instructions")
    split = options.get("split", "testdev")
    raw = load_lmms_split(hf_path, config, split, cache_dir=options.get("cache_dir"))
    records: dict[str, dict] = {}
    for r in raw:
        record = {k: _json_safe(v) for k, v in r.items() if k != "id"}
        records[str(r["id"])] = record
    questions: dict[str, dict] = {}
    rows = []
    for s in samples:
        image_id = str(s.meta["image_id"])
        name = w.put_image("gqa/data/images", f"{image_id}.jpg", _image_bytes(s, "gqa"), where=source)
        rows.append({"question_id": str(s.question_id), "image": name, "text": s.question, "category": "default"})
        questions[str(s.question_id)] = records[str(s.question_id)]
    w.write_jsonl("gqa/llava_gqa_testdev_balanced.jsonl", rows)
    w.write_json("gqa/data/testdev_balanced_questions.json", questions, rows=len(questions))


def _pope_image_names(hf_path: str, options: dict, samples: list[Sample]) -> list[str | None]:
    """The ``image_source`` column (COCO file stem) of each sample, aligned by split and row."""
    from ..data.loaders.gqa import load_lmms_split
    from ..data.loaders.pope import POPE_SPLITS

    names: list[str | None] = []
    config = options.get("config", "Full")
    if config != "Full":
        return [None] * len(samples)
    for split in options.get("splits", POPE_SPLITS):
        ds = load_lmms_split(hf_path, "Full", split, cache_dir=options.get("cache_dir"))
        cols = ["question_id"] + (["image_source"] if "image_source" in ds.column_names else [])
        for r in ds.select_columns(cols):
            names.append(None if r.get("image_source") in (None, "") else str(r["image_source"]))
    if len(names) != len(samples):
        raise DataError(hf_path, f"pope: {len(names)} rows in the Full splits but the loader gave {len(samples)} questions")
    return names


def convert_pope(samples: list[Sample], w: LayoutWriter, source: str, hf_path: str, options: dict) -> None:
    """``pope/llava_pope_test.jsonl``, ``pope/coco/coco_pope_{split}.json`` (label JSONL in the
    question order of the split) and ``pope/val2014/`` images named after ``image_source``."""
    from ..data.loaders.gqa import SHORT_ANSWER_SUFFIX
    from ..data.loaders.pope import label_file_name

    names = _pope_image_names(hf_path, options, samples)
    questions, labels = [], {}
    for s, stem in zip(samples, names):
        data = _image_bytes(s, "pope")
        if stem is None:
            stem = "pope_" + sha256_bytes(data)[:16]
            wanted = stem + _image_extension(data)
        else:
            wanted = stem if "." in stem else stem + ".jpg"
        name = w.put_image("pope/val2014", wanted, data, where=source)
        split = s.target["split"]
        questions.append({"question_id": s.question_id, "image": name, "text": s.question, "category": split})
        raw_id = str(s.question_id).split("/", 1)[1]
        labels.setdefault(split, []).append({
            "question_id": int(raw_id) if raw_id.isdigit() else raw_id,
            "image": name,
            "text": s.question.removesuffix(SHORT_ANSWER_SUFFIX),
            "label": s.target["label"],
        })
    w.write_jsonl("pope/llava_pope_test.jsonl", questions)
    for split, lines in labels.items():
        w.write_jsonl(f"pope/coco/{label_file_name(split)}", lines)


def convert_mme(samples: list[Sample], w: LayoutWriter, source: str, hf_path: str, options: dict) -> None:
    """``MME/llava_mme.jsonl`` and ``MME/MME_Benchmark_release_version/`` in the official release
    layout: image-folder categories get ``images/`` + ``questions_answers_YN/``, the others keep
    the image and its ``question<TAB>answer`` file side by side."""
    from ..data.loaders.mme import category_and_file, gt_question_candidates

    release = "MME/MME_Benchmark_release_version"
    rows = []
    gt_files: dict[str, list[str]] = {}
    for s in samples:
        qid = str(s.meta["answer_question_id"])
        category, gt_name = category_and_file(qid)
        image_name = qid.split("/")[-1]
        if category in MME_IMAGE_FOLDER_CATEGORIES:
            image_dir, gt_dir = f"{category}/images", f"{category}/questions_answers_YN"
        else:
            image_dir = gt_dir = category
        name = w.put_image(f"{release}/{image_dir}", image_name, _image_bytes(s, "mme"), where=source)
        rows.append({"question_id": qid, "image": f"{image_dir}/{name}", "text": s.question, "category": category})
        candidates = gt_question_candidates(s.question)
        original = str(s.meta.get("gt_question", "")).strip()
        gt_question = original if original in candidates else candidates[0]
        if "\t" in gt_question or "\n" in gt_question:
            raise DataError(source, f"mme: question of {qid} contains a tab or newline; the GT file format cannot hold it")
        gt_files.setdefault(f"{release}/{gt_dir}/{gt_name}", []).append(f"{gt_question}\t{s.target['answer']}\n")
    w.write_jsonl("MME/llava_mme.jsonl", rows)
    for rel, lines in gt_files.items():
        w.write_text(rel, "".join(lines), rows=len(lines))


def _mmbench_tsv(samples: list[Sample]) -> str:
    """The OpenCompass TSV of the HF rows: cells exactly as the HF loader saw them (pandas NA
    rules already applied: NA cells are empty), the image base64-encoded."""
    import pandas as pd

    columns: list[str] = []
    records = []
    for s in samples:
        row = dict(s.meta["row"])
        for key in row:
            if key not in columns:
                columns.append(key)
        row["image"] = base64.b64encode(_image_bytes(s, "mmbench")).decode("ascii")
        records.append(row)
    columns.append("image")
    frame = pd.DataFrame.from_records(records, columns=columns).astype(object)
    frame = frame.where(frame.notna(), None)
    return frame.to_csv(sep="\t", index=False, na_rep="", lineterminator="\n")


def _convert_mmbench_file(rel: str) -> Callable[..., None]:
    def convert(samples: list[Sample], w: LayoutWriter, source: str, hf_path: str, options: dict) -> None:
        w.write_text(rel, _mmbench_tsv(samples), rows=len(samples))

    convert.__doc__ = f"``{rel}``: one TSV row per HF row (circular copies included)."
    return convert


CONVERTERS: dict[str, Callable[..., None]] = {
    "gqa": convert_gqa,
    "pope": convert_pope,
    "mme": convert_mme,
    "mmbench": _convert_mmbench_file("mmbench/mmbench_dev_20230712.tsv"),
    "mmbench_cn": _convert_mmbench_file("mmbench/mmbench_dev_cn_20231003.tsv"),
}


def supported_tasks() -> list[str]:
    return list(CONVERTERS)


# ---------------------------------------------------------------------------------------------
# Checks: counts, id sets, local == hf
# ---------------------------------------------------------------------------------------------

def question_id_set_hash(samples: Sequence[Sample]) -> str:
    """sha256 of the sorted question ids (as strings), one per line: order-free identity of a split."""
    return sha256_bytes("\n".join(sorted(s.key for s in samples)).encode("utf-8"))


def _counter(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return out


def count_check(task: str, samples: Sequence[Sample], *, full: bool) -> dict:
    """Compare with the protocol's counts. Returns ``{"status", "expected", "found", ...}``.

    status: ``passed``; ``warning`` (POPE's known lmms-lab 9,000 vs LLaVA 8,910); ``failed``
    (only for a full split: the caller raises); ``skipped`` (a partial local copy). POPE's
    per-split and MME's per-subtask counts are recorded always and compared for a full split.
    """
    found = len(samples)
    expected = EXPECTED_QUESTIONS.get(task)
    result: dict[str, Any] = {"expected": expected, "found": found}
    problems: list[str] = []
    if expected is not None and found != expected:
        problems.append(f"{found:,} questions, the protocol expects {expected:,}")
        hint = KNOWN_OTHER_COUNTS.get((task, found))
        if hint:
            problems.append(hint)
    if task == "pope":
        per_split = _counter(s.target["split"] for s in samples)
        result["splits"] = per_split
        if full and per_split == POPE_LMMS_LAB_SPLITS:
            result["status"] = "warning"
            result["message"] = ("lmms-lab/POPE has 3,000 questions per split (9,000); LLaVA-1.5/AlignGPT used "
                                 "8,910 (random 2,910, POPE commit e3e39262). POPE numbers on this copy are not "
                                 "directly comparable with the papers'.")
            return result
        if full and per_split != POPE_EXPECTED_SPLITS:
            problems.append(f"questions per split {per_split}; LLaVA's copy has {POPE_EXPECTED_SPLITS}")
    if task == "mme":
        per_cat = _counter(s.target["category"] for s in samples)
        result["categories"] = per_cat
        if full and per_cat != MME_EXPECTED_CATEGORIES:
            diff = sorted(c for c in set(per_cat) | set(MME_EXPECTED_CATEGORIES)
                          if per_cat.get(c, 0) != MME_EXPECTED_CATEGORIES.get(c, 0))
            problems.append(f"subtask counts differ from the protocol for {', '.join(diff)}")
    if not problems:
        result["status"] = "passed"
    elif full:
        result["status"] = "failed"
        result["message"] = "; ".join(problems)
    else:
        result["status"] = "skipped"
        result["message"] = ("partial copy, counts not enforced (" + "; ".join(problems) + "). Counts are enforced "
                             "for a hub download or with --strict-counts.")
    return result


def _comparable(s: Sample, task: str) -> tuple:
    target = s.target
    if task == "pope" and isinstance(target, dict):
        # The loaders record how they joined labels ('hf' / 'question_id' / 'position'); not data.
        target = {k: v for k, v in target.items() if k != "join"}
    image = s.image
    if isinstance(image, (bytes, bytearray)):
        digest = sha256_bytes(bytes(image))
    elif image is None:
        digest = None
    else:
        digest = sha256_file(Path(image))
    return (s.question_id, s.question, json.dumps(target, sort_keys=True, default=str), digest)


def verify_against_hf(task: str, out: Path, hf_samples: Sequence[Sample]) -> dict:
    """Load the written layout with the local loader; every sample must equal the HF one."""
    local = get_loader(task, "local")(out)
    if len(local) != len(hf_samples):
        raise DataError(out, f"{task}: the prepared layout gives {len(local)} questions, the HF copy {len(hf_samples)}")
    names = ("question_id", "question", "target", "image")
    for a, b in zip(hf_samples, local):
        ca, cb = _comparable(a, task), _comparable(b, task)
        if ca != cb:
            bad = next(n for n, x, y in zip(names, ca, cb) if x != y)
            raise DataError(out, f"{task}: question {a.question_id!r}: the prepared layout's {bad} differs from the "
                                 f"HF copy's ({cb[names.index(bad)]!r} vs {ca[names.index(bad)]!r})")
    return {"questions": len(local), "identical_to_hf": True}


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------

def _source_description(hf_path: str) -> dict:
    folder = Path(hf_path).expanduser()
    if folder.is_dir():
        files = sorted(p for p in folder.rglob("*.parquet") if p.is_file())
        return {"hf_path": str(folder.resolve()), "kind": "local_copy",
                "parquet_files": {str(p.relative_to(folder)): p.stat().st_size for p in files}}
    return {"hf_path": hf_path, "kind": "hub"}


def read_manifest(out: Path) -> dict:
    path = Path(out) / MANIFEST
    if not path.is_file():
        return {"format": MANIFEST_FORMAT, "tasks": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"unreadable manifest ({exc}); delete it to start over") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT or not isinstance(data.get("tasks"), dict):
        raise DataError(path, f"not an {MANIFEST_FORMAT} manifest")
    return data


def prepare_task(task: str, out: Path, *, hf_path: str | None = None, cache_dir: str | None = None,
                 strict_counts: bool = False, verify: bool = True) -> dict:
    """Convert one task into ``out``; returns its manifest entry (also merged into manifest.json)."""
    if task not in CONVERTERS:
        raise ConfigError(f"prepare does not support task {task!r}; supported: {', '.join(CONVERTERS)}")
    out = Path(out)
    hub = HUB_SOURCES[task]
    path = hf_path or hub.hf_path
    is_local = Path(path).expanduser().is_dir()
    options = dict(hub.options) if path == hub.hf_path else {}
    loader_kwargs = dict(options)
    if cache_dir:
        loader_kwargs["cache_dir"] = cache_dir
    samples = get_loader(task, "hf")(path, **loader_kwargs)
    if not samples:
        raise DataError(path, f"{task}: the HF copy holds no questions")
    full = not is_local or strict_counts
    counts = count_check(task, samples, full=full)
    if counts["status"] == "failed":
        raise DataError(path, f"{task}: {counts['message']} (nothing written for this task)")

    # Forget the task's previous entry first: a conversion that dies half-way must not leave a
    # manifest vouching for files it has begun to overwrite.
    manifest = read_manifest(out)
    if manifest["tasks"].pop(task, None) is not None:
        atomic_write_json(out / MANIFEST, manifest, indent=1)
    writer = LayoutWriter(out)
    CONVERTERS[task](samples, writer, str(path), path, {**options, "cache_dir": cache_dir})
    entry: dict[str, Any] = {
        "source": _source_description(path) | ({"options": options} if options else {}),
        "questions": len(samples),
        "question_ids_sha256": question_id_set_hash(samples),
        "count_check": counts,
        "warnings": list(writer.warnings) + ([counts["message"]] if counts["status"] == "warning" else []),
        "files": dict(sorted(writer.files.items())),
    }
    entry["verified"] = verify_against_hf(task, out, samples) if verify else {"skipped": True}
    manifest = read_manifest(out)
    manifest.update({"format": MANIFEST_FORMAT, "aligngpt": __version__,
                     "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    manifest["tasks"][task] = entry
    atomic_write_json(out / MANIFEST, manifest, indent=1)
    return entry


def prepare(tasks: Sequence[str], out: str | Path, *, hf_paths: dict[str, str] | None = None,
            cache_dir: str | None = None, strict_counts: bool = False, verify: bool = True) -> dict:
    """Convert several tasks; returns the whole manifest. Unknown tasks fail before any work."""
    hf_paths = dict(hf_paths or {})
    unknown = [t for t in tasks if t not in CONVERTERS]
    if unknown:
        raise ConfigError(f"prepare does not support {', '.join(unknown)}; supported: {', '.join(CONVERTERS)}")
    stray = [t for t in hf_paths if t not in tasks]
    if stray:
        raise ConfigError(f"--hf-path given for {', '.join(stray)}, which is not in --tasks")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        prepare_task(task, out, hf_path=hf_paths.get(task), cache_dir=cache_dir, strict_counts=strict_counts,
                     verify=verify)
    return read_manifest(out)


def check_manifest(out: str | Path) -> list[str]:
    """Re-hash every file the manifest lists; returns the problems (empty = the copy is intact)."""
    out = Path(out)
    manifest = read_manifest(out)
    if not manifest["tasks"]:
        return [f"{out / MANIFEST}: no manifest (or no tasks in it)"]
    problems = []
    for task, entry in manifest["tasks"].items():
        for rel, info in entry.get("files", {}).items():
            path = resolve_image_path(out, rel, source_file=out / MANIFEST)
            if not path.is_file():
                problems.append(f"{task}: {rel}: missing")
            elif path.stat().st_size != info.get("bytes"):
                problems.append(f"{task}: {rel}: size {path.stat().st_size}, manifest says {info.get('bytes')}")
            elif sha256_file(path) != info.get("sha256"):
                problems.append(f"{task}: {rel}: sha256 differs from the manifest")
    return problems
