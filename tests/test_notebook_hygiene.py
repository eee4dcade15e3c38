"""Every notebook is valid, committed without outputs, parameterised for papermill, titled with
its paper and badges, and installs the suite in Colab from the one repository URL."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
REPO_URL = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
REPO_SLUG = REPO_URL.removeprefix("https://github.com/")
REQUIRED_PARAMETERS = {"SMOKE", "SEED", "DATA_SOURCE", "RESULTS_PATH", "DEVICE"}


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no NN_name.ipynb"


@pytest.fixture(params=NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def notebook(request):
    path = request.param
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return path, nb


def test_no_outputs_committed(notebook):
    path, nb = notebook
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name}: cell {i + 1} has outputs; strip them"
            assert cell.execution_count is None, f"{path.name}: cell {i + 1} has a count"


def test_kernelspec_is_python3(notebook):
    path, nb = notebook
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", path.name


def test_title_paper_and_badges(notebook):
    path, nb = notebook
    first = nb.cells[0]
    assert first.cell_type == "markdown", f"{path.name}: first cell must be markdown"
    text = first.source
    assert re.match(r"#\s+\S", text), f"{path.name}: first cell must start with a # title"
    assert re.search(r"arXiv[: ]\s*\d{4}\.\d{4,5}|doi|DOI", text), f"{path.name}: no paper ref"
    colab = f"colab.research.google.com/github/{REPO_SLUG}/blob/main/notebooks/{path.name}"
    binder = f"mybinder.org/v2/gh/{REPO_SLUG}/main?labpath=notebooks%2F{path.name}"
    assert colab in text, f"{path.name}: missing or wrong Colab badge (expected {colab})"
    assert binder in text, f"{path.name}: missing or wrong Binder badge (expected {binder})"


def test_colab_install_cell_uses_the_repository_url(notebook):
    path, nb = notebook
    install = nb.cells[1]
    assert install.cell_type == "code"
    assert "google.colab" in install.source and "pip install" in install.source
    assert f"git+{REPO_URL}" in install.source, f"{path.name}: install URL != {REPO_URL}"


def test_parameters_cell(notebook):
    path, nb = notebook
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    tree = ast.parse(tagged[0].source)
    names = {t.id for node in tree.body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name)}
    assert REQUIRED_PARAMETERS <= names, f"{path.name}: missing {REQUIRED_PARAMETERS - names}"
    values = {t.id: ast.literal_eval(node.value) for node in tree.body
              if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}
    assert values["SMOKE"] is False, "the committed default scale is the laptop scale"
    assert values["DATA_SOURCE"] == "simulated"


def test_results_are_written_at_the_end(notebook):
    path, nb = notebook
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert "save_results(" in code[-1] and "RESULTS_PATH" in code[-1], (
        f"{path.name}: the last code cell must write the key numbers to RESULTS_PATH")


def test_readme_has_binder_and_a_colab_badge_per_notebook():
    readme = (ROOT / "README.md").read_text()
    assert f"mybinder.org/v2/gh/{REPO_SLUG}/main" in readme
    for path in NOTEBOOKS:
        assert f"colab.research.google.com/github/{REPO_SLUG}/blob/main/notebooks/{path.name}" \
            in readme, f"README lacks a Colab badge for {path.name}"


def _estimator_classes() -> set[str]:
    """Names of the suite's estimators: the subclasses of the estimator base and every other
    class whose constructor takes ``device``."""
    import inspect

    import helpers.models as models
    import helpers.segment as segment
    from helpers.models.base import Estimator

    names = set()
    for module in (models, segment):
        for name, obj in vars(module).items():
            if not inspect.isclass(obj) or issubclass(obj, BaseException):
                continue
            if issubclass(obj, Estimator):
                names.add(name)
                continue
            try:
                parameters = inspect.signature(obj).parameters
            except (TypeError, ValueError):  # classes without an inspectable constructor
                continue
            if "device" in parameters:
                names.add(name)
    return names


def test_the_device_parameter_reaches_every_model(notebook):
    """`--device cuda` must move every model of the notebook: DEVICE is resolved once with
    helpers.env.get_device and every estimator is built with `device=`."""
    path, nb = notebook
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    # IPython magics are not Python: keep their indentation, drop their text
    tree = ast.parse("\n".join(re.sub(r"^(\s*)[%!].*$", r"\1pass", line)
                               for line in source.splitlines()))
    assert "get_device(DEVICE)" in source, f"{path.name} never resolves DEVICE"
    estimators = _estimator_classes()
    assert {"RVAE", "UNet"} <= estimators, estimators
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and getattr(node.func, "id", getattr(node.func, "attr", None)) in estimators]
    assert calls, f"{path.name}: builds no estimator (is the list of estimators stale?)"
    missing = [f"line {c.lineno}: {ast.unparse(c.func)}" for c in calls
               if not any(k.arg == "device" for k in c.keywords)]
    assert not missing, f"{path.name}: models built without device=: {missing}"


def test_helpers_plot_is_imported_one_way(notebook):
    """One import style: `import helpers.plot as hplot`, figures called as `hplot.plot_*`."""
    path, nb = notebook
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    tree = ast.parse("\n".join(re.sub(r"^(\s*)[%!].*$", r"\1pass", line)
                               for line in source.splitlines()))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("helpers"):
            names = {a.name for a in node.names}
            assert not (node.module.startswith("helpers.plot") or "plot" in names), (
                f"{path.name} line {node.lineno}: use `import helpers.plot as hplot`")
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("helpers.plot"):
                    assert alias.name == "helpers.plot" and alias.asname == "hplot", (
                        f"{path.name} line {node.lineno}: use `import helpers.plot as hplot`")
    assert "helpers.plot." not in source, f"{path.name}: call figures as hplot.plot_*"
