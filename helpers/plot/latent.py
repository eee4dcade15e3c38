"""Figures of learned latent spaces: decoded manifolds, encoded vs true angle, latent
histograms. Each function returns the matplotlib ``Figure``."""

from __future__ import annotations

import numpy as np

__all__ = ["mosaic", "plot_manifold", "plot_angle_recovery", "plot_latent_histograms",
           "plot_latent_scatter"]


def mosaic(grid: np.ndarray, pad: int = 1, fill: float | None = None) -> np.ndarray:
    """Tile ``(rows, cols, H, W)`` images into one ``(rows*(H+pad)-pad, cols*(W+pad)-pad)``
    array; gaps get ``fill`` (default: the grid's minimum)."""
    g = np.asarray(grid, dtype=np.float32)
    if g.ndim != 4:
        raise ValueError(f"grid must be (rows, cols, H, W), got shape {g.shape}")
    r, c, h, w = g.shape
    out = np.full((r * (h + pad) - pad, c * (w + pad) - pad),
                  g.min() if fill is None else fill, dtype=np.float32)
    for i in range(r):
        for j in range(c):
            out[i * (h + pad):i * (h + pad) + h, j * (w + pad):j * (w + pad) + w] = g[i, j]
    return out


def _axes(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    return fig, ax


def plot_manifold(grid: np.ndarray, ax=None, title: str = "decoded latent manifold",
                  labels: tuple[str, str] = ("$z_1$", "$z_2$"), cmap: str = "viridis"):
    """Show ``model.manifold(n)`` (``(n, n, H, W)``): first latent to the right, second
    upwards (the layout ``manifold`` returns)."""
    fig, ax = _axes(ax, (5, 5))
    ax.imshow(mosaic(grid), cmap=cmap)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"{labels[0]} $\\rightarrow$")
    ax.set_ylabel(f"{labels[1]} $\\rightarrow$")
    ax.set_title(title)
    return fig


def plot_angle_recovery(true_angle, encoded_angle, symmetry: int = 1, ax=None,
                        title: str | None = None):
    """Encoded against true angle (degrees), after removing the best constant offset and
    wrapping modulo ``360 / symmetry``; the title gives the circular correlation."""
    from ..models.metrics import angle_error, circular_correlation

    t = np.asarray(true_angle, dtype=float)
    e = np.asarray(encoded_angle, dtype=float)
    r = circular_correlation(e, t, symmetry)
    period = 2 * np.pi / symmetry
    err = angle_error(e, t, symmetry)
    aligned = np.mod(t + err, period)
    fig, ax = _axes(ax, (4.5, 4.5))
    ax.scatter(np.degrees(np.mod(t, period)), np.degrees(aligned), s=3, alpha=0.5)
    top = np.degrees(period)
    ax.plot([0, top], [0, top], color="k", lw=0.8, ls="--")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("true angle (deg)")
    ax.set_ylabel("encoded angle, offset removed (deg)")
    ax.set_title(title or f"circular r = {r:.3f}")
    return fig


def plot_latent_histograms(values: np.ndarray, names=None, bins: int = 50, axes=None):
    """One histogram per column of ``values`` ``(N, D)`` (e.g. ``enc.z``, or angle and
    offsets stacked); ``names`` labels them."""
    import matplotlib.pyplot as plt

    v = np.asarray(values, dtype=float)
    v = v.reshape(len(v), -1)
    d = v.shape[1]
    names = list(names) if names is not None else [f"$z_{i + 1}$" for i in range(d)]
    if axes is None:
        fig, axes = plt.subplots(1, d, figsize=(3 * d, 2.6), squeeze=False)
        axes = axes[0]
    else:
        fig = np.ravel(axes)[0].figure
    for i, ax in enumerate(np.ravel(axes)[:d]):
        ax.hist(v[:, i], bins=bins, color="C0")
        ax.set_xlabel(names[i])
        ax.set_ylabel("count")
    fig.tight_layout()
    return fig


def plot_latent_scatter(z: np.ndarray, color=None, ax=None, label: str = "",
                        dims: tuple[int, int] = (0, 1), cmap: str = "twilight"):
    """Scatter two latents coloured by ``color`` (e.g. the true angle, cyclic colour map)."""
    z = np.asarray(z, dtype=float)
    fig, ax = _axes(ax, (4.5, 4))
    sc = ax.scatter(z[:, dims[0]], z[:, dims[1]], c=color, s=3, cmap=cmap if color is not None
                    else None)
    ax.set_xlabel(f"$z_{dims[0] + 1}$")
    ax.set_ylabel(f"$z_{dims[1] + 1}$")
    if color is not None:
        fig.colorbar(sc, ax=ax, label=label)
    return fig
