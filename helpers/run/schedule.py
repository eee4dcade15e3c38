"""Running many (notebook, seed, kernel setting) tasks: one after another, or on a Dask cluster.

Each task runs as its own process (``python -m helpers.run.task``) that executes one notebook
with papermill, so that thread counts and CPU-kernel variables never leak from one task into
the next. Several at once are scheduled with Dask distributed: a ``LocalCluster`` of ``jobs``
workers on this machine (bound to 127.0.0.1), or the scheduler at ``tcp://HOST:PORT`` that a
user started with ``dask scheduler`` and fed with ``dask worker`` processes on other machines.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .execute import NotebookRun, partial_path

__all__ = ["Task", "Outcome", "execute_task", "run_tasks", "RESULT_MARK"]

RESULT_MARK = "@@helpers.run.task "


@dataclass
class Task:
    """One notebook run: what to execute, where to write, and the environment it gets.

    ``environment`` holds variables set for the task's process and kernel (threads, CPU-kernel
    variables); ``label`` names the task's kernel setting in summaries."""

    notebook: str
    out_dir: str
    seed: int = 0
    smoke: bool = False
    device: str = "cpu"
    data_source: str = "simulated"
    extra_parameters: dict = field(default_factory=dict)
    cell_timeout: int | None = None
    environment: dict = field(default_factory=dict)
    label: str = ""

    @property
    def name(self) -> str:
        return Path(self.notebook).stem


@dataclass
class Outcome:
    """The runs of :func:`run_tasks`, in task order, and whether a Ctrl-C cut them short."""

    runs: list[NotebookRun]
    interrupted: bool = False


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the task process gets SIGTERM when the worker that started it goes away, so a
    cancelled sweep leaves no notebook running (its kernel notices its parent is gone)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# this process's task processes and the half-written notebook each may leave, for stop_tasks
_RUNNING: dict[subprocess.Popen, Path] = {}


