"""Executing one notebook with papermill, in this process."""

from __future__ import annotations

import ast
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..env import PROGRESS_VARIABLE
from .compact import compact_notebook

__all__ = [
    "REPO_ROOT",
    "NOTEBOOK_DIR",
    "KERNEL_START_ERRORS",
    "NotebookRun",
    "find_notebooks",
    "notebook_parameters",
    "check_parameters",
    "run_notebook",
]

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
STANDARD_PARAMETERS = ("SMOKE", "SEED", "DATA_SOURCE", "RESULTS_PATH", "DEVICE")
# A smoke cell takes seconds; past this a smoke run is hung, and fails instead of blocking CI.
SMOKE_CELL_TIMEOUT_S = 900

# Errors raised while the kernel starts, before any cell ran: the papermill/ZMQ port race
# (two kernels started at once picking the same free port) and slow starts on a loaded machine.
KERNEL_START_ERRORS = re.compile(
    r"Address already in use|ZMQError|Kernel didn't respond|Kernel died before replying|"
    r"kernel_info|Kernel not (?:ready|alive)|DeadKernelError.*(?:start|launch)",
    re.IGNORECASE,
)


@dataclass
class NotebookRun:
    """The outcome of executing one notebook.

    ``status`` is ``"ok"``, ``"failed"``, or ``"interrupted"``/``"not run"`` for a run that a
    Ctrl-C cut off or never started. ``attempts`` counts kernel starts (a start that failed in
    the known ZMQ port race is retried; ``retried`` keeps those errors)."""

    name: str
    status: str
    wall_s: float
    results: dict = field(default_factory=dict)
    output: str = ""
    error: str | None = None
    failed_cell: int | None = None  # position in the source notebook, counting from 1
    failed_source: str | None = None  # first line of the failing cell
    seed: int = 0
    kernels: str = ""
    attempts: int = 1
    retried: list = field(default_factory=list)


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


def notebook_parameters(path: str | os.PathLike) -> list[str]:
    """Names assigned in the notebook's cell tagged ``parameters``, in order."""
    cells = json.loads(Path(path).read_text()).get("cells", [])
    for cell in cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell.get("source", []))
            names = []
            for node in ast.parse(source).body:
                targets = node.targets if isinstance(node, ast.Assign) else (
                    [node.target] if isinstance(node, ast.AnnAssign) else [])
                names += [t.id for t in targets if isinstance(t, ast.Name)]
            return names
    raise ValueError(f"{path} has no cell tagged 'parameters'; papermill cannot set its values")


