"""helpers.analysis.sigmoid_transition: a step fitted to a descriptor locates a diffuse
transition between the grid points, whichever way the descriptor goes."""

import numpy as np
import pytest
from scipy.special import ndtr

from helpers.analysis.sigmoid_transition import fit_sigmoid_transition

GRID = np.arange(300.0, 480.0 + 1e-9, 10.0)


@pytest.mark.parametrize("centre", [383.7, 391.2, 406.4])
@pytest.mark.parametrize("rising", [True, False])
def test_recovers_an_off_grid_centre_below_a_quarter_step(centre, rising):
    rng = np.random.default_rng(int(centre))
    y = ndtr((GRID - centre) / 9.0)
    y = (y if rising else 0.3 + 0.5 * (1 - y)) + 0.01 * rng.standard_normal(len(GRID))
    fit = fit_sigmoid_transition(GRID, y)
    assert abs(fit.estimate - centre) < 0.25 * 10.0
    assert 6.0 < fit.width < 12.0
    assert (fit.high > fit.low) == rising
    assert fit.fitted.shape == GRID.shape and fit.rms_residual < 0.02


def test_a_sharp_step_is_placed_inside_its_bracket():
    y = (GRID > 395.0).astype(float)
    fit = fit_sigmoid_transition(GRID, y)
    assert 390.0 <= fit.estimate <= 400.0
    assert fit.width <= 2.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="same length"):
        fit_sigmoid_transition(GRID, np.zeros(3))
    with pytest.raises(ValueError, match="at least 4"):
        fit_sigmoid_transition(GRID[:3], np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        fit_sigmoid_transition(GRID, np.full(len(GRID), np.nan))
    with pytest.raises(ValueError, match="increasing"):
        fit_sigmoid_transition(GRID[::-1], np.zeros(len(GRID)))


def test_noise_free_step_is_recovered_exactly_and_min_width_is_checked():
    y = 0.2 + 0.7 * ndtr((GRID - 397.3) / 12.0)
    fit = fit_sigmoid_transition(GRID, y)
    assert fit.estimate == pytest.approx(397.3, abs=1e-3)
    assert fit.width == pytest.approx(12.0, rel=1e-3)
    assert (fit.low, fit.high) == (pytest.approx(0.2, abs=1e-4), pytest.approx(0.9, abs=1e-4))
    np.testing.assert_allclose(fit.fitted, y, atol=1e-5)
    with pytest.raises(ValueError, match="min_width"):
        fit_sigmoid_transition(GRID, y, min_width=0.0)
    with pytest.raises(ValueError, match="min_width"):
        fit_sigmoid_transition(GRID, y, min_width=1e3)


def test_standard_error_matches_the_scatter_of_the_estimate_over_noise_draws():
    rng = np.random.default_rng(4)
    temps = np.arange(300.0, 500.0, 10.0)
    clean = 0.1 + 0.8 * ndtr((temps - 393.7) / 15.0)
    fits = [fit_sigmoid_transition(temps, clean + 0.03 * rng.normal(size=temps.size))
            for _ in range(300)]
    estimates = np.array([f.estimate for f in fits])
    se = np.array([f.estimate_se for f in fits])
    assert np.isfinite(se).all() and (se > 0).all()
    # the typical standard error is the scatter of the estimate, and +-1.96 se covers ~95 %
    assert 0.75 < np.median(se) / estimates.std() < 1.33
    assert 0.88 < np.mean(np.abs(estimates - 393.7) <= 1.96 * se) < 0.99


def test_standard_error_is_infinite_without_degrees_of_freedom():
    temps = np.array([300.0, 310.0, 320.0, 330.0])  # four points, four parameters
    assert fit_sigmoid_transition(temps, [0.0, 0.1, 0.9, 1.0]).estimate_se == np.inf
