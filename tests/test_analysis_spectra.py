"""helpers.analysis.spectra: (patch, loop) pairs on the image grid, a split with no shared
pixel, loop areas of known shapes, maps and latent grids."""

import numpy as np
import pytest

from helpers.analysis import spectra as SP


def test_patch_loop_pairs_and_spatial_split():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(20, 30))
    loops = rng.normal(size=(20, 30, 5))
    pairs = SP.patch_loop_pairs(image, loops, patch_size=4)
    assert len(pairs) == 17 * 27 and pairs.patches.shape == (17 * 27, 4, 4)
    i = 100
    r, c = pairs.rows[i], pairs.cols[i]
    np.testing.assert_allclose(pairs.loops[i], loops[r, c], rtol=1e-6)
    np.testing.assert_allclose(pairs.patches[i][2, 2], image[r, c], rtol=1e-6)
    split = SP.spatial_split(pairs, 0.5)
    first = pairs.cols - 2
    assert (first[split.train] + 4 <= split.boundary).all()
    assert (first[split.test] >= split.boundary).all()
    assert not (split.train & split.test).any()
    with pytest.raises(ValueError, match="image grid"):
        SP.patch_loop_pairs(image, loops[:10], patch_size=4)
    with pytest.raises(ValueError, match="larger"):
        SP.patch_loop_pairs(image, loops, patch_size=25)


def test_loop_area_of_known_shapes():
    # a square loop from -1 to 1 in V and P encloses 4 V x a.u.; a single-valued curve 0
    v = np.array([-1.0, 1.0, 1.0, -1.0])
    assert SP.loop_area(np.array([-1.0, -1.0, 1.0, 1.0]), v) == pytest.approx(4.0)
    vv = np.concatenate([np.linspace(-1, 1, 20), np.linspace(1, -1, 20)])
    assert SP.loop_area(np.tanh(3 * vv)[None], vv)[0] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="voltage"):
        SP.loop_area(np.zeros((2, 5)), v)


def test_values_to_map_and_latent_grid():
    m = SP.values_to_map(np.arange(3.0), [0, 1, 2], [2, 1, 0], (3, 3))
    assert m[2, 0] == 2.0 and np.isnan(m[0, 0])
    z = np.random.default_rng(1).normal(size=(500, 3))
    grid, axes = SP.latent_grid(z, n=4)
    assert grid.shape == (16, 3) and axes.shape == (2, 4)
    assert grid[0, 1] > grid[-1, 1] and grid[0, 0] < grid[3, 0]
    idx = SP.nearest_on_grid(z, grid)
    assert idx.shape == (16,) and idx.min() >= 0
    assert (SP.nearest_on_grid(z, grid + 100, max_distance=1.0) == -1).all()


def test_loop_map_from_arrays_finds_loops_and_voltage_by_shape():
    loops = np.random.default_rng(0).normal(size=(6, 5, 16))
    v = np.linspace(-1, 1, 16)
    got, volts = SP.loop_map_from_arrays({"v": v, "loop": loops, "note": np.zeros(3)})
    assert got.shape == (6, 5, 16) and got.dtype == np.float32
    np.testing.assert_array_equal(volts, v)
    with pytest.raises(ValueError, match="one \\(H, W, L\\)"):
        SP.loop_map_from_arrays({"v": v})
    with pytest.raises(ValueError, match="voltage vector"):
        SP.loop_map_from_arrays({"loops": loops, "v": v[:3]})
