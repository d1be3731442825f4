"""What a base install (or base + one extra) of aligngpt can import, from package metadata.

A fresh venv per extra would take minutes each in CI. Hiding the modules that only the missing
extras bring gives our code the same view: ``sys.modules[name] = None`` makes ``import name``
raise ``ModuleNotFoundError`` and ``importlib.util.find_spec(name)`` return ``None``, which is
what transformers' own availability checks see in an environment without the package.

The hidden set is computed, not listed: every installed distribution outside the requirement
closure of the base dependencies (plus the extras asked for), followed through the installed
distributions' metadata. It is an allow-list on purpose: CI runs in an interpreter that already
holds unrelated packages (boto3, say), and a module those packages import must not slip through
just because no extra of ours names it. accelerate imports boto3 when it is installed, and boto3
needs urllib3, which our base install does not bring; with a deny-list of extras' packages only,
urllib3 was hidden but boto3 was not, a state no real install can reach.
"""
from __future__ import annotations

import re
import sys
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


# What the interpreter needs to run the check itself, present in any environment pip works in.
TOOLING = {"pip", "setuptools", "wheel"}


def installed_distributions() -> set[str]:
    return {canonical(d.metadata["Name"]) for d in metadata.distributions() if d.metadata["Name"]}


def modules_only_of(dists: set[str], kept: set[str]) -> set[str]:
    """Top-level import names that only these distributions provide.

    A name shared with a kept distribution (a namespace package such as ``google``) stays
    importable, and so does anything named like a standard-library module: hiding a backport's
    ``enum`` would hide the interpreter's own.
    """
    out = set()
    for module, owners in metadata.packages_distributions().items():
        names = {canonical(o) for o in owners}
        if names & dists and not names & kept and module not in sys.stdlib_module_names:
            out.add(module)
    return out


def hidden_modules(extras: tuple[str, ...]) -> list[str]:
    """Modules absent from a fresh install of ``aligngpt[extras]`` (base only when empty)."""
    base, optional = project_requirements()
    have = closure(base + [r for e in extras for r in optional[e]]) | TOOLING | {"aligngpt"}
    return sorted(modules_only_of(installed_distributions() - have, have))
