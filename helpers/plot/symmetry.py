"""Figures of the Bayesian symmetry notebook: posterior maps over a parameter plane, the
reliability diagram of predicted probabilities, and the collapse of the ``P = 1/2`` thresholds
onto one curve."""

from __future__ import annotations

import numpy as np

from ._common import figure_and_axis

__all__ = ["plot_probability_map", "plot_reliability", "plot_threshold_collapse"]


def plot_probability_map(prob, x, y, ax=None, xlabel: str = "x", ylabel: str = "y",
                         label: str = "probability", curves=None, log_x: bool = False,
                         log_y: bool = False, title: str | None = None):
    """A probability over a parameter plane, with the ``1/2`` contour and optional curves.

    Args:
        prob: ``(len(y), len(x))`` values in [0, 1] (row ``i`` at ``y[i]``).
        x, y: ``(nx,)`` and ``(ny,)`` increasing grid coordinates.
        xlabel, ylabel, label: axis and colour-bar labels (say the units).
        curves: optional ``{name: (xs, ys)}`` lines drawn over the map (e.g. a predicted
            threshold).
        log_x, log_y: logarithmic axes.
    """
    import matplotlib.pyplot as plt

    p = np.asarray(prob, dtype=float)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if p.shape != (len(y), len(x)):
        raise ValueError(f"prob must be (len(y), len(x)) = ({len(y)}, {len(x)}), got {p.shape}")
    fig, ax = figure_and_axis(ax, (5.5, 4.5))
    mesh = ax.pcolormesh(x, y, p, cmap="RdBu_r", vmin=0.0, vmax=1.0, shading="nearest")
    plt.colorbar(mesh, ax=ax, label=label)
    ax.contour(x, y, p, levels=[0.5], colors="k", linewidths=1.5)
    ax.plot([], [], "k-", label="P = 0.5 (measured)")
    for name, (cx, cy) in (curves or {}).items():
        ax.plot(cx, cy, "--", color="gold", lw=2, label=name)
    ax.legend(loc="best", fontsize=8)
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return fig


def plot_reliability(mean_prob, frequency, counts, ax=None, label: str = "model",
                     xlabel: str = "predicted probability", title: str | None = None):
    """Reliability diagram: observed frequency against mean predicted probability per bin
    (from ``helpers.analysis.scores.reliability_curve``), the diagonal for perfect
    calibration, and the bin populations on a second axis."""
    mp = np.asarray(mean_prob, dtype=float)
    fr = np.asarray(frequency, dtype=float)
    n = np.asarray(counts, dtype=float)
    if not mp.shape == fr.shape == n.shape:
        raise ValueError("mean_prob, frequency and counts must have one shape (one per bin)")
    fig, ax = figure_and_axis(ax, (4.8, 4.5))
    edges = np.linspace(0.0, 1.0, len(n) + 1)
    twin = ax.twinx()
    twin.bar(edges[:-1], n, width=np.diff(edges), align="edge", color="0.85", zorder=0)
    twin.set_yscale("log")
    twin.set_ylabel("data sets per bin")
    ax.set_zorder(twin.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.plot([0, 1], [0, 1], "k:", label="perfect calibration")
    used = n > 0
    ax.plot(mp[used], fr[used], "o-", color="tab:red", label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("observed frequency")
    ax.legend(loc="upper left", fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def plot_threshold_collapse(r, ratio, r_curve, ratio_curve, groups=None, ax=None,
                            group_label: str = "group", title: str | None = None,
                            curve_label: str = "closed form", n_symbol: str = "N"):
    """Measured ``P = 1/2`` thresholds in units of ``sigma / sqrt(N)`` against the prior-to-
    noise ratio ``r``, with the predicted curve: a scaling collapse.

    Args:
        r, ratio: ``(M,)`` the grid points' ``r`` and measured ``delta_50 sqrt(N) / sigma``.
        r_curve, ratio_curve: the prediction on a fine grid.
        groups: optional ``(M,)`` labels (e.g. N) to colour the points by.
        curve_label: legend entry of the prediction (say which data it is for, e.g. the
            median data set).
        n_symbol: LaTeX symbol of the atom count in the axis labels (e.g. ``N_\\mathrm{eff}``
            when the threshold is scaled by the effective number of atoms).
    """
    r = np.asarray(r, dtype=float)
    ratio = np.asarray(ratio, dtype=float)
    if r.shape != ratio.shape:
        raise ValueError("r and ratio must have one shape (one per grid point)")
    fig, ax = figure_and_axis(ax, (5.0, 4.2))
    ax.plot(r_curve, ratio_curve, "k-", label=curve_label)
    if groups is None:
        ax.plot(r, ratio, "o", color="tab:red", label="measured (median data set)")
    else:
        groups = np.asarray(groups)
        for g in np.unique(groups):
            m = groups == g
            ax.plot(r[m], ratio[m], "o", label=f"{group_label} = {g}")
    ax.set_xscale("log")
    ax.set_xlabel(rf"$r = \tau^2 {n_symbol} / \sigma^2$ (prior width / noise, squared)")
    ax.set_ylabel(rf"$\delta_{{1/2}}\ \sqrt{{{n_symbol}}} / \sigma$ (dimensionless)")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig
