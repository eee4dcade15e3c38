"""A transition temperature between grid points: a smooth step fitted to a per-condition
descriptor.

:func:`~helpers.analysis.transitions.locate_transition` interpolates linearly between the two
conditions that bracket a step, so when the step is sharp its estimate can only say which grid
interval holds the transition. A transition that is spread over several grid points (a
diffuse transition: the transition temperature varies over the sample) is resolved below the
grid step by fitting the whole curve,

    d(T) = low + (high - low) * Phi((T - Tc) / width),

with ``Phi`` the standard normal distribution function: ``Tc`` is where the descriptor is
halfway between its two plateaus (for an area fraction, where half the area has changed),
``width`` the spread of the transition. Nothing about the true transition enters the fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.special import ndtr

__all__ = ["SigmoidTransition", "fit_sigmoid_transition"]


@dataclass
class SigmoidTransition:
    """A smooth step fitted to a descriptor.

    Attributes:
        estimate: the control value (e.g. kelvin) where the fitted step is halfway.
        width: the step's standard deviation, same unit (positive).
        low, high: the fitted plateaus at low and at high control values, descriptor units.
        fitted: ``(n,)`` the fitted curve at the given control values.
        rms_residual: root-mean-square residual of the fit, descriptor units.
        estimate_se: standard error of ``estimate``, control units, from the curvature of the
            least-squares fit (``s^2 (J^T J)^-1`` with ``s^2`` the residual variance over
            ``n - 4`` degrees of freedom): it assumes independent, equal-variance residuals,
            so it is a rough scale, and it is ``inf`` when the fit leaves no degrees of
            freedom or the curvature is singular (e.g. the centre pinned at a bound).
    """

    estimate: float
    width: float
    low: float
    high: float
    fitted: np.ndarray
    rms_residual: float
    estimate_se: float = float("inf")


def _step(x, centre, width, low, high):
    return low + (high - low) * ndtr((x - centre) / width)


def fit_sigmoid_transition(control, values, min_width: float | None = None
                           ) -> SigmoidTransition:
    """Fit ``low + (high - low) Phi((control - Tc) / width)`` by least squares.

    The fit starts from the steepest step between consecutive points; ``Tc`` is bounded to
    the control range and ``width`` to ``[min_width, range]``, and the plateaus are free
    (either may be the larger: rising and falling descriptors are both fine).

    Args:
        control: ``(n,)`` strictly increasing control values (e.g. temperatures, kelvin),
            ``n >= 4``.
        values: ``(n,)`` finite descriptor at each control value.
        min_width: smallest width allowed, control units (default: a tenth of the smallest
            grid step; a sharper step cannot be told apart from one between two points).

    Returns:
        :class:`SigmoidTransition`.
    """
    x = np.asarray(control, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or y.shape != x.shape:
        raise ValueError(f"control and values must be two (n,) arrays of the same length, got "
                         f"{x.shape} and {y.shape}")
    if len(x) < 4:
        raise ValueError(f"a step with two plateaus needs at least 4 points, got {len(x)}: "
                         "pass more conditions")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("control and values must be finite: drop the NaN/inf conditions first")
    steps = np.diff(x)
    if (steps <= 0).any():
        raise ValueError("control must be strictly increasing: sort the conditions first")
    span = float(x[-1] - x[0])
    if min_width is None:
        min_width = 0.1 * float(steps.min())
    if not 0 < min_width < span:
        raise ValueError(f"min_width must be in (0, {span}) (the control range), got {min_width}")
    k = int(np.argmax(np.abs(np.diff(y))))
    start = [0.5 * (x[k] + x[k + 1]), max(float(steps.mean()), min_width), y[0], y[-1]]
    lo_y, hi_y = float(y.min()), float(y.max())
    pad = max(hi_y - lo_y, 1e-12)
    bounds = ([x[0], min_width, lo_y - pad, lo_y - pad], [x[-1], span, hi_y + pad, hi_y + pad])
    start = np.clip(start, np.array(bounds[0]) + 1e-9, np.array(bounds[1]) - 1e-9)
    fit = least_squares(lambda p: _step(x, *p) - y, start, bounds=bounds, x_scale="jac")
    centre, width, low, high = (float(v) for v in fit.x)
    fitted = _step(x, centre, width, low, high)
    return SigmoidTransition(estimate=centre, width=width, low=low, high=high, fitted=fitted,
                             rms_residual=float(np.sqrt(np.mean((fitted - y) ** 2))),
                             estimate_se=_centre_se(fit.jac, fitted - y))


def _centre_se(jac: np.ndarray, residual: np.ndarray) -> float:
    """Standard error of the first parameter (the centre) from the fit's Jacobian."""
    dof = len(residual) - jac.shape[1]
    if dof <= 0:
        return float("inf")
    info = jac.T @ jac
    if not np.isfinite(info).all() or np.linalg.matrix_rank(info) < jac.shape[1]:
        return float("inf")
    var = float(residual @ residual) / dof * np.linalg.inv(info)[0, 0]
    return float(np.sqrt(var)) if var >= 0 else float("inf")
