"""Reading the lmms-lab HF copies and checking fields: helpers every benchmark loader shares.

Images stay encoded end to end (the harness hands the original file bytes to the model's
preprocessing), and paths stored inside data cells are never followed: a data file must not
make us read the local disk.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import DataError
from ..extras import import_optional


def _local_parquet_files(root: Path, config: str | None, split: str) -> list[Path]:
    """Find one split's parquet shards in a local copy of an lmms-lab dataset repository.

    The hub repositories keep a config's shards in a folder named after the config (``data/``
    for the default one) as ``{split}-00000-of-0000N.parquet``; the parquet-converter branch
    uses ``{config}/{split}/0000.parquet``. Both are accepted.
    """
    folders = [config] if config else ["data", "default"]
    for folder in folders:
        base = root / folder
        for pattern in (f"{split}-*.parquet", f"{split}/*.parquet", f"{split}.parquet"):
            found = sorted(base.glob(pattern))
            if found:
                return found
    raise DataError(root, f"no parquet files for config {config or 'default'!r}, split {split!r} "
                          f"(looked for {folders[0]}/{split}-*.parquet and {folders[0]}/{split}/*.parquet)")


def load_lmms_split(hf_path: str, config: str | None, split: str, *, cache_dir: str | None = None,
                    **kw: Any):
    """One split of an lmms-lab dataset as a ``datasets.Dataset`` with undecoded images.

    ``hf_path`` is a hub id (passed to ``datasets.load_dataset`` with ``config``) or a local folder
    holding the repository's parquet files (read with the ``parquet`` builder, so no hub access).
    Images stay encoded (``{"bytes", "path"}``): samples carry raw bytes, never decoded pixels.
    """
    datasets = import_optional("datasets", "the hf data source")
    local = Path(hf_path).expanduser()
    try:
        if local.is_dir():
            files = _local_parquet_files(local, config, split)
            ds = datasets.load_dataset("parquet", data_files={split: [str(f) for f in files]},
                                       split=split, cache_dir=cache_dir)
        else:
            ds = datasets.load_dataset(hf_path, config, split=split, cache_dir=cache_dir, **kw)
    except DataError:
        raise
    except Exception as exc:  # datasets raises many types; the user needs the source and the cause
        raise DataError(hf_path, f"cannot load config {config or 'default'!r} split {split!r}: {exc}") from exc
    image_feature = ds.features.get("image")
    if isinstance(image_feature, datasets.Image) and image_feature.decode:
        ds = ds.cast_column("image", datasets.Image(decode=False))
    return ds


def require_columns(ds, names: Iterable[str], *, source: str, what: str) -> None:
    """Fail with the missing column's name instead of a KeyError deep inside a loader."""
    missing = [n for n in names if n not in ds.column_names]
    if missing:
        raise DataError(source, f"{what}: missing column(s) {', '.join(missing)}; have {', '.join(ds.column_names)}")


def image_bytes(cell: Any, *, source: str, row: int) -> bytes:
    """The encoded image file of a parquet image cell (``{"bytes", "path"}`` or raw bytes).

    Paths stored in a cell are not followed: a data file must not make us read the local disk.
    """
    if isinstance(cell, dict):
        cell = cell.get("bytes")
    if isinstance(cell, (bytes, bytearray, memoryview)) and len(cell) > 0:
        return bytes(cell)
    raise DataError(source, f"row {row}: image cell holds no encoded bytes")


def optional_image_bytes(cell: Any, *, source: str, row: int) -> bytes | None:
    """:func:`image_bytes` for columns where a missing image (None) is allowed."""
    return None if cell is None else image_bytes(cell, source=source, row=row)


def load_hf_rows(hf_path: str, config: str | None, split: str, cache_dir: str | None = None,
                 image_columns: Iterable[str] = ("image",)):
    """Rows of an lmms-lab dataset (hub id, or a local folder of its parquet files).

    A local folder is read as ``{folder}/{config}/{split}-*.parquet`` (or ``{folder}/data/...``,
    ``{folder}/{split}-*.parquet`` without a config). Image columns are left encoded
    (``{"bytes", "path"}``) so the original file bytes reach the model's preprocessing.
    """
    datasets = import_optional("datasets", "the hf data source")
    folder = Path(hf_path)
    if folder.is_dir():
        subdirs = [folder / config] if config else []
        subdirs += [folder / "data", folder]
        files: list[str] = []
        for sub in subdirs:
            files = sorted(str(p) for p in sub.glob(f"{split}-*.parquet"))
            if files:
                break
        if not files:
            raise DataError(folder, f"no {split}-*.parquet files for config {config!r}")
        ds = datasets.load_dataset("parquet", data_files={split: files}, split=split, cache_dir=cache_dir)
    else:
        ds = datasets.load_dataset(hf_path, config, split=split, cache_dir=cache_dir)
    for col in image_columns:
        if col in ds.column_names:
            ds = ds.cast_column(col, datasets.Image(decode=False))
    return ds


def cell_image_bytes(cell: Any, where: Any, line: int | None = None) -> bytes | None:
    """Encoded image bytes from an HF image cell (``{"bytes", "path"}``, raw bytes or PIL).

    A cell's ``path`` is never followed (as in :func:`image_bytes`): a data file must not
    make us read arbitrary files from the local disk.
    """
    if cell is None:
        return None
    if isinstance(cell, (bytes, bytearray)):
        return bytes(cell)
    if isinstance(cell, dict):
        if cell.get("bytes"):
            return bytes(cell["bytes"])
        raise DataError(where, "image cell holds no encoded bytes (paths in cells are not followed)", line=line)
    if hasattr(cell, "save"):  # a decoded PIL image
        import io

        buf = io.BytesIO()
        cell.save(buf, format="PNG")
        return buf.getvalue()
    raise DataError(where, f"unsupported image cell of type {type(cell).__name__}", line=line)


def undecoded_rows(ds: Any) -> Iterator[dict]:
    """The rows of a ``datasets.Dataset`` with every image cell (lists of images too) left as a
    ``{"bytes", "path"}`` dict: no PIL decoding, the harness wants the encoded file."""
    return iter(ds.to_iterable_dataset().decode(False))


def benchmark_dir(data_root: Path | str, subdir: str, marker: str) -> Path:
    """``data_root/subdir`` (the LLaVA eval root was given) or ``data_root`` itself (the benchmark
    folder was given), whichever holds ``marker``."""
    root = Path(data_root)
    for candidate in (root / subdir, root):
        if (candidate / marker).is_file():
            return candidate
    raise DataError(root / subdir / marker, "file not found")


def require(obj: Any, key: str, kind: type | tuple[type, ...], path: Path | str | None,
            line: int | None = None, where: str = "") -> Any:
    """``obj[key]`` checked for presence and type, else a DataError naming the file (and line)."""
    if not isinstance(obj, dict) or key not in obj:
        raise DataError(path, f"{where}missing field {key!r}", line=line)
    value = obj[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise DataError(path, f"{where}field {key!r} has type {type(value).__name__}", line=line)
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)
