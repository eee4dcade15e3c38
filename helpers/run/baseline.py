"""The smoke baseline: values and tolerances measured from the spread of repeated runs.

``make baseline`` runs every notebook at smoke scale over several seeds and CPU-kernel
settings and keeps, for each metric, its mean, the spread it showed and a tolerance derived
from that spread (:data:`RULE`). ``make test`` then runs each notebook once (seed 0) and
fails when a metric leaves its tolerance. So the tolerance is as wide as the numbers really
move when nothing but the seed and the processor's float rounding changes, and no wider.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .execute import NotebookRun
from .results import plain, write_json
from .summary import fmt, is_number

__all__ = [
    "RULE",
    "CHECKS",
    "BaselineError",
    "Drift",
    "metric_entry",
    "build_baseline",
    "update_baseline",
    "validate_baseline",
    "compare_to_baseline",
]

SD_FACTOR = 4.0  # tolerance >= this many sample standard deviations
DEVIATION_FACTOR = 1.5  # ... and >= this times the largest deviation from the mean seen
RELATIVE_FLOOR = 1e-3  # ... and >= this times max(1, |mean|) (float noise on steady metrics)
CHAOTIC_FRACTION = 0.5  # range over runs >= this fraction of the metric's scale: finite only
BOUNDED_SUFFIXES = ("_r", "_accuracy", "_auc", "_f1")  # metrics on a [-1, 1] or [0, 1] scale

RULE = (
    f"value = mean over all runs; tolerance = max({SD_FACTOR:g} * sd, "
    f"{DEVIATION_FACTOR:g} * max|run - mean|, {RELATIVE_FLOOR:g} * max(1, |mean|)). "
    f"A metric whose range over the runs is at least {CHAOTIC_FRACTION:g} of its scale "
    "(1 for correlations, accuracies, AUCs, F1 and coverages; else the largest |value| seen) "
    "is chaotic at smoke scale and only checked to be finite. Booleans and strings must match "
    "exactly when every run agreed, and are only recorded when runs disagreed. Timings are "
    "recorded, not compared."
)
CHECKS = ("compare", "finite", "exact", "record")


class BaselineError(ValueError):
    """A baseline file that cannot be used: missing, unreadable or malformed."""


@dataclass
class Drift:
    """A metric that moved beyond its tolerance (or vanished, or stopped being finite)."""

    notebook: str
    metric: str
    old: Any
    new: Any
    tolerance: float | None

    def __str__(self) -> str:
        if self.tolerance is None:
            return (f"{self.notebook}.{self.metric}: must be a finite number, "
                    f"now {fmt(self.new)}")
        return (f"{self.notebook}.{self.metric}: baseline {fmt(self.old)}, now {fmt(self.new)}"
                f" (tolerance {self.tolerance})")


def _is_timing(metric: str) -> bool:
    return metric.endswith("_s") or any(w in metric for w in ("time", "second", "speed"))


def _scale(metric: str, xs: list[float]) -> float:
    if metric.endswith(BOUNDED_SUFFIXES) or metric.startswith("coverage"):
        return 1.0
    return max(abs(x) for x in xs)


def metric_entry(metric: str, values: list[Any]) -> dict:
    """The baseline entry of one metric from its values over the runs (see :data:`RULE`)."""
    if all(is_number(v) for v in values):
        xs = [float(v) for v in values]
        mean = statistics.fmean(xs)
        sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
        spread = {"n": len(xs), "sd": sd, "min": min(xs), "max": max(xs)}
        if _is_timing(metric):
            return {"value": mean, "tolerance": None, "check": "record", "spread": spread}
        if spread["max"] - spread["min"] >= CHAOTIC_FRACTION * _scale(metric, xs) > 0:
            return {"value": mean, "tolerance": None, "check": "finite", "spread": spread}
        deviation = max(abs(x - mean) for x in xs)
        tolerance = max(SD_FACTOR * sd, DEVIATION_FACTOR * deviation,
                        RELATIVE_FLOOR * max(1.0, abs(mean)))
        return {"value": mean, "tolerance": tolerance, "check": "compare", "spread": spread}
    agreed = all(v == values[0] for v in values)
    return {"value": values[0], "tolerance": 0.0 if agreed else None,
            "check": "exact" if agreed else "record", "spread": {"n": len(values)}}


def build_baseline(runs: list[NotebookRun], made: dict) -> dict:
    """A baseline from repeated runs (seeds x kernel settings) of the same notebooks.

    Every run must have passed: a baseline made from a partial set would be too narrow.
    A metric missing from some runs is only recorded."""
    failed = [f"{r.name} (seed {r.seed}, {r.kernels}): {r.error}" for r in runs
              if r.status != "ok"]
    if failed:
        raise BaselineError("not writing a baseline from failed runs:\n  " + "\n  ".join(failed))
    by_notebook: dict[str, list[NotebookRun]] = {}
    for run in runs:
        by_notebook.setdefault(run.name, []).append(run)
    notebooks = {}
    for name, group in sorted(by_notebook.items()):
        metrics = sorted({m for r in group for m, v in r.results.items()
                          if is_number(v) or isinstance(v, (bool, str))})
        entries = {}
        for metric in metrics:
            values = [r.results[metric] for r in group if metric in r.results]
            entry = metric_entry(metric, values)
            if len(values) < len(group):
                entry.update(check="record", tolerance=None)
            entries[metric] = entry
        notebooks[name] = entries
    return {
        "about": "Smoke-scale results of each notebook over several seeds and CPU-kernel "
                 "settings, with tolerances derived from the measured spread. Written by "
                 "`make baseline`; do not edit by hand, rerun it and review the diff.",
        "made": {**made, "rule": RULE, "runs": len(runs)},
        "notebooks": notebooks,
    }


def update_baseline(runs: list[NotebookRun], path: str, made: dict | None = None,
                    keep_others: bool = False) -> Path:
    """Write the baseline built from ``runs`` to ``path`` (atomically); return the path.

    With ``keep_others``, the notebooks of an existing baseline at ``path`` that ``runs`` do
    not cover keep their entries, and ``made["updates"]`` records which notebooks this update
    rebuilt (``make baseline NB="01 05"`` after a change to those notebooks alone)."""
    baseline = build_baseline(runs, made or {})
    if keep_others and Path(path).is_file():
        old = json.loads(Path(path).read_text())
        rebuilt = sorted(baseline["notebooks"])
        kept = {k: v for k, v in old.get("notebooks", {}).items() if k not in rebuilt}
        update = {"notebooks": rebuilt, **{k: baseline["made"][k] for k in ("command", "date")
                                           if k in baseline["made"]}}
        baseline["made"] = {**old.get("made", {}),
                            "updates": old.get("made", {}).get("updates", []) + [update]}
        baseline["notebooks"] = dict(sorted({**kept, **baseline["notebooks"]}.items()))
    return write_json(plain(baseline), path)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def validate_baseline(path: str, known_notebooks: list[str]) -> dict:
    """Read and check a baseline file before anything runs; return it.

    Raises :class:`BaselineError` naming the file and the problem: missing or unreadable,
    not JSON (NaN included), not of the form ``{"notebooks": {NAME: {METRIC: {"value": ...,
    "tolerance": ...}}}}``, a tolerance that is negative or not a finite number, an unknown
    ``check``, or a notebook that does not exist."""
    where = f"baseline {path}"
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise BaselineError(f"{where}: cannot read it ({exc.strerror or exc}); make one with "
                            "`make baseline`") from None
    try:
        baseline = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise BaselineError(f"{where}: not valid JSON ({exc})") from None
    notebooks = baseline.get("notebooks") if isinstance(baseline, dict) else None
    if not isinstance(notebooks, dict):
        raise BaselineError(f'{where}: expected an object with a "notebooks" object')
    unknown = sorted(set(notebooks) - set(known_notebooks))
    if unknown:
        raise BaselineError(f"{where}: unknown notebook(s) {', '.join(unknown)} (known: "
                            f"{', '.join(known_notebooks)}); rerun `make baseline`")
    for name, metrics in notebooks.items():
        if not isinstance(metrics, dict):
            raise BaselineError(f"{where}: {name} must map metric names to entries")
        for metric, spec in metrics.items():
            label = f"{where}: {name}.{metric}"
            if not isinstance(spec, dict) or "value" not in spec:
                raise BaselineError(f'{label}: expected {{"value": ..., "tolerance": ...}}')
            tol = spec.get("tolerance")
            if tol is not None and (not is_number(tol) or not math.isfinite(tol) or tol < 0):
                raise BaselineError(f"{label}: tolerance must be a number >= 0 or null, "
                                    f"got {tol!r}")
            if spec.get("check", "compare") not in CHECKS:
                raise BaselineError(f"{label}: check must be one of {CHECKS}, "
                                    f"got {spec.get('check')!r}")
    return baseline


def _check_of(spec: dict) -> str:
    if "check" in spec:
        return spec["check"]
    if spec.get("tolerance") is None:  # older baselines: null tolerance = recorded only
        return "record"
    return "compare" if is_number(spec.get("value")) else "exact"


def _finite_number(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)


def compare_to_baseline(runs: list[NotebookRun], baseline: dict) -> list[Drift]:
    """Every metric of the baseline that moved beyond its tolerance in ``runs``.

    ``compare`` metrics must be finite and within ``tolerance`` of ``value``; ``finite`` ones
    finite numbers; ``exact`` ones equal; ``record`` ones are not compared. A metric the run
    no longer reports counts as moved. Notebooks of the baseline that were not run, and runs
    that failed (reported as failures elsewhere), are skipped."""
    drifts = []
    for run in runs:
        expected = baseline.get("notebooks", {}).get(run.name)
        if expected is None or run.status != "ok":
            continue
        for metric, spec in sorted(expected.items()):
            check = _check_of(spec)
            if check == "record":
                continue
            new = run.results.get(metric, "<missing>")
            old, tol = spec.get("value"), spec.get("tolerance")
            if check == "finite":
                moved = not _finite_number(new)
                tol = None
            elif check == "exact":
                moved = new != old
            else:
                moved = not _finite_number(new) or abs(new - old) > (tol or 0.0)
            if moved:
                drifts.append(Drift(run.name, metric, old, new, tol))
    return drifts
