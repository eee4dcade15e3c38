"""``summary.json`` and ``SUMMARY.md``: what ran, how it ended, and results across seeds."""

from __future__ import annotations

import json
import math
import os
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .._io import atomic_path
from .execute import NotebookRun
from .prose import typed_results_in
from .results import plain, write_json

__all__ = ["aggregate", "write_summary", "mark_running", "fmt"]


def fmt(value: Any) -> str:
    """A short text for a result value in a table."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        text = json.dumps(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return str(value)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def aggregate(runs: list[NotebookRun]) -> dict[str, dict[str, dict[str, float]]]:
    """Per notebook and numeric metric, ``n``, ``mean``, ``sd`` (sample, 0 for one run),
    ``min`` and ``max`` over the runs that passed (seeds, kernel settings)."""
    values: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        if run.status != "ok":
            continue
        for metric, value in run.results.items():
            if is_number(value) and math.isfinite(value):
                values.setdefault(run.name, {}).setdefault(metric, []).append(float(value))
    return {
        name: {
            metric: {
                "n": len(xs),
                "mean": statistics.fmean(xs),
                "sd": statistics.stdev(xs) if len(xs) > 1 else 0.0,
                "min": min(xs),
                "max": max(xs),
            }
            for metric, xs in sorted(metrics.items())
        }
        for name, metrics in values.items()
    }


def mark_running(out_dir: str | os.PathLike, scale: str) -> None:
    """Replace any earlier summary by one saying a run is under way, so that a run that dies
    never leaves a stale ``all_ok: true`` behind."""
    write_json({"scale": scale, "status": "running", "all_ok": False, "notebooks": []},
               Path(out_dir) / "summary.json")


def _typed(r: NotebookRun) -> list:
    """The markdown numbers of ``r``'s executed notebook that equal its results."""
    if not (r.results and r.output and Path(r.output).is_file()):
        return []
    return typed_results_in(r.output, r.results)


def _run_lines(r: NotebookRun) -> list[str]:
    lines = ["", f"## {r.name} (seed {r.seed}): {r.status}"]
    if r.error:
        where = f" in cell {r.failed_cell}" if r.failed_cell is not None else ""
        lines += ["", f"Failed{where}: `{r.error.splitlines()[0][:300]}`"]
        if r.failed_source:
            lines += ["", f"Failing cell starts with: `{r.failed_source}`"]
        if r.output:
            lines += ["", f"Executed notebook (with outputs and traceback): `{r.output}`"]
    if r.retried:
        lines += ["", f"Kernel start retried {len(r.retried)} time(s): `{r.retried[0][:200]}`"]
    typed = _typed(r)
    if typed:
        lines += ["", "Results typed into the prose (print them from the results instead): "
                  + "; ".join(f"cell {t.cell} '{t.text}' = {t.key}" for t in typed)]
    if r.results:
        lines += ["", "| result | value |", "|---|---|"]
        lines += [f"| {k} | {fmt(v)} |" for k, v in sorted(r.results.items())]
    return lines


def _aggregate_lines(stats: dict) -> list[str]:
    lines = ["", "## Results across seeds", "",
             "| notebook | metric | n | mean ± sd | min | max |", "|---|---|---|---|---|---|"]
    for name, metrics in sorted(stats.items()):
        for metric, s in metrics.items():
            lines.append(f"| {name} | {metric} | {s['n']} | {s['mean']:.4g} ± {s['sd']:.2g} "
                         f"| {s['min']:.4g} | {s['max']:.4g} |")
    return lines


def write_summary(runs: list[NotebookRun], out_dir: str | os.PathLike, scale: str,
                  interrupted: bool = False, extra: dict | None = None) -> Path:
    """Write ``summary.json`` and ``SUMMARY.md`` into ``out_dir`` (atomically); return the JSON
    path. ``all_ok`` is true only for a run that was not interrupted and whose notebooks all
    passed. With runs of several seeds, both files gain per-metric aggregates."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seeds = sorted({r.seed for r in runs})
    summary = {
        "scale": scale,
        "status": "interrupted" if interrupted else "complete",
        "all_ok": bool(runs) and not interrupted and all(r.status == "ok" for r in runs),
        "seeds": seeds,
        **(extra or {}),
        "notebooks": [asdict(r) for r in runs],
    }
    if len(seeds) > 1:
        summary["aggregates"] = aggregate(runs)
    json_path = write_json(plain(summary), out_dir / "summary.json")
    title = f"# Notebook run ({scale} scale{', INTERRUPTED' if interrupted else ''})"
    lines = [title, "", "| notebook | seed | status | wall (s) |", "|---|---|---|---|"]
    lines += [f"| {r.name} | {r.seed} | {r.status} | {r.wall_s:.1f} |" for r in runs]
    if len(seeds) > 1:
        lines += _aggregate_lines(summary["aggregates"])
    for r in runs:
        lines += _run_lines(r)
    with atomic_path(out_dir / "SUMMARY.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return json_path
