"""helpers.analysis.latents: the KL per latent matches its closed form, and collapsed latents are
not counted as active."""

import numpy as np
import pytest

from helpers.analysis import latents as L


def test_kl_per_latent_closed_form():
    z = np.array([[1.0, 0.0], [-1.0, 0.0]])
    s = np.array([[0.5, 1.0], [0.5, 1.0]])
    kl = L.kl_per_latent(z, s)
    expected = 0.5 * (1 + 0.25 - 1) - np.log(0.5)
    np.testing.assert_allclose(kl, [expected, 0.0])


def test_active_latents_counts_informative_ones_first():
    rng = np.random.default_rng(0)
    n = 1000
    informative = rng.normal(size=n)  # means spread over the prior, tight posteriors
    z = np.column_stack([0.01 * rng.normal(size=n), 2 * informative, informative])
    s = np.column_stack([np.full(n, 0.99), np.full(n, 0.1), np.full(n, 0.3)])
    idx = L.active_latents(z, s)
    np.testing.assert_array_equal(idx, [1, 2])
    assert len(L.active_latents(z, s, threshold=100.0)) == 0


def test_active_latents_bad_input():
    with pytest.raises(ValueError, match="log-variances"):
        L.kl_per_latent(np.zeros((3, 2)), -np.ones((3, 2)))
    with pytest.raises(ValueError, match="matching"):
        L.kl_per_latent(np.zeros((3, 2)), np.ones((3, 1)))


def test_orient_latents_recovers_a_factor_split_between_two_latents():
    # two independent factors, mixed by a 35 degree rotation: each latent carries both
    rng = np.random.default_rng(1)
    factors = rng.normal(size=(2000, 2))
    angle = np.radians(35)
    mix = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    z = factors @ mix.T
    reference = 3.0 + 2.0 * factors[:, 0] + 0.05 * rng.normal(size=2000)  # reads factor 0
    assert abs(np.corrcoef(z[:, 1], factors[:, 1])[0, 1]) < 0.9  # the raw axes mix them
    axes = L.orient_latents(z, reference)
    np.testing.assert_allclose(axes.T @ axes, np.eye(2), atol=1e-12)
    assert np.linalg.det(axes) == pytest.approx(1.0)
    oriented = z @ axes
    assert np.corrcoef(oriented[:, 0], factors[:, 0])[0, 1] > 0.999  # first axis: the reference
    assert abs(np.corrcoef(oriented[:, 1], factors[:, 1])[0, 1]) > 0.999  # second: the other
    # rotation about the origin keeps the codes' lengths (the prior is unchanged)
    np.testing.assert_allclose(np.linalg.norm(oriented, axis=1), np.linalg.norm(z, axis=1))


def test_orient_latents_in_three_dimensions_is_a_proper_rotation():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(500, 3))
    axes = L.orient_latents(z, z @ np.array([1.0, -2.0, 0.5]))
    np.testing.assert_allclose(axes.T @ axes, np.eye(3), atol=1e-12)
    assert np.linalg.det(axes) == pytest.approx(1.0)
    np.testing.assert_allclose(axes[:, 0], np.array([1.0, -2.0, 0.5]) / np.sqrt(5.25))


def test_orient_latents_bad_input_names_the_fix():
    z = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(ValueError, match="does not vary"):
        L.orient_latents(z, np.ones(50))
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        L.orient_latents(z, np.ones(49))
    with pytest.raises(ValueError, match="finite"):
        L.orient_latents(np.full((50, 2), np.nan), np.arange(50.0))
