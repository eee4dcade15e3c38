"""Statistics over independent repeats (seeds, experiments): the confidence interval of a
mean, used wherever a notebook compares two methods across seeds or repeats, its version for
a score bounded above (an R^2 never exceeds 1) and for a ratio (positive, averaged on the log
scale), and the two verdict rules the notebooks word their comparisons by: which side of a
reference an interval lies on, and which side of a margin one score lies from another."""

from __future__ import annotations

import numpy as np
from scipy.stats import t as student_t

from .._checks import real_array

__all__ = ["bounded_interval", "interval_side", "margin_side", "mean_interval", "ratio_interval"]


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


def bounded_interval(values, upper: float = 1.0,
                     level: float = 0.95) -> tuple[float, float, float]:
    """Centre and confidence interval ``(centre, low, high)`` at ``level`` of a score bounded
    above by ``upper`` (an R^2: ``upper = 1``), over independent repeats ``values`` (n,), n >= 2.

    The gap to the bound, ``upper - v`` (for R^2 the unexplained fraction ``1 - R^2``), is
    positive and has no other bound, so the Student-t interval is taken on ``log(upper - v)``
    and mapped back: ``high`` stays below ``upper`` however few the repeats, and ``low`` can
    be as far below as the spread asks. The centre is ``upper`` minus the geometric mean of
    the gaps (at or above the plain mean of ``values``; close to it when the repeats agree).
    """
    v = np.asarray(real_array(values, "values"), dtype=np.float64).ravel()
    if v.size and np.isfinite(v).all() and not (v < upper).all():
        raise ValueError(f"values must lie below upper = {upper}, got max {v.max()}")
    # the geometric-mean interval of the gaps; a larger gap is a lower score: the ends swap
    centre, low, high = ratio_interval(upper - v, level)
    return upper - centre, upper - high, upper - low


def ratio_interval(ratios, level: float = 0.95) -> tuple[float, float, float]:
    """Geometric mean and confidence interval ``(centre, low, high)`` at ``level`` of positive
    ratios ``(n,)`` over independent repeats, n >= 2 (e.g. one method's error over another's).

    The Student-t interval of the mean log ratio, exponentiated: both ends stay positive, and
    a ratio and its inverse get mirror-image intervals (a plain mean of ratios does neither).
    """
    r = np.asarray(real_array(ratios, "ratios"), dtype=np.float64).ravel()
    if r.size and np.isfinite(r).all() and not (r > 0).all():
        raise ValueError(f"ratios must be positive, got min {r.min()}")
    centre, low, high = mean_interval(np.log(r) if r.size else r, level)
    return float(np.exp(centre)), float(np.exp(low)), float(np.exp(high))


def interval_side(low: float, high: float, reference: float = 0.0) -> str:
    """Where a confidence interval ``[low, high]`` lies relative to ``reference``.

    Returns ``"above"`` when the whole interval lies above it (``low > reference``),
    ``"below"`` when it lies below (``high < reference``), and ``"includes"`` otherwise: the
    difference is not resolved at this number of repeats. Use ``reference = 0`` for a
    difference and ``1`` for a ratio.
    """
    low, high, reference = float(low), float(high), float(reference)
    if not (np.isfinite(low) and np.isfinite(high) and np.isfinite(reference)):
        raise ValueError(f"low, high and reference must be finite, got {low}, {high}, {reference}")
    if low > high:
        raise ValueError(f"low must not exceed high, got [{low}, {high}]")
    return "above" if low > reference else "below" if high < reference else "includes"


def margin_side(value: float, baseline: float, margin: float) -> str:
    """A single score against its baseline where no interval exists (one run): ``"ahead"``
    when ``value`` exceeds ``baseline`` by more than ``margin``, ``"behind"`` when it falls
    short by more, ``"tie"`` otherwise (higher is better; ``margin >= 0`` in the scores'
    units)."""
    value, baseline, margin = float(value), float(baseline), float(margin)
    if not (np.isfinite(value) and np.isfinite(baseline)):
        raise ValueError(f"value and baseline must be finite, got {value}, {baseline}")
    if not (np.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a finite number >= 0, got {margin}")
    return ("ahead" if value > baseline + margin else
            "behind" if value < baseline - margin else "tie")
