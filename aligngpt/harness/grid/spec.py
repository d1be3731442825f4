"""What a grid is: the YAML spec (see :mod:`aligngpt.harness.grid`), validated into a :class:`GridSpec`.

Malformed YAML, unknown keys, modes, tasks and settings are found here, before anything runs, as a
one-line :class:`~aligngpt.errors.ConfigError` or :class:`~aligngpt.errors.DataError` naming the
file; what needs the models (``fixed:*``, duplicate runs, the baseline) is checked by :mod:`.cells`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from ...errors import ConfigError, DataError
from ..tasks import load_task

#: Modes the model accepts besides ``fixed:K`` (the ``align_mode`` config field: docs/reference-code.md, section 3).
NAMED_MODES = ("gated", "local", "global", "average", "none")
#: RunSettings fields a spec's ``settings`` may set; the rest are grid axes or per-invocation.
SETTING_KEYS = ("data_root", "source", "output_dir", "batch_size", "canary", "limit", "device", "dtype",
                "max_new_tokens", "num_workers", "image_cache", "hf_paths")
_AXIS_KEYS = {"model": "models", "align_mode": "align_modes", "seed": "seeds"}
_TOP_KEYS = {"models", "align_modes", "tasks", "seeds", "settings", "baseline", "output_dir", "stats", "table"}


@dataclass(frozen=True)
class GridModel:
    label: str
    path: str
    """``toy`` or a checkpoint folder / hub id, as RunSettings.model takes it."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """Per-model overrides of the grid's settings."""
    align_modes: tuple[str | None, ...] | None = None
    """Per-model alignment modes (default: the grid's)."""


@dataclass(frozen=True)
class GridSpec:
    models: tuple[GridModel, ...]
    align_modes: tuple[str | None, ...]
    tasks: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    settings: Mapping[str, Any] = field(default_factory=dict)
    baseline: str | None = None
    output_dir: Path | None = None
    n_resamples: int = 1000
    alpha: float = 0.05
    stats_seed: int = 0
    layout: str | tuple[str, ...] = "auto"
    caption: str | None = None
    source: Path | None = None
    """The YAML file the spec came from (for messages and relative paths)."""


def _where(source: Path | None) -> str:
    return f"{source}: " if source else ""


def _mode_text(mode: Any, source: Path | None) -> str | None:
    if mode is None:
        return None
    if not isinstance(mode, str):
        raise ConfigError(f"{_where(source)}align mode {mode!r} must be a string (quote fixed:K)")
    mode = mode.strip()
    if mode in NAMED_MODES or mode == "fixed:*":
        return mode
    if mode.startswith("fixed:"):
        k = mode[len("fixed:"):]
        if k.isdigit():
            return f"fixed:{int(k)}"
    raise ConfigError(f"{_where(source)}unknown align mode {mode!r}; use {', '.join(NAMED_MODES)}, fixed:K, "
                      "fixed:* or null (the checkpoint's own mode)")


def _as_list(value: Any, what: str, source: Path | None) -> list:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise ConfigError(f"{_where(source)}{what} must be a list, got {type(value).__name__}")


def _resolve(path: Any, base: Path | None) -> str:
    p = Path(str(path)).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    return str(p)


def _check_settings(raw: Any, what: str, source: Path | None, base: Path | None) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{_where(source)}{what} must be a mapping")
    out = {}
    for key, value in raw.items():
        if key in _AXIS_KEYS:
            raise ConfigError(f"{_where(source)}{what}.{key}: set it with the grid's '{_AXIS_KEYS[key]}' list")
        if key == "fresh":
            raise ConfigError(f"{_where(source)}{what}.fresh: a grid always resumes; delete the run folder instead")
        if key not in SETTING_KEYS:
            raise ConfigError(f"{_where(source)}{what}: unknown setting {key!r}; allowed: {', '.join(SETTING_KEYS)}")
        if key in ("data_root", "output_dir") and value is not None:
            value = _resolve(value, base)
        out[key] = _checked_setting(key, value, f"{_where(source)}{what}.{key}")
    return out


def _checked_setting(key: str, value: Any, where: str) -> Any:
    """The value ``aligngpt-eval run --KEY`` would accept, checked the same way (one-line error)."""
    import argparse

    from ...cli import checks as C

    types = {"limit": C.integer(1), "batch_size": C.integer(1, also=("auto",)), "max_new_tokens": C.integer(1),
             "num_workers": C.integer(0), "seed": C.integer(0, 2**63 - 1), "device": C.device}
    choices = {"dtype": C.DTYPES, "canary": ("auto", "always", "never"), "source": ("local", "hf", "toy")}
    if value is None:
        return value
    if isinstance(value, bool) and key in types:
        raise ConfigError(f"{where}: expected a value, got {value}")
    if key in types:
        try:
            return types[key](str(value))
        except argparse.ArgumentTypeError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if key in choices and value not in choices[key]:
        raise ConfigError(f"{where}: {value!r} is not one of {', '.join(choices[key])}")
    return value


