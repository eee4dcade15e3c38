"""Intervals over repeats: the bounded interval of a score that cannot exceed its bound."""

import numpy as np
import pytest

from helpers.analysis import (
    bounded_interval,
    interval_side,
    margin_side,
    mean_interval,
    ratio_interval,
)


def test_bounded_interval_stays_below_the_bound_with_two_repeats():
    # two R^2 values far apart: the plain t-interval passes 1, the bounded one cannot
    r2 = [0.424, 0.173]
    assert mean_interval(r2)[2] > 1
    centre, low, high = bounded_interval(r2)
    assert low < min(r2) and max(r2) < high < 1
    assert low < centre < high
    # centre: 1 minus the geometric mean of the unexplained fractions
    assert np.isclose(centre, 1 - np.sqrt(0.576 * 0.827))


def test_bounded_interval_is_the_t_interval_of_the_log_gap():
    r2 = np.array([0.91, 0.93, 0.92, 0.95])
    m, lo, hi = mean_interval(np.log(1 - r2))
    centre, low, high = bounded_interval(r2)
    np.testing.assert_allclose([centre, low, high], [1 - np.exp(m), 1 - np.exp(hi),
                                                     1 - np.exp(lo)])
    # close repeats: the centre is close to the plain mean, and never below it
    assert r2.mean() <= centre < r2.mean() + 0.005
    # another bound shifts the scale
    np.testing.assert_allclose(bounded_interval(r2 + 1, upper=2.0), (centre + 1, low + 1,
                                                                     high + 1))


def test_bounded_interval_rejects_values_at_the_bound():
    with pytest.raises(ValueError, match="below upper"):
        bounded_interval([0.5, 1.0])
    with pytest.raises(ValueError):
        bounded_interval([0.5])


def test_ratio_interval_is_the_exponentiated_t_interval_of_the_log_ratios():
    ratios = np.array([0.5, 2.0, 1.5, 0.2])
    assert mean_interval(ratios)[1] < 0  # a plain t-interval of ratios can go negative
    centre, low, high = ratio_interval(ratios)
    m, lo, hi = mean_interval(np.log(ratios))
    np.testing.assert_allclose([centre, low, high], np.exp([m, lo, hi]))
    assert 0 < low < centre < high
    # the geometric mean: the inverse ratios get the inverse interval
    np.testing.assert_allclose(ratio_interval(1 / ratios), (1 / centre, 1 / high, 1 / low))
    with pytest.raises(ValueError, match="positive"):
        ratio_interval([0.5, 0.0])


def test_interval_side_names_the_side_of_the_reference():
    # a paired difference over five repeats, all positive: its interval lies above 0
    _, low, high = mean_interval([0.02, 0.03, 0.025, 0.04, 0.03])
    assert interval_side(low, high) == "above"
    _, low, high = mean_interval([-0.02, 0.03, 0.01, -0.01, 0.0])
    assert interval_side(low, high) == "includes"
    # a ratio's reference is 1: a geometric mean interval below it is "below"
    _, low, high = ratio_interval([0.8, 0.85, 0.9, 0.82])
    assert interval_side(low, high, reference=1.0) == "below"
    # an end on the reference is not resolved
    assert interval_side(0.0, 0.5) == "includes"
    assert interval_side(-0.5, 0.0) == "includes"


def test_interval_side_rejects_a_reversed_or_missing_interval():
    with pytest.raises(ValueError, match="low must not exceed high"):
        interval_side(0.3, 0.1)
    with pytest.raises(ValueError, match="finite"):
        interval_side(float("nan"), 0.1)


def test_margin_side_calls_differences_within_the_margin_a_tie():
    assert margin_side(0.95, 0.90, 0.02) == "ahead"
    assert margin_side(0.90, 0.95, 0.02) == "behind"
    assert margin_side(0.91, 0.90, 0.02) == "tie"
    assert margin_side(0.75, 0.5, 0.25) == "tie"  # exactly the margin is still a tie
    assert margin_side(0.25, 0.5, 0.25) == "tie"
    assert margin_side(0.9, 0.9, 0.0) == "tie"
    with pytest.raises(ValueError, match="margin"):
        margin_side(0.9, 0.8, -0.01)
