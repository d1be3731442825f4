"""Find import cycles among the project's own modules, counting imports inside functions.

A lazy import hides a cycle from Python (it only fails at call time, if ever) but not from a
reader: two modules that import each other are one module split in two. This walks every
``import`` / ``from ... import`` in ``aligngpt/`` with :mod:`ast` (module level, function level,
``if TYPE_CHECKING`` blocks alike), resolves relative imports, maps ``from pkg import name`` to
``pkg.name`` when that is a module, and reports every strongly connected component of the
module graph with more than one member, plus each two-module cycle inside it.

    python -m dev.import_cycles            # exit 1 and list the cycles when there are any
    python -m dev.import_cycles --edges    # also print every edge of each cycle, with file:line

Edges from a package's ``__init__`` to its own submodules (re-exports, and Python importing a
package before any of its submodules) are left out: counting them would make every
``from .. import name`` inside a package a cycle. Every other edge counts.
"""
from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    where: str  # "path:line"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def discover(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under ``root``, by dotted name."""
    return {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}


def _resolve_relative(current: str, is_package: bool, level: int, module: str | None) -> str:
    base = current.split(".") if is_package else current.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def imports_of(name: str, path: Path, modules: dict[str, Path], root: Path) -> list[Edge]:
    """Project modules ``name`` imports, wherever the import statement sits."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    rel = path.relative_to(root)
    edges: list[Edge] = []

    def add(target: str, node: ast.AST) -> None:
        # "import a.b.c" also imports a and a.b; the deepest project module is the dependency.
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            edges.append(Edge(name, target, f"{rel}:{node.lineno}"))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            base = (_resolve_relative(name, is_package, node.level, node.module)
                    if node.level else (node.module or ""))
            for alias in node.names:
                candidate = f"{base}.{alias.name}" if base else alias.name
                add(candidate if candidate in modules else base, node)
    return edges


def build_graph(root: Path = ROOT, package: str = "aligngpt") -> tuple[dict[str, set[str]], list[Edge]]:
    modules = discover(root, package)
    edges = [e for name, path in modules.items() for e in imports_of(name, path, modules, root)]
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for e in edges:
        graph[e.source].add(e.target)
    return graph, edges


def _is_reexport(source: str, target: str) -> bool:
    """A package importing one of its own submodules: the normal shape of an ``__init__``."""
    return target.startswith(source + ".")


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the graph is small, but recursion limits are not)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def find_cycles(root: Path = ROOT, package: str = "aligngpt") -> tuple[list[list[str]], list[tuple[str, str]], list[Edge]]:
    """Cyclic components and the two-module cycles, ignoring package → own-submodule re-exports."""
    graph, edges = build_graph(root, package)
    pruned = {m: {t for t in targets if not _is_reexport(m, t)} for m, targets in graph.items()}
    components = [c for c in strongly_connected(pruned) if len(c) > 1]
    pairs = sorted({tuple(sorted((a, b))) for a, targets in pruned.items() for b in targets
                    if a in pruned.get(b, ())})
    return components, pairs, [e for e in edges if not _is_reexport(e.source, e.target)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", action="store_true", help="print the import statements behind each cycle")
    parser.add_argument("--package", default="aligngpt")
    args = parser.parse_args(argv)
    components, pairs, edges = find_cycles(ROOT, args.package)
    n_modules = len(discover(ROOT, args.package))
    n_edges = len({(e.source, e.target) for e in edges})
    print(f"{n_modules} modules, {n_edges} import edges (function-local imports included)")
    for a, b in pairs:
        print(f"two-module cycle: {a} <-> {b}")
    for comp in components:
        print(f"cyclic group of {len(comp)}: {', '.join(comp)}")
        if args.edges:
            members = set(comp)
            for e in dict.fromkeys(edges):
                if e.source in members and e.target in members:
                    print(f"    {e.source} -> {e.target}  ({e.where})")
    if not components:
        print("no import cycles")
    return 1 if components else 0


if __name__ == "__main__":
    sys.exit(main())
