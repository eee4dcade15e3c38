"""Figures of process optimisation: field trajectories, latent traversals, best-so-far curves
with confidence bands, a polarisation field over its curl, and an objective over latents."""

from __future__ import annotations

import numpy as np

from ..analysis.repeats import mean_interval
from ._common import figure_and_axis

__all__ = [
    "plot_best_so_far",
    "plot_field_trajectories",
    "plot_latent_objective",
    "plot_latent_traversal",
    "plot_polarisation_curl",
]


def _fields(fields, name: str = "fields") -> np.ndarray:
    arr = np.asarray(fields, dtype=np.float64)
    if arr.ndim < 2 or arr.shape[-1] != 2 or arr.shape[-2] < 2:
        raise ValueError(f"{name} must end in (T, 2) field samples (T >= 2), got {arr.shape}")
    return arr


def _draw_field(ax, times, f, legend: bool) -> None:
    ax.plot(times, f[:, 0], color="tab:blue", label="$E_0$ (rows)")
    ax.plot(times, f[:, 1], color="tab:red", label="$E_1$ (columns)")
    ax.axhline(0.0, color="0.7", lw=0.5)
    if legend:
        ax.legend(fontsize=7, loc="upper right")


def plot_field_trajectories(fields, duration: float, titles=None, ncols: int = 4,
                            ylim: float | None = None):
    """One panel per trajectory: both field components against time.

    Args:
        fields: ``(N, T, 2)`` field samples, reduced units, evenly spaced over ``duration``.
        duration: model time of a trajectory.
        titles: optional ``N`` panel titles.
        ncols: panels per row.
        ylim: symmetric field limit of every panel (default: the largest |E|).

    Returns:
        The ``Figure``.
    """
    import matplotlib.pyplot as plt

    f = _fields(fields)
    if f.ndim != 3:
        raise ValueError(f"fields must have shape (N, T, 2), got {f.shape}")
    if titles is not None and len(titles) != len(f):
        raise ValueError(f"titles must hold one title per trajectory ({len(f)}), got "
                         f"{len(titles)}")
    n, t = f.shape[:2]
    ncols = max(1, min(int(ncols), n))
    nrows = -(-n // ncols)
    times = duration * (np.arange(t) + 0.5) / t
    lim = ylim or 1.05 * max(float(np.abs(f).max()), 1e-6)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.0 * ncols, 2.2 * nrows), squeeze=False,
                             sharex=True, sharey=True, constrained_layout=True)
    for i, ax in enumerate(axes.ravel()):
        if i >= n:
            ax.axis("off")
            continue
        _draw_field(ax, times, f[i], legend=i == 0)
        ax.set_ylim(-lim, lim)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
        if i % ncols == 0:
            ax.set_ylabel("field (reduced units)")
        if i // ncols == nrows - 1:
            ax.set_xlabel("time (model units)")
    return fig


def plot_latent_traversal(fields, values, duration: float):
    """Trajectories decoded along each latent axis, the other latents held at 0.

    Args:
        fields: ``(d, K, T, 2)``: row ``i`` holds the trajectories decoded at ``K`` values of
            latent ``i``.
        values: ``(K,)`` the latent values of the columns.
        duration: model time of a trajectory.

    Returns:
        The ``Figure``.
    """
    import matplotlib.pyplot as plt

    f = _fields(fields)
    if f.ndim != 4 or f.shape[1] != len(values):
        raise ValueError(f"fields must have shape (d, K, T, 2) with K = len(values) = "
                         f"{len(values)}, got {f.shape}")
    d, k, t = f.shape[:3]
    times = duration * (np.arange(t) + 0.5) / t
    lim = 1.05 * max(float(np.abs(f).max()), 1e-6)
    fig, axes = plt.subplots(d, k, figsize=(1.9 * k, 1.5 * d), squeeze=False, sharex=True,
                             sharey=True, constrained_layout=True)
    for i in range(d):
        for j in range(k):
            ax = axes[i, j]
            _draw_field(ax, times, f[i, j], legend=(i == 0 and j == 0))
            ax.set_ylim(-lim, lim)
            if i == 0:
                ax.set_title(f"z = {values[j]:+.1f}", fontsize=9)
            if j == 0:
                ax.set_ylabel(f"$z_{i + 1}$ varied\nfield (red. units)", fontsize=8)
            if i == d - 1:
                ax.set_xlabel("time (model units)", fontsize=8)
    return fig


