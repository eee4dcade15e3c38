"""Figures of the EELS notebook (10): the PCA scree, the NMF components, and GP-reconstructed
maps beside their noise-free truth.

- :func:`plot_scree`: explained-variance ratio of each PCA component (log scale);
- :func:`plot_unmixing`: NMF spectra over energy and their abundance maps;
- :func:`plot_map_rows`: one row per component, one column per kind of map (truth, NMF, GP
  mean, GP standard deviation...), each panel with its colour bar.

Every function returns the matplotlib ``Figure``; maps are drawn with ``imshow`` (origin upper
left, ``(row, col)`` in pixels).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ._common import CLASS_COLOURS, figure_and_axis

__all__ = ["plot_map_rows", "plot_scree", "plot_unmixing"]


def plot_scree(ratio, n_marked: int | None = None, ax=None):
    """Explained-variance ratio ``(n,)`` of PCA components on a log axis; the first
    ``n_marked`` (the components kept) drawn filled."""
    r = np.asarray(ratio, float).ravel()
    if r.size == 0:
        raise ValueError("ratio is empty; pass the PCA's explained_variance_ratio_")
    fig, ax = figure_and_axis(ax, (4.5, 3.2))
    idx = np.arange(1, r.size + 1)
    ax.semilogy(idx, r, "o-", color="0.4", mfc="white")
    if n_marked:
        ax.semilogy(idx[:n_marked], r[:n_marked], "o", color="tab:red", label="kept")
        ax.legend()
    ax.set(xlabel="PCA component", ylabel="explained variance ratio", title="PCA scree")
    return fig


def plot_unmixing(energy, spectra, maps, labels: Sequence[str] | None = None,
                  energy_unit: str = "eV"):
    """NMF spectra ``(K, E)`` over ``energy`` ``(E,)`` (left) and their maps ``(K, H, W)``."""
    import matplotlib.pyplot as plt

    s, m = np.asarray(spectra, float), np.asarray(maps, float)
    e = np.asarray(energy, float)
    if s.ndim != 2 or m.ndim != 3 or len(s) != len(m) or s.shape[1] != e.size:
        raise ValueError(f"need spectra (K, E), maps (K, H, W), energy (E,); got {s.shape}, "
                         f"{m.shape}, {e.shape}")
    k = len(s)
    labels = list(labels) if labels is not None else [f"component {i + 1}" for i in range(k)]
    fig = plt.figure(figsize=(4.6 + 2.6 * k, 3.4))
    grid = fig.add_gridspec(1, k + 2)
    ax = fig.add_subplot(grid[0, :2])
    for i in range(k):
        ax.plot(e, s[i], color=CLASS_COLOURS[i % len(CLASS_COLOURS)], lw=1, label=labels[i])
    ax.set(xlabel=f"energy loss ({energy_unit})", ylabel="counts / channel at unit weight",
           title="NMF spectra", yscale="log")
    ax.legend(fontsize=7)
    for i in range(k):
        a = fig.add_subplot(grid[0, i + 2])
        im = a.imshow(m[i], cmap="magma")
        fig.colorbar(im, ax=a, fraction=0.046, label="weight")
        a.set(title=labels[i], xlabel="col (px)", ylabel="row (px)")
    fig.tight_layout()
    return fig


def plot_map_rows(columns: Mapping[str, np.ndarray], row_labels: Sequence[str] | None = None,
                  shared_scale: Sequence[str] = (), units: str = "weight"):
    """A grid of maps: ``columns`` maps a column title to ``(K, h, w)`` maps (sizes may
    differ between columns, e.g. a 2x finer reconstruction); row ``i`` shows component
    ``i``. Columns named in ``shared_scale`` share each row's colour range (truth and
    estimates); the others (e.g. a standard deviation) get their own."""
    import matplotlib.pyplot as plt

    if not columns:
        raise ValueError("give at least one column of maps")
    arrays = {name: np.asarray(v, float) for name, v in columns.items()}
    ks = {a.shape[0] for a in arrays.values()}
    if any(a.ndim != 3 for a in arrays.values()) or len(ks) != 1:
        raise ValueError("every column must be (K, h, w) with the same K")
    k = ks.pop()
    labels = list(row_labels) if row_labels is not None else [f"component {i + 1}"
                                                              for i in range(k)]
    fig, axes = plt.subplots(k, len(arrays), figsize=(3.0 * len(arrays), 2.7 * k),
                             squeeze=False)
    for i in range(k):
        shared = [arrays[n][i] for n in shared_scale if n in arrays]
        lo = min(float(np.nanmin(a)) for a in shared) if shared else None
        hi = max(float(np.nanmax(a)) for a in shared) if shared else None
        for j, (name, a) in enumerate(arrays.items()):
            ax = axes[i, j]
            h, w = a.shape[1:]
            scale = (lo, hi) if name in shared_scale else (None, None)
            cmap = "viridis" if name in shared_scale else "cividis"
            im = ax.imshow(a[i], cmap=cmap, vmin=scale[0], vmax=scale[1])
            fig.colorbar(im, ax=ax, fraction=0.046, label=units)
            ax.set_title(f"{labels[i]}: {name}", fontsize=9)
            ax.set(xlabel=f"col (of {w} px)", ylabel=f"row (of {h} px)")
    fig.tight_layout()
    return fig
