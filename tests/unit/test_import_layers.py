"""The package's import graph: no cycles, and each layer of the driver imports only downward.

Every ``import`` counts: at module level, inside functions and under
``TYPE_CHECKING`` alike, because each is a dependency a reader has to hold in
mind (docs/architecture.md draws the layers).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "aiospark"


def module_files() -> dict[str, Path]:
    """``aiospark.x.y`` -> its file, for every module of the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts).removesuffix(".__init__")
        found[name] = path
    return found


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (anywhere in its file)."""
    files = module_files()

    def owner(dotted: str) -> str | None:
        while dotted and dotted not in files:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets: set[str] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{base}" if base else anchor
                candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
            else:
                continue
            for candidate in candidates:
                target = owner(candidate) if candidate.startswith("aiospark") else None
                # "from aiospark import x" names the package itself; its submodule counts.
                if target and target != name and target != "aiospark":
                    targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected sets of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
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
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph()) == []


#: Layer -> the modules (prefixes) it must never import, however locally.
FORBIDDEN = {
    # The bottom of the driver: value types and the protocols the layers above meet at.
    "aiospark.lineage": ["aiospark.plans", "aiospark.ops", "aiospark.rdd", "aiospark.context",
                         "aiospark.scheduler", "aiospark.jobpath"],
    # How each kind of RDD computes: knows its parents only as lineage.Node.
    "aiospark.plans": ["aiospark.ops.pairs", "aiospark.ops.joins", "aiospark.ops.sets",
                       "aiospark.ops.sorting",
                       "aiospark.ops.stats", "aiospark.ops.export", "aiospark.ops.async_ops",
                       "aiospark.ops.sampling", "aiospark.rdd", "aiospark.context",
                       "aiospark.scheduler", "aiospark.jobpath"],
    # The API by theme: builds plans, never imports the RDD class or the context.
    "aiospark.ops": ["aiospark.rdd", "aiospark.context", "aiospark.scheduler", "aiospark.jobpath"],
    "aiospark.rdd": ["aiospark.context", "aiospark.scheduler", "aiospark.jobpath"],
    # The context's data sources: build RDDs from plans, below the context itself.
    "aiospark.sources": ["aiospark.context", "aiospark.scheduler", "aiospark.jobpath"],
    # What the driver ships to workers: below the context itself.
    "aiospark.shipping": ["aiospark.context", "aiospark.rdd", "aiospark.jobpath"],
    # The scheduler sees RDDs through lineage protocols only.
    "aiospark.scheduler": ["aiospark.rdd", "aiospark.ops", "aiospark.plans", "aiospark.context",
                           "aiospark.jobpath"],
    # Workers run what they are sent; they never import the driver's scheduler or API.
    "aiospark.worker": ["aiospark.scheduler", "aiospark.context", "aiospark.jobpath"],
    "aiospark.protocol": ["aiospark.rdd", "aiospark.ops", "aiospark.plans", "aiospark.context",
                          "aiospark.scheduler", "aiospark.worker", "aiospark.master"],
}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_downward(layer):
    graph = import_graph()
    members = [m for m in graph if m == layer or m.startswith(layer + ".")]
    assert members, f"no module in layer {layer}"
    upward = sorted(
        f"{module} imports {target}"
        for module in members
        for target in graph[module]
        for banned in FORBIDDEN[layer]
        if target == banned or target.startswith(banned + ".")
    )
    assert upward == []
