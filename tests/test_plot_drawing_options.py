"""Drawing options of the latent figures: colour bars, a visible background for the gaps
between tiles, latent values on the loop grid, a reference point drawn on top."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

import helpers.plot as hplot
from helpers.analysis import latent_grid


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_manifold_colour_bar_and_grey_gaps_only_when_asked():
    grid = np.random.default_rng(0).normal(size=(3, 3, 5, 5))
    plain = hplot.plot_manifold(grid, cmap="RdBu_r")
    assert len(plain.axes) == 1  # default unchanged: no colour bar
    assert plain.axes[0].images[0].cmap.get_bad()[3] == 0  # transparent gaps
    fig = hplot.plot_manifold(grid, cmap="RdBu_r", colorbar_label="value (a.u.)",
                              bad_colour="0.8")
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "value (a.u.)"
    assert np.allclose(fig.axes[0].images[0].cmap.get_bad(), (0.8, 0.8, 0.8, 1.0))


def test_latent_mosaic_grey_gaps():
    _, axes_values = latent_grid(np.random.default_rng(0).normal(size=(50, 2)), 3)
    tiles = np.random.default_rng(1).normal(size=(3, 3, 4, 4))
    fig = hplot.plot_latent_mosaic(tiles, axes_values, bad_colour="0.8")
    assert np.allclose(fig.axes[0].images[0].cmap.get_bad(), (0.8, 0.8, 0.8, 1.0))


def test_loop_grid_shows_latent_values():
    z = np.random.default_rng(0).normal(size=(80, 2))
    _, axes_values = latent_grid(z, 4)
    loops = np.random.default_rng(1).normal(size=(4, 4, 12))
    fig = hplot.plot_loop_grid(np.linspace(-1, 1, 12), loops, axes_values=axes_values)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"{v:.2g}" for v in axes_values[0]]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"{v:.2g}" for v in axes_values[1]]
    assert not hplot.plot_loop_grid(np.linspace(-1, 1, 12), loops).axes[0].get_xticks().size
    with pytest.raises(ValueError, match="axes_values must be"):
        hplot.plot_loop_grid(np.linspace(-1, 1, 12), loops, axes_values=axes_values[:, :3])


def test_reference_optimum_drawn_above_the_points():
    rng = np.random.default_rng(0)
    fig = hplot.plot_latent_objective(rng.normal(size=(40, 3)), rng.random(40),
                                      best=rng.normal(size=(3, 3)), reference=np.zeros(3))
    points, stars, cross = fig.axes[0].collections
    assert cross.get_zorder() > max(points.get_zorder(), stars.get_zorder())
    # hollow, so that the runs' best points under it stay visible
    face = cross.get_facecolor()
    assert len(face) == 0 or np.all(face[:, 3] == 0)
