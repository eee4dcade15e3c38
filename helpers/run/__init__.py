"""The papermill runner: run notebooks (one at a time, or as tasks on a Dask cluster), summarise
their results, sweep seeds, and compare against or write the smoke baseline.

``python -m helpers.run --help`` lists the command line (:mod:`helpers.run.cli`). Notebooks
only need :func:`save_results`; importing this package imports neither papermill nor Dask.

- :mod:`.results`   ``save_results``: a notebook's key numbers as strict JSON
- :mod:`.execute`   one notebook through papermill, in this process
- :mod:`.schedule`  many (notebook, seed, kernel setting) tasks, each its own process, on Dask
- :mod:`.kernels`   CPU-kernel settings (the pin that makes x86 processors agree)
- :mod:`.summary`   ``summary.json`` / ``SUMMARY.md``, aggregates over seeds
- :mod:`.prose`     results typed into markdown instead of printed from the results
- :mod:`.baseline`  baseline tolerances from measured spread, validation, comparison
"""

from .baseline import (
    BaselineError,
    Drift,
    build_baseline,
    compare_to_baseline,
    update_baseline,
    validate_baseline,
)
from .cli import main, parse_seeds, run_notebooks
from .execute import NotebookRun, find_notebooks, notebook_parameters, run_notebook
from .results import finite_or_none, save_results
from .summary import aggregate, write_summary

__all__ = [
    "save_results",
    "finite_or_none",
    "NotebookRun",
    "Drift",
    "BaselineError",
    "find_notebooks",
    "notebook_parameters",
    "run_notebook",
    "run_notebooks",
    "write_summary",
    "aggregate",
    "compare_to_baseline",
    "validate_baseline",
    "build_baseline",
    "update_baseline",
    "parse_seeds",
    "main",
]
