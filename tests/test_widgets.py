"""The interactive explorers build headless and follow their controls from Python: the state
they show (nearest patches, their frame and positions, the rendered image) is checked against
what the data say, not only that a callback ran."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest

from helpers.widgets import LatentMapExplorer, latent_map_explorer

PNG = b"\x89PNG\r\n\x1a\n"


def clustered(n_per: int = 30, seed: int = 0):
    """Four clusters at the corners of the latent plane; cluster c lives on frame c, at rows
    near 10 + 20 c, and its patches are constant images of value c."""
    rng = np.random.default_rng(seed)
    centres = np.array([[-2.0, -2.0], [2.0, -2.0], [-2.0, 2.0], [2.0, 2.0]])
    cluster = np.repeat(np.arange(4), n_per)
    z = centres[cluster] + 0.1 * rng.standard_normal((len(cluster), 2))
    patches = np.broadcast_to(cluster[:, None, None], (len(cluster), 6, 6)).astype(np.float32)
    frames = rng.random((4, 96, 96)).astype(np.float32)
    positions = np.column_stack([10 + 20 * cluster + rng.uniform(-3, 3, len(cluster)),
                                 rng.uniform(5, 90, len(cluster))])
    return z, patches, frames, positions, cluster


def brute_nearest(points, x, y, k, scale):
    d = (((points - [x, y]) / scale) ** 2).sum(1)
    return np.argsort(d, kind="stable")[:k]


def test_builds_and_shows_the_neighbours_of_its_start_point():
    z, patches, frames, positions, cluster = clustered()
    ex = latent_map_explorer(z, patches, frames, positions, cluster, n_neighbours=5)
    assert isinstance(ex, LatentMapExplorer)
    assert bytes(ex.image.value).startswith(PNG)
    # it starts on the patch nearest the per-axis median (the median itself lies in the empty
    # middle of the four clusters), and the box shows that patch's number
    scale = z.max(0) - z.min(0)
    start = int(brute_nearest(z, *np.median(z, axis=0), 1, scale)[0])
    assert np.min(np.abs(z - np.median(z, axis=0)).sum(1)) > 1.0  # the median is a gap
    assert ex.point == pytest.approx(tuple(z[start]))
    assert ex.patch.value == start and ex.neighbours[0] == start
    np.testing.assert_array_equal(ex.neighbours, brute_nearest(z, *ex.point, 5, scale))
    assert set(cluster[ex.neighbours]) == {cluster[start]}  # one cluster, not a mix
    assert ex.patches_shown.shape == (5, 6, 6)
    # displayed as a widget in a notebook, with a readable line where there is no kernel
    bundle = ex._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == ex.widget.model_id
    assert bundle["text/plain"].startswith("Latent-map explorer of 120 patches")
    # and a saved or rendered notebook (no widget manager) shows the panels as drawn
    shown = base64.b64decode(bundle["image/jpeg"])
    assert shown.startswith(b"\xff\xd8")  # a JPEG of the panels as drawn
    from PIL import Image
    with Image.open(io.BytesIO(shown)) as jpeg, Image.open(io.BytesIO(ex.image.value)) as png:
        assert jpeg.size == png.size
        diff = np.abs(np.asarray(jpeg, float) - np.asarray(png.convert("RGB"), float))
        assert diff.mean() < 8  # the same picture, up to JPEG's loss (0-255 scale)


@pytest.mark.parametrize("c", [0, 1, 2, 3])
def test_moving_the_sliders_to_a_cluster_shows_its_patches_on_its_frame(c):
    z, patches, frames, positions, cluster = clustered()
    ex = latent_map_explorer(z, patches, frames, positions, cluster, n_neighbours=6)
    before = bytes(ex.image.value)
    centre = z[cluster == c].mean(0)
    ex.x.value = centre[0]  # as a user dragging the first slider
    ex.y.value = centre[1]  # ... then the second
    assert ex.point == pytest.approx(tuple(centre))
    assert set(cluster[ex.neighbours]) == {c}
    assert ex.frame_shown == c
    np.testing.assert_array_equal(ex.patches_shown, np.full((6, 6, 6), c, np.float32))
    # every neighbour is on frame c, so all six are drawn there, at cluster c's rows
    assert ex.positions_shown.shape == (6, 2)
    np.testing.assert_allclose(ex.positions_shown, positions[ex.neighbours])
    assert np.all(np.abs(ex.positions_shown[:, 0] - (10 + 20 * c)) <= 3)
    assert bytes(ex.image.value) != before
    assert f"(frame {c})" in ex.summary.value


def test_going_to_a_patch_selects_its_point_and_frame():
    z, patches, frames, positions, cluster = clustered()
    ex = latent_map_explorer(z, patches, frames, positions, cluster)
    i = int(np.flatnonzero(cluster == 2)[7])
    ex.select_patch(i)
    assert ex.point == pytest.approx(tuple(z[i]))
    assert ex.neighbours[0] == i
    assert ex.frame_shown == 2
    np.testing.assert_allclose(ex.positions_shown[0], positions[i])
    # typing a number in the box does the same
    j = int(np.flatnonzero(cluster == 3)[2])
    ex.patch.value = j
    assert ex.neighbours[0] == j and ex.frame_shown == 3
    # the patch already in the box (the start patch) can be selected too, after moving away
    ex2 = latent_map_explorer(z, patches, frames, positions, cluster)
    boxed = int(ex2.patch.value)
    ex2.select(*z[cluster != cluster[boxed]].mean(0))
    assert ex2.neighbours[0] != boxed
    ex2.select_patch(boxed)
    assert ex2.neighbours[0] == boxed and ex2.point == pytest.approx(tuple(z[boxed]))
    with pytest.raises(ValueError, match="out of range: there are 120 patches"):
        ex.select_patch(120)


def test_the_patch_count_slider_changes_how_many_are_shown():
    z, patches, frames, positions, cluster = clustered()
    ex = latent_map_explorer(z, patches, frames, positions, cluster, n_neighbours=3)
    ex.select(*z[cluster == 1].mean(0))
    ex.k.value = 12
    assert len(ex.neighbours) == 12 and ex.patches_shown.shape == (12, 6, 6)
    assert set(cluster[ex.neighbours]) == {1}


def test_patch_tiles_are_separated_by_blank_gaps_not_data():
    # 5 neighbours tile a 2 x 3 grid: one tile is empty. Gaps and the empty tile are NaN,
    # drawn white, so no blank can be read as a patch of the minimum value.
    z, patches, frames, positions, cluster = clustered()
    ex = latent_map_explorer(z, patches, frames, positions, cluster, n_neighbours=5)
    ex.select(*z[cluster == 0].mean(0))  # cluster 0: patches of value 0, the data minimum
    m = ex.tile_mosaic()
    pad, h = LatentMapExplorer.TILE_PAD, 6
    assert pad == 2 and m.shape == (2 * h + pad, 3 * h + 2 * pad)
    step = h + pad
    tiles = [m[r * step:r * step + h, c * step:c * step + h] for r in range(2) for c in range(3)]
    for k, tile in enumerate(tiles[:5]):
        np.testing.assert_array_equal(tile, ex.patches_shown[k])
    assert np.isnan(tiles[5]).all()  # the empty tile
    assert np.isnan(m[h:h + pad]).all() and np.isnan(m[:, h:h + pad]).all()  # the gaps
    assert np.isfinite(m).sum() == 5 * h * h
    cmap = ex.patch_colormap()
    assert cmap.name == "viridis" and tuple(cmap(np.nan)) == (1.0, 1.0, 1.0, 1.0)
    import matplotlib

    assert tuple(matplotlib.colormaps["viridis"](np.nan)) != (1.0, 1.0, 1.0, 1.0)  # a copy


def test_value_label_adds_colour_bars_and_bad_colour_sets_the_gaps():
    # default: no colour bars (three panels), white gaps; with value_label: a labelled colour
    # bar beside the patches and beside the frame; bad_colour: the colour of the tile gaps
    import matplotlib.colors as mcolors

    z, patches, frames, positions, cluster = clustered()
    patches = patches + np.linspace(0.0, 0.5, patches[0].size).reshape(patches.shape[1:])
    plain = latent_map_explorer(z, patches, frames, positions, cluster)
    assert len(plain.panels_figure().axes) == 3
    ex = latent_map_explorer(z, patches, frames, positions, cluster,
                             value_label="height (nm)", bad_colour="0.8")
    fig = ex.panels_figure()
    assert len(fig.axes) == 5
    bars = [a for a in fig.axes if a.get_ylabel() == "height (nm)"]
    assert len(bars) == 2
    # the patch bar spans the patches' values, the frame bar the frame's
    assert bars[0].get_ylim() == pytest.approx((float(ex.patches_shown.min()),
                                                float(ex.patches_shown.max())))
    frame = frames[ex.frame_shown]
    assert bars[1].get_ylim() == pytest.approx((float(frame.min()), float(frame.max())))
    assert tuple(ex.patch_colormap()(np.nan)) == mcolors.to_rgba("0.8")
    assert bytes(ex.image.value).startswith(PNG)


def test_nearest_is_measured_on_the_plot_scale():
    # x spans 1000 units, y spans 1: raw distances would ignore y entirely
    z = np.array([[0.0, 0.0], [1000.0, 1.0], [10.0, 1.0], [0.0, 0.5]])
    patches = np.zeros((4, 3, 3))
    ex = latent_map_explorer(z, patches, np.zeros((8, 8)), np.full((4, 2), 4.0),
                             n_neighbours=1)
    ex.select(0.0, 1.0)
    # scaled: (10, 1) is 0.01 away, (0, 0.5) is 0.5 away; unscaled it would be (0, 0.5)
    assert ex.neighbours.tolist() == [2]
    assert ex.frame_shown == 0  # a single image needs no frame_index


def test_a_redraw_does_not_touch_pyplot_or_global_random_state():
    import matplotlib.pyplot as plt

    z, patches, frames, positions, cluster = clustered()
    state = np.random.get_state()[1].copy()  # noqa: NPY002 (the legacy global state)
    figures = plt.get_fignums()
    ex = latent_map_explorer(z, patches, frames, positions, cluster)
    ex.select(2.0, 2.0)
    assert plt.get_fignums() == figures
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002


@pytest.mark.parametrize("change, message", [
    (dict(z=np.zeros(10)), "z must be (N, D)"),
    (dict(patches=np.zeros((9, 6, 6))), "patches must be (N, h, w) with N = 120"),
    (dict(positions=np.zeros((120, 3))), "positions must be (N, 2)"),
    (dict(frame_index=None), "frame_index is needed with 4 frames"),
    (dict(frame_index=np.full(120, 4)), "frame_index must be (N,) integers in [0, 3]"),
    (dict(frames=np.zeros((2, 2, 2, 2))), "frames must be an image"),
])
def test_bad_input_names_the_problem(change, message):
    z, patches, frames, positions, cluster = clustered()
    args = dict(z=z, patches=patches, frames=frames, positions=positions, frame_index=cluster)
    args.update(change)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        latent_map_explorer(**args)


def test_nan_latents_and_bad_dims_are_refused():
    z, patches, frames, positions, cluster = clustered()
    z = z.copy()
    z[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        latent_map_explorer(z, patches, frames, positions, cluster)
    with pytest.raises(ValueError, match="two different columns"):
        latent_map_explorer(z, patches, frames, positions, cluster, dims=(0, 0))
