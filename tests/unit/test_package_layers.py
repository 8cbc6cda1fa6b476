"""The whole package's import contract, read from the source: no import cycle anywhere, and each
part imports only the parts below it — constants → api → render → controllers; the server
needs only constants (it runs in every replica); the CLI builds on api, render's names and the
server's token signer, never on the operator's controllers."""

from __future__ import annotations

from tests.unit.server.test_layers import _imports, _modules

# What each part may import besides itself (bereit.__init__ holds the version only).
ALLOWED = {
    "constants": set(),
    "api": {"constants"},
    "render": {"constants", "api"},
    "controllers": {"constants", "api", "render"},
    "server": {"constants"},
    "cli": {"constants", "api", "render", "server"},
}


def _part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "bereit"


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) - {name} for name, path in modules.items()}


def test_no_import_cycle_anywhere_in_the_package():
    graph = _graph()

    def parents(module: str) -> set[str]:  # importing a submodule runs its packages' __init__ first
        parts = module.split(".")
        return {".".join(parts[:i]) for i in range(1, len(parts))}

    edges = {m: {t for t in targets if t not in parents(m) and m not in parents(t)} for m, targets in graph.items()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(target):] + [target]))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)


def test_each_part_imports_only_the_parts_below_it():
    wrong = []
    for module, targets in _graph().items():
        part = _part(module)
        if part not in ALLOWED:
            continue
        for target in targets:
            other = _part(target)
            if other not in (part, "bereit") and other not in ALLOWED[part]:
                wrong.append(f"{module} imports {target}")
    assert wrong == []
