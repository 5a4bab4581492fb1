"""No import cycle inside src/engram: the modules' top-level imports form a DAG.

Only imports that run when a module is imported count: those at module level (also
inside ``try``/``if``/``with`` and class bodies), not those inside functions and not
those under ``if TYPE_CHECKING:``. ``from engram.a import b`` depends on the module
``engram.a.b`` when there is one, else on ``engram.a``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import engram

# Cycles present today outside the code this test was written with; each is an SCC's
# sorted module names. To be removed by the restructuring (issue 10).
KNOWN_CYCLES: frozenset[tuple[str, ...]] = frozenset()


def modules(root: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package) for every .py under the package ``root``."""
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _runs_at_import(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            test = node.test
            name = test.attr if isinstance(test, ast.Attribute) else getattr(test, "id", None)
            if name != "TYPE_CHECKING":
                yield from _runs_at_import(node.body)
            yield from _runs_at_import(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                yield from _runs_at_import(block)
        elif isinstance(node, (ast.With, ast.ClassDef)):
            yield from _runs_at_import(node.body)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports when it is imported."""
    known = modules(root)
    top = root.name

    def owner(name: str) -> str | None:  # the longest module prefix of a dotted name
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in known.items():
        package = name if is_package else name.rpartition(".")[0]
        edges: set[str | None] = set()
        for node in _runs_at_import(ast.parse(path.read_text(encoding="utf-8")).body):
            if isinstance(node, ast.Import):
                edges.update(owner(a.name) for a in node.names if a.name.split(".")[0] == top)
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == top:
                edges.update(f"{target}.{a.name}" if f"{target}.{a.name}" in known else owner(target) for a in node.names)
        graph[name] = {e for e in edges if e and e != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a path back to its start) per strongly connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan; the package is small enough to recurse
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_path_through(graph, component) for component in components]


def _path_through(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside the component."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    following.append(w)
        frontier = following
    raise AssertionError(f"{sorted(component)} is no cycle")


def test_no_import_cycle_in_engram():
    found = cycles(import_graph(Path(engram.__file__).parent))
    new = [c for c in found if tuple(sorted(set(c))) not in KNOWN_CYCLES]
    assert not new, "import cycles:\n" + "\n".join(" -> ".join(c) for c in new)


def test_known_cycles_are_still_there():
    # A known cycle that was broken must leave the list, so it cannot come back unnoticed.
    present = {tuple(sorted(set(c))) for c in cycles(import_graph(Path(engram.__file__).parent))}
    assert KNOWN_CYCLES <= present, f"remove from KNOWN_CYCLES: {sorted(KNOWN_CYCLES - present)}"


def test_server_never_imports_the_cli():
    # Not even inside a function: the CLI imports the server (lazily), never the other way round.
    root = Path(engram.__file__).parent
    offenders = []
    for path in (root / "server").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            if any(n == "engram.cli" or n.startswith("engram.cli.") for n in names):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []


# -- the walker itself, on a small package written for the test -----------------------------
def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_walker_finds_a_cycle_and_prints_its_path(tmp_path):
    root = _package(tmp_path, {
        "a.py": "from pkg.b import thing\n",
        "b.py": "import pkg.sub.c\n",
        "sub/__init__.py": "",
        "sub/c.py": "from .. import a\n",  # relative, naming a module
    })
    assert cycles(import_graph(root)) == [["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]]


def test_walker_ignores_imports_that_do_not_run_at_import_time(tmp_path):
    root = _package(tmp_path, {
        "a.py": "from pkg import b\n",
        "b.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from pkg.a import x\n"
            "def f():\n    from pkg.a import y\n"
        ),
    })
    assert import_graph(root)["pkg.b"] == set()
    assert cycles(import_graph(root)) == []


def test_walker_counts_imports_in_try_and_class_bodies(tmp_path):
    root = _package(tmp_path, {
        "a.py": "try:\n    from pkg.b import x\nexcept ImportError:\n    pass\n",
        "b.py": "class C:\n    from pkg.a import y\n",
    })
    assert cycles(import_graph(root)) == [["pkg.a", "pkg.b", "pkg.a"]]