def _model(entry: Any, i: int, source: Path | None, base: Path | None) -> GridModel:
    if isinstance(entry, str):
        entry = {"path": entry}
    if not isinstance(entry, Mapping) or not entry.get("path"):
        raise ConfigError(f"{_where(source)}models[{i}] needs a 'path' (toy, a checkpoint folder or a hub id)")
    unknown = set(entry) - {"label", "path", "settings", "align_modes"}
    if unknown:
        raise ConfigError(f"{_where(source)}models[{i}]: unknown key(s) {sorted(unknown)}")
    path = str(entry["path"])
    if path != "toy" and base is not None and not Path(path).is_absolute() and (base / path).exists():
        path = str((base / path).resolve())
    label = str(entry.get("label") or ("toy" if path == "toy" else Path(path).name))
    modes = None
    if entry.get("align_modes") is not None:
        modes = tuple(_mode_text(m, source) for m in _as_list(entry["align_modes"], f"models[{i}].align_modes", source))
    return GridModel(label, path, _check_settings(entry.get("settings"), f"models[{i}].settings", source, base), modes)


def parse_grid_spec(raw: Any, source: Path | None = None) -> GridSpec:
    """Validate a spec mapping (see :mod:`aligngpt.harness.grid`); ConfigError names the spec file."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{_where(source)}a grid spec must be a YAML mapping")
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{_where(source)}unknown key(s) {sorted(unknown)}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    base = source.parent.resolve() if source else None
    for key in ("models", "align_modes", "tasks"):
        if not raw.get(key):
            raise ConfigError(f"{_where(source)}'{key}' is required and must not be empty")
    models = tuple(_model(e, i, source, base) for i, e in enumerate(_as_list(raw["models"], "models", source)))
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{_where(source)}model labels must be unique, got {labels}")
    modes = tuple(dict.fromkeys(_mode_text(m, source) for m in _as_list(raw["align_modes"], "align_modes", source)))
    tasks = tuple(dict.fromkeys(str(t) for t in _as_list(raw["tasks"], "tasks", source)))
    for t in tasks:
        try:
            load_task(t)
        except ConfigError as exc:
            raise ConfigError(f"{_where(source)}{exc}") from None
    seeds_raw = _as_list(raw.get("seeds", [0]), "seeds", source)
    try:
        seeds = tuple(dict.fromkeys(int(s) for s in seeds_raw))
    except (TypeError, ValueError):
        raise ConfigError(f"{_where(source)}seeds must be integers, got {seeds_raw}") from None
    if not seeds:
        raise ConfigError(f"{_where(source)}seeds must not be empty")
    stats = raw.get("stats") or {}
    table = raw.get("table") or {}
    if not isinstance(stats, Mapping) or not isinstance(table, Mapping):
        raise ConfigError(f"{_where(source)}'stats' and 'table' must be mappings")
    bad = (set(stats) - {"n_resamples", "alpha", "seed"}) | {f"table.{k}" for k in set(table) - {"layout", "caption"}}
    if bad:
        raise ConfigError(f"{_where(source)}unknown key(s) {sorted(bad)} (stats: n_resamples, alpha, seed; "
                          "table: layout, caption)")
    n_resamples, alpha = int(stats.get("n_resamples", 1000)), float(stats.get("alpha", 0.05))
    if n_resamples < 1 or not 0 < alpha < 1:
        raise ConfigError(f"{_where(source)}stats: need n_resamples >= 1 and 0 < alpha < 1")
    layout = table.get("layout", "auto")
    layout = tuple(layout) if isinstance(layout, (list, tuple)) else str(layout)
    out_dir = raw.get("output_dir")
    return GridSpec(
        models=models, align_modes=modes, tasks=tasks, seeds=seeds,
        settings=_check_settings(raw.get("settings"), "settings", source, base),
        baseline=None if raw.get("baseline") is None else str(raw["baseline"]),
        output_dir=None if out_dir is None else Path(_resolve(out_dir, base)),
        n_resamples=n_resamples, alpha=alpha, stats_seed=int(stats.get("seed", 0)),
        layout=layout, caption=table.get("caption"), source=source,
    )


def load_grid_spec(path: str | Path) -> GridSpec:
    """Read and validate a grid YAML; malformed YAML is a DataError naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "grid spec not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise DataError(path, f"malformed YAML: {problem}", line=None if mark is None else mark.line + 1) from None
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason})") from None
    return parse_grid_spec(raw, source=path)
