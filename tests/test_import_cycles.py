"""No two project modules import each other, counting imports inside functions (dev/import_cycles.py)."""
from __future__ import annotations

from pathlib import Path

from dev.import_cycles import find_cycles


def _package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_the_project_has_no_import_cycles():
    components, pairs, _ = find_cycles()
    assert not pairs, f"two-module import cycles: {pairs} (python -m dev.import_cycles --edges)"
    assert not components, f"cyclic import groups: {components} (python -m dev.import_cycles --edges)"


def test_a_function_local_relative_import_closes_a_cycle(tmp_path):
    root = _package(tmp_path, {
        "pkg/__init__.py": "from .a import f\n",
        "pkg/a.py": "from .b import g\n\ndef f():\n    return g()\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/c.py": "def h():\n    from .. import a\n    return a\n",
        "pkg/b.py": "def g():\n    from .sub.c import h\n    return h\n",
    })
    components, pairs, edges = find_cycles(root, "pkg")
    assert components == [["pkg.a", "pkg.b", "pkg.sub.c"]]
    assert pairs == []
    assert {(e.source, e.target) for e in edges} >= {("pkg.sub.c", "pkg.a"), ("pkg.b", "pkg.sub.c")}


def test_two_module_cycle_through_from_package_import_name(tmp_path):
    root = _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/x.py": "from pkg import y\n",
        "pkg/y.py": "import typing\nif typing.TYPE_CHECKING:\n    from pkg.x import Thing\n",
    })
    components, pairs, _ = find_cycles(root, "pkg")
    assert pairs == [("pkg.x", "pkg.y")] and components == [["pkg.x", "pkg.y"]]


def test_package_reexports_alone_are_not_cycles(tmp_path):
    root = _package(tmp_path, {
        "pkg/__init__.py": "from .m import VERSION\n",
        "pkg/m.py": "VERSION = 1\n",
        "pkg/n.py": "from . import VERSION\n",
    })
    assert find_cycles(root, "pkg")[:2] == ([], [])
