"""What ``pip install aligngpt`` gets: the ``aligngpt`` package and the data it runs on, nothing else.

The wheel is built from a copy of the checkout's files (tracked, plus new files git does not
ignore), so a stale ``build/`` folder cannot hide or add anything; offline, with the running
interpreter's setuptools (``--no-build-isolation``). The development tools (``dev/``), the tests
and any other top-level folder stay out; every file under ``aligngpt/`` is in, including the
bundled toy model, the protocol data, the report viewer's assets and the task specs that
``aligngpt-eval run`` needs with no flags.
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _checkout_files() -> list[str]:
    """The checkout's files, relative to its root (git's view: tracked or new and not ignored)."""
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("needs a git checkout to know which files are the source")
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, check=True).stdout.decode()
    return sorted({name for name in out.split("\0") if name and (REPO / name).is_file()})


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[list[str], list[str]]:
    """(names in the built wheel, files of the checkout)."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("building the wheel offline needs setuptools in this interpreter")
    files = _checkout_files()
    tmp = tmp_path_factory.mktemp("wheel")
    src, out = tmp / "src", tmp / "dist"
    for name in files:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "--no-index", "-q", "-w", str(out), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (whl,) = out.glob("aligngpt-*.whl")
    with zipfile.ZipFile(whl) as z:
        return z.namelist(), files


def test_wheel_holds_only_the_package(wheel):
    names, files = wheel
    assert any(name.startswith("dev/") for name in files)  # the check below means something
    tops = {name.split("/")[0] for name in names}
    assert tops == {"aligngpt", next(t for t in tops if t.endswith(".dist-info"))}, sorted(tops)
    assert not [n for n in names if n.startswith(("dev/", "scripts/", "tests/", "results/", "docs/"))]
    assert not [n for n in names if n.startswith("aligngpt/toy/recipe")]


def test_every_package_file_is_shipped_and_nothing_else(wheel):
    """The source tree is the import tree: the wheel's ``aligngpt/`` is exactly the checkout's."""
    names, files = wheel
    shipped = {n for n in names if n.startswith("aligngpt/")}
    source = {f for f in files if f.startswith("aligngpt/")}
    assert sorted(source - shipped) == [], "in the source, not in the wheel (package-data in pyproject.toml?)"
    assert sorted(shipped - source) == [], "in the wheel, not in the source"


def test_the_data_the_main_job_needs_is_shipped(wheel):
    names, _ = wheel
    model = {n.rsplit("/", 1)[1] for n in names if n.startswith("aligngpt/toy_assets/model/")}
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= model, model
    assert any(n.startswith("aligngpt/toy_assets/model/tokenizer") for n in names)
    assert any(n.startswith("aligngpt/protocol_data/") and not n.endswith(".py") for n in names)
    for asset in ("viewer.html", "viewer.js", "viewer.css"):
        assert f"aligngpt/report/{asset}" in names
    assert any(n.startswith("aligngpt/tasks/") and n.endswith(".yaml") for n in names)
