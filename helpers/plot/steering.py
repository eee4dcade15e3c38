"""Figures of the Si-dopant notebook (14): hop-rate maps over the beam offset, a cut through
them along a bond, and the steering episodes (success against beam time, Si paths on the
lattice).

Rate maps live on a square grid of beam offsets: ``axis`` ``(n,)`` angstrom, the grid
``(n * n, 2)`` built as ``np.meshgrid(axis, axis)`` flattened row-major (row ``i`` at
``y = axis[i]``, y up), and ``in_disc`` ``(n * n,)`` marks the points drawn (the others are
blank). Offsets are in the Si's local frame (:mod:`helpers.simulate.si_dopant`).
"""

from __future__ import annotations

import numpy as np

from ..simulate.graphene import CC_BOND
from ..simulate.si_dopant import bond_directions, site_position

__all__ = ["plot_rate_cut", "plot_rate_maps", "plot_steering", "plot_true_rates_and_dwells"]

_OFFSET_LABELS = {"xlabel": "beam offset x (Å)", "ylabel": "beam offset y (Å)"}


def _check_grid(maps, axis, in_disc) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    maps = np.asarray(maps, dtype=float)
    axis = np.asarray(axis, dtype=float)
    in_disc = np.asarray(in_disc, dtype=bool)
    if maps.shape != (len(axis) ** 2, 3) or in_disc.shape != (len(axis) ** 2,):
        raise ValueError(f"maps must be (len(axis)**2, 3) = ({len(axis) ** 2}, 3) and in_disc "
                         f"({len(axis) ** 2},); got {maps.shape} and {in_disc.shape}: build "
                         "them on np.meshgrid(axis, axis) flattened row-major")
    return maps, axis, in_disc


def _map_panels(fig, axes, maps, axis, in_disc, title, label, cmap, vmin, vmax, ring="w"):
    """One panel per neighbour with its own colour bar; the neighbours are ringed in ``ring``
    (a colour that shows on the map), the one shown in red."""
    import matplotlib.pyplot as plt

    step = axis[1] - axis[0]
    extent = (axis[0] - step / 2, axis[-1] + step / 2) * 2
    bonds = CC_BOND * bond_directions()
    shown = maps[in_disc]
    extend = ("both" if vmin is not None and shown.min() < vmin and shown.max() > vmax else
              "max" if shown.max() > vmax else
              "min" if vmin is not None and shown.min() < vmin else "neither")
    for k, ax in enumerate(axes):
        img = np.where(in_disc, maps[:, k], np.nan).reshape(len(axis), len(axis))
        im = ax.imshow(img, origin="lower", extent=extent, cmap=cmap, vmin=vmin, vmax=vmax)
        ax.plot(*bonds.T, "o", mfc="none", mec=ring, ms=9)
        ax.plot(*bonds[k], "o", mfc="none", mec="r", ms=11, mew=2)
        ax.plot(0, 0, "s", color="w", mec="k", ms=6)
        ax.set(title=f"{title}: neighbour {k}", **_OFFSET_LABELS)
        fig.colorbar(im, ax=ax, label=label, extend=extend, shrink=0.9)
    plt.setp(axes, aspect="equal")


def plot_true_rates_and_dwells(true_maps, axis, in_disc, offsets, neighbour):
    """The ground-truth rate maps and the dwells of the training experiment.

    Args:
        true_maps: ``(len(axis)**2, 3)`` true hop rate toward each neighbour, per second.
        axis, in_disc: the grid (module docstring).
        offsets: ``(N, 2)`` local-frame beam offsets of the dwells, angstrom.
        neighbour: ``(N,)`` neighbour reached in each dwell (0, 1, 2), or -1 for no hop.
    Returns the ``Figure``.
    """
    import matplotlib.pyplot as plt

    true_maps, axis, in_disc = _check_grid(true_maps, axis, in_disc)
    offsets = np.asarray(offsets, dtype=float)
    neighbour = np.asarray(neighbour)
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.4), layout="constrained")
    _map_panels(fig, axes[:3], true_maps, axis, in_disc, "true rate", "hop rate (1/s)",
                "viridis", 0.0, float(true_maps.max()))
    ax = axes[3]
    ax.scatter(*offsets[neighbour < 0].T, s=2, c="0.7", label="no hop")
    for k in range(3):
        ax.scatter(*offsets[neighbour == k].T, s=4, label=f"hop to {k}")
    ax.set(aspect="equal", title="training dwells (local frame)", **_OFFSET_LABELS)
    ax.legend(markerscale=3, fontsize=8, loc="upper right")
    return fig


def plot_rate_maps(learned, true_maps, band_width, axis, in_disc):
    """Learned rate maps (same colour scale as the truth), their error against the truth,
    and the width of the 90 % band: three rows of three neighbours.

    Args:
        learned, true_maps, band_width: ``(len(axis)**2, 3)`` per second.
        axis, in_disc: the grid (module docstring).
    Returns the ``Figure``.
    """
    import matplotlib.pyplot as plt

    learned, axis, in_disc = _check_grid(learned, axis, in_disc)
    true_maps, _, _ = _check_grid(true_maps, axis, in_disc)
    band_width, _, _ = _check_grid(band_width, axis, in_disc)
    error = learned - true_maps
    span = float(np.abs(error[in_disc]).max())
    fig, axes = plt.subplots(3, 3, figsize=(15, 12.5), layout="constrained")
    _map_panels(fig, axes[0], learned, axis, in_disc, "learned rate", "hop rate (1/s)",
                "viridis", 0.0, float(true_maps.max()))
    _map_panels(fig, axes[1], error, axis, in_disc, "learned - true", "rate error (1/s)",
                "RdBu_r", -span, span, ring="k")
    _map_panels(fig, axes[2], band_width, axis, in_disc, "90 % band width",
                "band width (1/s)", "magma", 0.0, float(band_width[in_disc].max()))
    return fig


