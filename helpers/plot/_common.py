"""Small pieces shared by the figure modules: class colours, and one axis to draw on."""

from __future__ import annotations

CLASS_COLOURS = ["tab:cyan", "tab:orange", "tab:red", "tab:green", "tab:purple", "tab:olive"]


def figure_and_axis(ax, figsize: tuple[float, float]):
    """``(fig, ax)``: the figure of the given ``ax``, or a new figure of ``figsize`` inches."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    return fig, ax
