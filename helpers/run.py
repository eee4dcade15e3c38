"""Run the suite's notebooks with papermill and summarise their results.

Command line (the main job behind ``make notebooks``)::

    python -m helpers.run                      # every notebook, default scale, into runs/latest/
    python -m helpers.run 01 05 --smoke        # named notebooks (stem or number), CI scale
    python -m helpers.run --jobs 2             # two notebooks at a time
    python -m helpers.run --smoke --compare tests/baselines/smoke.json
    python -m helpers.run --smoke --update-baseline tests/baselines/smoke.json

Each notebook is executed into ``OUT/NAME.ipynb`` with the parameters ``SMOKE``, ``SEED``,
``DATA_SOURCE``, ``DEVICE`` and ``RESULTS_PATH=OUT/NAME.results.json``; the notebook writes its
key numbers there with :func:`save_results`. ``OUT/summary.json`` and ``OUT/SUMMARY.md`` list
each notebook's status, wall time and results. A failing notebook is reported with its failing
cell and does not stop the others; the exit code is 0 only when every notebook passed (and,
with ``--compare``, no metric moved beyond its tolerance).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ._io import atomic_path

__all__ = [
    "save_results",
    "NotebookRun",
    "Drift",
    "find_notebooks",
    "run_notebook",
    "run_notebooks",
    "write_summary",
    "compare_to_baseline",
    "update_baseline",
    "main",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
DEFAULT_OUT = Path("runs/latest")


# -- what a notebook writes ----------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """Convert numpy scalars/arrays and paths to plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy, torch
        return _plain(value.tolist())
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(
        f"results must hold numbers, strings, booleans, lists or dicts; got {type(value).__name__}"
    )