def check_parameters(paths: list[Path], extra: dict[str, Any]) -> None:
    """Raise ``ValueError`` when an extra parameter is not in a notebook's parameters cell
    (papermill would inject it anyway and the notebook would silently ignore it)."""
    for name in extra:
        if name in STANDARD_PARAMETERS:
            raise ValueError(f"--param {name}=... : {name} is set by the runner's own option "
                             f"(--smoke, --seed, --device, --data-source, --out)")
    for path in paths:
        known = notebook_parameters(path)
        unknown = sorted(set(extra) - set(known))
        if unknown:
            raise ValueError(
                f"--param {', '.join(unknown)}: not a parameter of {Path(path).stem} "
                f"(its parameters cell sets {', '.join(known)})"
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


def partial_path(out_dir: str | os.PathLike, name: str) -> Path:
    """Where a notebook's executed copy is written until its run ends (then moved to
    ``OUT/NAME.ipynb``); a run that was stopped leaves nothing here."""
    return Path(out_dir) / f".{name}.partial.ipynb"


def _execute_once(path: Path, output: Path, parameters: dict, cell_timeout: int | None) -> dict:
    """One papermill execution into ``output`` (written to a temporary name, then moved into
    place, so a half-written executed notebook never stands at ``output``)."""
    import papermill as pm

    from .kernel_client import PollingKernelManager

    partial = partial_path(output.parent, output.stem)
    info: dict[str, Any] = {"error": None, "failed_cell": None, "failed_source": None,
                            "kernel_start": False}
    try:
        pm.execute_notebook(
            str(path), str(partial), parameters=parameters, cwd=str(path.parent),
            progress_bar=False, execution_timeout=cell_timeout, kernel_name="python3",
            kernel_manager_class=PollingKernelManager,
        )
    except pm.PapermillExecutionError as exc:
        info["failed_cell"] = _source_position(partial, int(exc.cell_index))
        info["failed_source"] = (exc.source or "").strip().splitlines()[0][:120] or None
        info["error"] = f"{exc.ename}: {exc.evalue}"
    except KeyboardInterrupt:
        partial.unlink(missing_ok=True)
        raise
    except Exception as exc:  # kernel died or did not start, timeout, bad notebook file...
        info["error"] = f"{type(exc).__name__}: {exc}"
        info["kernel_start"] = bool(KERNEL_START_ERRORS.search(info["error"]))
    if partial.exists():
        try:  # large image figures as JPEG: a file small enough to share
            compact_notebook(partial)
        except (ValueError, OSError):  # unreadable notebook or image: kept as papermill left it
            pass
        os.replace(partial, output)
    return info


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
    kernel_retries: int = 2,
) -> NotebookRun:
    """Execute one notebook with papermill and collect its results JSON.

    Writes ``OUT/NAME.ipynb`` (the executed notebook, with outputs and any traceback) and, for
    a run that passed, ``OUT/NAME.results.json``. A notebook that fails leaves no results file,
    and one whose results are not valid JSON fails. Never raises for a failing notebook: the
    failure (exception name, message and failing cell) is returned in the :class:`NotebookRun`.
    A kernel that fails to start (see :data:`KERNEL_START_ERRORS`) is started again up to
    ``kernel_retries`` times. Smoke runs give each cell at most :data:`SMOKE_CELL_TIMEOUT_S`
    unless ``cell_timeout`` says otherwise.
    """
    if cell_timeout is None and smoke:
        cell_timeout = SMOKE_CELL_TIMEOUT_S
    if threads:  # inherited by the kernel process papermill starts
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(threads)
    os.environ.pop("MPLBACKEND", None)  # keep the kernel's inline backend: figures are saved
    # the saved notebook shows each loop's final progress as text, not a widget frozen at 0 %
    os.environ.setdefault(PROGRESS_VARIABLE, "text")
    path = Path(path).resolve()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    name = path.stem
    results_path = out_dir / f"{name}.results.json"
    output = out_dir / f"{name}.ipynb"
    for earlier in (results_path, output):  # an earlier run's files must not pass for ours
        earlier.unlink(missing_ok=True)
    parameters = {
        "SMOKE": bool(smoke),
        "SEED": int(seed),
        "DATA_SOURCE": data_source,
        "RESULTS_PATH": str(results_path),
        "DEVICE": device,
        **(extra_parameters or {}),
    }
    from .kernels import describe

    start = time.perf_counter()
    retried: list[str] = []
    while True:
        info = _execute_once(path, output, parameters, cell_timeout)
        if not info["kernel_start"] or len(retried) >= kernel_retries:
            break
        retried.append(info["error"])
        time.sleep(1.0 + len(retried))
    wall = time.perf_counter() - start
    error = info["error"]
    results: dict = {}
    if error is None:
        try:
            results = json.loads(results_path.read_text(), parse_constant=_no_constant)
        except FileNotFoundError:
            error = f"the notebook finished but wrote no results to RESULTS_PATH ({results_path})"
        except ValueError as exc:
            error = f"its results file {results_path} is not valid JSON: {exc}"
    if error is not None:
        results_path.unlink(missing_ok=True)
        results = {}
    return NotebookRun(
        name=name,
        status="ok" if error is None else "failed",
        wall_s=round(wall, 2),
        results=results,
        output=str(output),
        error=error,
        failed_cell=info["failed_cell"],
        failed_source=info["failed_source"],
        seed=int(seed),
        kernels=describe(),
        attempts=len(retried) + 1,
        retried=retried,
    )


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number (results must be finite)")
