"""The layers of docs/architecture.md, read from the code's own imports: each layer imports only
the layers below it, and no modules import each other in a loop.

Imports inside functions count (they are dependencies all the same, only later); imports under
``if TYPE_CHECKING:`` count too; a name taken from a package's face (``from aerec import
Recommender``) counts as an import of the module that defines it. The test reads the source and
runs none of it.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first. A module belongs to the layer of its longest matching prefix.
LAYERS = [
    ("foundations", ["aerec._lazy", "aerec._cpus", "aerec._memory", "aerec.errors", "aerec.config", "aerec.losses", "aerec.device",
                     "aerec.distributed", "aerec.persistence", "aerec.plots"]),
    ("data", ["aerec.data"]),
    ("networks", ["aerec.models"]),
    ("training", ["aerec.training"]),
    ("registry", ["aerec.registry"]),
    ("estimators", ["aerec.base", "aerec.recommender", "aerec.ensemble", "aerec.implicit", "aerec.baseline", "aerec.foldin",
                    "aerec.explain", "aerec.relevance", "aerec.loading", "aerec.evaluation", "aerec.ranking"]),
    ("workflows", ["aerec.workflows", "aerec.tuning", "aerec.crossval", "aerec.demo", "aerec.testing"]),
    ("programs", ["aerec.cli", "aerec.serve", "aerec.__main__"]),
]

# Imports that run up on purpose, each with its reason.
UPWARD = {
    ("aerec.implicit.testing", "aerec.testing.implicit"):
        "an alias kept so that `from aerec.implicit.testing import ImplicitContract` still works",
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "aerec").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _lazy_table(name: str) -> dict[str, str]:
    """A package face's ``_LAZY`` table (public name -> the module defining it), resolved to whole
    module names: ``from aerec import Recommender`` depends on aerec.recommender."""
    path = MODULES[name]
    if path.name != "__init__.py":
        return {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_LAZY" for t in node.targets):
            table = ast.literal_eval(node.value)
            return {k: name + v if v.startswith(".") else v for k, v in table.items()}
    return {}


FACES = {name: table for name in MODULES if (table := _lazy_table(name))}


def _imports(name: str, path: Path, *, top_level_only: bool = False) -> set[str]:
    """The aerec modules that module ``name`` imports (``from P import X`` counts P, and P.X when
    X is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            face = FACES.get(base, {})
            found.update(face[a.name] for a in node.names if a.name in face)
            if not all(a.name in face for a in node.names):
                found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m in MODULES and m != name}


def _layer(name: str) -> int:
    best = max(((len(prefix), rank) for rank, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
                if name == prefix or name.startswith(prefix + ".")), default=None)
    assert best is not None, f"{name} is in no layer: add it to LAYERS (and to docs/architecture.md)"
    return best[1]


def test_every_import_runs_down_or_level():
    upward = []
    for name, path in MODULES.items():
        if name in FACES:  # a package's face: its names are loaded on first use, from the layers they live in
            continue
        for target in _imports(name, path) - set(FACES):  # `import aerec` alone: for aerec.__version__
            if _layer(target) > _layer(name) and (name, target) not in UPWARD:
                upward.append(f"{name} ({LAYERS[_layer(name)][0]}) imports {target} ({LAYERS[_layer(target)][0]})")
    assert not upward, "imports that run up a layer:\n" + "\n".join(upward)


def test_the_allowed_upward_imports_still_exist():
    # An exception that the code no longer needs is struck from UPWARD, not left to excuse a new one.
    for name, target in UPWARD:
        assert target in _imports(name, MODULES[name]), (name, target)


def test_no_import_cycles():
    graph = {name: _imports(name, path, top_level_only=True) for name, path in MODULES.items()}
    state: dict[str, str] = {}  # "open" while on the current path, "done" after

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                loop = path[path.index(target):] + [target] if target in path else [name, target]
                raise AssertionError("modules that import each other: " + " -> ".join(loop))
            if target not in state:
                visit(target, [*path, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
