"""What a notebook writes: its key numbers as plain, valid JSON."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from .._io import atomic_path

__all__ = ["plain", "save_results", "write_json", "finite_or_none"]


def plain(value: Any, where: str = "results") -> Any:
    """Convert numpy/torch scalars and arrays and paths to plain JSON values.

    Raises ``ValueError`` naming the key for values JSON cannot hold: objects of other types,
    and NaN or infinite numbers (``NaN`` is not valid JSON for most readers, and a metric that
    is not a number is a failure to report, not a result).
    """
    if isinstance(value, dict):
        return {str(k): plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy, torch
        return plain(value.tolist(), where)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(
            f"{where} is {value}: results must be finite numbers; report a failed quantity as "
            "None (null) or fix the computation that produced it"
        )
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(
        f"{where}: results must hold numbers, strings, booleans, lists or dicts; "
        f"got {type(value).__name__}"
    )


def finite_or_none(value: Any) -> float | None:
    """``float(value)``, or ``None`` where it is NaN or infinite: how a results dict reports a
    quantity that is undefined in this run (a precision with no detections, say)."""
    value = float(value)
    return value if math.isfinite(value) else None


def write_json(data: Any, path: str | os.PathLike) -> Path:
    """Write ``data`` (already plain) to ``path`` as indented, strict JSON, atomically."""
    path = Path(path)
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
    return path


def save_results(results: dict, path: str | os.PathLike) -> Path:
    """Write a notebook's key numbers to ``path`` as JSON, atomically.

    ``results`` maps metric names to numbers (numpy scalars are converted), strings, booleans,
    ``None``, or small lists/dicts of those; NaN and infinities are refused with a
    ``ValueError`` naming the metric. An empty ``path`` writes nothing. Returns the path.
    """
    if not isinstance(results, dict):
        raise ValueError(f"results must be a dict of metric name -> value, got {type(results)}")
    converted = plain(results)
    if not path:
        return Path()
    return write_json(converted, path)
