"""helpers.plot: one naming convention, one latent scatter, figures that draw and check input."""

from __future__ import annotations

import inspect

import matplotlib.pyplot as plt
import numpy as np
import pytest

import helpers.plot as hplot
from helpers.plot import (
    crystallography,
    distortion,
    divide,
    eels,
    features,
    latent,
    matrices,
    optimisation,
    previews,
    spectra,
    steering,
    symmetry,
    tiles,
)

FIGURE_MODULES = (crystallography, distortion, divide, eels, features, latent, matrices,
                  optimisation, previews, spectra, steering, symmetry)


def test_every_public_figure_function_is_plot_and_exported():
    for module in FIGURE_MODULES:
        public = [name for name, obj in vars(module).items()
                  if inspect.isfunction(obj) and obj.__module__ == module.__name__
                  and not name.startswith("_")]
        assert public, module.__name__
        for name in public:
            assert name.startswith("plot_"), f"{module.__name__}.{name} is not named plot_*"
            assert getattr(hplot, name) is getattr(module, name), f"{name} not in helpers.plot"
        assert sorted(module.__all__) == sorted(public), module.__name__
    figures = [n for n in hplot.__all__ if n != "tile_mosaic"]
    assert all(n.startswith("plot_") for n in figures)
    assert sorted(hplot.__all__) == sorted(
        [n for m in FIGURE_MODULES for n in m.__all__] + tiles.__all__)


def test_tile_mosaic_places_images_and_fills_gaps():
    grid = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2)
    m = hplot.tile_mosaic(grid, pad=1, fill=-1.0)
    assert m.shape == (2 * 3 - 1, 3 * 3 - 1) and m.dtype == np.float32
    np.testing.assert_array_equal(m[3:5, 6:8], grid[1, 2])
    assert (m[2] == -1).all() and (m[:, 2] == -1).all()
    # by default the gaps are NaN, drawn as background rather than as the colour map's low end
    default = hplot.tile_mosaic(grid)
    assert np.isnan(default[2]).all() and np.isnan(default[:, 2]).all()
    assert not np.isnan(default[3:5, 6:8]).any()
    with pytest.raises(ValueError, match=r"reshape"):
        hplot.tile_mosaic(grid[0])


def test_latent_scatter_by_classes_draws_one_group_per_class_with_names():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(30, 3))
    classes = np.arange(30) % 3
    fig = hplot.plot_latent_scatter(z, classes=classes, class_names=["disk", "ring", "plus"],
                                    title="CNN latent")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["disk", "ring", "plus"]
    assert len(ax.collections) == 3 and len(fig.axes) == 1  # no colour bar
    np.testing.assert_allclose(ax.collections[1].get_offsets(), z[classes == 1][:, :2])
    assert ax.get_title() == "CNN latent"
    plt.close(fig)


def test_latent_scatter_by_value_draws_a_colour_bar_on_chosen_dims():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(20, 3))
    fig, ax = plt.subplots()
    out = hplot.plot_latent_scatter(z, rng.random(20), ax=ax, label="angle (deg)", dims=(2, 0))
    assert out is fig and len(fig.axes) == 2  # the axis and its colour bar
    np.testing.assert_allclose(ax.collections[0].get_offsets(), z[:, [2, 0]])
    assert ax.get_xlabel() == "$z_3$" and fig.axes[1].get_ylabel() == "angle (deg)"
    plt.close(fig)


@pytest.mark.parametrize("kwargs, word", [
    ({"color": np.zeros(5), "classes": np.zeros(5, int)}, "not both"),
    ({"classes": np.zeros(4, int)}, "classes must be"),
    ({"dims": (0, 3)}, "D > 3"),
])
def test_latent_scatter_rejects_bad_input(kwargs, word):
    with pytest.raises(ValueError, match=word):
        hplot.plot_latent_scatter(np.zeros((5, 2)), **kwargs)


def test_divide_figures_draw():
    from types import SimpleNamespace

    rng = np.random.default_rng(0)
    maps = {"a": rng.random((4, 4)), "b": rng.random((4, 4))}
    figs = [hplot.plot_component_maps(maps, maps),
            hplot.plot_recovery_scatter({"a": np.arange(5.0)}, {"a": np.arange(5.0)})]
    # what the figure reads of an ActiveLearningResult
    run = SimpleNamespace(n_labelled=np.array([5, 10]), rmse=np.array([1.0, 0.5]))
    figs.append(hplot.plot_active_learning_curves({"random": [run]}))
    assert all(len(f.axes) >= 1 for f in figs)
    with pytest.raises(ValueError, match="share no mechanism"):
        hplot.plot_component_maps(maps, {"c": maps["a"]})
    plt.close("all")


