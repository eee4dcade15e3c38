"""The papermill runner: statuses, failing cell, summaries, headless widgets/tqdm,
and the regression comparison against a baseline."""

from __future__ import annotations

import json

import nbformat
import pytest

from helpers import run


def make_notebook(path, body_cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    params = nbformat.v4.new_code_cell(
        'SMOKE = False\nSEED = 0\nDATA_SOURCE = "simulated"\nRESULTS_PATH = ""\nDEVICE = "cpu"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# test"), params]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in body_cells]
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Two notebooks, one good (tqdm.auto + an ipywidgets slider), one failing, run 2 at once."""
    root = tmp_path_factory.mktemp("nbs")
    make_notebook(root / "01_good.ipynb", [
        "from tqdm.auto import tqdm\nimport ipywidgets as w\n"
        "total = sum(i for i in tqdm(range(1000)))\nw.IntSlider(value=3)",
        "from helpers.run import save_results\n"
        "save_results({'total': total, 'smoke': SMOKE, 'runtime_s': 0.1}, RESULTS_PATH)",
    ])
    make_notebook(root / "02_bad.ipynb", ["x = 1", "raise RuntimeError('boom in cell')"])
    out = root / "out"
    paths = run.find_notebooks(None, notebook_dir=root)
    runs = run.run_notebooks(paths, out, jobs=2, smoke=True, log=lambda *_: None)
    run.write_summary(runs, out, "smoke")
    return root, out, runs


def test_statuses_results_and_failing_cell(executed):
    _, _, runs = executed
    good, bad = runs
    assert (good.name, good.status) == ("01_good", "ok")
    assert good.results == {"total": 499500, "smoke": True, "runtime_s": 0.1}
    assert bad.status == "failed"
    # 4th cell of the source notebook (papermill's injected cell is not counted)
    assert bad.failed_cell == 4 and "boom in cell" in bad.error
    assert bad.failed_source == "raise RuntimeError('boom in cell')"


def test_summary_files(executed):
    _, out, _ = executed
    summary = json.loads((out / "summary.json").read_text())
    assert [n["name"] for n in summary["notebooks"]] == ["01_good", "02_bad"]
    assert [n["status"] for n in summary["notebooks"]] == ["ok", "failed"]
    assert summary["all_ok"] is False
    assert all(n["wall_s"] > 0 for n in summary["notebooks"])
    md = (out / "SUMMARY.md").read_text()
    assert "boom in cell" in md and "cell 4" in md and "| total | 499500 |" in md


def test_find_notebooks_by_prefix_and_unknown(executed):
    root, _, _ = executed
    assert [p.stem for p in run.find_notebooks(["02"], notebook_dir=root)] == ["02_bad"]
    with pytest.raises(ValueError, match="available: 01_good, 02_bad"):
        run.find_notebooks(["07"], notebook_dir=root)


def test_compare_reports_moved_and_missing_metrics():
    runs = [run.NotebookRun("nb", "ok", 1.0, {"r": 0.95, "n": 3, "flag": True, "wall_s": 9.0})]
    baseline = {"notebooks": {"nb": {
        "r": {"value": 0.90, "tolerance": 0.1},          # within
        "n": {"value": 5, "tolerance": 1},               # moved
        "flag": {"value": False, "tolerance": 0},        # changed
        "gone": {"value": 1.0, "tolerance": 0.5},        # missing now
        "wall_s": {"value": 1.0, "tolerance": None},     # recorded, not compared
    }}}
    drifts = {d.metric: d for d in run.compare_to_baseline(runs, baseline)}
    assert sorted(drifts) == ["flag", "gone", "n"]
    assert (drifts["n"].old, drifts["n"].new, drifts["n"].tolerance) == (5, 3, 1)
    assert "baseline 5, now 3 (tolerance 1)" in str(drifts["n"])


def test_nan_metric_counts_as_moved():
    runs = [run.NotebookRun("nb", "ok", 1.0, {"r": float("nan")})]
    baseline = {"notebooks": {"nb": {"r": {"value": 0.5, "tolerance": 10.0}}}}
    assert len(run.compare_to_baseline(runs, baseline)) == 1


def test_update_baseline_keeps_hand_set_tolerances(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"notebooks": {"nb": {"r": {"value": 0.1, "tolerance": 0.3}}}}))
    runs = [run.NotebookRun("nb", "ok", 1.0, {"r": 0.5, "k": 10, "runtime_s": 3.0}),
            run.NotebookRun("bad", "failed", 1.0, {})]
    run.update_baseline(runs, path)
    new = json.loads(path.read_text())["notebooks"]
    assert new["nb"]["r"] == {"value": 0.5, "tolerance": 0.3}
    assert new["nb"]["k"] == {"value": 10, "tolerance": 1.0}
    assert new["nb"]["runtime_s"]["tolerance"] is None
    assert "bad" not in new


def test_save_results_is_atomic_and_plain(tmp_path):
    import numpy as np

    path = run.save_results({"a": np.float32(1.5), "b": np.arange(3), "c": {"d": np.bool_(True)}},
                            tmp_path / "sub" / "r.json")
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": {"d": True}}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]
    with pytest.raises(ValueError, match="results must hold"):
        run.save_results({"x": object()}, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()
