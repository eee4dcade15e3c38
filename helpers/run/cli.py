"""Run the suite's notebooks with papermill and summarise their results.

Command line (the main job behind ``make notebooks``, ``make test`` and ``make baseline``)::

    python -m helpers.run                      # every notebook, default scale, into runs/latest/
    python -m helpers.run 01 05 --smoke        # named notebooks (stem or number), CI scale
    python -m helpers.run --jobs 2             # two notebooks at a time (Dask local cluster)
    python -m helpers.run --seeds 0-2 --jobs 2 # a seed sweep: OUT/seed-N/, mean ± sd over seeds
    python -m helpers.run --seeds 0-4 --cluster tcp://HOST:8786   # on a running Dask scheduler
    python -m helpers.run --smoke --compare tests/baselines/smoke.json
    python -m helpers.run --smoke --seeds 0-4 --cpu-kernels default,native \\
        --update-baseline tests/baselines/smoke.json

Each notebook is executed into ``OUT/NAME.ipynb`` with the parameters ``SMOKE``, ``SEED``,
``DATA_SOURCE``, ``DEVICE`` and ``RESULTS_PATH=OUT/NAME.results.json``; the notebook writes its
key numbers there with ``save_results``. ``OUT/summary.json`` and ``OUT/SUMMARY.md`` list each
run's status, wall time and results (and, over several seeds, n, mean, sd, min and max of each
metric). A failing notebook is reported with its failing cell and does not stop the others.
Exit codes: 0 when every notebook passed (and, with ``--compare``, no metric left its
tolerance), 1 otherwise, 2 for bad arguments or a bad baseline file (before anything runs),
130 after Ctrl-C or SIGTERM (the summary then says ``interrupted``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from .baseline import BaselineError, compare_to_baseline, update_baseline, validate_baseline
from .execute import NOTEBOOK_DIR, NotebookRun, check_parameters, find_notebooks
from .kernels import SETTINGS, cpu_capability, kernel_environment
from .schedule import Task, run_tasks
from .summary import mark_running, write_summary

__all__ = ["DEFAULT_OUT", "main", "run_notebooks", "build_tasks", "parse_seeds"]

DEFAULT_OUT = Path("runs/latest")


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,2,7"`` -> [0, 2, 7]; ranges and lists combine."""
    seeds: list[int] = []
    try:
        for part in str(text).split(","):
            lo, _, hi = part.strip().partition("-")
            first, last = int(lo), int(hi) if hi else int(lo)
            if first < 0 or last < first:
                raise ValueError
            seeds += [s for s in range(first, last + 1) if s not in seeds]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"seeds take non-negative integers as 'A-B' or 'A,B,C', got {text!r}") from None
    return seeds


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def _parse_param(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--param takes KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def _task_environment(setting: str | None, threads: int) -> dict[str, str]:
    """Threads for the task's kernel and the variables of its CPU-kernel setting. The
    ``pinned`` setting never overrides a kernel variable the user exported."""
    env = {var: str(threads) for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                         "OPENBLAS_NUM_THREADS")}
    if setting is None:
        return env
    kernels = kernel_environment(setting)
    if setting == "pinned":
        kernels = {k: v for k, v in kernels.items() if k not in os.environ}
    return {**env, **kernels}


def build_tasks(paths: list[Path], out_dir: str | os.PathLike, seeds: list[int],
                settings: list[str | None], smoke: bool, threads: int,
                **options: Any) -> list[Task]:
    """One task per (kernel setting, seed, notebook); folders ``OUT[/kernels-K][/seed-N]``."""
    out_dir = Path(out_dir).resolve()
    tasks = []
    for setting in settings:
        base = out_dir / f"kernels-{setting}" if len(settings) > 1 else out_dir
        for seed in seeds:
            folder = base / f"seed-{seed}" if len(seeds) > 1 else base
            tasks += [Task(notebook=str(Path(p).resolve()), out_dir=str(folder), seed=seed,
                           smoke=smoke, environment=_task_environment(setting, threads),
                           label=setting or "", **options) for p in paths]
    return tasks


