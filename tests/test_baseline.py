"""The smoke baseline: tolerances from measured spread, validation before anything runs,
and the comparison of a run against it."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import run
from helpers.run.baseline import RULE, metric_entry

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "tests" / "baselines" / "smoke.json"


def ok(name, results, seed=0):
    return run.NotebookRun(name, "ok", 1.0, results, seed=seed)


def test_tolerance_follows_the_measured_spread():
    xs = [0.90, 0.92, 0.91, 0.93, 0.89, 0.90]
    entry = metric_entry("angle_r", xs)
    mean = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
    assert entry["check"] == "compare" and entry["value"] == pytest.approx(mean)
    assert entry["tolerance"] == pytest.approx(max(4 * sd, 1.5 * max(abs(x - mean) for x in xs)),
                                               rel=1e-5)
    assert entry["spread"] == {"n": 6, "sd": pytest.approx(sd), "min": 0.89, "max": 0.93}
    # a metric that never moved still gets a float-noise floor, relative to its size
    assert metric_entry("n_images", [1200] * 10)["tolerance"] == pytest.approx(1.2)
    assert metric_entry("kl", [0.25] * 10)["tolerance"] == pytest.approx(1e-3)


def test_chaotic_metrics_are_only_checked_finite():
    # a correlation that wanders over half of its [-1, 1] scale across seeds
    assert metric_entry("vae_order_r", [0.1, 0.6, 0.35, 0.2])["check"] == "finite"
    # an unbounded metric whose range is comparable to its size
    assert metric_entry("trend", [-0.12, -0.02, -0.10])["check"] == "finite"
    # but a correlation steady near zero is compared
    assert metric_entry("leak_r", [0.01, -0.01, 0.0, 0.02])["check"] == "compare"


def test_strings_booleans_and_timings():
    assert metric_entry("source", ["simulated"] * 3)["check"] == "exact"
    assert metric_entry("agrees", [True, True])["check"] == "exact"
    unstable = metric_entry("agrees", [True, False, True])
    assert (unstable["check"], unstable["tolerance"]) == ("record", None)
    assert metric_entry("fit_s", [1.0, 9.0])["check"] == "record"
    assert metric_entry("runtime_s", [3.0, 3.0])["tolerance"] is None


def test_build_baseline_pools_seeds_and_refuses_failed_runs():
    runs = [ok("nb", {"r": 0.5 + 0.01 * s, "extra": 1.0} if s else {"r": 0.5}, seed=s)
            for s in range(5)]
    baseline = run.build_baseline(runs, {"seeds": [0, 1, 2, 3, 4]})
    assert baseline["made"]["rule"] == RULE and baseline["made"]["runs"] == 5
    entry = baseline["notebooks"]["nb"]["r"]
    assert entry["spread"]["n"] == 5 and entry["value"] == pytest.approx(0.52)
    assert baseline["notebooks"]["nb"]["extra"]["check"] == "record"  # not in every run
    with pytest.raises(run.BaselineError, match="from failed runs"):
        run.build_baseline(runs + [run.NotebookRun("nb", "failed", 1.0, error="boom")], {})


def test_compare_by_check_kind():
    baseline = {"notebooks": {"nb": {
        "r": {"value": 0.90, "tolerance": 0.1, "check": "compare"},       # within
        "n": {"value": 5, "tolerance": 1, "check": "compare"},            # moved
        "chaos": {"value": 0.3, "tolerance": None, "check": "finite"},    # finite: fine
        "gone_finite": {"value": 0.3, "tolerance": None, "check": "finite"},  # missing
        "flag": {"value": False, "tolerance": 0, "check": "exact"},       # changed
        "gone": {"value": 1.0, "tolerance": 0.5, "check": "compare"},     # missing now
        "wall_s": {"value": 1.0, "tolerance": None, "check": "record"},   # not compared
        "old_style": {"value": 1.0, "tolerance": None},                   # recorded only
    }}}
    runs = [ok("nb", {"r": 0.95, "n": 3, "chaos": -0.7, "flag": True, "wall_s": 9.0,
                      "old_style": 7.0})]
    drifts = {d.metric: d for d in run.compare_to_baseline(runs, baseline)}
    assert sorted(drifts) == ["flag", "gone", "gone_finite", "n"]
    assert "baseline 5, now 3 (tolerance 1)" in str(drifts["n"])
    assert "must be a finite number, now <missing>" in str(drifts["gone_finite"])
    nan_run = [ok("nb", {**runs[0].results, "r": float("nan"), "chaos": float("inf")})]
    moved = {d.metric for d in run.compare_to_baseline(nan_run, baseline)}
    assert {"r", "chaos"} <= moved


BAD_BASELINES = {
    "missing": (None, "cannot read it"),
    "not_json": ("{notebooks: ", "not valid JSON"),
    "nan": ('{"notebooks": {"00_invariant_vae_basics": {"r": {"value": 1, "tolerance": NaN}}}}',
            "not valid JSON"),
    "negative": ('{"notebooks": {"00_invariant_vae_basics": {"r": {"value": 1, '
                 '"tolerance": -0.1}}}}', "tolerance must be a number >= 0"),
    "unknown_notebook": ('{"notebooks": {"99_nothing": {}}}', "unknown notebook(s) 99_nothing"),
    "no_notebooks": ('{"about": "x"}', 'expected an object with a "notebooks" object'),
    "bad_entry": ('{"notebooks": {"00_invariant_vae_basics": {"r": 0.5}}}', 'expected {"value"'),
    "bad_check": ('{"notebooks": {"00_invariant_vae_basics": {"r": {"value": 1, '
                  '"tolerance": 0, "check": "roughly"}}}}', "check must be one of"),
}


@pytest.mark.parametrize("case", sorted(BAD_BASELINES))
def test_a_bad_baseline_fails_fast_with_exit_2_before_anything_runs(tmp_path, case):
    text, message = BAD_BASELINES[case]
    path = tmp_path / "baseline.json"
    if text is not None:
        path.write_text(text)
    out = tmp_path / "out"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "helpers.run", "--smoke", "--out", str(out),
                           "--compare", str(path)], cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 2, proc.stderr
    assert str(path) in proc.stderr and message in proc.stderr, proc.stderr
    assert not out.exists(), "nothing may run before the baseline is validated"
    print(f"{case}: exit 2 after {elapsed:.2f} s")


def test_the_committed_baseline_is_valid_and_made_from_measured_spread():
    known = [p.stem for p in run.find_notebooks()]
    baseline = run.validate_baseline(str(BASELINE), known)
    made = baseline["made"]
    assert len(made["seeds"]) >= 5 and len(made["cpu_kernels"]) >= 2, made
    assert made["rule"] == RULE
    assert sorted(baseline["notebooks"]) == known
    for name, metrics in baseline["notebooks"].items():
        for metric, entry in metrics.items():
            if entry["check"] == "compare":
                assert entry["spread"]["n"] >= 10, (name, metric)
                assert entry["tolerance"] >= 4 * entry["spread"]["sd"] - 1e-9, (name, metric)
    json.dumps(baseline, allow_nan=False)


def test_a_partial_update_keeps_the_other_notebooks(tmp_path):
    path = tmp_path / "b.json"
    first = [ok("a", {"r": 0.5 + 0.01 * s}, seed=s) for s in range(3)]
    first += [ok("b", {"r": 0.2 + 0.01 * s}, seed=s) for s in range(3)]
    run.update_baseline(first, str(path), {"command": "all", "seeds": [0, 1, 2]})
    again = [ok("b", {"r": 0.7 + 0.02 * s}, seed=s) for s in range(3)]
    run.update_baseline(again, str(path), {"command": "only b"}, keep_others=True)
    baseline = json.loads(path.read_text())
    assert baseline["notebooks"]["a"]["r"]["value"] == pytest.approx(0.51)  # kept
    assert baseline["notebooks"]["b"]["r"]["value"] == pytest.approx(0.72)  # rebuilt
    assert baseline["made"]["command"] == "all" and baseline["made"]["seeds"] == [0, 1, 2]
    assert baseline["made"]["updates"] == [{"notebooks": ["b"], "command": "only b"}]