def save_results(results: dict, path: str | os.PathLike) -> Path:
    """Write a notebook's key numbers to ``path`` as JSON, atomically.

    ``results`` maps metric names to numbers (numpy scalars are converted), strings, booleans,
    or small lists/dicts of those. An empty ``path`` writes nothing. Returns the path written.
    """
    if not isinstance(results, dict):
        raise ValueError(f"results must be a dict of metric name -> value, got {type(results)}")
    if not path:
        return Path()
    path = Path(path)
    text = json.dumps(_plain(results), indent=2, sort_keys=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
    return path


# -- running ---------------------------------------------------------------------------------------
@dataclass
class NotebookRun:
    """The outcome of executing one notebook."""

    name: str
    status: str  # "ok" | "failed"
    wall_s: float
    results: dict = field(default_factory=dict)
    output: str = ""
    error: str | None = None
    failed_cell: int | None = None  # position in the source notebook, counting from 1
    failed_source: str | None = None  # first line of the failing cell


def find_notebooks(names: list[str] | None = None, notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """The notebooks to run, in order: all of ``notebook_dir``, or those matching ``names``.

    A name matches a notebook by exact stem (``01_graphene_si_dynamics``), by prefix (``01``),
    or as a path to an ``.ipynb`` file. An unknown name raises ``ValueError`` listing the choices.
    """
    notebook_dir = Path(notebook_dir)
    available = sorted(notebook_dir.glob("[0-9]*.ipynb"))
    if not names:
        return available
    chosen: list[Path] = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.is_file():
            matches = [path]
        else:
            matches = [p for p in available if p.stem == name or p.stem.startswith(name)]
        if not matches:
            options = ", ".join(p.stem for p in available) or "(none)"
            raise ValueError(f"no notebook matches {name!r}; available: {options}")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def run_notebook(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    smoke: bool = False,
    seed: int = 0,
    device: str = "cpu",
    data_source: str = "simulated",
    extra_parameters: dict | None = None,
    cell_timeout: int | None = None,
    threads: int | None = None,
) -> NotebookRun:
    """Execute one notebook with papermill and collect its results JSON.

    Never raises for a failing notebook: the failure (exception name, message and failing cell
    index) is returned in the :class:`NotebookRun`.
    """
    import papermill as pm

    if threads:  # inherited by the kernel process started below
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(threads)
    os.environ.pop("MPLBACKEND", None)  # keep the kernel's inline backend: figures are saved
    path = Path(path).resolve()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    name = path.stem
    results_path = out_dir / f"{name}.results.json"
    if results_path.exists():
        results_path.unlink()
    output = out_dir / f"{name}.ipynb"
    parameters = {
        "SMOKE": bool(smoke),
        "SEED": int(seed),
        "DATA_SOURCE": data_source,
        "RESULTS_PATH": str(results_path),
        "DEVICE": device,
        **(extra_parameters or {}),
    }
    start = time.perf_counter()
    error = None
    failed_cell = failed_source = None
    try:
        pm.execute_notebook(
            str(path),
            str(output),
            parameters=parameters,
            cwd=str(path.parent),
            progress_bar=False,
            execution_timeout=cell_timeout,
            kernel_name="python3",
        )
    except pm.PapermillExecutionError as exc:
        failed_cell = _source_position(output, int(exc.cell_index))
        failed_source = (exc.source or "").strip().splitlines()[0][:120] if exc.source else None
        error = f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # kernel died, timeout, bad notebook file...
        error = f"{type(exc).__name__}: {exc}"
    wall = time.perf_counter() - start
    results: dict = {}
    if error is None:
        if results_path.is_file():
            results = json.loads(results_path.read_text())
        else:
            error = f"the notebook finished but wrote no results to RESULTS_PATH ({results_path})"
    return NotebookRun(
        name=name,
        status="ok" if error is None else "failed",
        wall_s=round(wall, 2),
        results=results,
        output=str(output),
        error=error,
        failed_cell=failed_cell,
        failed_source=failed_source,
    )


def _source_position(executed: Path, index: int) -> int:
    """Map a cell index of the executed notebook (which has papermill's injected parameters
    cell) to the cell's position in the source notebook, counting from 1."""
    import nbformat

    try:
        cells = nbformat.read(executed, as_version=4).cells
    except Exception:
        return index + 1
    injected = [i for i, c in enumerate(cells)
                if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    return index + (0 if injected and injected[0] < index else 1)


def _progress_line(i: int, n: int, run: NotebookRun) -> str:
    line = f"[{i}/{n}] {run.name:<34} {run.status:<6} {run.wall_s:8.1f} s"
    if run.error:
        where = f"cell {run.failed_cell}: " if run.failed_cell is not None else ""
        line += f"  {where}{run.error.splitlines()[0][:200]}"
        if run.failed_source:
            line += f"\n      in: {run.failed_source}"
    return line


def run_notebooks(
    paths: list[Path],
    out_dir: str | os.PathLike = DEFAULT_OUT,
    jobs: int = 1,
    log=print,
    **kwargs: Any,
) -> list[NotebookRun]:
    """Run ``paths`` (``jobs`` at a time, each in its own process and kernel), printing a
    progress line per finished notebook. Returns the runs in the order of ``paths``."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    n = len(paths)
    if kwargs.get("smoke"):
        # Smoke runs are regression checks: torch's results depend on its thread count, so
        # every kernel gets one thread, whatever the machine and --jobs.
        kwargs.setdefault("threads", 1)
    log(f"running {n} notebook(s) into {out_dir} ({jobs} at a time)")
    if jobs == 1 or n <= 1:
        runs = []
        for i, path in enumerate(paths, 1):
            log(f"[{i}/{n}] {path.stem} ...")
            runs.append(run_notebook(path, out_dir, **kwargs))
            log(_progress_line(i, n, runs[-1]))
        return runs
    kwargs.setdefault("threads", max(1, (os.cpu_count() or 1) // jobs))  # no oversubscription
    by_path: dict[Path, NotebookRun] = {}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run_notebook, p, out_dir, **kwargs): p for p in paths}
        for i, future in enumerate(as_completed(futures), 1):
            by_path[futures[future]] = future.result()
            log(_progress_line(i, n, by_path[futures[future]]))
    return [by_path[p] for p in paths]


# -- summaries ---------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        text = json.dumps(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return str(value)


def write_summary(runs: list[NotebookRun], out_dir: str | os.PathLike, scale: str) -> Path:
    """Write ``summary.json`` and ``SUMMARY.md`` into ``out_dir``; return the JSON path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "scale": scale,
        "all_ok": all(r.status == "ok" for r in runs),
        "notebooks": [asdict(r) for r in runs],
    }
    json_path = out_dir / "summary.json"
    save_results(summary, json_path)
    lines = [f"# Notebook run ({scale} scale)", ""]
    lines += ["| notebook | status | wall (s) |", "|---|---|---|"]
    lines += [f"| {r.name} | {r.status} | {r.wall_s:.1f} |" for r in runs]
    for r in runs:
        lines += ["", f"## {r.name}: {r.status}"]
        if r.error:
            where = f" in cell {r.failed_cell}" if r.failed_cell is not None else ""
            lines += ["", f"Failed{where}: `{r.error.splitlines()[0][:300]}`"]
            if r.failed_source:
                lines += ["", f"Failing cell starts with: `{r.failed_source}`"]
            lines += ["", f"Executed notebook (with outputs and traceback): `{r.output}`"]
        if r.results:
            lines += ["", "| result | value |", "|---|---|"]
            lines += [f"| {k} | {_fmt(v)} |" for k, v in sorted(r.results.items())]
    (out_dir / "SUMMARY.md").write_text("\n".join(lines) + "\n")
    return json_path


# -- regression against a baseline -------------------------------------------------------------
@dataclass
class Drift:
    """A metric that moved beyond its tolerance (or vanished) relative to the baseline."""

    notebook: str
    metric: str
    old: Any
    new: Any
    tolerance: float | None

    def __str__(self) -> str:
        return (f"{self.notebook}.{self.metric}: baseline {_fmt(self.old)}, now {_fmt(self.new)}"
                f" (tolerance {self.tolerance})")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _moved(old: Any, new: Any, tolerance: float | None) -> bool:
    if _is_number(old) and _is_number(new):
        if not (math.isfinite(old) and math.isfinite(new)):
            return not (old == new or (math.isnan(old) and math.isnan(new)))
        return abs(new - old) > (tolerance or 0.0)
    return old != new


def compare_to_baseline(runs: list[NotebookRun], baseline: dict) -> list[Drift]:
    """Every metric of the baseline that moved beyond its tolerance in ``runs``.

    The baseline maps notebook -> metric -> ``{"value": v, "tolerance": t}``; a tolerance of
    ``null`` means the metric is recorded but not compared (wall times, for example).
    Notebooks of the baseline that were not run are skipped.
    """
    drifts = []
    for run in runs:
        expected = baseline.get("notebooks", {}).get(run.name)
        if expected is None:
            continue
        for metric, spec in sorted(expected.items()):
            tol = spec.get("tolerance")
            if tol is None and "tolerance" in spec and _is_number(spec.get("value")):
                continue
            new = run.results.get(metric, "<missing>")
            if _moved(spec.get("value"), new, tol):
                drifts.append(Drift(run.name, metric, spec.get("value"), new, tol))
    return drifts


def default_tolerance(metric: str, value: Any) -> float | None:
    """Tolerance given to a new baseline metric: None (not compared) for timings, a relative
    10 % with an absolute floor of 0.05 for numbers, 0 (exact) for strings and booleans."""
    if metric.endswith("_s") or any(word in metric for word in ("time", "second", "speed")):
        return None
    if _is_number(value):
        return round(max(0.1 * abs(value), 0.05), 6)
    return 0.0


def update_baseline(runs: list[NotebookRun], path: str | os.PathLike) -> Path:
    """Rewrite the baseline at ``path`` from ``runs``, keeping hand-set tolerances."""
    path = Path(path)
    baseline = json.loads(path.read_text()) if path.is_file() else {}
    notebooks = baseline.setdefault("notebooks", {})
    baseline.setdefault(
        "about",
        "Smoke-scale results of each notebook with a tolerance per metric; written by "
        "`python -m helpers.run --smoke --update-baseline FILE`. Edit tolerances by hand.",
    )
    for run in runs:
        if run.status != "ok":
            continue
        old = notebooks.get(run.name, {})
        notebooks[run.name] = {
            metric: {
                "value": value,
                "tolerance": old[metric]["tolerance"] if metric in old
                else default_tolerance(metric, value),
            }
            for metric, value in sorted(run.results.items())
            if _is_number(value) or isinstance(value, (bool, str))
        }
    return save_results(baseline, path)


# -- command line --------------------------------------------------------------------------------
def _parse_param(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--param takes KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.run", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("names", nargs="*", help="notebooks to run (stem or number prefix)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (runs/latest)")
    parser.add_argument("--smoke", action="store_true", help="CI scale: pass SMOKE=True")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run in parallel")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="DEVICE parameter (cpu, auto, cuda)")
    parser.add_argument("--param", action="append", type=_parse_param, default=[],
                        metavar="KEY=VALUE", help="extra notebook parameter (JSON value)")
    parser.add_argument("--cell-timeout", type=int, default=None, help="seconds per cell")
    parser.add_argument("--compare", metavar="FILE", help="fail on metrics beyond tolerance")
    parser.add_argument("--update-baseline", metavar="FILE", help="rewrite this baseline")
    args = parser.parse_args(argv)

    try:
        paths = find_notebooks(args.names)
    except ValueError as exc:
        parser.error(str(exc))
    if not paths:
        print(f"no notebooks found in {NOTEBOOK_DIR}")
        return 1
    scale = "smoke" if args.smoke else "default"
    runs = run_notebooks(
        paths, args.out, jobs=args.jobs, smoke=args.smoke, seed=args.seed, device=args.device,
        extra_parameters=dict(args.param), cell_timeout=args.cell_timeout,
    )
    summary = write_summary(runs, args.out, scale)
    n_ok = sum(r.status == "ok" for r in runs)
    print(f"{n_ok}/{len(runs)} notebooks ok; summary: {summary.parent / 'SUMMARY.md'}")
    code = 0 if n_ok == len(runs) else 1
    if args.compare:
        baseline = json.loads(Path(args.compare).read_text())
        drifts = compare_to_baseline(runs, baseline)
        missing = [r.name for r in runs if r.name not in baseline.get("notebooks", {})]
        for name in missing:
            print(f"note: {name} has no entry in {args.compare} (run --update-baseline)")
        if drifts:
            print(f"{len(drifts)} metric(s) moved beyond tolerance vs {args.compare}:")
            for d in drifts:
                print(f"  {d}")
            code = 1
        else:
            print(f"all compared metrics within tolerance of {args.compare}")
    if args.update_baseline:
        print(f"baseline written: {update_baseline(runs, args.update_baseline)}")
    return code


if __name__ == "__main__":
    sys.exit(main())
