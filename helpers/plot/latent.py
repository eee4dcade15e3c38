"""Figures of learned latent spaces: decoded manifolds, encoded vs true angle, latent
histograms, latent scatters (coloured by a continuous value or by known classes). Each
function returns the matplotlib ``Figure``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._common import CLASS_COLOURS, figure_and_axis
from .tiles import tile_mosaic

__all__ = ["plot_manifold", "plot_angle_recovery", "plot_latent_histograms",
           "plot_latent_scatter", "plot_training_curves"]


def _tick_labels(values) -> list[str]:
    """Labels for tick ``values``: zero (to rounding) as "0", and the fewest significant
    digits (2 to 6) at which neighbouring labels differ."""
    v = np.asarray(values, dtype=float)
    span = float(np.ptp(v)) if v.size > 1 else abs(float(v[0])) if v.size else 0.0
    v = np.where(np.abs(v) <= 1e-9 * max(span, 1e-300), 0.0, v)
    for digits in range(2, 7):
        labels = [f"{x:.{digits}g}" for x in v]
        if len(set(labels)) == len(labels):
            break
    return labels


def _latent_ticks(axis, values, tile: int, pad: int) -> None:
    """Put the latent ``values`` (one per tile) at the tile centres of one mosaic axis: at
    most five ticks, evenly spaced in tiles from the first."""
    n = len(values)
    step = max(1, int(np.ceil((n - 1) / 4)))
    pick = np.arange(0, n, step)
    axis.set_ticks(pick * (tile + pad) + (tile - 1) / 2)
    axis.set_ticklabels(_tick_labels(np.asarray(values, dtype=float)[pick]))


def plot_manifold(grid: np.ndarray, ax=None, title: str = "decoded latent manifold",
                  labels: tuple[str, str] | None = None, cmap: str = "viridis",
                  colorbar_label: str | None = None, bad_colour: str | None = None):
    """Show ``model.manifold(n)`` (``(n, n, H, W)``): first latent to the right, second
    upwards (the layout ``manifold`` returns).

    A grid from ``manifold`` (a ``LatentGrid``) carries its latent values: the axes then show
    them at the tile centres and are named after its latents (``labels`` overrides the names).
    A plain array gets arrows only. The gaps between tiles are background, not data.
    ``colorbar_label``: draw a colour bar of the decoded values with this label (default:
    none). ``bad_colour``: colour of the gaps and of NaN pixels (default: the colour map's,
    transparent), e.g. ``"0.8"`` where white would read as a value of a diverging map.
    """
    fig, ax = figure_and_axis(ax, (5, 5))
    if bad_colour is not None:
        import matplotlib.pyplot as plt

        cmap = plt.get_cmap(cmap).with_extremes(bad=bad_colour)
    im = ax.imshow(tile_mosaic(np.asarray(grid)), cmap=cmap)
    if colorbar_label is not None:
        fig.colorbar(im, ax=ax, label=colorbar_label)
    dims = getattr(grid, "dims", None) or (0, 1)
    if labels is None:
        labels = tuple(f"$z_{{{d + 1}}}$" for d in (list(dims) + [1])[:2])
    x_values, y_values = getattr(grid, "x_values", None), getattr(grid, "y_values", None)
    h, w = grid.shape[-2:]
    if x_values is not None and len(x_values) == grid.shape[1]:
        _latent_ticks(ax.xaxis, x_values, w, 1)
        ax.set_xlabel(labels[0])
    else:
        ax.set_xticks([])
        ax.set_xlabel(f"{labels[0]} $\\rightarrow$")
    if y_values is not None and len(y_values) == grid.shape[0] and grid.shape[0] > 1:
        _latent_ticks(ax.yaxis, y_values, h, 1)
        ax.set_ylabel(labels[1])
    else:
        ax.set_yticks([])
        ax.set_ylabel("" if grid.shape[0] == 1 else f"{labels[1]} $\\rightarrow$")
    ax.set_title(title)
    return fig


def plot_angle_recovery(true_angle, encoded_angle, symmetry: int = 1, ax=None,
                        title: str | None = None, groups=None):
    """Encoded against true angle (degrees), after removing the best constant offset and
    wrapping modulo ``360 / symmetry``; the title gives the circular correlation.

    ``groups`` ``(N,)`` (e.g. discovered classes, each with its own canonical orientation):
    one offset is removed per group, as ``circular_correlation(..., groups=groups)`` does.
    """
    from ..analysis import angle_error, circular_correlation

    t = np.asarray(true_angle, dtype=float)
    e = np.asarray(encoded_angle, dtype=float)
    r = circular_correlation(t, e, symmetry, groups=groups)
    period = 2 * np.pi / symmetry
    if groups is None:
        err = angle_error(t, e, symmetry)
    else:
        g = np.asarray(groups).reshape(-1)
        err = np.empty_like(t)
        for value in np.unique(g):
            sel = g == value
            err[sel] = angle_error(t[sel], e[sel], symmetry)
    aligned = np.mod(t + err, period)
    fig, ax = figure_and_axis(ax, (4.5, 4.5))
    ax.scatter(np.degrees(np.mod(t, period)), np.degrees(aligned), s=3, alpha=0.5)
    top = np.degrees(period)
    ax.plot([0, top], [0, top], color="k", lw=0.8, ls="--")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("true angle (deg)")
    ax.set_ylabel("encoded angle, offset removed (deg)" if groups is None else
                  "encoded angle, offset per group removed (deg)")
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
                        dims: tuple[int, int] = (0, 1), cmap: str = "twilight",
                        classes=None, class_names: Sequence[str] | None = None,
                        title: str | None = None):
    """Scatter two latents, coloured by a continuous value or by known classes.

    Args:
        z: ``(N, D)`` latent codes, ``D >= 2``; columns ``dims`` are drawn.
        color: optional ``(N,)`` continuous value (e.g. the true angle), drawn with ``cmap``
            (cyclic by default) and a colour bar labelled ``label``.
        classes: optional ``(N,)`` integer class of each code, one colour per class and a
            legend; ``class_names[c]`` names class ``c`` (default ``"class c"``). Give
            ``color`` or ``classes``, not both.
        title: axis title.

    Returns:
        The ``Figure`` (that of ``ax`` when given).
    """
    z = np.asarray(z, dtype=float)
    if z.ndim != 2 or z.shape[1] <= max(dims):
        raise ValueError(f"z must be (N, D) with D > {max(dims)} for dims={dims}, got shape "
                         f"{z.shape}")
    if color is not None and classes is not None:
        raise ValueError("give color (a continuous value) or classes (integer labels), not both")
    fig, ax = figure_and_axis(ax, (4.5, 4))
    x, y = z[:, dims[0]], z[:, dims[1]]
    if classes is not None:
        lab = np.asarray(classes)
        if lab.shape != (len(z),):
            raise ValueError(f"classes must be (N,) = ({len(z)},) like z, got {lab.shape}")
        for k, c in enumerate(np.unique(lab)):
            sel = lab == c
            name = class_names[int(c)] if class_names is not None else f"class {c}"
            ax.scatter(x[sel], y[sel], s=8, color=CLASS_COLOURS[k % len(CLASS_COLOURS)],
                       label=name, alpha=0.7)
        ax.legend(fontsize=8, markerscale=2)
    else:
        sc = ax.scatter(x, y, c=color, s=3, cmap=cmap if color is not None else None)
        if color is not None:
            fig.colorbar(sc, ax=ax, label=label)
    ax.set_xlabel(f"$z_{dims[0] + 1}$")
    ax.set_ylabel(f"$z_{dims[1] + 1}$")
    if title:
        ax.set_title(title)
    return fig


def plot_training_curves(history, ax=None, title: str | None = None,
                         ylabel: str = "negative ELBO per image (nats)", label: str = ""):
    """The training loss of each epoch and, where recorded, the validation loss, with the
    epoch whose weights were kept (``history.best_epoch``) marked.

    Args:
        history: a ``History`` from a model's ``fit`` (``"loss"``, optionally ``"val_loss"``
            once per epoch).
        ylabel: the loss and its units; models with different likelihoods belong on
            separate axes.
        label: prefix of the legend entries (e.g. the model's name).
    """
    loss = np.asarray(history["loss"] if "loss" in history else [], dtype=float)
    if loss.ndim != 1 or not len(loss):
        raise ValueError("history must hold a non-empty 'loss' record, one value per epoch")
    fig, ax = figure_and_axis(ax, (4.5, 3.5))
    epochs = np.arange(1, len(loss) + 1)
    prefix = f"{label} " if label else ""
    ax.plot(epochs, loss, "o-", ms=3, label=f"{prefix}training")
    val = np.asarray(history["val_loss"], dtype=float) if "val_loss" in history else None
    if val is not None and len(val) == len(loss):
        ax.plot(epochs, val, "s--", ms=3, label=f"{prefix}validation")
    best = getattr(history, "best_epoch", None)
    if best is not None:
        # epochs are numbered from 1 in the History; best_epoch counts the same way
        ax.axvline(best, color="0.5", ls=":", lw=1, label=f"{prefix}weights kept (epoch {best})")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig
