"""The EELS spectrum-image simulator: shapes, determinism, physics of the ground truth, errors."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.simulate import EELS_COMPONENTS, eels_abundances, eels_spectrum_image


@pytest.fixture(scope="module")
def sim():
    return eels_spectrum_image(size=32, n_channels=200, seed=3)


def test_shapes_and_counts(sim):
    assert sim.spectra.shape == (32, 32, 200) and sim.clean.shape == (32, 32, 200)
    assert sim.abundances.shape == (len(EELS_COMPONENTS), 32, 32)
    assert sim.component_spectra.shape == (len(EELS_COMPONENTS), 200)
    assert np.all(sim.spectra == np.round(sim.spectra)) and sim.spectra.min() >= 0
    # the clean image is the sum of maps times spectra
    np.testing.assert_allclose(sim.clean, np.einsum("chw,ce->hwe", sim.abundances,
                                                    sim.component_spectra))


def test_same_seed_same_data_and_other_seed_other_geometry(sim):
    again = eels_spectrum_image(size=32, n_channels=200, seed=3)
    np.testing.assert_array_equal(sim.spectra, again.spectra)
    other = eels_spectrum_image(size=32, n_channels=200, seed=4)
    assert other.interface_row != sim.interface_row


def test_poisson_noise_has_the_mean_as_variance(sim):
    resid = (sim.spectra - sim.clean) / np.sqrt(sim.clean)
    assert abs(resid.mean()) < 0.01 and abs(resid.var() - 1) < 0.03


def test_elements_sit_on_their_side_of_the_interface_off_grid(sim):
    names = list(sim.names)
    la, ti = sim.abundances[names.index("La")], sim.abundances[names.index("Ti4+")]
    cut = int(sim.interface_row)
    top, bottom = slice(0, max(1, cut - 6)), slice(cut + 6, 32)
    assert la[top].mean() > 3 * la[bottom].mean()
    assert ti[bottom].mean() > 3 * ti[top].mean()
    # the interface and the columns are off the pixel grid
    assert abs(sim.interface_row - round(sim.interface_row)) > 1e-6
    frac = np.abs(sim.columns[:, :2] - np.round(sim.columns[:, :2]))
    assert np.median(frac) > 0.05


def test_ti3_is_a_weak_valence_fraction_that_decays_and_varies_along_the_interface():
    big = eels_spectrum_image(size=64, n_channels=32, seed=3)
    names = list(big.names)
    t3, t4 = big.abundances[names.index("Ti3+")], big.abundances[names.index("Ti4+")]
    assert t3.sum() < 0.3 * t4.sum()
    # a valence mix: Ti3+ takes its share of the Ti, it is not added on top of Ti4+
    without = eels_spectrum_image(size=64, n_channels=32, seed=3, ti3_fraction=0.0)
    np.testing.assert_allclose(t3 + t4, without.abundances[names.index("Ti4+")], atol=1e-12)
    v = t3 / np.maximum(t3 + t4, 1e-12)  # the Ti3+ fraction
    rows, cols = np.mgrid[0:64, 0:64].astype(float)
    a = big.geometry["angle"]
    depth = np.cos(a) * (rows - big.interface_row) + np.sin(a) * (cols - 32)
    along = -np.sin(a) * (rows - big.interface_row) + np.cos(a) * (cols - 32)
    on_ti = (t3 + t4) > 0.3 * (t3 + t4).max()
    # it falls with depth into SrTiO3 ...
    assert v[on_ti & (depth > 2) & (depth < 10)].mean() > 2 * v[on_ti & (depth > 20)].mean()
    # ... and, unlike the Ti4+ envelope, varies along the interface
    near = on_ti & (depth > 0) & (depth < 5)
    bins = np.digitize(along[near], np.linspace(-32, 32, 9))
    per_bin = [v[near][bins == b].mean() for b in np.unique(bins) if (bins == b).sum() > 3]
    assert np.ptp(per_bin) > 0.5 * np.mean(per_bin), per_bin
    # it shares the Ti columns: correlated with Ti4+ at the column scale
    assert np.corrcoef(t3.ravel(), t4.ravel())[0, 1] > 0.3


def test_ti3_lines_are_jittered_per_seed_within_the_stated_bounds():
    """No fixed reference can match the Ti3+ white lines exactly: their energies and width
    change with the seed (shift within +-0.3 eV, width 0.8-1.2 eV), and the geometry draws
    are unaffected by the jitter."""
    shifts, widths = [], []
    for seed in range(6):
        s = eels_spectrum_image(size=16, n_channels=2000, seed=seed)
        shifts.append(s.geometry["ti3_shift"])
        widths.append(s.geometry["ti3_width"])
        ti3 = s.component_spectra[list(s.names).index("Ti3+")]
        l3 = (s.energy > 455.0) & (s.energy < 459.5)
        # the L3 line's maximum sits at the shifted energy (the step edge tilts it a little)
        assert abs(s.energy[l3][np.argmax(ti3[l3])] - (457.0 + shifts[-1])) < 0.15
    assert all(-0.3 <= x <= 0.3 for x in shifts) and all(0.8 <= x <= 1.2 for x in widths)
    assert np.ptp(shifts) > 0.1 and np.ptp(widths) > 0.05
    assert len(set(np.round(shifts, 6))) == 6


def test_finer_grid_contains_the_original_pixels(sim):
    fine = eels_abundances(sim, 2)
    assert fine.shape == (len(EELS_COMPONENTS), 64, 64)
    np.testing.assert_allclose(fine[:, ::2, ::2], sim.abundances, atol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    ({"size": 8}, "at least 16"),
    ({"energy_range": (600.0, 900.0)}, "Ti L and O K"),
    ({"dose": 0.0}, "dose"),
    ({"ti3_fraction": 1.5}, "ti3_fraction"),
    ({"seed": -1}, "seed"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        eels_spectrum_image(**kwargs)
