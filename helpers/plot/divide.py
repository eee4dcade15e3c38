"""Figures of the DIVIDE notebook: recovered mechanism contributions, latents, active learning.

- :func:`plot_component_maps`: true and recovered contribution of each mechanism, as site
  maps;
- :func:`plot_recovery_scatter`: recovered vs true contribution, one panel per mechanism;
- :func:`plot_active_learning_curves`: held-out error vs labelled points, one curve per
  strategy with its confidence band over repeats, optionally the paired difference.

A mechanism's latent coloured by a known class is drawn by
:func:`helpers.plot.latent.plot_latent_scatter` (its ``classes`` argument).

Every function returns the matplotlib ``Figure``. Site maps are drawn with ``imshow`` (origin
upper left, ``(row, col)`` in sites).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..analysis.repeats import mean_interval
from ._common import CLASS_COLOURS

__all__ = ["plot_component_maps", "plot_recovery_scatter", "plot_active_learning_curves"]


def _check_maps(maps: Mapping[str, np.ndarray]) -> None:
    if not maps:
        raise ValueError("give at least one map")
    shapes = {np.shape(m) for m in maps.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"maps must all be 2-D with one shape, got {shapes}")


def plot_component_maps(truth: Mapping[str, np.ndarray], recovered: Mapping[str, np.ndarray],
                        units: str = "", centre: bool = True, missing: str = "no site"):
    """True (top row) and recovered (bottom row) contribution maps, one column per mechanism.

    Args:
        truth, recovered: mechanism name -> ``(rows, cols)`` map (NaN where no site); only
            names present in both are drawn.
        units: label of the colour bars (the signal's units).
        centre: subtract each map's mean (additive contributions are identifiable only up to
            a constant); each column shares one colour scale.
        missing: what the NaN grid points are, named in the titles of maps that have them
            (drawn grey).

    Returns:
        The ``Figure``.
    """
    import matplotlib.pyplot as plt

    names = [k for k in truth if k in recovered]
    if not names:
        raise ValueError("truth and recovered share no mechanism name")
    _check_maps({**{f"t{k}": truth[k] for k in names}, **{f"r{k}": recovered[k] for k in names}})
    fig, axes = plt.subplots(2, len(names), figsize=(3.9 * len(names), 6.4), squeeze=False)
    # grid points without a site (NaN) are grey background, not the colour of zero
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.75")  # a copy
    for j, name in enumerate(names):
        pair = [np.asarray(truth[name], float), np.asarray(recovered[name], float)]
        if centre:
            pair = [m - np.nanmean(m) for m in pair]
        lim = max(np.nanmax(np.abs(m)) for m in pair) or 1.0
        for i, (m, row) in enumerate(zip(pair, ("true", "recovered"))):
            ax = axes[i, j]
            im = ax.imshow(m, cmap=cmap, vmin=-lim, vmax=lim)
            ax.set_title(f"{name}: {row}" + (f" (grey: {missing})" if np.isnan(m).any() else ""),
                         fontsize=9)
            ax.set_xlabel("col (sites)")
            if j == 0:
                ax.set_ylabel("row (sites)")
            fig.colorbar(im, ax=ax, shrink=0.8, label=units)
    fig.tight_layout()
    return fig


def plot_recovery_scatter(truth: Mapping[str, np.ndarray],
                          recovered: Mapping[str, np.ndarray],
                          errors: Mapping[str, np.ndarray] | None = None,
                          scores: Mapping[str, float] | None = None, units: str = ""):
    """Recovered vs true contribution per mechanism (both centred), with the identity line.

    Args:
        truth, recovered: mechanism name -> (N,) values.
        errors: optional name -> (N,) posterior standard deviations, drawn as error bars.
        scores: optional name -> R^2, printed in each panel title.
        units: axis units.
    """
    import matplotlib.pyplot as plt

    names = [k for k in truth if k in recovered]
    if not names:
        raise ValueError("truth and recovered share no mechanism name")
    fig, axes = plt.subplots(1, len(names), figsize=(3.8 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        t = np.asarray(truth[name], float)
        r = np.asarray(recovered[name], float)
        if t.shape != r.shape:
            raise ValueError(f"{name}: truth {t.shape} and recovered {r.shape} differ")
        t, r = t - t.mean(), r - r.mean()
        err = None if errors is None or name not in errors else np.asarray(errors[name])
        ax.errorbar(t, r, yerr=err, fmt="o", ms=2.5, alpha=0.5, elinewidth=0.5)
        lo, hi = min(t.min(), r.min()), max(t.max(), r.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        title = name if not scores or name not in scores else f"{name}: R² = {scores[name]:.3f}"
        ax.set_title(title)
        ax.set_xlabel(f"true contribution {units}".strip())
        ax.set_ylabel(f"recovered {units}".strip())
    fig.tight_layout()
    return fig


def plot_active_learning_curves(results: Mapping[str, Sequence],
                                ylabel: str = "held-out RMSE", level: float = 0.95,
                                difference: tuple[str, str] | None = None):
    """Error vs labelled points per strategy: the mean over repeats with its ``level``
    Student-t band (two or more repeats), the repeats as thin lines.

    Args:
        results: strategy name -> list of :class:`~helpers.models.divide.ActiveLearningResult`
            (repeats; those of different strategies paired by position, sharing
            ``n_labelled``).
        ylabel: the error and its units.
        level: confidence level of the bands.
        difference: optional ``(a, b)`` strategy names: a second panel draws the paired
            difference ``a - b`` per labelled count with its band and the zero line (below
            zero: ``a`` has the lower error).
    """
    import matplotlib.pyplot as plt

    if not results:
        raise ValueError("results is empty")
    if difference is not None and not set(difference) <= set(results):
        raise ValueError(f"difference names {difference} must be strategies of results "
                         f"{list(results)}")
    n_panels = 1 if difference is None else 2
    fig, axes = plt.subplots(1, n_panels, figsize=(5.2 * n_panels, 3.8), squeeze=False)
    ax = axes[0, 0]
    for k, (name, runs) in enumerate(results.items()):
        colour = CLASS_COLOURS[k % len(CLASS_COLOURS)]
        curves = np.stack([r.rmse for r in runs])
        n = runs[0].n_labelled
        for c in curves:
            ax.plot(n, c, color=colour, lw=0.6, alpha=0.3)
        _mean_band(ax, n, curves, colour, level, f"{name} (mean of {len(runs)})")
    ax.set_xlabel("labelled measurements")
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    if difference is not None:
        a, b = difference
        diff = np.stack([r.rmse for r in results[a]]) - np.stack([r.rmse for r in results[b]])
        ax = axes[0, 1]
        _mean_band(ax, results[a][0].n_labelled, diff, CLASS_COLOURS[2], level,
                   f"{a} - {b}, paired")
        ax.axhline(0.0, color="k", lw=1, ls="--")
        ax.set_xlabel("labelled measurements")
        ax.set_ylabel(f"difference in {ylabel}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _mean_band(ax, n, curves, colour, level: float, label: str) -> None:
    """Mean of ``curves`` (R, S) against ``n`` (S,), with a Student-t band when R >= 2."""
    mean = curves.mean(0)
    ax.plot(n, mean, color=colour, lw=2.2, label=label)
    if len(curves) >= 2:
        _, low, high = np.array([mean_interval(c, level) for c in curves.T]).T
        ax.fill_between(n, low, high, color=colour, alpha=0.25, lw=0,
                        label=f"{level:.0%} interval of the mean")
