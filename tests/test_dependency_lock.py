"""CI installs from ``requirements/ci-lock.txt``; it must agree with ``pyproject.toml``.

A release elsewhere cannot turn CI red overnight only if every distribution CI installs is pinned,
and the pins are only honest if they are exactly what ``pyproject.toml`` asks for: nothing
missing, nothing left over, every version inside the declared range.
"""
from __future__ import annotations

import os
import re
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from aligngpt.extras import EXTRA_OF

from .install_sim import REPO, canonical, closure, project_requirements

LOCK = REPO / "requirements" / "ci-lock.txt"
LMMS_PINS = REPO / "requirements" / "lmms-eval-nodeps.txt"
NOT_LOCKED = {"lmms"}  # installed without dependencies from its own pin file (see the README)


def lock_pins(path=LOCK) -> dict[str, str]:
    pins = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        assert m, f"{path}:{n}: not an exact pin: {line!r}"
        pins[canonical(m.group(1))] = m.group(2)
    return pins


def locked_requirements() -> list[str]:
    base, optional = project_requirements()
    return base + [r for extra, reqs in optional.items() if extra not in NOT_LOCKED for r in reqs]


def test_every_declared_requirement_is_pinned_inside_its_range():
    pins = lock_pins()
    problems = []
    for text in locked_requirements():
        req = Requirement(text)
        name = canonical(req.name)
        if name not in pins:
            problems.append(f"{req.name}: not in {LOCK.name}")
        elif not req.specifier.contains(Version(pins[name]), prereleases=True):
            problems.append(f"{req.name}=={pins[name]} is outside pyproject's {req.specifier}")
    assert not problems, "\n".join(problems)


def imported_versions() -> dict[str, str]:
    """Each installed distribution's version as Python imports it: the first copy on ``sys.path``.

    A venv made with ``--system-site-packages`` also lists the base interpreter's older copies,
    which the venv's own shadow; they must not count as drift.
    """
    found: dict[str, str] = {}
    for dist in metadata.distributions():  # in sys.path order
        found.setdefault(canonical(dist.metadata["Name"]), dist.version)
    return found


def test_imported_versions_take_the_first_copy_on_the_path(monkeypatch):
    class Dist:
        def __init__(self, name: str, version: str):
            self.metadata, self.version = {"Name": name}, version

    monkeypatch.setattr(metadata, "distributions", lambda: iter([Dist("Python_Dateutil", "4.0.0"),
                                                                 Dist("python-dateutil", "2.9.0"), Dist("rich", "1")]))
    assert imported_versions() == {"python-dateutil": "4.0.0", "rich": "1"}


@pytest.mark.skipif(os.environ.get("ALIGNGPT_UNLOCKED") == "1",
                    reason="dev/check_newest_deps.sh installs the newest versions, not the lock")
def test_lock_is_exactly_what_pyproject_pulls_in():
    pins = lock_pins()
    installed = imported_versions()
    drift = {n: (v, installed.get(n)) for n, v in pins.items()
             if installed.get(n) is None or Version(installed[n]).public != Version(v).public}
    assert not drift, f"installed versions differ from {LOCK.name} (lock, installed): {drift}"
    needed = closure(locked_requirements())
    assert sorted(needed - set(pins)) == [], f"pulled in by pyproject but not pinned in {LOCK.name}"
    assert sorted(set(pins) - needed) == [], f"pinned in {LOCK.name} but nothing in pyproject needs it"


def test_lmms_pins_agree_with_the_lock():
    """Installed after the lock without dependencies: a different pin would silently replace it."""
    lock, lmms = lock_pins(), lock_pins(LMMS_PINS)
    assert "lmms-eval" in lmms
    clash = {n: (lock[n], v) for n, v in lmms.items() if n in lock and lock[n] != v}
    assert not clash, f"(ci-lock, lmms-eval-nodeps) disagree: {clash}"


def test_ci_and_the_readme_install_from_the_lock():
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- ci:test-command -->", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    assert "-c requirements/ci-lock.txt" in block
    assert "pip install --no-deps -r requirements/lmms-eval-nodeps.txt" in block
    assert "torch==2.13.0" in block


def test_each_optional_module_comes_from_its_extra_only():
    base, optional = project_requirements()
    in_base = closure(base)
    for module, extra in EXTRA_OF.items():
        owners = {canonical(d) for d in metadata.packages_distributions().get(module, [])} or {canonical(module)}
        extra_names = {canonical(Requirement(r).name) for r in optional[extra]}
        assert owners & (closure(optional[extra]) | extra_names), f"{module}: not installed by aligngpt[{extra}]"
        assert not owners & in_base, f"{module}: the base install already has it; drop it from EXTRA_OF"
