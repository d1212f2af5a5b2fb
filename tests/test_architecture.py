"""The spine holds as a contract: no import cycle, no private name imported across modules, short modules.

(The layers themselves are checked by import-linter in CI: ``lint-imports``, contracts in pyproject.toml.)
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent / "memopt"
MAX_LINES = 500
#: what a longer module must say in its docstring, with the reason
LONG_MARK = "Why this module is long"


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        rel = p.relative_to(ROOT.parent).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        out[name] = p
    return out


def _imports(name: str, path: pathlib.Path):
    """(imported module, imported names) of every ``import``/``from ... import`` of memopt, anywhere in the file."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("memopt"):
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("memopt"):
                    yield a.name, []


def test_no_import_cycle_between_modules():
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for target, names in _imports(m, p):
            for n in names:  # `from memopt.x import y` may import the module memopt.x.y
                if f"{target}.{n}" in mods:
                    graph[m].add(f"{target}.{n}")
            if target in mods:
                graph[m].add(target)
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    # a package's __init__ importing its own submodules is not a cycle of the layers
    cycles = [c for c in cycles if not all(x.startswith(min(c, key=len) + ".") or x == min(c, key=len) for x in c)]
    assert cycles == []


def test_no_private_name_is_imported_across_modules():
    bad = []
    for m, p in _modules().items():
        for target, names in _imports(m, p):
            bad += [f"{m} imports {target}.{n}" for n in names if n.startswith("_") and not n.startswith("__")]
    assert bad == []


def test_modules_are_short_or_say_why():
    long = []
    for m, p in _modules().items():
        lines = p.read_text().count("\n")
        if lines > MAX_LINES:
            doc = ast.get_docstring(ast.parse(p.read_text())) or ""
            if LONG_MARK not in doc:
                long.append(f"{m}: {lines} lines")
    assert long == []
