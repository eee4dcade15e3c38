"""Every notebook at smoke scale through the runner, compared against the committed baseline.

This is the regression run papermill users rely on: a change that alters a notebook's science
beyond the tolerances in tests/baselines/smoke.json fails here."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "tests" / "baselines" / "smoke.json"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))

pytestmark = pytest.mark.notebooks


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    # Kept in runs/smoke (ignored by git): the browser test (`make test-browser`, run after
    # this by .ci/run) opens these executed notebooks instead of executing them again.
    out = ROOT / "runs" / "smoke"
    out.mkdir(parents=True, exist_ok=True)
    # An empty private cache with downloads off: tests never download data, and results
    # must not depend on what happens to be cached on the machine.
    env = dict(os.environ, MICROSCOPY_OFFLINE="1",
               MICROSCOPY_DATA_DIR=str(tmp_path_factory.mktemp("data_cache")))
    proc = subprocess.run(
        [sys.executable, "-m", "helpers.run", "--smoke", "--jobs", "2", "--out", str(out),
         "--compare", str(BASELINE)],
        cwd=ROOT, capture_output=True, text=True, env=env,
    )
    print(proc.stdout[-6000:], proc.stderr[-3000:])
    summary = json.loads((out / "summary.json").read_text())
    return proc, {nb["name"]: nb for nb in summary["notebooks"]}


def numbers(results):
    for key, value in results.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            yield key, value


def test_every_notebook_runs_at_smoke_scale(smoke_run):
    _, runs = smoke_run
    assert sorted(runs) == [p.stem for p in NOTEBOOKS]
    failed = {name: f"cell {r['failed_cell']}: {r['error']}"
              for name, r in runs.items() if r["status"] != "ok"}
    assert not failed, failed


@pytest.mark.parametrize("name", [p.stem for p in NOTEBOOKS])
def test_results_are_finite_and_sane(smoke_run, name):
    _, runs = smoke_run
    results = runs[name]["results"]
    assert results, f"{name} wrote no results"
    assert "runtime_s" in results and results["runtime_s"] > 0
    for key, value in numbers(results):
        assert math.isfinite(value), f"{name}.{key} = {value}"
        if key.endswith(("_r", "_accuracy", "_auc", "_f1")) or key.startswith("coverage"):
            assert -1.0 <= value <= 1.0, f"{name}.{key} = {value} outside [-1, 1]"


def test_no_metric_moved_beyond_its_baseline_tolerance(smoke_run):
    proc, runs = smoke_run
    baseline = json.loads(BASELINE.read_text())["notebooks"]
    missing = sorted(set(runs) - set(baseline))
    assert not missing, f"no smoke baseline for {missing}: run `make baseline` and review it"
    assert "moved beyond tolerance" not in proc.stdout, proc.stdout[-3000:]
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_saved_notebooks_show_progress_as_text_not_frozen_widgets(smoke_run):
    # a progress widget saved in a notebook renders as "0%| 0/N" forever on GitHub and
    # nbviewer; the runner asks for plain text lines instead (helpers.env.progress)
    frozen = {}
    for path in NOTEBOOKS:
        executed = json.loads((ROOT / "runs" / "smoke" / path.name).read_text())
        for i, cell in enumerate(executed["cells"]):
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                text = "".join(data.get("text/plain", ""))
                if "application/vnd.jupyter.widget-view+json" in data and "%|" in text:
                    frozen.setdefault(path.stem, []).append(i)
    assert not frozen, f"progress widgets saved in (notebook: cells) {frozen}"


def test_no_result_is_typed_into_the_prose(smoke_run):
    # sentences that state results must be printed from them (helpers.run.prose)
    from helpers.run.prose import typed_results_in

    typed = {}
    for path in NOTEBOOKS:
        executed = ROOT / "runs" / "smoke" / path.name
        found = typed_results_in(executed, executed.with_suffix(".results.json"))
        if found:
            typed[path.stem] = [f"cell {f.cell}: '{f.text}' = {f.key}" for f in found]
    assert not typed, typed
