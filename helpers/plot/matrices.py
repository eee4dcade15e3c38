"""Annotated matrices: confusion matrices, transition matrices, any small table of numbers
drawn as coloured cells with each value written on its cell in a colour that reads on it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._common import figure_and_axis, text_colour

__all__ = ["plot_matrix"]


def plot_matrix(values, ax=None, *, colour_values=None, row_labels: Sequence | None = None,
                col_labels: Sequence | None = None, xlabel: str = "", ylabel: str = "",
                title: str = "", fmt: str = "{:g}", cmap: str = "Blues", vmin=None, vmax=None,
                colorbar_label: str | None = None, fontsize: float = 9):
    """Draw the ``(R, C)`` matrix ``values`` as cells and write each value on its cell.

    Args:
        values: ``(R, C)`` numbers written on the cells (e.g. counts).
        colour_values: ``(R, C)`` numbers that set the cell colours (default ``values``), e.g.
            row-normalised fractions behind raw counts.
        row_labels, col_labels: tick labels (default 0..R-1, 0..C-1).
        fmt: format of the written values (``"{:d}"`` for counts, ``"{:.2f}"``).
        cmap, vmin, vmax: colours of ``colour_values`` (``vmin`` defaults to 0 for
            non-negative values); colorbar_label: a colour bar with
            this label (None: no colour bar).

    The text on each cell is black or white, whichever reads on that cell's colour.
    Returns the ``Figure``.
    """
    v = np.asarray(values)
    c = v if colour_values is None else np.asarray(colour_values, dtype=float)
    if v.ndim != 2 or c.shape != v.shape:
        raise ValueError(f"values must be a 2-D matrix and colour_values the same shape; got "
                         f"{v.shape} and {c.shape}")
    for name, labels, n in (("row_labels", row_labels, v.shape[0]),
                            ("col_labels", col_labels, v.shape[1])):
        if labels is not None and len(labels) != n:
            raise ValueError(f"{name} has {len(labels)} labels for {n} {name[:3]}s")
    fig, ax = figure_and_axis(ax, (0.7 * v.shape[1] + 2.5, 0.7 * v.shape[0] + 1.5))
    if vmin is None and (c >= 0).all():
        vmin = 0.0  # counts and probabilities: the palest colour means none, not the minimum
    im = ax.imshow(c, cmap=cmap, vmin=vmin, vmax=vmax)
    for (i, j), value in np.ndenumerate(v):
        text = fmt.format(int(value) if "d" in fmt else value)
        ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                color=text_colour(im.cmap(im.norm(c[i, j]))))
    ax.set_xticks(range(v.shape[1]), col_labels if col_labels is not None else
                  range(v.shape[1]))
    ax.set_yticks(range(v.shape[0]), row_labels if row_labels is not None else
                  range(v.shape[0]))
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if colorbar_label is not None:
        fig.colorbar(im, ax=ax, label=colorbar_label)
    return fig
