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

Counts (the split rows of the docs/protocol/ pages): GQA testdev-balanced 12,578; POPE 8,910 as
LLaVA used (lmms-lab/POPE has 3,000 per split = 9,000: a known mismatch, recorded as a warning);
MME 2,374; MMBench dev (20230712) 4,377; MMBench-CN dev (20231003) 4,329. Counts are enforced
only when the full split was converted: a hub download, or ``--strict-counts`` for a local copy.
For other local copies (e.g. small test copies) the check is recorded as skipped.

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
from pathlib import Path
from typing import Any, Sequence

from .. import __version__
from ..data.base import Sample, get_loader, resolve_image_path
from ..errors import ConfigError, DataError
from ..io import atomic_write_bytes, atomic_write_json

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "aligngpt-prepare/1"


# ---------------------------------------------------------------------------------------------
# Writing files (atomic, inside DIR only, checksummed)
# ---------------------------------------------------------------------------------------------

def _prepare_spec(task: str):
    """The task's spec when its task.yaml has a ``prepare`` section, else None."""
    from .task_registry import all_specs

    spec = all_specs().get(task)
    return spec if spec is not None and spec.prepare is not None else None


def supported_tasks() -> list[str]:
    """Tasks ``prepare`` can convert (those whose task.yaml names a converter), in paper order."""
    from .task_registry import ordered_specs

    return [s.name for s in ordered_specs() if s.prepare is not None]


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
# Helpers for the converters in the task folders (task.yaml ``prepare.converter``):
# HF samples (+ raw columns where the layout needs more) -> LLaVA layout
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
    spec = _prepare_spec(task)
    found = len(samples)
    expected = spec.prepare.expected_questions if spec is not None else None
    result: dict[str, Any] = {"expected": expected, "found": found}
    problems: list[str] = []
    if expected is not None and found != expected:
        problems.append(f"{found:,} questions, the protocol expects {expected:,}")
    if spec is not None and spec.prepare.counts:
        spec.resolve(spec.prepare.counts)(samples, full, result, problems)
        if "status" in result:
            return result
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
    if isinstance(target, dict):
        # Loaders may record how they joined labels (POPE: 'hf' / 'question_id' / 'position'); not data.
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
    spec = _prepare_spec(task)
    if spec is None:
        raise ConfigError(f"prepare does not support task {task!r}; supported: {', '.join(supported_tasks())}")
    out = Path(out)
    hub = spec.prepare
    path = hf_path or hub.hub
    is_local = Path(path).expanduser().is_dir()
    options = dict(hub.options) if path == hub.hub else {}
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
    spec.resolve(hub.converter)(samples, writer, str(path), path, {**options, "cache_dir": cache_dir})
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
    supported = supported_tasks()
    unknown = [t for t in tasks if t not in supported]
    if unknown:
        raise ConfigError(f"prepare does not support {', '.join(unknown)}; supported: {', '.join(supported)}")
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
