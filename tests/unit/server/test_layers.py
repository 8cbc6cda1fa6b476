"""The server's import contract, read from the source with ``ast``: no import cycle, each module
imports only from its own layer or those below it, and nothing of the operator but
``bereit.constants`` (the pod's contract with it). Imports under ``TYPE_CHECKING`` and inside
functions count too: a cycle hidden there is still two modules that each need the other."""

from __future__ import annotations

import ast
from pathlib import Path

import bereit

PACKAGE = "bereit.server"
# Top to bottom, as in MLServer and KServe: protocol → endpoints → data plane → the user's script.
LAYERS = [
    {"main"},
    {"connection"},  # HTTP/1.1
    {"app"},  # the endpoints: the small routes and the ASGI interface …
    {"scoring"},  # … and /score
    {"dataplane", "payloads"},
    {"auth", "tokens", "collect", "config", "fetch", "limits", "logs", "metrics", "packages", "pool", "responses", "swagger"},
    {"entry", "typed_inputs", "compat", "fastjson"},
]
OUTSIDE_ALLOWED = {"bereit.constants"}


def _modules() -> dict[str, Path]:
    """Every module of bereit by name (``bereit.constants``: is it a module, or a name in one?)."""
    root = Path(bereit.__file__).parent
    found = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(("bereit", *parts))] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every bereit module ``name`` imports (a module where the import names one, else the package)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {m for m in found if m == "bereit" or m.startswith("bereit.")}


def _graph() -> dict[str, set[str]]:
    """The server's modules and what each imports."""
    modules = _modules()
    return {
        name: _imports(name, path, modules) - {name}
        for name, path in modules.items()
        if name == PACKAGE or name.startswith(PACKAGE + ".")
    }


def _layer(module: str) -> int | None:
    top = module.removeprefix(PACKAGE + ".").split(".")[0]
    return next((i for i, layer in enumerate(LAYERS) if top in layer), None)


def test_the_server_has_no_import_cycle():
    graph = _graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(module) :] + [module]))
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, path + [module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_each_module_imports_only_its_own_layer_or_lower():
    graph = _graph()
    upward = [
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module != PACKAGE
        for target in targets
        if target.startswith(PACKAGE + ".") and _layer(target) < _layer(module)
    ]
    assert upward == []


def test_every_server_module_has_a_layer():
    assert [m for m in _graph() if m != PACKAGE and _layer(m) is None] == []


def test_the_server_needs_nothing_of_the_operator_but_its_constants():
    outside = {
        f"{module} -> {target}"
        for module, targets in _graph().items()
        for target in targets
        if not target.startswith(PACKAGE) and target not in OUTSIDE_ALLOWED
    }
    assert outside == set()
