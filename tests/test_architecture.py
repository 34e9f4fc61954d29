"""The import graph of `depthcli/` (read with `ast`, imports inside functions included): every module sits on a
declared layer, no import runs from a lower layer to a higher one, no import cycle, no module over 400 lines.

The layers are those of docs/architecture.md. A new module must be placed here before this test passes.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "depthcli"
MAX_LINES = 400

# Bottom to top; a module may import its own layer and the layers below. Names are the first part under depthcli/.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "ground floor",
        frozenset(
            {"__init__", "errors", "atomic", "sizes", "geometry", "config", "recipe_configs", "checkpoints"}
            | {"gradient_field", "visualize", "provenance", "precision", "threads", "devices", "paths", "locks"}
        ),
    ),
    ("data, nets, losses, kernels", frozenset({"data", "synth", "nets", "weights", "losses", "kernels", "inference"})),
    ("engines and evaluation", frozenset({"engine", "evaluation"})),
    ("application", frozenset({"predict", "predict_inputs", "export", "demo"})),
    ("command line", frozenset({"cli", "__main__"})),
)


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {_module_name(path, package.parent): path for path in sorted(package.rglob("*.py"))}


def _imports(path: Path, modules: dict[str, Path], root: Path = PACKAGE.parent) -> set[str]:
    """The depthcli modules `path` imports, anywhere in the file (a name imported from a package that is a
    module of its own counts as that module)."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target.startswith("depthcli") and target != name:
                found.add(target)
    return found


def _layer(module: str) -> int:
    first = module.split(".")[1] if "." in module else "__init__"
    for index, (_, names) in enumerate(LAYERS):
        if first in names:
            return index
    raise AssertionError(f"{module} is on no layer; place it in LAYERS (and docs/architecture.md)")


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) for name, path in modules.items()}


def test_every_module_is_on_a_layer_and_no_import_runs_upward():
    upward = [
        f"{module} ({LAYERS[_layer(module)][0]}) imports {target} ({LAYERS[_layer(target)][0]})"
        for module, targets in _graph().items()
        for target in targets
        if _layer(target) > _layer(module)
    ]
    assert upward == []


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, str] = {}
    cycles = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(trail[trail.index(target) :] + [target]))
            elif target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_no_module_over_400_lines():
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_check_sees_lazy_relative_and_package_imports(tmp_path):
    """The reader itself: imports inside functions, relative imports and names taken from a package count."""
    files = {
        "depthcli/__init__.py": "",
        "depthcli/errors.py": "",
        "depthcli/nets/__init__.py": "",
        "depthcli/nets/loading.py": "",
        "depthcli/nets/registry.py": "",
        "depthcli/engine/__init__.py": "",
        "depthcli/engine/example.py": (
            "import os\n"
            "def f():\n    from depthcli.nets import loading, build_depth_net\n    from depthcli import errors\n"
            "from ..nets.registry import x\n"
        ),
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    modules = _modules(tmp_path / "depthcli")
    found = _imports(tmp_path / "depthcli/engine/example.py", modules, tmp_path)
    assert found == {"depthcli.nets.loading", "depthcli.nets", "depthcli.errors", "depthcli.nets.registry"}