def plot_best_so_far(curves: dict, threshold: float | None = 0.95, level: float = 0.95,
                     ax=None):
    """Mean best-so-far curve of each method over its repeats, with the confidence band of
    the mean (Student-t, ``level``).

    Args:
        curves: ``{label: (R, N) best value after each evaluation}``, in units of the
            reference optimum (1 = the optimum), R >= 2 repeats.
        threshold: a horizontal line (e.g. the success level), or None.
        level: coverage of the band.
        ax: axis to draw on (default: a new figure).

    Returns:
        The ``Figure``.
    """
    if not curves:
        raise ValueError("curves is empty: pass {label: (R, N) best-so-far array}")
    fig, ax = figure_and_axis(ax, (6.0, 4.0))
    for label, best in curves.items():
        b = np.asarray(best, dtype=np.float64)
        if b.ndim != 2 or len(b) < 2:
            raise ValueError(f"curves[{label!r}] must be (R, N) with R >= 2 repeats, got "
                             f"{b.shape}")
        stats = np.array([mean_interval(b[:, i], level) if np.ptp(b[:, i]) > 0 else
                          (b[0, i],) * 3 for i in range(b.shape[1])])
        n = np.arange(1, b.shape[1] + 1)
        (line,) = ax.plot(n, stats[:, 0], label=f"{label} ({len(b)} repeats)")
        ax.fill_between(n, stats[:, 1], stats[:, 2], color=line.get_color(), alpha=0.2)
    if threshold is not None:
        ax.axhline(threshold, color="k", ls="--", lw=1,
                   label=f"success: {threshold:.0%} of the optimum")
    ax.set_xlabel("evaluations of the lattice model")
    ax.set_ylabel("best curl so far / reference optimum")
    ax.set_title(f"mean and {level:.0%} interval of the mean")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_polarisation_curl(P, title: str = "", ax=None, step: int = 1,
                           vlim: float | None = None):
    """A polarisation field as arrows over the map of its curl.

    Args:
        P: ``(2, H, W)`` polarisation (component 0 along the rows, 1 along the columns).
        title: axis title.
        ax: axis to draw on (default: a new figure).
        step: draw every ``step``-th arrow along each axis.
        vlim: the colour scale spans ``[-vlim, vlim]``; pass the same value to panels that
            are compared (default: this field's largest |curl|).

    Returns:
        The ``Figure``.
    """
    from ..simulate import curl

    p = np.asarray(P, dtype=np.float64)
    if p.ndim != 3 or p.shape[0] != 2:
        raise ValueError(f"P must have shape (2, H, W), got {p.shape}")
    c = curl(p)
    fig, ax = figure_and_axis(ax, (4.8, 4.0))
    if vlim is not None and not (np.isfinite(vlim) and vlim > 0):
        raise ValueError(f"vlim must be a positive number (the colour scale's limit), got "
                         f"{vlim!r}")
    lim = float(vlim) if vlim is not None else max(float(np.abs(c).max()), 1e-9)
    im = ax.imshow(c, cmap="RdBu_r", vmin=-lim, vmax=lim)
    rows, cols = np.mgrid[0:p.shape[1]:step, 0:p.shape[2]:step]
    ax.quiver(cols, rows, p[1, ::step, ::step], p[0, ::step, ::step], angles="xy",
              scale_units="xy", scale=1.2 / step, width=0.006)
    fig.colorbar(im, ax=ax, label="curl of P (P per lattice spacing)")
    ax.set_xlabel("column (lattice sites)")
    ax.set_ylabel("row (lattice sites)")
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def plot_latent_objective(z, values, dims: tuple[int, int] = (0, 1), best=None,
                          label: str = "mean |curl| (P per lattice spacing)", ax=None,
                          reference=None):
    """Objective values of points in a latent space, projected on two latent dimensions.

    Args:
        z: ``(M, d)`` latent points. values: ``(M,)`` the objective at each.
        dims: the two latent dimensions shown.
        best: optional ``(K, d)`` points marked with stars (e.g. the best point of each run).
        label: colour-bar label. ax: axis to draw on.
        reference: optional ``(d,)`` point marked with a cross (e.g. the reference optimum).

    Returns:
        The ``Figure``.
    """
    zz = np.asarray(z, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if zz.ndim != 2 or v.shape != (len(zz),) or max(dims) >= zz.shape[1]:
        raise ValueError(f"z must be (M, d) with d > max(dims) and values (M,); got "
                         f"{zz.shape} and {v.shape}")
    fig, ax = figure_and_axis(ax, (5.2, 4.8))
    order = np.argsort(v)  # the best points drawn last, on top
    sc = ax.scatter(zz[order, dims[0]], zz[order, dims[1]], c=v[order], s=8, cmap="viridis")
    if best is not None:
        b = np.asarray(best, dtype=np.float64)
        ax.scatter(b[:, dims[0]], b[:, dims[1]], marker="*", s=90, c="tab:red",
                   edgecolors="k", label="best point of each BO run", zorder=4)
    if reference is not None:
        r = np.asarray(reference, dtype=np.float64).ravel()
        if r.shape != (zz.shape[1],):
            raise ValueError(f"reference must be one latent point of shape ({zz.shape[1]},), "
                             f"got {np.shape(reference)}")
        # on top of everything but hollow: a magenta ring, visible on the yellow of the best
        # dense points, through which the runs' best points that land on it stay visible
        ax.scatter([r[dims[0]]], [r[dims[1]]], marker="o", s=260, facecolors="none",
                   edgecolors="magenta", linewidths=2.5, label="reference optimum", zorder=5)
    if best is not None or reference is not None:  # below the axes: it hides no point
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncols=2)
    fig.colorbar(sc, ax=ax, label=label)
    ax.set_xlabel(f"$z_{dims[0] + 1}$ (latent units)")
    ax.set_ylabel(f"$z_{dims[1] + 1}$ (latent units)")
    return fig