def _stop(proc: subprocess.Popen, partial: Path, grace_s: float = 15.0) -> None:
    """Stop a task process as Ctrl-C would (it removes its half-written notebook and shuts
    its kernel down), and kill it if it has not ended after ``grace_s``; a notebook it could
    not remove is then removed here."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # the task turns it into KeyboardInterrupt
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    partial.unlink(missing_ok=True)


def stop_tasks() -> int:
    """Stop every task process this process started and wait for them; returns how many.
    Run on each Dask worker (``client.run``) when a sweep is interrupted."""
    running = list(_RUNNING.items())
    for proc, partial in running:
        _stop(proc, partial)
    return len(running)


def task_process_environment(task: Task, in_dask_worker: bool) -> dict[str, str]:
    """The environment of ``task``'s process (and so of its notebook kernel): this process's
    own, the task's variables on top, without ``MPLBACKEND``.

    In a Dask worker it also drops ``MALLOC_TRIM_THRESHOLD_``, which Dask's nanny sets for
    its workers (65536 bytes): inherited by a notebook kernel, it makes glibc hand freed
    memory back to the system at once, numpy's many medium-sized temporaries then fault
    their pages in again, and the lattice simulations of notebook 11 ran 7 times slower.
    """
    env = {**os.environ, **{k: str(v) for k, v in task.environment.items()}}
    env.pop("MPLBACKEND", None)
    if in_dask_worker and "MALLOC_TRIM_THRESHOLD_" not in task.environment:
        env.pop("MALLOC_TRIM_THRESHOLD_", None)
    return env


def _in_dask_worker() -> bool:
    try:
        from distributed import get_worker
        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def execute_task(task: Task) -> NotebookRun:
    """Run ``task`` in its own process and return its :class:`NotebookRun` (never raises for
    a failing notebook; a task process that dies is reported as a failed run)."""
    env = task_process_environment(task, _in_dask_worker())
    command = [sys.executable, "-m", "helpers.run.task", json.dumps(asdict(task))]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    partial = partial_path(task.out_dir, task.name)
    _RUNNING[proc] = partial
    try:
        stdout, stderr = proc.communicate()
    except BaseException:  # Ctrl-C: stop the notebook with us, cleanly
        _stop(proc, partial)
        raise
    finally:
        _RUNNING.pop(proc, None)
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return NotebookRun(**json.loads(line[len(RESULT_MARK):]))
    tail = (stderr or stdout).strip().splitlines()[-3:]
    return NotebookRun(
        name=task.name, status="failed", wall_s=0.0, seed=task.seed,
        error=f"the task process exited with code {proc.returncode} before reporting: "
              + " | ".join(tail),
    )


def _unfinished(task: Task, status: str) -> NotebookRun:
    return NotebookRun(name=task.name, status=status, wall_s=0.0, seed=task.seed,
                       error=f"{status}: the run was stopped by Ctrl-C")


def _progress(total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="notebook", file=sys.stderr, leave=True,
                dynamic_ncols=True)


def _run_in_turn(tasks: list[Task], log) -> Outcome:
    runs: list[NotebookRun] = []
    with _progress(len(tasks), "notebooks") as bar:
        for task in tasks:
            try:
                runs.append(execute_task(task))
            except KeyboardInterrupt:
                runs.append(_unfinished(task, "interrupted"))
                runs += [_unfinished(t, "not run") for t in tasks[len(runs):]]
                return Outcome(runs, interrupted=True)
            bar.update(1)
            log(runs[-1], len(runs), len(tasks))
    return Outcome(runs)


def _connect(cluster: str | None, jobs: int):
    """A Dask client and the cluster it owns (None for an outside scheduler)."""
    from distributed import Client, LocalCluster

    if cluster in (None, "local"):
        owned = LocalCluster(
            n_workers=jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None, silence_logs=logging.ERROR,
            # its HTTP endpoints (health, metrics) on a free loopback port, never :8787
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        )
        return Client(owned), owned
    if not str(cluster).startswith(("tcp://", "tls://")):
        raise ValueError(f"--cluster takes 'local' or a scheduler address tcp://HOST:PORT, "
                         f"got {cluster!r}")
    return Client(cluster, timeout="20s"), None


def _run_on_dask(tasks: list[Task], jobs: int, cluster: str | None, log) -> Outcome:
    from distributed import as_completed

    client, owned = _connect(cluster, jobs)
    futures = {}
    by_index: dict[int, NotebookRun] = {}
    interrupted = False
    try:
        for i, task in enumerate(tasks):
            future = client.submit(execute_task, task, pure=False,
                                   key=f"{task.name}-seed{task.seed}-{task.label or 'run'}-{i}")
            futures[future] = i
        with _progress(len(tasks), "notebooks") as bar:
            for future in as_completed(futures):
                i = futures[future]
                try:
                    by_index[i] = future.result()
                except Exception as exc:  # the worker died: report it, keep the rest going
                    by_index[i] = NotebookRun(
                        name=tasks[i].name, status="failed", wall_s=0.0, seed=tasks[i].seed,
                        error=f"the Dask task failed: {type(exc).__name__}: {exc}")
                bar.update(1)
                log(by_index[i], len(by_index), len(tasks))
    except KeyboardInterrupt:
        interrupted = True
        client.cancel(list(futures), force=True)
        client.run(stop_tasks)  # running notebooks end cleanly before the workers go
    finally:
        client.close()
        if owned is not None:
            owned.close()
    runs = [by_index.get(i) or _unfinished(t, "interrupted") for i, t in enumerate(tasks)]
    return Outcome(runs, interrupted=interrupted)


def run_tasks(tasks: list[Task], jobs: int = 1, cluster: str | None = None,
              log=None) -> Outcome:
    """Run every task and return their runs in task order.

    With ``jobs == 1`` and no ``cluster`` the tasks run one after another here; otherwise on
    Dask (``cluster``: ``None``/``"local"`` for a local cluster of ``jobs`` workers, or a
    scheduler address). ``log(run, done, total)`` is called as each finishes. A Ctrl-C stops
    the remaining tasks (running ones included) and returns ``interrupted=True`` with the
    unfinished tasks marked ``"interrupted"``.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    log = log or (lambda run, done, total: None)
    if not tasks:
        return Outcome([])
    if jobs == 1 and cluster is None:
        return _run_in_turn(tasks, log)
    return _run_on_dask(tasks, jobs, cluster, log)
