"""The package's import map: modules import only from their own layer or layers to their left.

    env, _io, _checks  <-  simulate  <-  data  <-  segment, features  <-  analysis
        <-  models  <-  plot  <-  widgets, run, teach

(``CONTRIBUTING.md`` draws the same map.) Every ``import`` statement counts, including the
ones inside functions, because a lazy back-import is still a loop in the design.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

HELPERS = Path(__file__).resolve().parents[1] / "helpers"

#: layer of each top-level part of ``helpers``; a part may import its own layer and lower ones
LAYERS = {
    "env": 0, "_io": 0, "_checks": 0,
    "simulate": 1,
    "data": 2,
    "segment": 3, "features": 3,
    "analysis": 4,
    "models": 5,
    "plot": 6,
    "widgets": 7, "run": 7, "teach": 7,
}


def _module_name(path: Path, root: Path) -> str:
    """``helpers.models.vae`` for ``root/models/vae.py`` (``__init__`` is its package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([root.name, *parts])


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """Absolute names that one ``import`` / ``from ... import`` node reads."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level == 0:
        base = node.module or ""
    else:
        package = module.split(".") if is_package else module.split(".")[:-1]
        anchor = package[: len(package) - (node.level - 1)]
        base = ".".join([*anchor, node.module] if node.module else anchor)
    # ``from helpers import simulate`` reads helpers.simulate; ``from .x import f`` reads x
    return [f"{base}.{alias.name}" for alias in node.names] if base.count(".") == 0 else [base]


def _part(name: str, package: str) -> str | None:
    """The top-level part (``models``) of a name inside ``package`` (else None)."""
    parts = name.split(".")
    return parts[1] if parts[0] == package and len(parts) > 1 else None


def back_imports(root: Path) -> list[str]:
    """Every import inside package ``root`` that reaches a part to its right (or unknown).

    Returns lines ``"helpers/models/vae.py:12 imports helpers.plot (layer 6 > 5)"``.
    """
    problems = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        own = _part(module, root.name)
        if own is None:  # the package's own __init__ imports nothing of its parts
            own_layer = 0
        elif own not in LAYERS:
            problems.append(f"{path.relative_to(root.parent)}: part {own!r} has no layer; "
                            "add it to LAYERS and to the map in CONTRIBUTING.md")
            continue
        else:
            own_layer = LAYERS[own]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for name in _imported(node, module, path.name == "__init__.py"):
                target = _part(name, root.name)
                if target is None or target == own:
                    continue
                layer = LAYERS.get(target)
                if layer is None or layer > own_layer:
                    problems.append(f"{path.relative_to(root.parent)}:{node.lineno} imports "
                                    f"{name} (layer {layer} > {own_layer})")
    return problems


def test_every_part_of_helpers_has_a_layer():
    parts = {p.stem if p.is_file() else p.name for p in HELPERS.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert parts <= set(LAYERS), f"parts without a layer: {sorted(parts - set(LAYERS))}"


def test_no_module_imports_one_to_its_right():
    assert back_imports(HELPERS) == []


def test_contributing_draws_the_same_map():
    text = (HELPERS.parent / "CONTRIBUTING.md").read_text(encoding="utf-8")
    chain = "env, _io, _checks <- simulate <- data <- segment, features <- analysis <- models"
    assert chain in " ".join(text.split()), "CONTRIBUTING.md must draw the layer map"
    assert "<- plot <- widgets, run, teach" in " ".join(text.split())


@pytest.mark.parametrize("source, expected", [
    ("from ..plot import plot_manifold\n", "imports helpers.plot"),      # relative, top level
    ("def f():\n    import helpers.widgets\n", "imports helpers.widgets"),  # lazy, absolute
    ("from helpers import run\n", "imports helpers.run"),                 # from the package
])
def test_a_back_import_is_caught(tmp_path, source, expected):
    copy = tmp_path / "helpers"
    shutil.copytree(HELPERS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "models" / "base.py"
    target.write_text(target.read_text(encoding="utf-8") + "\n" + source, encoding="utf-8")
    problems = back_imports(copy)
    assert len(problems) == 1 and "helpers/models/base.py" in problems[0], problems
    assert expected in problems[0]


def test_a_forward_import_is_allowed(tmp_path):
    copy = tmp_path / "helpers"
    shutil.copytree(HELPERS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "plot" / "__init__.py"
    target.write_text(target.read_text(encoding="utf-8") + "\nfrom ..env import get_device\n",
                      encoding="utf-8")
    assert back_imports(copy) == []
