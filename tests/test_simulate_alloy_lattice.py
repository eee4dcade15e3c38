"""helpers.simulate.alloy_lattice: the Mo(1-x)Re(x)S2 simulator implements its stated model."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.analysis import shell_fractions
from helpers.simulate import SPECIES_NAMES, alloy_lattice_series, metal_shell_offsets
from helpers.simulate.alloy_lattice import kernel_fractions, kernel_reach

SMALL = dict(concentrations=(0.2, 0.5, 0.8), size=160, seed=3)


@pytest.fixture(scope="module")
def sim():
    return alloy_lattice_series(**SMALL)


def test_shell_offsets_count_the_triangular_shells():
    shells = metal_shell_offsets(4)
    assert [len(s) for s in shells] == [6, 6, 6, 12]
    # squared lengths in units of a^2: 1, 3, 4, 7
    for s, norm in zip(shells, (1, 3, 4, 7)):
        assert np.all(s[:, 0] ** 2 + s[:, 1] ** 2 + s[:, 0] * s[:, 1] == norm)


def test_same_seed_same_images_and_truth(sim):
    again = alloy_lattice_series(**SMALL)
    np.testing.assert_array_equal(sim.images, again.images)
    np.testing.assert_array_equal(sim.positions, again.positions)
    other = alloy_lattice_series(**{**SMALL, "seed": 4})
    assert not np.array_equal(sim.images, other.images)


def test_the_amplitude_follows_the_stated_model(sim):
    metal = sim.species < 2
    f = sim.local_fraction[metal]
    k = sim.image_index[metal]
    x = sim.concentration[k]
    # with the per-image term known, the rest is the stated linear model plus white noise
    y = sim.amplitude[metal] - sim.image_offset[k]
    X = np.c_[np.ones(metal.sum()), f, x]
    b = np.linalg.lstsq(X, y, rcond=None)[0]
    res = y - X @ b
    assert abs(b[0]) < 1.0
    assert abs(b[1] - sim.local_coefficient) < 0.06 * sim.local_coefficient
    assert abs(b[2] - sim.global_coefficient) < 0.15 * sim.global_coefficient
    assert abs(res.std() - sim.amplitude_noise) < 0.3 * sim.amplitude_noise
    # the phase is the amplitude against half the ReS2 amplitude
    np.testing.assert_array_equal(sim.phase[metal],
                                  sim.amplitude[metal] > sim.phase_threshold)
    assert np.all(sim.phase[~metal] == 0) and np.isnan(sim.amplitude[~metal]).all()


def test_kernel_fraction_is_a_normalised_gaussian_of_distance():
    grid = np.zeros((21, 21), bool)
    grid[10, 10] = True  # one B site
    ell = 1.2
    f = kernel_fractions(grid, ell)
    norm = lambda di, dj: np.exp(-(di**2 + dj**2 + di * dj) / (2 * ell**2))  # noqa: E731
    total = sum(norm(di, dj) for di in range(-5, 6) for dj in range(-5, 6)
                if di**2 + dj**2 + di * dj <= (3 * ell) ** 2)
    # the B site's weight seen from a site at offset (di, dj), over the weights' sum
    for di, dj in ((0, 0), (1, 0), (1, 1), (2, 0), (2, 1)):
        assert f[10 + di, 10 + dj] == pytest.approx(norm(di, dj) / total)
    # equal distance, equal weight (shell 1: (1, 0) and (1, -1) are both at a)
    assert f[11, 10] == pytest.approx(f[11, 9])
    assert np.all(np.diff([f[10, 10], f[11, 10], f[11, 11], f[12, 10]]) < 0)  # it fades
    assert kernel_fractions(np.ones((9, 9), bool), 0.8) == pytest.approx(np.ones((9, 9)))
    # no count over whole neighbour shells (the regression's candidates) equals it
    rng = np.random.default_rng(0)
    grid = rng.random((30, 30)) < 0.4
    ii, jj = np.meshgrid(np.arange(30), np.arange(30), indexing="ij")
    idx = np.c_[ii.ravel(), jj.ravel()]
    inner = np.all((idx >= 6) & (idx < 24), axis=1)
    f = kernel_fractions(grid, ell).ravel()
    for n in (1, 2, 3, 4):
        count = shell_fractions(idx, grid.ravel(), n)
        assert np.abs(count[inner] - f[inner]).mean() > 0.02


def test_exponential_kernel_fraction_decays_with_distance():
    grid = np.zeros((25, 25), bool)
    grid[12, 12] = True
    ell = 0.63
    f = kernel_fractions(grid, ell, "exponential")
    w = lambda di, dj: np.exp(-np.sqrt(di**2 + dj**2 + di * dj) / ell)  # noqa: E731
    cut = kernel_reach(ell, "exponential")
    total = sum(w(di, dj) for di in range(-6, 7) for dj in range(-6, 7)
                if di**2 + dj**2 + di * dj <= cut**2)
    for di, dj in ((0, 0), (1, 0), (1, 1), (2, 0)):
        assert f[12 + di, 12 + dj] == pytest.approx(w(di, dj) / total)
    # a cusp at the site, unlike a Gaussian: the first shell weighs far less than the site
    assert f[13, 12] / f[12, 12] < 0.25
    with pytest.raises(ValueError, match="shape"):
        kernel_fractions(grid, ell, "cone")


def test_local_fraction_is_the_kernel_not_a_shell_count(sim):
    n_checked = 0
    for k in range(len(sim)):
        m = (sim.image_index == k) & (sim.species < 2)
        idx, re = sim.lattice_index[m], sim.species[m] == 1
        # rebuild the grid of this image's sites; away from the frame's edge the kernel
        # (reach 5 l for the default exponential weights) sees only sites in the list
        lo = idx.min(0)
        grid = np.zeros(tuple(idx.max(0) - lo + 1), bool)
        grid[tuple((idx - lo).T)] = re
        f = kernel_fractions(grid, sim.kernel_length, sim.kernel_shape)[tuple((idx - lo).T)]
        cut = kernel_reach(sim.kernel_length, sim.kernel_shape)
        r = int(np.ceil(cut))
        reach = [(di, dj) for di in range(-r, r + 1) for dj in range(-r, r + 1)
                 if di**2 + dj**2 + di * dj <= cut**2]
        table = {tuple(v) for v in idx}
        full = np.array([all((i + di, j + dj) in table for di, dj in reach) for i, j in idx])
        n_checked += full.sum()
        np.testing.assert_allclose(f[full], sim.local_fraction[m][full])
    assert n_checked >= 8  # a small frame: few sites see their whole kernel


def test_one_term_per_image_shared_by_its_atoms():
    """The per-image term: drawn once per image with the stated spread, zero when off; with
    it the atoms of an image are not independent, which clustered errors account for."""
    conc = tuple(np.linspace(0.1, 0.8, 8))
    on = alloy_lattice_series(conc, size=96, image_noise=3.0, amplitude_noise=0.0,
                              seed=2)
    off = alloy_lattice_series(conc, size=96, image_noise=0.0, amplitude_noise=0.0, seed=2)
    assert on.image_offset.shape == (8,) and np.all(off.image_offset == 0)
    assert 1.0 < on.image_offset.std() < 6.0
    for k in range(8):
        m = (on.image_index == k) & (on.species < 2)
        # the same Re and drive: the amplitudes differ by the image's own term only
        np.testing.assert_allclose(on.amplitude[m] - off.amplitude[m], on.image_offset[k])


def test_rows_pair_up_perpendicular_to_the_chains(sim):
    for k in range(len(sim)):
        m = (sim.image_index == k) & (sim.species < 2)
        d, u, idx = sim.displacement[m], sim.amplitude[m], sim.lattice_index[m]
        np.testing.assert_allclose(np.linalg.norm(d, axis=1), np.abs(u), atol=1e-9)
        n = (idx[:, 1], idx[:, 0], idx[:, 0] + idx[:, 1])[sim.chain_axis[k]]
        e = d / np.where(u == 0, 1, u)[:, None] * np.where(n % 2 == 0, 1, -1)[:, None]
        assert np.allclose(e, e[0], atol=1e-9)  # one direction, sign alternating by row
        theta = sim.lattice_angle[k]
        a1 = np.array([-np.sin(theta), np.cos(theta)])
        a2 = np.array([-np.sin(theta + np.pi / 3), np.cos(theta + np.pi / 3)])
        chain = (a1, a2, a2 - a1)[sim.chain_axis[k]]
        assert abs(e[0] @ chain) < 1e-9  # across the chains


def test_z_contrast_and_no_column_on_the_pixel_grid(sim):
    img, pos, spec = sim.images, sim.positions, sim.species
    r, c = np.clip(np.round(pos).astype(int), 0, img.shape[1] - 1).T
    value = img[sim.image_index, r, c]
    means = [value[spec == s].mean() for s in range(3)]
    assert means[1] > 2 * means[0] > 4 * means[2], dict(zip(SPECIES_NAMES, means))
    frac = pos - np.round(pos)
    assert np.abs(frac).mean() > 0.2  # sub-pixel offsets spread over the pixel


def test_clustered_re_spreads_the_local_fraction_within_images(sim):
    metal = sim.species < 2
    for k, x in enumerate(sim.concentration):
        m = metal & (sim.image_index == k)
        assert abs(np.mean(sim.species[m] == 1) - SMALL["concentrations"][k]) < 0.05
        assert abs(x - SMALL["concentrations"][k]) < 0.05  # the realised frame fraction
        assert sim.local_fraction[m].std() > 0.15
    r = np.corrcoef(sim.local_fraction[metal], sim.concentration[sim.image_index[metal]])[0, 1]
    assert 0.3 < r < 0.9
    # clustering: Re neighbours of Re atoms are more common than x
    m = metal & (sim.image_index == 1)
    idx, re = sim.lattice_index[m], sim.species[m] == 1
    f1 = shell_fractions(idx, re, 1, include_self=False)
    assert np.nanmean(f1[re]) > np.nanmean(f1[~re]) + 0.2


@pytest.mark.parametrize("kwargs, match", [
    (dict(concentrations=(0.2, 1.3)), "concentrations"),
    (dict(concentrations=()), "concentrations"),
    (dict(kernel_length=0.1), "kernel_length"),
    (dict(kernel_shape="box"), "kernel_shape"),
    (dict(image_noise=-1.0), "image_noise"),
    (dict(size=32), "size"),
    (dict(pixel_size=2.0), "pixel_size"),
    (dict(dose=0.0), "dose"),
])
def test_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        alloy_lattice_series(**kwargs)
