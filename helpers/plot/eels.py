"""Figures of the EELS notebook (10): the PCA scree, the NMF components, and GP-reconstructed
maps beside their noise-free truth.

- :func:`plot_scree`: explained-variance ratio of each PCA component (log scale);
- :func:`plot_unmixing`: NMF spectra over energy and their abundance maps;
- :func:`plot_map_rows`: one row per component, one column per kind of map (truth, NMF, GP
  mean, GP standard deviation...), each panel with its colour bar.

Every function returns the matplotlib ``Figure``; maps are drawn with ``imshow`` (origin upper
left), their axes in angstrom when ``pixel_size`` (A per pixel) is given, else in pixels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ._common import CLASS_COLOURS, figure_and_axis

__all__ = ["plot_map_rows", "plot_scree", "plot_unmixing"]


def plot_scree(ratio, n_marked: int | None = None, ax=None, threshold: float | None = None,
               marked_label: str = "kept"):
    """Explained-variance ratio ``(n,)`` of PCA components on a log axis; the first
    ``n_marked`` drawn filled and labelled ``marked_label``; ``threshold`` (a ratio, e.g. a
    factor times the noise floor) drawn as a dashed line."""
    r = np.asarray(ratio, float).ravel()
    if r.size == 0:
        raise ValueError("ratio is empty; pass the PCA's explained_variance_ratio_")
    fig, ax = figure_and_axis(ax, (4.5, 3.2))
    idx = np.arange(1, r.size + 1)
    ax.semilogy(idx, r, "o-", color="0.4", mfc="white")
    if n_marked:
        ax.semilogy(idx[:n_marked], r[:n_marked], "o", color="tab:red", label=marked_label)
    if threshold is not None:
        ax.axhline(threshold, color="0.5", ls="--", lw=1, label="threshold")
    if n_marked or threshold is not None:
        ax.legend()
    ax.set(xlabel="PCA component", ylabel="explained variance ratio", title="PCA scree")
    return fig


def _map_axes(ax, shape: tuple[int, int], pixel_size: float | None) -> dict:
    """``imshow`` keywords and axis labels for a ``(h, w)`` map covering the field of view:
    angstrom when ``pixel_size`` (A per pixel of this map) is given, else pixels."""
    h, w = shape
    if pixel_size is None:
        ax.set(xlabel="x (px)", ylabel="y (px)")
        return {}
    ax.set(xlabel="x (Å)", ylabel="y (Å)")
    return {"extent": (-0.5 * pixel_size, (w - 0.5) * pixel_size,
                       (h - 0.5) * pixel_size, -0.5 * pixel_size)}


def plot_unmixing(energy, spectra, maps, labels: Sequence[str] | None = None,
                  energy_unit: str = "eV", pixel_size: float | None = None,
                  units: str = "NMF weight (dimensionless)",
                  window: tuple[float, float] | None = None):
    """NMF spectra ``(K, E)`` over ``energy`` ``(E,)`` (left, log counts) and their maps
    ``(K, H, W)`` (``pixel_size`` A per pixel for axes in angstrom; ``units`` labels the
    colour bars). ``window`` (low, high, in ``energy`` units) adds a linear inset of that
    energy range, each spectrum scaled to its maximum there, to compare edge shapes (a
    spectrum that is zero outside a window falls off the log axis there)."""
    import matplotlib.pyplot as plt

    s, m = np.asarray(spectra, float), np.asarray(maps, float)
    e = np.asarray(energy, float)
    if s.ndim != 2 or m.ndim != 3 or len(s) != len(m) or s.shape[1] != e.size:
        raise ValueError(f"need spectra (K, E), maps (K, H, W), energy (E,); got {s.shape}, "
                         f"{m.shape}, {e.shape}")
    k = len(s)
    labels = list(labels) if labels is not None else [f"component {i + 1}" for i in range(k)]
    inside = None
    if window is not None:
        inside = (e >= window[0]) & (e <= window[1])
        if inside.sum() < 2:
            raise ValueError(f"window {window} holds fewer than 2 energy channels; give a "
                             f"range inside {e.min():g}-{e.max():g} {energy_unit}")
    first = 2 if inside is None else 3  # grid column of the first map
    fig = plt.figure(figsize=(4.6 + 2.6 * (k + first - 2), 3.4))
    grid = fig.add_gridspec(1, k + first)
    ax = fig.add_subplot(grid[0, :2])
    for i in range(k):
        ax.plot(e, s[i], color=CLASS_COLOURS[i % len(CLASS_COLOURS)], lw=1, label=labels[i])
    ax.set(xlabel=f"energy loss ({energy_unit})",
           ylabel="electron counts / channel at unit weight",
           title="NMF spectra", yscale="log")
    # log-axis floor: a tenth of the smallest typical (median positive) level, so that
    # channels at or near zero (a spectrum confined to one edge) do not stretch the axis
    levels = [np.median(row[row > 0]) for row in s if (row > 0).any()]
    if levels:
        ax.set_ylim(0.1 * min(levels), 2.0 * float(s.max()))
    ax.legend(fontsize=7, loc="upper right")
    if inside is not None:
        zoom = fig.add_subplot(grid[0, 2])
        for i in range(k):
            part = s[i, inside]
            top = float(np.abs(part).max())
            zoom.plot(e[inside], part / (top if top > 0 else 1.0), lw=1, marker=".", ms=3,
                      color=CLASS_COLOURS[i % len(CLASS_COLOURS)])
        zoom.set(xlabel=f"energy loss ({energy_unit})",
                 ylabel="counts / channel, each / its max",
                 title=f"{window[0]:g}-{window[1]:g} {energy_unit}")
    for i in range(k):
        a = fig.add_subplot(grid[0, i + first])
        im = a.imshow(m[i], cmap="magma", **_map_axes(a, m[i].shape, pixel_size))
        fig.colorbar(im, ax=a, fraction=0.046, label=units)
        a.set_title(labels[i])
    fig.tight_layout()
    return fig


def plot_map_rows(columns: Mapping[str, np.ndarray], row_labels: Sequence[str] | None = None,
                  shared_scale: Sequence[str] = (),
                  units: str = "NMF weight (dimensionless)",
                  pixel_size: float | None = None, range_from: str | None = None):
    """A grid of maps: ``columns`` maps a column title to ``(K, h, w)`` maps (sizes may
    differ between columns, e.g. a 2x finer reconstruction); row ``i`` shows component
    ``i``. Columns named in ``shared_scale`` share each row's colour range (truth and
    estimates); the others (e.g. a standard deviation) get their own. ``units`` labels the
    colour bars; ``pixel_size`` (A per pixel of the first column's maps; a column with
    more pixels covers the same field) puts the axes in angstrom. ``range_from`` (one of
    ``shared_scale``, e.g. the noise-free truth) sets that shared range alone, so a noisy map
    does not flatten the others; values beyond it saturate (arrows on the colour bar)."""
    import matplotlib.pyplot as plt

    if not columns:
        raise ValueError("give at least one column of maps")
    arrays = {name: np.asarray(v, float) for name, v in columns.items()}
    ks = {a.shape[0] for a in arrays.values()}
    if any(a.ndim != 3 for a in arrays.values()) or len(ks) != 1:
        raise ValueError("every column must be (K, h, w) with the same K")
    k = ks.pop()
    if range_from is not None and (range_from not in shared_scale or range_from not in columns):
        raise ValueError(f"range_from={range_from!r} must name a column that is also in "
                         f"shared_scale; columns {list(columns)}, shared_scale "
                         f"{list(shared_scale)}")
    h0 = next(iter(arrays.values())).shape[1]
    labels = list(row_labels) if row_labels is not None else [f"component {i + 1}"
                                                              for i in range(k)]
    fig, axes = plt.subplots(k, len(arrays), figsize=(3.0 * len(arrays), 2.7 * k),
                             squeeze=False)
    for i in range(k):
        shared = ([arrays[range_from][i]] if range_from is not None
                  else [arrays[n][i] for n in shared_scale if n in arrays])
        lo = min(float(np.nanmin(a)) for a in shared) if shared else None
        hi = max(float(np.nanmax(a)) for a in shared) if shared else None
        for j, (name, a) in enumerate(arrays.items()):
            ax = axes[i, j]
            h, w = a.shape[1:]
            scale = (lo, hi) if name in shared_scale else (None, None)
            cmap = "viridis" if name in shared_scale else "cividis"
            size = None if pixel_size is None else pixel_size * h0 / h
            im = ax.imshow(a[i], cmap=cmap, vmin=scale[0], vmax=scale[1],
                           **_map_axes(ax, (h, w), size))
            extend = "neither"
            if range_from is not None and name in shared_scale:
                below = bool(np.nanmin(a[i]) < lo)
                above = bool(np.nanmax(a[i]) > hi)
                extend = {(True, True): "both", (True, False): "min",
                          (False, True): "max"}.get((below, above), "neither")
            fig.colorbar(im, ax=ax, fraction=0.046, label=units, extend=extend)
            ax.set_title(f"{labels[i]}: {name}", fontsize=9)
    fig.tight_layout()
    return fig
