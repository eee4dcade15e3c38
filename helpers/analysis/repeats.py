"""Statistics over independent repeats (seeds, experiments): the confidence interval of a
mean, used wherever a notebook compares two methods across seeds or repeats."""

from __future__ import annotations

import numpy as np
from scipy.stats import t as student_t

from .._checks import real_array

__all__ = ["mean_interval"]


def mean_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values`` (n,) over independent repeats and its Student-t confidence interval
    ``(mean, low, high)`` at ``level``; n >= 2."""
    v = np.asarray(real_array(values, "values"), dtype=np.float64).ravel()
    if v.size < 2 or not np.isfinite(v).all():
        raise ValueError(f"values must be >= 2 finite numbers, got {v.size}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    half = float(student_t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
    mean = float(v.mean())
    return mean, mean - half, mean + half
