"""The package's shape stays as docs/architecture.md draws it.

Each module belongs to a layer; it may import its own layer and those below, never one above,
and no set of modules imports itself round in a circle. Every import counts, including those
inside functions and under `TYPE_CHECKING`: a lazy import that points up is still a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "tf2torch"

# Top to bottom; a module's layer is the longest prefix that names it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("command line", ("tf2torch", "tf2torch.cli")),
    ("Python API", ("tf2torch.api",)),
    ("packages", ("tf2torch.packages", "tf2torch.web")),
    ("verification", ("tf2torch.verification",)),
    ("references", ("tf2torch.references",)),
    ("conversion", ("tf2torch.conversion",)),
    ("sources", ("tf2torch.sources",)),
    ("utilities", ("tf2torch.util", "tf2torch.errors")),
]
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = rank, len(prefix)
    assert best is not None, f"{module} belongs to no layer: add it to LAYERS and the doc"
    return best


def imports_of(module: str) -> set[str]:
    """The tf2torch modules `module` imports (a name imported from a package that is itself
    a module counts as that module)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "tf2torch")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base.split(".")[0] != "tf2torch":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    found.discard(module)
    return found


GRAPH = {m: imports_of(m) for m in MODULES}


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


def test_no_module_imports_from_a_layer_above() -> None:
    upward = [
        f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})"
        for m, deps in GRAPH.items() for d in sorted(deps) if layer_of(d) < layer_of(m)
    ]
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles() -> None:
    cycles = _cycles(GRAPH)
    assert not cycles, "import circles:\n" + "\n".join(" ↔ ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_planted_circle() -> None:
    planted = {m: set(d) for m, d in GRAPH.items()}
    planted["tf2torch.util.table"].add("tf2torch.util.progress")
    planted["tf2torch.util.progress"].add("tf2torch.util.table")
    assert ["tf2torch.util.progress", "tf2torch.util.table"] in _cycles(planted)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_is_at_most_400_lines(module: str) -> None:
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[module]} has {lines} lines; split it by meaning"


def test_layers_are_the_ones_the_architecture_doc_names() -> None:
    doc = (SRC.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for _, prefixes in LAYERS:
        for prefix in prefixes:
            if prefix != "tf2torch":
                assert prefix.replace("tf2torch.", "").replace(".", "/") in doc, prefix
