"""The layers of docs/design.md, checked on the source: who may import whom, and no import cycles.

Every import counts, those inside functions too. Dependencies point one way: commands (and the
simulator) → services (agent, backup, replication, guard) → rules and adapters → model.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "appliance"

# What each layer may import of the appliance, besides itself.
ALLOWED = {
    "model": set(),
    "rules": {"model"},
    "adapters": {"model"},
    "backup": {"model", "rules", "adapters"},
    "guard": {"model", "rules", "adapters"},
    "replication": {"model", "rules", "adapters"},
    "agent": {"model", "rules", "adapters", "backup"},
    "commands": {"model", "rules", "adapters", "backup", "guard", "replication", "agent"},
    "sim": {"model", "rules", "adapters", "backup", "guard", "replication", "agent", "commands"},
    "cli": {"commands", "sim", "model", "adapters"},
}


def modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules()


def imports(name: str) -> set[str]:
    """The appliance modules ``name`` imports (a ``from package import module`` counts as the module)."""
    tree = ast.parse(MODULES[name].read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("appliance")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("appliance"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return {m for m in found if m != name}


GRAPH = {name: imports(name) for name in MODULES}


def layer(name: str) -> str:
    parts = name.split(".")
    return "cli" if parts[1:] == ["cli"] else parts[1] if len(parts) > 1 else "appliance"


def package(name: str) -> str:
    return name if MODULES[name].name == "__init__.py" else name.rsplit(".", 1)[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_layers_are_all_known():
    assert {layer(m) for m in MODULES} - {"appliance"} == set(ALLOWED)


@pytest.mark.parametrize("name", sorted(m for m in MODULES if layer(m) in ALLOWED))
def test_a_module_imports_only_its_own_and_lower_layers(name):
    own = layer(name)
    wrong = sorted(m for m in GRAPH[name] if layer(m) not in ALLOWED[own] | {own, "appliance"})
    assert not wrong, f"{name} ({own}) imports {wrong}"


def test_no_import_cycle_between_modules():
    assert cycles(GRAPH) == []


def test_no_import_cycle_between_packages():
    packages: dict[str, set[str]] = {}
    for name, targets in GRAPH.items():
        packages.setdefault(package(name), set()).update(package(t) for t in targets if package(t) != package(name))
    assert cycles(packages) == []


def test_production_code_never_imports_the_simulator():
    importers = sorted(m for m, targets in GRAPH.items() if layer(m) not in ("sim", "cli")
                       and any(layer(t) == "sim" for t in targets))
    assert importers == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("rule", sorted(p.stem for p in (PACKAGE / "rules").glob("*.py") if p.stem != "__init__"))
def test_every_rule_has_its_table_test(rule):
    assert (ROOT / "tests" / "unit" / "rules" / f"test_{rule}.py").exists()