def run_notebooks(paths: list[Path], out_dir: str | os.PathLike = DEFAULT_OUT, jobs: int = 1,
                  log=print, smoke: bool = False, seed: int = 0, threads: int | None = None,
                  **options: Any) -> list[NotebookRun]:
    """Run ``paths`` once each (``jobs`` at a time, each notebook in its own process and
    kernel); returns the runs in the order of ``paths``. Smoke runs get one thread per kernel
    (torch's results depend on its thread count) and the pinned CPU kernels."""
    threads = threads or (1 if smoke else max(1, (os.cpu_count() or 1) // jobs))
    tasks = build_tasks(paths, out_dir, [seed], ["pinned" if smoke else None], smoke, threads,
                        **options)
    log(f"running {len(tasks)} notebook(s) into {out_dir} ({jobs} at a time)")
    return run_tasks(tasks, jobs=jobs, log=lambda r, i, n: log(_progress_line(i, n, r))).runs


def _progress_line(i: int, n: int, run: NotebookRun) -> str:
    seed = f" seed {run.seed}" if run.seed else ""
    line = f"[{i}/{n}] {run.name:<34}{seed} {run.status:<6} {run.wall_s:8.1f} s"
    if run.retried:
        line += f"  (kernel start retried {len(run.retried)}x)"
    if run.error:
        where = f"cell {run.failed_cell}: " if run.failed_cell is not None else ""
        line += f"  {where}{run.error.splitlines()[0][:200]}"
        if run.failed_source:
            line += f"\n      in: {run.failed_source}"
    return line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.run", description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("names", nargs="*", help="notebooks to run (stem or number prefix)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (runs/latest)")
    parser.add_argument("--smoke", action="store_true", help="CI scale: pass SMOKE=True")
    parser.add_argument("--jobs", type=_positive_int, default=1,
                        help="notebooks run at once (Dask workers of a local cluster)")
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, default=None, help="SEED parameter (0)")
    seeds.add_argument("--seeds", type=parse_seeds, default=None, metavar="A-B|A,B",
                       help="a seed sweep: every notebook at every seed, into OUT/seed-N/")
    parser.add_argument("--cluster", default=None, metavar="local|tcp://HOST:PORT",
                        help="Dask cluster for the tasks: a LocalCluster of --jobs workers "
                             "(the default for sweeps and --jobs > 1) or a running scheduler")
    parser.add_argument("--device", default="cpu", help="DEVICE parameter (cpu, auto, cuda)")
    parser.add_argument("--data-source", default="simulated",
                        choices=["simulated", "original", "auto"], help="DATA_SOURCE parameter")
    parser.add_argument("--param", action="append", type=_parse_param, default=[],
                        metavar="KEY=VALUE", help="extra notebook parameter (JSON value)")
    parser.add_argument("--cell-timeout", type=_positive_int, default=None,
                        help="seconds per cell")
    parser.add_argument("--cpu-kernels", default=None, metavar="SETTING[,SETTING]",
                        help=f"CPU-kernel settings to run under, from {', '.join(SETTINGS)} "
                             "(default: pinned for --smoke, the machine's own otherwise)")
    parser.add_argument("--compare", metavar="FILE", help="fail on metrics beyond tolerance")
    parser.add_argument("--update-baseline", metavar="FILE",
                        help="write a baseline from these runs (all must pass); with named "
                             "notebooks, only their entries are replaced")
    return parser


def _settings(parser, args) -> list[str | None]:
    if args.cpu_kernels is None:
        return ["pinned" if args.smoke else None]
    settings = [s.strip() for s in args.cpu_kernels.split(",") if s.strip()]
    bad = [s for s in settings if s not in SETTINGS]
    if bad or not settings:
        parser.error(f"--cpu-kernels: unknown setting(s) {bad}; choose from {SETTINGS}")
    return settings


def _made(argv: list[str], seeds: list[int], settings: list[str | None]) -> dict:
    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "command": "python -m helpers.run " + " ".join(argv),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seeds": seeds,
        "cpu_kernels": {s or "native": kernel_environment(s or "native") for s in settings},
        "processor": f"{platform.machine()} {cpu_capability()}",
        "python": platform.python_version(),
        "torch": version("torch"),
        "numpy": version("numpy"),
    }


