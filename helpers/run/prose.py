"""Numbers typed into a notebook's prose that are really its results.

A sentence that states a result must be printed from the results, so that it changes when the
numbers do. This finds the markdown numbers that equal, at the precision they are written
with, a number the notebook wrote to its results JSON: the sign of a result typed by hand.

What counts as a stated number: a decimal (``0.93``, ``-1.25``, ``4.1e-3``) or a percentage
(``93 %``, ``12.5%``, compared with ``100 x`` the result). Whole numbers without a percent sign
are left out (sizes, counts of layers, "2 latents" collide with results by chance), so are
numbers with one significant digit (``0.9``, ``5 %``), and so is any number that also appears
in the notebook's code (a bar such as ``0.95`` is written in both), a number in a subscript or
superscript (``t_{0.95}``), and results that are timings (keys ending in ``_s`` or naming
``seconds``, e.g. ``fit_s``, ``seconds_per_epoch``).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TypedResult", "typed_results", "typed_results_in"]

_NUMBER = re.compile(r"(?<![\w.{^])([-+\u2212]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(\s*%)?(?!\.?\d|\w)")


@dataclass(frozen=True)
class TypedResult:
    """A markdown number equal to a result: the cell (index in the notebook), the text as
    written, and the results key it equals."""

    cell: int
    text: str
    key: str


def _flat_numbers(results: Any, prefix: str = "") -> dict[str, float]:
    """Every finite number in a (nested) results mapping, by dotted key."""
    out: dict[str, float] = {}
    if isinstance(results, dict):
        for k, v in results.items():
            out.update(_flat_numbers(v, f"{prefix}{k}."))
    elif isinstance(results, (list, tuple)):
        for i, v in enumerate(results):
            out.update(_flat_numbers(v, f"{prefix}{i}."))
    elif isinstance(results, (int, float)) and not isinstance(results, bool):
        if math.isfinite(results):
            out[prefix.rstrip(".")] = float(results)
    return out


def _is_timing(key: str) -> bool:
    """Whether a (flattened) results key is a timing: ``..._s`` or ``...seconds...``."""
    return key.endswith("_s") or "seconds" in key


def _decimals(text: str) -> int | None:
    """Decimal places written in ``text`` (None for scientific notation)."""
    if "e" in text.lower():
        return None
    return len(text.split(".")[1]) if "." in text else 0


def _significant(text: str) -> int:
    """Significant digits written in ``text`` (``0.082`` -> 2, ``97`` -> 2, ``1.50`` -> 3)."""
    mantissa = text.lower().split("e")[0].lstrip("+-\u2212")
    digits = mantissa.replace(".", "").lstrip("0")
    return len(digits) if "." in mantissa else len(mantissa.lstrip("0").rstrip("0") or "0")


def _equal_as_written(text: str, value: float, result: float) -> bool:
    places = _decimals(text)
    if places is None:  # 4.1e-3: compare at the written significant digits
        digits = len(re.sub(r"[^0-9]", "", text.lower().split("e")[0]).lstrip("0")) or 1
        return result != 0 and float(f"{result:.{digits - 1}e}") == value
    return round(result, places) == value


def typed_results(cells: list[dict], results: dict) -> list[TypedResult]:
    """The markdown numbers in ``cells`` (nbformat cell dicts) equal to a number in ``results``.

    A decimal matches a result that rounds to it at its written places; a percentage matches a
    result whose 100-fold does (or the result itself, for results already in percent). Numbers
    that also occur in a code cell's source are not counted (bars and parameters).
    """
    if not isinstance(results, dict):
        raise TypeError(f"results must be the notebook's results mapping, got {type(results)}")
    # timings are not findings: a "2.5 nm" in the prose may equal a fit time by chance
    values = {k: v for k, v in _flat_numbers(results).items() if not _is_timing(k)}
    code = "\n".join("".join(c.get("source", "")) for c in cells if c.get("cell_type") == "code")
    in_code = {m.group(1).replace("\u2212", "-") for m in _NUMBER.finditer(code)}
    found = []
    for i, cell in enumerate(cells):
        if cell.get("cell_type") != "markdown":
            continue
        for m in _NUMBER.finditer("".join(cell.get("source", ""))):
            text, percent = m.group(1).replace("\u2212", "-"), bool(m.group(2))
            if text.lstrip("+-") in {t.lstrip("+-") for t in in_code}:
                continue
            if not percent and "." not in text and "e" not in text.lower():
                continue
            if _significant(text) < 2:  # 0.9, 3 %: too coarse to tell a result from chance
                continue
            value = float(text)
            for key, result in values.items():
                candidates = (100 * result, result) if percent else (result,)
                if any(_equal_as_written(text, value, r) for r in candidates):
                    found.append(TypedResult(i, m.group(0).strip(), key))
                    break
    return found


def typed_results_in(notebook: str | os.PathLike, results: str | os.PathLike | dict
                     ) -> list[TypedResult]:
    """:func:`typed_results` for a notebook file and its results (a JSON file or a mapping)."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    if not isinstance(results, dict):
        results = json.loads(Path(results).read_text())
    return typed_results(cells, results)
