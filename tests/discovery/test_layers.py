"""The packages import one way (discovery/__init__.py lists the layers): a module may import its
own layer and the layers below it, never one above, and no two modules import each other in a
cycle. Read from the source with `ast`, so deferred imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast  # pure functions: part of `python -m pytest -m fast`

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("inner_algos", "meta_objectives", "discovery")

# lowest first; a module's layer is that of the longest prefix listed
LAYERS = [
    ("inner_algos",),
    ("meta_objectives",),
    ("discovery.figures", "discovery.rule_io", "discovery.versions", "discovery"),
    ("discovery.meta_opt",),
    ("discovery.spec",),
    ("discovery.job", "discovery.evaluation.sources"),  # a job reads [rule] init_from SOURCEs
    ("discovery.evaluation", "discovery.distill"),  # distillers read SOURCEs and train as eval does
    ("discovery.cli",),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    best, level = -1, None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), i
    assert level is not None, f"{module} is in no layer; add it to LAYERS"
    return level


def imports_of(path: Path, module: str) -> set[str]:
    """The project modules `path` imports (absolute or relative, at any depth of the file)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{module}: use absolute imports (the layer check reads them)"
            base = node.module
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in PACKAGES}


def project_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph = {}
    for module, path in files.items():
        # keep only names that are modules (`from x import name` also lists plain names)
        graph[module] = {name for name in imports_of(path, module) if name in files and name != module}
    return graph


def test_no_module_imports_a_higher_layer():
    bad = [
        f"{m} (layer {layer_of(m)}) imports {d} (layer {layer_of(d)})"
        for m, deps in project_graph().items()
        for d in deps
        if layer_of(d) > layer_of(m) and not m.startswith(d + ".")
    ]
    assert not bad, "imports against the layers:\n" + "\n".join(sorted(bad))


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A list of modules forming an import cycle, or None (depth-first search with colours).
    A package's own `__init__` importing its submodules is not an edge back up to the package."""
    colour, stack = {}, []

    def visit(node):
        colour[node] = "grey"
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if node.startswith(dep + "."):
                continue
            if colour.get(dep) == "grey":
                return stack[stack.index(dep) :] + [dep]
            if dep not in colour and (cycle := visit(dep)):
                return cycle
        stack.pop()
        colour[node] = "black"
        return None

    for node in sorted(graph):
        if node not in colour and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle():
    cycle = find_cycle(project_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize(
    "graph, expected",
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
    ],
)
def test_cycle_finder_on_known_graphs(graph, expected):
    assert find_cycle(graph) == expected


def test_layer_check_catches_an_upward_import():
    assert layer_of("discovery.job.files") > layer_of("discovery.spec")
    assert layer_of("discovery.evaluation.plots") > layer_of("discovery.figures")
    assert layer_of("inner_algos.envs") < layer_of("meta_objectives.segments")