def _folders(runs_by_task: list[tuple[Task, NotebookRun]]) -> dict[str, list[NotebookRun]]:
    folders: dict[str, list[NotebookRun]] = {}
    for task, run in runs_by_task:
        folders.setdefault(task.out_dir, []).append(run)
    return folders


def _terminated(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C works even where SIGINT came in ignored (started in the background by a
        # non-interactive shell), and `kill` or a batch system stop a run the same way.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _terminated)
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        paths = find_notebooks(args.names)
        check_parameters(paths, dict(args.param))
    except ValueError as exc:
        parser.error(str(exc))
    if not paths:
        print(f"no notebooks found in {NOTEBOOK_DIR}", file=sys.stderr)
        return 1
    baseline = None
    if args.compare:
        try:
            baseline = validate_baseline(args.compare, [p.stem for p in find_notebooks()])
        except BaselineError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    seeds = args.seeds or [args.seed or 0]
    settings = _settings(parser, args)
    sweep = len(seeds) > 1 or len(settings) > 1
    cluster = args.cluster or ("local" if sweep or args.jobs > 1 else None)
    threads = 1 if args.smoke else max(1, (os.cpu_count() or 1) // args.jobs)
    tasks = build_tasks(paths, args.out, seeds, settings, args.smoke, threads,
                        device=args.device, data_source=args.data_source,
                        extra_parameters=dict(args.param), cell_timeout=args.cell_timeout)
    scale = "smoke" if args.smoke else "default"
    out = Path(args.out)
    for folder in {t.out_dir for t in tasks} | {str(out.resolve())}:
        mark_running(folder, scale)
    where = f"on {cluster}" if cluster else "here"
    print(f"running {len(tasks)} notebook run(s) into {out} ({args.jobs} at a time, {where})")
    outcome = run_tasks(tasks, jobs=args.jobs, cluster=cluster,
                        log=lambda r, i, n: _log(_progress_line(i, n, r)))
    runs = outcome.runs
    if sweep:
        for folder, group in _folders(list(zip(tasks, runs, strict=True))).items():
            write_summary(group, folder, scale, interrupted=outcome.interrupted)
    extra = {"cpu_kernels": [s or "native" for s in settings]}
    summary = write_summary(runs, out, scale, interrupted=outcome.interrupted, extra=extra)
    n_ok = sum(r.status == "ok" for r in runs)
    if outcome.interrupted:
        print(f"interrupted: {n_ok}/{len(runs)} runs finished; summary marked interrupted: "
              f"{summary.parent / 'SUMMARY.md'}", file=sys.stderr)
        return 130
    print(f"{n_ok}/{len(runs)} notebook runs ok; summary: {summary.parent / 'SUMMARY.md'}")
    code = 0 if n_ok == len(runs) else 1
    if baseline is not None:
        code = max(code, _report_drifts(runs, baseline, args.compare))
    if args.update_baseline:
        try:
            path = update_baseline(runs, args.update_baseline, _made(argv, seeds, settings),
                                   keep_others=bool(args.names))
            print(f"baseline written: {path}")
        except BaselineError as exc:
            print(f"error: {exc}", file=sys.stderr)
            code = 1
    return code


def _log(line: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(line)


def _report_drifts(runs: list[NotebookRun], baseline: dict, path: str) -> int:
    missing = sorted({r.name for r in runs} - set(baseline.get("notebooks", {})))
    for name in missing:
        print(f"note: {name} has no entry in {path} (run `make baseline`)")
    drifts = compare_to_baseline(runs, baseline)
    if drifts:
        print(f"{len(drifts)} metric(s) moved beyond tolerance vs {path}:")
        for d in drifts:
            print(f"  {d}")
        return 1
    print(f"all compared metrics within tolerance of {path}")
    return 0
