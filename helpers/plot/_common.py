"""Small pieces shared by the figure modules: class colours and their colour bars, text
colours readable on any cell, and one axis to draw on."""

from __future__ import annotations

import numpy as np

CLASS_COLOURS = ["tab:cyan", "tab:orange", "tab:red", "tab:green", "tab:purple", "tab:olive"]


def figure_and_axis(ax, figsize: tuple[float, float]):
    """``(fig, ax)``: the figure of the given ``ax``, or a new figure of ``figsize`` inches."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    return fig, ax


def class_colours(n_classes: int):
    """``(cmap, norm)`` for ``n_classes`` discrete classes 0..n-1: one distinct colour each
    (:data:`CLASS_COLOURS`, then ``tab20``), boundaries between the integers."""
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm, ListedColormap

    n = int(n_classes)
    if n < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    colours = (CLASS_COLOURS + [colormaps["tab20"](k) for k in range(20)])[:n]
    if n > len(colours):
        raise ValueError(f"at most {len(colours)} classes can get distinct colours, got {n}")
    return ListedColormap(colours), BoundaryNorm(np.arange(n + 1) - 0.5, n)


def class_colorbar(fig, mappable, ax, names, label: str = "class", **kwargs):
    """A colour bar with one block per class, each labelled with its name (not 0..9)."""
    bar = fig.colorbar(mappable, ax=ax, ticks=np.arange(len(names)), label=label, **kwargs)
    bar.ax.set_yticklabels([str(n) for n in names])
    bar.ax.minorticks_off()
    return bar


def text_colour(rgba) -> str:
    """``"k"`` or ``"w"``: the text colour readable on a cell of colour ``rgba`` (relative
    luminance above or below 0.45)."""
    r, g, b = (float(c) for c in rgba[:3])
    return "k" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "w"
