"""The package's layers, read from its imports: evidence -> estimates -> presentation -> site.

Each module may import modules of its own layer and of the layers before it, never one after it,
and no two modules import each other, directly or through others. Imports inside functions count
too: they are imports all the same, only later.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tipline"
LAYERS = ["evidence", "estimates", "presentation", "site"]


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The tipline modules `path` imports (a `from package import name` names the submodule)."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("tipline")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if not base.startswith("tipline"):
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists()
                          or (PACKAGE.parent / candidate.replace(".", "/")).is_dir() else base)
    found.discard(module)
    return found


def _graph() -> dict[str, set[str]]:
    return {_module(path): _imports(path) for path in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_sits_in_a_layer():
    loose = [m for m in _graph() if m != "tipline" and _layer(m) is None]
    assert not loose, f"modules outside the four layers {LAYERS}: {loose}"


def test_no_layer_imports_a_later_one():
    upward = [f"{module} -> {target}" for module, targets in _graph().items() for target in targets
              if _layer(module) is not None and _layer(target) is not None and _layer(target) > _layer(module)]
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def test_no_circle():
    graph = _graph()
    # a package's __init__ importing its own submodules is how a package exposes them, not a circle
    edges = {m: {t for t in ts if t in graph and not (m != "tipline" and t.startswith(m + "."))} for m, ts in graph.items()}
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if target == "tipline":
                continue  # every submodule's package is imported first; the root only re-exports
            if state.get(target) == 1:
                pytest.fail("import circle: " + " -> ".join(path[path.index(target):] + [target]))
            if target not in state:
                visit(target, path + [target])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


def test_the_check_can_see_an_upward_import(tmp_path, monkeypatch):
    """The checks above read real import statements: an upward one written into a copy is found."""
    copy = tmp_path / "tipline"
    import shutil

    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "evidence" / "data.py"
    target.write_text(target.read_text() + "\n\ndef _late():\n    from ..site import build\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", copy)
    with pytest.raises(AssertionError, match=r"tipline\.evidence\.data -> tipline\.site\.build"):
        test_no_layer_imports_a_later_one()


def test_the_check_can_see_a_circle(tmp_path, monkeypatch):
    """data -> ledger -> data, the circle this layout removed, is found when written back."""
    copy = tmp_path / "tipline"
    import shutil

    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "evidence" / "data.py"
    target.write_text(target.read_text() + "\n\ndef _late():\n    from . import ledger\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", copy)
    with pytest.raises(pytest.fail.Exception, match=r"import circle: .*tipline\.evidence\.data"):
        test_no_circle()