def test_feature_figures_draw():
    rng = np.random.default_rng(0)
    movie = rng.random((3, 40, 40))
    pts = [np.column_stack([rng.uniform(0, 40, (12, 2)), rng.integers(1, 3, 12)])
           for _ in range(3)]
    trajectories = [np.column_stack([np.arange(3), p[:3, 0], p[:3, 1]]) for p in pts]
    figs = [
        hplot.plot_coordinates(movie, pts, class_names={1: "C", 2: "Si"}, pixel_size=0.25),
        hplot.plot_trajectories(movie[0], trajectories),
        hplot.plot_patch_mosaic(rng.random((20, 6, 6)), n=20, ncols=5, labels=np.arange(20)),
        hplot.plot_latent_map(movie[0], pts[0], pts[0][:, 0], overlay=pts[0][:2], label="z1"),
        hplot.plot_histograms({"a": rng.normal(size=50), "b": rng.normal(size=50)},
                              xlabel="rad"),
    ]
    assert all(isinstance(f, plt.Figure) for f in figs)
    assert len(figs[0].axes) == 3
    assert figs[2].axes[0].get_title() == str(0)
    fig, ax = plt.subplots()
    assert hplot.plot_histograms(rng.normal(size=10), ax=ax) is fig
    with pytest.raises(ValueError, match="values for"):
        hplot.plot_latent_map(movie[0], pts[0], np.zeros(3))
    plt.close("all")


def test_steering_figures_draw_and_check_the_grid():
    from helpers.models.steering import RandomBeam, steering_trials
    from helpers.simulate import SiHopRates

    truth = SiHopRates()
    axis = np.linspace(-1.5, 1.5, 13)
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    in_disc = np.hypot(*grid.T) <= 1.5
    rates = truth(grid)
    fig = hplot.plot_rate_maps(rates * 1.1, rates, 0.2 * rates, axis, in_disc)
    assert len(fig.axes) == 18  # 9 maps, 9 colour bars
    fig = hplot.plot_true_rates_and_dwells(rates, axis, in_disc, grid, np.arange(len(grid)) % 4 - 1)
    assert fig.axes[3].get_title() == "training dwells (local frame)"
    along = np.linspace(-1.5, 1.5, 7)
    cut = truth(along[:, None] * np.array([[0.866, 0.5]]))
    hplot.plot_rate_cut(along, cut, cut, cut * 0.8, cut * 1.2, 0.85, np.linspace(1, 0.5, 5))
    summaries = {name: steering_trials(RandomBeam(seed=1), 2, hops=1, budget_s=2.0, rates=truth)
                 for name in ("learned rates (greedy)", "random beam")}
    fig = hplot.plot_steering(summaries, 2.0, 1)
    assert fig.axes[0].get_xlabel() == "beam time (s)"
    plt.close("all")
    with pytest.raises(ValueError, match="len\\(axis\\)"):
        hplot.plot_rate_maps(rates[:-1], rates, rates, axis, in_disc)


def test_symmetry_figures_draw_and_check_shapes():
    x, y = np.linspace(0.01, 0.3, 6), np.linspace(0.01, 0.2, 4)
    p = np.clip(np.subtract.outer(y, x) + 0.5, 0, 1)
    fig = hplot.plot_probability_map(p, x, y, curves={"line": (x, y.mean() + 0 * x)},
                                     log_x=True, xlabel="delta (a)", ylabel="sigma (a)")
    assert fig.axes[0].get_xlabel() == "delta (a)"
    with pytest.raises(ValueError, match="len"):
        hplot.plot_probability_map(p.T, x, y)
    hplot.plot_reliability([0.1, np.nan, 0.8], [0.2, np.nan, 0.7], [10, 0, 5])
    with pytest.raises(ValueError, match="one shape"):
        hplot.plot_reliability([0.1], [0.2, 0.3], [1])
    hplot.plot_threshold_collapse([1, 10], [2.0, 3.0], np.geomspace(1, 10, 5), np.ones(5),
                                  groups=[4, 16])
    plt.close("all")


