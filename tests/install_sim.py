"""What a base install (or base + one extra) of aligngpt can import, from package metadata.

A fresh venv per extra would take minutes each in CI. Hiding the modules that only the missing
extras bring gives our code the same view: ``sys.modules[name] = None`` makes ``import name``
raise ``ModuleNotFoundError`` and ``importlib.util.find_spec(name)`` return ``None``, which is
what transformers' own availability checks see in an environment without the package.

The hidden set is computed, not listed: the requirement closure of each extra (followed through
the installed distributions' metadata) minus the closure of the base dependencies.
"""
from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project_requirements() -> tuple[list[str], dict[str, list[str]]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"]), {k: list(v) for k, v in project["optional-dependencies"].items()}


def _applies(req: Requirement, extras: frozenset[str]) -> bool:
    if req.marker is None:
        return True
    env = default_environment()
    return any(req.marker.evaluate({**env, "extra": e}) for e in (extras or {""}))


def closure(requirements: list[str]) -> set[str]:
    """Canonical names of every installed distribution these requirements pull in.

    A requirement whose distribution is not installed is skipped (lmms-eval in CI, say); the
    caller decides whether that matters.
    """
    seen: set[str] = set()
    todo = [(Requirement(r), frozenset()) for r in requirements]
    while todo:
        req, parent_extras = todo.pop()
        if not _applies(req, parent_extras):
            continue
        name = canonical(req.name)
        key = name + "[" + ",".join(sorted(req.extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        seen.add(name)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue
        for sub in dist.requires or []:
            todo.append((Requirement(sub), frozenset(req.extras)))
    return {k for k in seen if "[" not in k}


def modules_of(dists: set[str]) -> set[str]:
    """Top-level import names provided by these distributions."""
    out = set()
    for module, owners in metadata.packages_distributions().items():
        if any(canonical(o) in dists for o in owners):
            out.add(module)
    return out


def hidden_modules(extras: tuple[str, ...]) -> list[str]:
    """Modules absent from an install of ``aligngpt[extras]`` (base only when empty)."""
    base, optional = project_requirements()
    have = closure(base + [r for e in extras for r in optional[e]])
    every = closure([r for e, reqs in optional.items() if e != "test" for r in reqs])
    # Never hide what the interpreter itself needs to run this check.
    return sorted(modules_of(every - have) - {"pip", "setuptools", "_distutils_hack", "pkg_resources"})
