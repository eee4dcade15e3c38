"""Seed sweeps on a Dask local cluster: two real notebooks x two seeds at smoke scale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ["00_invariant_vae_basics", "07_si_vae"]

pytestmark = pytest.mark.notebooks


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    proc = subprocess.run(
        [sys.executable, "-m", "helpers.run", "--seeds", "0-1", "--smoke", "--jobs", "2",
         "--cluster", "local", "--out", str(out), *NOTEBOOKS],
        cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "MICROSCOPY_OFFLINE": "1",
             "MICROSCOPY_DATA_DIR": str(tmp_path_factory.mktemp("cache"))},
    )
    print(proc.stdout[-3000:], proc.stderr[-3000:])
    return proc, out, json.loads((out / "summary.json").read_text())


def test_every_notebook_seed_pair_ran_into_its_seed_folder(sweep):
    proc, out, summary = sweep
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "4 notebook run(s)" in proc.stdout and "on local" in proc.stdout
    pairs = sorted((n["name"], n["seed"], n["status"]) for n in summary["notebooks"])
    assert pairs == [(name, seed, "ok") for name in NOTEBOOKS for seed in (0, 1)]
    assert summary["status"] == "complete" and summary["all_ok"] is True
    for seed in (0, 1):
        per_seed = json.loads((out / f"seed-{seed}" / "summary.json").read_text())
        assert {n["name"] for n in per_seed["notebooks"]} == set(NOTEBOOKS)
        for name in NOTEBOOKS:
            assert (out / f"seed-{seed}" / f"{name}.ipynb").is_file()
            results = json.loads((out / f"seed-{seed}" / f"{name}.results.json").read_text())
            assert results == next(n["results"] for n in summary["notebooks"]
                                   if (n["name"], n["seed"]) == (name, seed))


def test_seeds_give_different_runs_and_the_aggregates_match_them(sweep):
    _, out, summary = sweep
    runs = {(n["name"], n["seed"]): n["results"] for n in summary["notebooks"]}
    r0, r1 = runs[("00_invariant_vae_basics", 0)], runs[("00_invariant_vae_basics", 1)]
    assert r0["angle_circular_r"] != r1["angle_circular_r"]  # the seed reached the notebook
    agg = summary["aggregates"]["00_invariant_vae_basics"]["angle_circular_r"]
    values = [r0["angle_circular_r"], r1["angle_circular_r"]]
    assert agg["n"] == 2 and agg["min"] == min(values) and agg["max"] == max(values)
    assert agg["mean"] == pytest.approx(sum(values) / 2)
    assert agg["sd"] == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)
    md = (out / "SUMMARY.md").read_text()
    assert "Results across seeds" in md and "±" in md


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_sweep_on_a_running_scheduler(tmp_path):
    """`--cluster tcp://HOST:PORT`: a scheduler and a worker started as a user would (`dask
    scheduler`, `dask worker`) on 127.0.0.1 run the tasks; the summary comes back."""
    import time

    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    params = nbformat.v4.new_code_cell('SMOKE = False\nSEED = 0\nDATA_SOURCE = "simulated"\n'
                                       'RESULTS_PATH = ""\nDEVICE = "cpu"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import os\nfrom helpers.run import save_results\n"
        "save_results({'seed_squared': SEED ** 2, 'pid': os.getpid()}, RESULTS_PATH)")]
    nbformat.write(nb, tmp_path / "01_tiny.ipynb")
    port = _free_port()
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    scheduler = subprocess.Popen(dask + ["--host", "127.0.0.1", "--port", str(port),
                                         "--dashboard-address", "127.0.0.1:0"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", f"tcp://127.0.0.1:{port}",
         "--nthreads", "1", "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        time.sleep(3)
        out = tmp_path / "out"
        proc = subprocess.run(
            [sys.executable, "-m", "helpers.run", str(tmp_path / "01_tiny.ipynb"),
             "--seeds", "0-2", "--cluster", f"tcp://127.0.0.1:{port}", "--out", str(out)],
            cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ))
        assert proc.returncode == 0, proc.stderr[-2000:]
        summary = json.loads((out / "summary.json").read_text())
        assert sorted(n["results"]["seed_squared"] for n in summary["notebooks"]) == [0, 1, 4]
        assert summary["aggregates"]["01_tiny"]["seed_squared"]["n"] == 3
    finally:
        for p in (worker, scheduler):
            p.terminate()
            p.wait(timeout=30)