def test_matrix_values_read_on_every_cell_colour():
    counts = np.array([[95, 5], [10, 90]])
    fig = hplot.plot_matrix(counts, colour_values=counts / counts.sum(1, keepdims=True),
                            row_labels=["C", "Si"], fmt="{:d}", vmin=0, vmax=1,
                            colorbar_label="fraction of true class")
    ax = fig.axes[0]
    colours = {t.get_text(): t.get_color() for t in ax.texts}
    # dark blue cells (fractions 0.95, 0.9) get white text, the pale ones black
    assert colours == {"95": "w", "5": "k", "10": "k", "90": "w"}
    assert [t.get_text() for t in ax.get_yticklabels()] == ["C", "Si"]
    assert len(fig.axes) == 2  # the colour bar
    counts_only = hplot.plot_matrix(np.array([[2, 40], [7, 150]]), fmt="{:d}",
                                    colorbar_label="images")
    assert counts_only.axes[0].images[0].get_clim()[0] == 0  # colour scale of counts from 0
    with pytest.raises(ValueError, match="row_labels has 3 labels for 2 rows"):
        hplot.plot_matrix(counts, row_labels=["a", "b", "c"])
    with pytest.raises(ValueError, match="2-D matrix"):
        hplot.plot_matrix(np.arange(3))
    plt.close("all")


def test_class_colour_bars_are_discrete_and_named():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    class_map = labels[:100].reshape(10, 10).astype(float)
    class_map[0, 0] = np.nan
    names = ["c+", "c-", "in-plane", "wall"]
    fig = hplot.plot_latent_classes(rng.normal(size=(200, 2)), labels, class_map,
                                    np.linspace(-1, 1, 16), rng.normal(size=(4, 16)), names=names)
    bars = [a for a in fig.axes if a.get_ylabel() == "class"]
    assert len(bars) == 2
    for bar in bars:  # four blocks, each named, not a 0-9 scale
        assert [t.get_text() for t in bar.get_yticklabels()] == names
    plt.close("all")


def test_manifold_tick_labels_read_zero_and_stay_distinct():
    from helpers.plot.latent import _tick_labels

    # the centre of a symmetric grid is 0, not -1.4e-16; a narrow range keeps digits enough
    assert _tick_labels(np.linspace(-0.4, 0.4, 9)[::2]) == ["-0.4", "-0.2", "0", "0.2", "0.4"]
    tight = _tick_labels([-1.6012, -1.6008, -1.6004])
    assert len(set(tight)) == 3 and tight[0] == "-1.6012"
    grid = np.zeros((8, 8, 4, 4))
    from helpers.models.vae import LatentGrid

    ax = hplot.plot_manifold(LatentGrid.wrap(grid, np.linspace(0, 7, 8), np.linspace(7, 0, 8),
                                             (0, 1))).axes[0]
    # an even grid gets evenly spaced ticks (every other tile), none crowded together
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "2", "4", "6"]
    plt.close("all")


def test_zcontrast_test_draws_both_histograms_over_the_predicted_bands():
    reference = np.array([0.9, 1.0, 1.0, 1.1, 7.0])  # 7.0 lies beyond the axis: last bin
    candidates = np.array([1.3, 1.5, np.nan])  # a NaN ratio (no background) is left out
    bands = {"SeS predicted": (1.3, 1.6), "Se2 predicted": (1.8, 4.5), "Mo predicted": (2.6, 3.4)}
    fig = hplot.plot_zcontrast_test(reference, candidates, bands,
                                    measured={"Mo measured": (2.9, "C0")})
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, 5.0)  # the highest band's top + 0.5: no band is cut off
    ref_bars, cand_bars = ax.containers
    assert sum(b.get_height() for b in ref_bars) == 5 and ref_bars[-1].get_height() == 1
    assert sum(b.get_height() for b in cand_bars) == 2
    spans = [p for p in ax.patches if p not in list(ref_bars) + list(cand_bars)]
    assert [round(p.get_x(), 6) for p in spans] == [1.3, 1.8, 2.6]
    assert ax.lines[0].get_xdata()[0] == 2.9 and ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "sites, not flagged", "candidates (flagged)", *bands, "Mo measured"]
    plt.close(fig)
    with pytest.raises(ValueError, match="low <= high"):
        hplot.plot_zcontrast_test(reference, candidates, {"bad": (2.0, 1.0)})
