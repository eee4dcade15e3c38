"""helpers.analysis.transitions: class fractions and histograms per condition, and a transition
located at the known step of a synthetic two-phase population."""

import numpy as np
import pytest

from helpers.analysis import transitions as TR


def test_class_fractions_counts():
    labels = np.array([0, 0, 1, 2, 2, 2])
    groups = np.array([0, 0, 0, 1, 1, 1])
    f = TR.class_fractions(labels, groups, n_classes=3)
    np.testing.assert_allclose(f, [[2 / 3, 1 / 3, 0], [0, 0, 1]])


def test_class_fractions_rejects_empty_group_and_bad_labels():
    with pytest.raises(ValueError, match="hold no samples"):
        TR.class_fractions(np.array([0, 1]), np.array([0, 2]))
    with pytest.raises(ValueError, match="integer"):
        TR.class_fractions(np.array([0.5, 1.0]), np.array([0, 1]))
    with pytest.raises(ValueError, match="one group per sample"):
        TR.class_fractions(np.array([0, 1]), np.array([0, 1, 1]))


def test_group_histograms_normalised_per_column_and_shared_edges():
    rng = np.random.default_rng(0)
    v = np.column_stack([rng.normal(size=400), rng.uniform(size=400)])
    g = np.repeat(np.arange(4), 100)
    h, edges = TR.group_histograms(v, g, n_bins=10)
    assert h.shape == (4, 20) and edges.shape == (2, 11)
    np.testing.assert_allclose(h[:, :10].sum(1), 1.0)
    np.testing.assert_allclose(h[:, 10:].sum(1), 1.0)
    assert (h >= 0).all()


def test_locate_transition_on_a_two_phase_population():
    """Class A below T* = 393 K, class B above, with the fraction of B rising linearly over
    the 10 K between the two bracketing temperatures: the crossing is recovered."""
    temps = np.linspace(298, 478, 19)
    tc = 393.0
    b = np.clip((temps - tc) / 10 + 0.5, 0, 1)
    rng = np.random.default_rng(1)
    weights = np.column_stack([1 - b, b]) * rng.uniform(0.5, 2.0, (19, 1))  # arbitrary scale
    tr = TR.locate_transition(temps[::-1], weights[::-1])  # unsorted input is fine
    assert tr.component == 1
    assert abs(tr.estimate - tc) < 1e-9
    assert tr.bracket == (388.0, 398.0)
    np.testing.assert_allclose(tr.abundance, b)


def test_locate_transition_ignores_an_isolated_noisy_crossing():
    temps = np.arange(10.0)
    a = np.array([0.0, 0.6, 0.1, 0.0, 0.1, 0.2, 0.9, 1.0, 1.0, 0.95])  # blip at 1, step 5->6
    tr = TR.locate_transition(temps, a)
    assert tr.bracket == (5.0, 6.0)
    assert abs(tr.estimate - (5 + 0.3 / 0.7)) < 1e-9


def test_locate_transition_bad_input():
    with pytest.raises(ValueError, match="non-negative"):
        TR.locate_transition([1, 2, 3], [[1, -1], [1, 0], [0, 1]])
    with pytest.raises(ValueError, match="distinct"):
        TR.locate_transition([1, 1, 3], [0.0, 0.5, 1.0])


def test_transition_matrix_counts():
    ids = [np.array([0, 1]), np.array([1, 0]), np.array([0])]
    labels = [np.array([0, 1]), np.array([1, 1]), np.array([0])]
    counts = TR.transition_matrix(ids, labels, normalize=False)
    np.testing.assert_array_equal(counts, [[0, 1], [1, 1]])
    np.testing.assert_allclose(TR.transition_matrix(ids, labels).sum(1), [1, 1])