def plot_rate_cut(along, true_cut, learned_cut, lower, upper, peak_offset, loss):
    """A cut through the rate maps along the bond to neighbour 0, and the training curve.

    On this cut neighbours 1 and 2 lie mirror-symmetric, so their true rates coincide and are
    drawn once; the learned ones (the mirror is not built into the model) are drawn apart.

    Args:
        along: ``(L,)`` offset along the bond to neighbour 0, angstrom.
        true_cut, learned_cut, lower, upper: ``(L, 3)`` rates and the 90 % band, per second.
        peak_offset: the true rate's peak distance, angstrom (a vertical line).
        loss: ``(epochs,)`` training negative log-likelihood per dwell, nats.
    Returns the ``Figure``.
    """
    import matplotlib.pyplot as plt

    along = np.asarray(along, dtype=float)
    fig, ax = plt.subplots(1, 2, figsize=(13, 4.3), layout="constrained")
    colours = ("C0", "C1", "C2")
    ax[0].plot(along, true_cut[:, 0], "k--", lw=1.5, label="true, neighbour 0")
    ax[0].plot(along, true_cut[:, 1], ":", color="k", lw=1.5,
               label="true, neighbours 1 and 2 (equal on this cut)")
    for k in range(3):
        ax[0].plot(along, learned_cut[:, k], color=colours[k], label=f"learned, neighbour {k}")
        ax[0].fill_between(along, lower[:, k], upper[:, k], color=colours[k], alpha=0.2)
    ax[0].axvline(peak_offset, color="0.5", lw=0.8)
    ax[0].annotate(f"true peak, {peak_offset} Å", (peak_offset, 0.98), xycoords=("data",
                   "axes fraction"), ha="right", va="top", fontsize=8, color="0.4",
                   xytext=(-3, 0), textcoords="offset points")
    ax[0].set(xlabel="beam offset along the bond to neighbour 0 (Å)", ylabel="hop rate (1/s)",
              title="a cut through the rate maps (shaded: 90 % band)")
    ax[0].legend(fontsize=8, loc="upper left")
    ax[1].plot(np.arange(1, len(loss) + 1), loss)
    ax[1].set(xlabel="epoch", ylabel="negative log-likelihood per dwell (nats)",
              title="training (bootstrap-weighted, mean over the members)")
    return fig


def plot_steering(summaries, budget_s: float, goal_hops: int, show=("learned rates (greedy)",
                                                                     "random beam")):
    """Fraction of episodes at the goal against beam time, and the Si's path in the first
    episode for the controllers in ``show``.

    Args:
        summaries: ``{name: SteeringSummary}`` (:mod:`helpers.models.steering`), all run on
            the same goals.
        budget_s: the beam-time budget, s. goal_hops: hops from the start to the goal.
    Returns the ``Figure``.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(13, 5), layout="constrained")
    times = np.linspace(0, budget_s, 201)
    for name, s in summaries.items():
        reached = np.array([e.time_s if e.success else np.inf for e in s.episodes])
        ax[0].plot(times, (reached[None] <= times[:, None]).mean(1), label=name,
                   ls="--" if name.startswith("true") else "-")
    ax[0].set(xlabel="beam time (s)", ylabel="fraction of episodes at the goal",
              title=f"reaching a site {goal_hops} hops away", ylim=(-0.02, 1.02),
              xlim=(0, budget_s))
    ax[0].legend(loc="center right")

    paths = {name: site_position(summaries[name].episodes[0].path) for name in show}
    goal = site_position(summaries[show[0]].episodes[0].goal).reshape(2)
    span = np.vstack([*paths.values(), goal[None], np.zeros((1, 2))])
    centre = (span.min(0) + span.max(0)) / 2
    half = (span.max(0) - span.min(0)).max() / 2 + 2.5  # a square window, 2.5 A margin
    lo, hi = centre - half, centre + half
    reach = int(np.ceil(np.abs(span).max() / 2.0)) + 3
    cells = np.array([[i, j, s] for i in range(-reach, reach + 1)
                      for j in range(-reach, reach + 1) for s in (0, 1)])
    lattice = site_position(cells)
    bonds = CC_BOND * bond_directions()
    for a in lattice[cells[:, 2] == 0]:  # every bond once, from its sublattice-0 end
        for b in a + bonds:
            ax[1].plot([a[0], b[0]], [a[1], b[1]], color="0.85", lw=0.8, zorder=0)
    ax[1].plot(*lattice.T, ".", color="0.7", zorder=1)
    styles = ({"lw": 5, "alpha": 0.45, "ms": 9}, {"lw": 1.8, "ms": 5})
    for (name, path), colour, style in zip(paths.items(), ("C0", "C1"), styles):
        sites = summaries[name].episodes[0].path
        n_hops = int((np.diff(sites, axis=0) != 0).any(1).sum())
        ax[1].plot(*path.T, "-o", color=colour, label=f"{name}: {n_hops} hops in "
                   f"{len(sites) - 1} dwells", zorder=2, **style)
    ax[1].plot(0, 0, "ks", ms=9, label="start", zorder=3)
    ax[1].plot(*goal, "r*", ms=15, label="goal", zorder=3)
    ax[1].set(aspect="equal", xlabel="x (Å)", ylabel="y (Å)", title="first episode: Si paths",
              xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]))
    ax[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
