"""Figures of the im2spec / spec2im workflow: loops, error maps, latent classes and grids.

- :func:`plot_loop_predictions`: true against predicted loops at chosen sites;
- :func:`plot_error_maps`: the domain image beside per-site error maps, walls outlined;
- :func:`plot_latent_classes`: latent codes coloured by class, the class map, decoded centres;
- :func:`plot_latent_mosaic`: the patches nearest a regular grid of the latent plane;
- :func:`plot_loop_grid`: loops decoded over a regular grid of the latent plane;
- :func:`plot_patch_predictions`: true patches above predicted ones.

Every function takes numpy arrays and returns the matplotlib ``Figure``. Maps are ``(H, W)``
over sites drawn with ``imshow`` (origin upper left); voltages in volts, piezoresponse in
arbitrary units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ._common import class_colorbar, class_colours, figure_and_axis
from .tiles import tile_mosaic

__all__ = [
    "plot_loop_predictions",
    "plot_error_maps",
    "plot_latent_classes",
    "plot_latent_mosaic",
    "plot_loop_grid",
    "plot_patch_predictions",
]

_RESPONSE = "piezoresponse (a.u.)"
_VOLTAGE = "tip voltage (V)"


def _row(n: int, width: float = 3.6, height: float = 3.3):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, axes.ravel()


def plot_loop_predictions(voltage, true, pred, titles: Sequence[str] | None = None,
                          pred_label: str = "predicted"):
    """One panel per loop: the true loop (black) and the prediction (red, dashed).

    Args:
        voltage: ``(L,)`` volts.
        true, pred: ``(k, L)`` loops.
        titles: ``k`` panel titles (e.g. the site and its error).
    """
    v = np.asarray(voltage, dtype=float)
    t, p = np.atleast_2d(true), np.atleast_2d(pred)
    if t.shape != p.shape or t.shape[1] != len(v):
        raise ValueError(f"true {t.shape} and pred {p.shape} must both be (k, {len(v)})")
    fig, axes = _row(len(t))
    for k, ax in enumerate(axes):
        ax.plot(v, t[k], "k", lw=1.2, label="true")
        ax.plot(v, p[k], "r--", lw=1.2, label=pred_label)
        ax.set(xlabel=_VOLTAGE, ylabel=_RESPONSE if k == 0 else None)
        if titles is not None:
            ax.set_title(titles[k], fontsize=9)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_error_maps(image, maps: Mapping[str, np.ndarray], walls=None,
                    labels: Mapping[str, str] | None = None, cmap: str = "magma"):
    """The domain image, then one panel per error map, true walls outlined in cyan.

    Args:
        image: ``(H, W)`` domain image.
        maps: title -> ``(H, W)`` map (NaN where there is no value, e.g. the training half).
        walls: optional ``(H, W)`` bool true wall mask.
        labels: title -> colour-bar label.
    """
    img = np.asarray(image, dtype=float)
    for name, m in maps.items():
        if np.shape(m) != img.shape:
            raise ValueError(f"map {name!r} has shape {np.shape(m)}, the image {img.shape}")
    fig, axes = _row(1 + len(maps), width=4.4, height=3.8)
    im = axes[0].imshow(img, cmap="RdBu_r")
    fig.colorbar(im, ax=axes[0], label=_RESPONSE, shrink=0.85)
    axes[0].set_title("domain image")
    for ax, (name, m) in zip(axes[1:], maps.items()):
        im = ax.imshow(m, cmap=cmap)
        fig.colorbar(im, ax=ax, label=(labels or {}).get(name, name), shrink=0.85)
        ax.set_title(name)
        if walls is not None:
            ax.contour(np.asarray(walls, dtype=float), levels=[0.5], colors="c",
                       linewidths=0.6)
    for ax in axes:
        ax.set(xlabel="x (sites)", ylabel="y (sites)")
    fig.tight_layout()
    return fig


def plot_latent_classes(z, labels, class_map, voltage, centre_loops, names=None):
    """Latent codes coloured by class, the class of each site, and the decoded class centres.

    Args:
        z: ``(N, d)`` latent codes (the first two are drawn).
        labels: ``(N,)`` int class of each code.
        class_map: ``(H, W)`` class per site (NaN where none: drawn as background).
        voltage: ``(L,)`` volts; centre_loops: ``(k, L)`` loops decoded from the class means.
        names: ``k`` class names for the colour bars and legend (default "class 0", ...).

    The colour bars are discrete: one block per class, labelled with its name.
    """
    zz, lab = np.asarray(z), np.asarray(labels)
    loops = np.atleast_2d(centre_loops)
    k = len(loops)
    names = [f"class {c}" for c in range(k)] if names is None else list(names)
    if len(names) != k:
        raise ValueError(f"names has {len(names)} entries for {k} classes (centre_loops rows)")
    cmap, norm = class_colours(k)
    fig, axes = _row(3, width=4.8, height=4.0)
    sc = axes[0].scatter(zz[:, 0], zz[:, 1], c=lab, s=4, cmap=cmap, norm=norm)
    class_colorbar(fig, sc, axes[0], names)
    axes[0].set(xlabel="$z_1$", ylabel="$z_2$", title="latent codes and GMM classes")
    im = axes[1].imshow(class_map, cmap=cmap, norm=norm)
    class_colorbar(fig, im, axes[1], names, shrink=0.85)
    axes[1].set(xlabel="x (sites)", ylabel="y (sites)", title="class map (patch centres)")
    for c, loop in enumerate(loops):
        axes[2].plot(voltage, loop, color=cmap(c), label=names[c])
    axes[2].set(xlabel=_VOLTAGE, ylabel=_RESPONSE, title="decoded class centres")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_latent_mosaic(tiles, axes_values, ax=None, title: str = "patches over the latent plane",
                       cmap: str = "RdBu_r", label: str = _RESPONSE,
                       bad_colour: str | None = None):
    """Tiles ``(n, n, p, p)`` laid out over the latent plane.

    ``axes_values``: ``(2, n)`` latent values along dimension 1 (left to right) and 2 (bottom
    to top), as returned by :func:`helpers.analysis.latent_grid`; row 0 of ``tiles`` is the top.
    ``bad_colour``: colour of the gaps between tiles (default: the colour map's, transparent),
    e.g. ``"0.8"`` where white would read as zero response of a diverging map.
    """
    a = np.asarray(axes_values, dtype=float)
    fig, ax = figure_and_axis(ax, (5.5, 5))
    if bad_colour is not None:
        import matplotlib.pyplot as plt

        cmap = plt.get_cmap(cmap).with_extremes(bad=bad_colour)
    ext = [a[0][0], a[0][-1], a[1][0], a[1][-1]]
    im = ax.imshow(tile_mosaic(tiles), cmap=cmap, extent=ext, aspect="auto")
    fig.colorbar(im, ax=ax, label=label)
    ax.set(xlabel="$z_1$", ylabel="$z_2$", title=title)
    return fig


def plot_loop_grid(voltage, grid_loops, ax=None,
                   title: str = "decoded loops over the latent plane", axes_values=None,
                   empty_colour: str = "0.85"):
    """Small loops ``(n, n, L)`` drawn on an ``n x n`` grid (row 0 at the top), one scale.

    Within each cell the voltage runs to the right and the response upwards.
    ``axes_values``: optional ``(2, n)`` latent values of the grid's columns (left to right)
    and rows (bottom to top), as from :func:`helpers.analysis.latent_grid`: the axes then
    show them at the cell centres (default: arrows only).
    A cell whose loop is all NaN (a grid point outside the region the data occupy) is drawn
    as an empty grey background cell (``empty_colour``).
    """
    v = np.asarray(voltage, dtype=float)
    g = np.asarray(grid_loops, dtype=float)
    if g.ndim != 3 or g.shape[0] != g.shape[1] or g.shape[2] != len(v):
        raise ValueError(f"grid_loops must be (n, n, {len(v)}), got {g.shape}")
    from matplotlib.patches import Rectangle

    empty = np.isnan(g).all(axis=2)
    if empty.all():
        raise ValueError("every cell of grid_loops is NaN: no loop to draw")
    n = g.shape[0]
    fig, ax = figure_and_axis(ax, (5.5, 5))
    x0 = (v - v.min()) / (np.ptp(v) or 1.0) * 0.85
    low = float(np.nanmin(g))
    span = (float(np.nanmax(g)) - low) or 1.0
    for i in range(n):
        for j in range(n):
            if empty[i, j]:
                ax.add_patch(Rectangle((j - 0.05, n - 1 - i - 0.05), 0.95, 0.95,
                                       color=empty_colour, lw=0))
                continue
            ax.plot(j + x0, (n - 1 - i) + (g[i, j] - low) / span * 0.85, "k", lw=0.7)
    ax.set(xlim=(-0.1, n), ylim=(-0.1, n))
    ax.set(xticks=[], yticks=[], title=title,
           xlabel="$z_1$ $\\rightarrow$ (in a cell: voltage)",
           ylabel="$z_2$ $\\rightarrow$ (in a cell: response)")
    if axes_values is not None:
        a = np.asarray(axes_values, dtype=float)
        if a.shape != (2, n):
            raise ValueError(f"axes_values must be (2, {n}) latent values, got {a.shape}")
        ticks = np.arange(n) + 0.425  # the centre of each cell's loop
        ax.set_xticks(ticks, [f"{v:.2g}" for v in a[0]], fontsize=7)
        ax.set_yticks(ticks, [f"{v:.2g}" for v in a[1]], fontsize=7)
        ax.set(xlabel="$z_1$ (in a cell: voltage)", ylabel="$z_2$ (in a cell: response)")
    return fig


def plot_patch_predictions(true, pred, titles: Sequence[str] | None = None,
                           pred_label: str = "predicted", cmap: str = "RdBu_r"):
    """True patches ``(k, p, p)`` in the top row, predictions below, one colour scale."""
    import matplotlib.pyplot as plt

    t, p = np.asarray(true), np.asarray(pred)
    if t.shape != p.shape or t.ndim != 3:
        raise ValueError(f"true {t.shape} and pred {p.shape} must both be (k, p, p)")
    k = len(t)
    fig, axes = plt.subplots(2, k, figsize=(2 * k, 4.4), squeeze=False)
    vmax = float(np.abs(t).max()) or 1.0
    for j in range(k):
        axes[0, j].imshow(t[j], cmap=cmap, vmin=-vmax, vmax=vmax)
        im = axes[1, j].imshow(p[j], cmap=cmap, vmin=-vmax, vmax=vmax)
        axes[0, j].set_title(titles[j] if titles is not None else "true", fontsize=8)
        axes[1, j].set_title(pred_label, fontsize=8)
    for a in axes.ravel():
        a.set(xticks=[], yticks=[])
    axes[0, 0].set_ylabel("true")
    axes[1, 0].set_ylabel(pred_label)
    fig.colorbar(im, ax=axes, label=_RESPONSE, shrink=0.8)
    return fig
