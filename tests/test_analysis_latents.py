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
