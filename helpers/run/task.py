"""One task of a run in its own process: ``python -m helpers.run.task '<Task as JSON>'``.

Executes the notebook with papermill (:func:`helpers.run.execute.run_notebook`) and prints its
:class:`~helpers.run.execute.NotebookRun` as JSON on the last line of standard output, after
:data:`~helpers.run.schedule.RESULT_MARK`. The scheduler that started it reads that line.
"""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import asdict

from .execute import run_notebook
from .results import plain
from .schedule import RESULT_MARK, Task


def _stop(signum, frame):
    """SIGTERM (the worker that started this task went away) stops the notebook as Ctrl-C
    does, so that no half-written executed notebook is left behind."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if inherited ignored
    task = Task(**json.loads(argv[0]))
    run = run_notebook(
        task.notebook, task.out_dir, smoke=task.smoke, seed=task.seed, device=task.device,
        data_source=task.data_source, extra_parameters=task.extra_parameters,
        cell_timeout=task.cell_timeout,
    )
    print(RESULT_MARK + json.dumps(plain(asdict(run))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
