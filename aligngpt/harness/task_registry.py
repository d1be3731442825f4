"""Finding benchmark folders: built-in, installed by other packages, or in any directory.

A benchmark is a folder holding ``task.yaml`` and its code. Three places are searched, in
order, and a name may be defined only once:

1. the folders of the ``aligngpt.tasks`` package (read with ``importlib.resources``, so an
   installed wheel works the same as a source checkout);
2. packages named by the ``aligngpt.tasks`` entry-point group (value: an importable package
   whose sub-folders are task folders);
3. directories on the include path: ``ALIGNGPT_TASK_PATH`` (``os.pathsep``-separated) and
   ``aligngpt-eval --include-path DIR`` (which extends that variable, see :func:`add_include_path`). A directory is either
   one task folder or a folder of task folders. Their code is imported as
   ``aligngpt_task_plugins.<task>``, so modules of one folder can import each other relatively.
"""
from __future__ import annotations

import importlib
import os
import sys
import types
from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path

from ..errors import ConfigError
from .task_spec import TaskSpec, read_spec

ENTRY_POINT_GROUP = "aligngpt.tasks"
PATH_ENV = "ALIGNGPT_TASK_PATH"
SPEC_FILE = "task.yaml"
PLUGIN_PACKAGE = "aligngpt_task_plugins"

_cache: dict[tuple, dict[str, TaskSpec]] = {}


def add_include_path(path: str | os.PathLike) -> None:
    """Register a directory of task folders (or one task folder): appended to ``ALIGNGPT_TASK_PATH``
    of this process, so processes it starts (grid cells, data-parallel ranks) see it too."""
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise ConfigError(f"--include-path {path}: not a directory")
    if folder not in include_paths():
        current = os.environ.get(PATH_ENV, "")
        os.environ[PATH_ENV] = os.pathsep.join(p for p in (current, str(folder)) if p)


def include_paths() -> list[Path]:
    """The directories of ``ALIGNGPT_TASK_PATH``, in order."""
    return [Path(p).expanduser().resolve() for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p.strip()]


def _add(found: dict[str, TaskSpec], spec: TaskSpec) -> None:
    if spec.name in found:
        raise ConfigError(f"{spec.path}: task {spec.name!r} is already defined by {found[spec.name].path}")
    found[spec.name] = spec


def _package_tasks(package: str, found: dict[str, TaskSpec]) -> None:
    """Task folders inside an importable package (built-ins and entry-point packages)."""
    root = resources.files(package)
    for child in sorted(root.iterdir(), key=lambda c: c.name):
        spec_file = child / SPEC_FILE
        if child.is_dir() and spec_file.is_file():
            where = f"{package.replace('.', '/')}/{child.name}/{SPEC_FILE}"
            text = spec_file.read_text(encoding="utf-8")
            _add(found, read_spec(text, where, folder_name=child.name, package=f"{package}.{child.name}"))


def _plugin_package(folder: Path) -> str:
    """Make ``folder`` importable as ``aligngpt_task_plugins.<folder name>``."""
    if PLUGIN_PACKAGE not in sys.modules:
        parent = types.ModuleType(PLUGIN_PACKAGE)
        parent.__path__ = []  # type: ignore[attr-defined]
        sys.modules[PLUGIN_PACKAGE] = parent
    name = f"{PLUGIN_PACKAGE}.{folder.name}"
    existing = sys.modules.get(name)
    if existing is None or list(getattr(existing, "__path__", [])) != [str(folder)]:
        module = types.ModuleType(name)
        module.__path__ = [str(folder)]  # type: ignore[attr-defined]
        module.__package__ = name
        module.__file__ = None
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [str(folder)]
        module.__spec__ = spec
        sys.modules[name] = module
        for sub in [m for m in sys.modules if m.startswith(name + ".")]:
            del sys.modules[sub]  # a different folder of the same name: forget its old modules
    return name


def _folder_tasks(directory: Path, found: dict[str, TaskSpec]) -> None:
    folders = [directory] if (directory / SPEC_FILE).is_file() else sorted(
        p for p in directory.iterdir() if (p / SPEC_FILE).is_file())
    for folder in folders:
        where = str(folder / SPEC_FILE)
        text = (folder / SPEC_FILE).read_text(encoding="utf-8")
        _add(found, read_spec(text, where, folder_name=folder.name, package=_plugin_package(folder)))


def _discover(paths: tuple[Path, ...]) -> dict[str, TaskSpec]:
    found: dict[str, TaskSpec] = {}
    _package_tasks("aligngpt.tasks", found)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        _package_tasks(ep.value, found)
    for directory in paths:
        _folder_tasks(directory, found)
    return found


def all_specs() -> dict[str, TaskSpec]:
    """Every known task by name (cached per include path)."""
    key = tuple(include_paths())
    if key not in _cache:
        _cache[key] = _discover(key)
    return _cache[key]


def ordered_specs() -> list[TaskSpec]:
    """Tasks in the paper's column order (``order``), then by name."""
    return sorted(all_specs().values(), key=lambda s: (s.order, s.name))


def get_spec(name: str) -> TaskSpec:
    specs = all_specs()
    if name not in specs:
        raise ConfigError(f"unknown task {name!r}; known: {', '.join(sorted(specs))}")
    return specs[name]


def prompt_suffix(name: str) -> str:
    """The instruction a task appends to its questions (its ``prompt_suffix``)."""
    return get_spec(name).prompt_suffix


def clear_cache() -> None:
    """Forget discovered specs (after editing a task folder in the same process)."""
    _cache.clear()
