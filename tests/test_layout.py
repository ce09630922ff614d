"""The house rules that hold for the code itself: no import cycle between the project's modules,
counting imports made inside functions (which would only hide one), no SQL in the web layer, and
training/ holding its runnable steps at the top and its libraries in lib/ and data/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("models", "training", "feedback", "web")


def _modules() -> dict[str, Path]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")] + [ROOT / "app.py"]
    names = {}
    for p in files:
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return names


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every project module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names
            }
    return found & set(modules)


def test_no_import_cycle_even_through_imports_inside_functions():
    modules = _modules()
    graph = {m: _imports(p, modules) - {m} for m, p in modules.items()}
    assert len(graph) > 50 and graph["app"]
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(path[path.index(n) :] + [n])
            elif n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles


def test_the_web_layer_holds_no_sql():
    for path in [*(ROOT / "web").glob("*.py"), ROOT / "app.py"]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not names & {"sqlite3", "psycopg", "psycopg_pool"}, path.name
        assert "SELECT " not in path.read_text(encoding="utf-8"), path.name


def test_only_libraries_are_imported_inside_training():
    """A training step (a module run with ``python -m``) imports no other step, and nothing else
    imports a step: what two steps share lives in a library module (``data.lines``,
    ``lib.glyph_metrics``, ``lib.one_sample``, ...)."""
    modules = _modules()
    steps = {m for m, p in modules.items() if m.startswith("training.") and "__main__" in p.read_text(encoding="utf-8")}
    assert {"training.train_lines", "training.evaluate", "training.teach"} <= steps
    importers = {m: _imports(p, modules) & steps for m, p in modules.items()}
    assert not {m: sorted(found) for m, found in importers.items() if found - {m}}


def _is_step(path: Path) -> bool:
    return 'if __name__ == "__main__":' in path.read_text(encoding="utf-8")


def test_training_keeps_steps_at_the_top_and_libraries_below():
    """Every module directly under training/ but ``__init__`` and ``provenance`` is a step (run as
    ``python -m training.<step>``), so a name at the top means a command; the libraries
    (``training.lib``, ``training.data``, ``training.provenance``) are no step and import none."""
    modules = _modules()
    top = {m: p for m, p in modules.items() if p.parent == ROOT / "training" and p.name != "__init__.py"}
    not_steps = sorted(m for m, p in top.items() if m != "training.provenance" and not _is_step(p))
    assert not not_steps, (
        f"libraries at the top of training/ (move them into training/lib or training/data): {not_steps}"
    )
    steps = {m for m, p in top.items() if _is_step(p)}
    assert {"training.train_lines", "training.evaluate", "training.teach", "training.export_onnx"} <= steps
    libraries = {
        m: p
        for m, p in modules.items()
        if m == "training.provenance" or m.startswith(("training.lib", "training.data"))
    }
    assert {"training.lib.loop", "training.data.pages"} <= set(libraries)
    assert not [m for m, p in libraries.items() if _is_step(p)]
    imported = {m: sorted(_imports(p, modules) & steps) for m, p in libraries.items()}
    assert not {m: found for m, found in imported.items() if found}
