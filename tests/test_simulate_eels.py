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


def test_weak_component_is_weak_and_decays_into_srtio3(sim):
    names = list(sim.names)
    ti3, ti4 = sim.abundances[names.index("Ti3+")], sim.abundances[names.index("Ti4+")]
    assert ti3.sum() < 0.3 * ti4.sum()
    # relative to Ti4+, Ti3+ falls with depth into SrTiO3 (below the interface)
    big = eels_spectrum_image(size=64, n_channels=32, seed=3)
    t3, t4 = big.abundances[names.index("Ti3+")], big.abundances[names.index("Ti4+")]
    depth = np.arange(64)[:, None] - big.interface_row + 0 * t4
    on_ti = t4 > 0.3 * t4.max()
    ratio = t3 / np.maximum(t4, 1e-12)
    near = ratio[on_ti & (depth > 2) & (depth < 10)].mean()
    far = ratio[on_ti & (depth > 20)].mean()
    assert near > 1.5 * far, (near, far)
    # it shares the Ti columns: correlated with Ti4+ at the column scale
    assert np.corrcoef(ti3.ravel(), ti4.ravel())[0, 1] > 0.3


def test_finer_grid_contains_the_original_pixels(sim):
    fine = eels_abundances(sim, 2)
    assert fine.shape == (len(EELS_COMPONENTS), 64, 64)
    np.testing.assert_allclose(fine[:, ::2, ::2], sim.abundances, atol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    ({"size": 8}, "at least 16"),
    ({"energy_range": (600.0, 900.0)}, "Ti L and O K"),
    ({"dose": 0.0}, "dose"),
    ({"seed": -1}, "seed"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        eels_spectrum_image(**kwargs)
