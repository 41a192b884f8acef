#!/usr/bin/env python3
"""Fail on import cycles and on imports that go up the layers of a package.

usage: check_imports.py [PACKAGE_DIR]   (default: streamdeid next to this tools/ folder)

Prints every cycle as a path (``a -> b -> a``) and every layer violation, and exits 1 if there
is any; exits 0 and prints a one-line summary otherwise.

What counts as an import (an edge ``a -> b``):

* Every ``import`` and ``from ... import`` in ``a``, wherever it is written: module level,
  inside a function, under ``if TYPE_CHECKING``. An import moved into a function still means
  ``a`` needs ``b`` to work; it only postpones the failure, so it cannot hide a cycle.
* ``from pkg import name`` is an edge to the module ``pkg.name`` when that is a module, else to
  ``pkg``. Relative imports are resolved against ``a``'s package.
* Never to ``a``'s own ancestors: importing ``pkg.sub.mod`` always runs ``pkg`` and ``pkg.sub``
  first, so every module would otherwise form a cycle with a package ``__init__`` that
  re-exports it.

Layers (streamdeid): each module belongs to the layer with the longest matching prefix (the
package root matches only itself), and may import its own layer and lower ones only. A module
in no layer is an error, so a new top-level module has to be placed. Nothing is exempt.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

# Lowest first. streamdeid (the package root) re-exports the API, so it sits with it.
STREAMDEID_LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "core",
        (
            "streamdeid.types",
            "streamdeid.errors",
            "streamdeid.config",
            "streamdeid.config_base",
            "streamdeid.config_detector",
            "streamdeid.config_schedule",
            "streamdeid.limits",
            "streamdeid.media",
            "streamdeid.argtypes",
            "streamdeid.audit",
            "streamdeid.configs",
            # The live rules and their settings: pure functions and a model, read by io too.
            "streamdeid.live.policy",
        ),
    ),
    (
        "components",
        (
            "streamdeid.detect",
            "streamdeid.track",
            "streamdeid.obscure",
            "streamdeid.crypto",
            "streamdeid.io",
        ),
    ),
    # The live stages, channels and their counters are pipeline parts that apply the live rules.
    (
        "pipeline",
        (
            "streamdeid.pipeline",
            "streamdeid.live.runner",
            "streamdeid.live.stages",
            "streamdeid.live.channels",
            "streamdeid.live.stats",
        ),
    ),
    ("api", ("streamdeid.api", "streamdeid.build", "streamdeid")),
    # What the commands run: live cameras, batches on a cluster, evaluation, reveal, synthetic
    # clips.
    (
        "applications",
        (
            "streamdeid.live",
            "streamdeid.batch",
            "streamdeid.evaluate",
            "streamdeid.reveal",
            "streamdeid.reveal_records",
            "streamdeid.reveal_source",
            "streamdeid.grant_package",
            "streamdeid.testing",
        ),
    ),
    (
        "cli",
        ("streamdeid.cli", "streamdeid.__main__"),
    ),
]
LAYERS = {"streamdeid": STREAMDEID_LAYERS}

Graph = dict[str, set[str]]


def module_names(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``package_dir``."""
    root = package_dir.resolve()
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_graph(package_dir: Path) -> Graph:
    """Edges between the package's own modules (see the module docstring for what counts)."""
    modules = module_names(package_dir)
    graph: Graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(name, is_package, node.level, node.module)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.add(sub if sub in modules else base)
        graph[name] = {
            _owner(t, modules)
            for t in targets
            if _owner(t, modules) and not _is_ancestor(_owner(t, modules), name)
        } - {name}
    return graph


def _absolute(name: str, is_package: bool, level: int, module: str | None) -> str:
    if not level:
        return module or ""
    parts = name.split(".") if is_package else name.split(".")[:-1]
    parts = parts[: len(parts) - level + 1]
    return ".".join(parts + ([module] if module else []))


def _owner(target: str, modules: Iterable[str]) -> str:
    """The longest module of the package that ``target`` is or lies in ('' if none)."""
    names = set(modules)
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in names:
            return candidate
    return ""


def _is_ancestor(package: str, module: str) -> bool:
    return module.startswith(package + ".")


def find_cycles(graph: Graph) -> list[list[str]]:
    """One cycle path (first module repeated at the end) per strongly connected component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan; packages are small enough for recursion
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_path_through(sorted(c), graph) for c in components]


def _path_through(component: list[str], graph: Graph) -> list[str]:
    """A shortest cycle from the component's first module back to it (breadth first)."""
    start, members = component[0], set(component)
    previous: dict[str, str] = {}
    queue = [start]
    for v in queue:
        for w in sorted(graph[v] & members):
            if w == start:  # closed: walk back from v to start
                path = [v]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if w not in previous:
                previous[w] = v
                queue.append(w)
    return [*component, start]  # pragma: no cover - a component always closes


def layer_of(module: str, layers: list[tuple[str, tuple[str, ...]]]) -> int | None:
    best, best_len = None, -1
    for rank, (_, prefixes) in enumerate(layers):
        for prefix in prefixes:
            # The package root (no dot) names only itself, not everything below it.
            inside = "." in prefix and module.startswith(prefix + ".")
            if (module == prefix or inside) and len(prefix) > best_len:
                best, best_len = rank, len(prefix)
    return best


def layer_violations(graph: Graph, layers: list[tuple[str, tuple[str, ...]]]) -> list[str]:
    """Imports of a higher layer, and modules in no layer."""
    problems = []
    for module in sorted(graph):
        rank = layer_of(module, layers)
        if rank is None:
            problems.append(f"{module}: in no layer (add it to the layers in {__file__})")
            continue
        for target in sorted(graph[module]):
            other = layer_of(target, layers)
            if other is not None and other > rank:
                problems.append(
                    f"{module} ({layers[rank][0]}) imports {target} ({layers[other][0]}), "
                    "a higher layer"
                )
    return problems


def main(argv: list[str]) -> int:
    default = Path(__file__).resolve().parent.parent / "streamdeid"
    package_dir = Path(argv[0]) if argv else default
    graph = import_graph(package_dir)
    cycles = find_cycles(graph)
    for cycle in cycles:
        print("import cycle: " + " -> ".join(cycle))
    layers = LAYERS.get(package_dir.resolve().name)
    violations = layer_violations(graph, layers) if layers else []
    for problem in violations:
        print("layer: " + problem)
    if cycles or violations:
        return 1
    print(f"{package_dir.name}: {len(graph)} modules, no import cycle, layers respected")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
