"""Bayesian symmetry: the closed-form evidence against numerical integration, the P = 1/2
threshold's sigma / sqrt(N) scaling measured through the full model, calibration of the
posterior on data drawn from the prior, and the latent two-state decision."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from helpers.analysis import (
    effective_atoms,
    expected_calibration_error,
    knn_r2,
    lattice_design,
    log_evidence,
    posterior_threshold,
    reliability_curve,
    rotational_asymmetry,
    symmetry_posterior,
    threshold_delta,
    two_state_mixture,
)
from helpers.simulate import toy_lattice_sites, toy_lattices


# -- evidence ------------------------------------------------------------------------------------
def test_log_evidence_matches_numerical_integration_one_parameter():
    rng = np.random.default_rng(0)
    x = rng.normal(size=7)
    y = 0.8 * x + 0.3 * rng.normal(size=7)
    sigma, m, s = 0.3, 0.1, 0.7

    def integrand(b):
        return (np.exp(stats.norm.logpdf(y, b * x, sigma).sum())
                * stats.norm.pdf(b, m, s))

    numeric, _ = integrate.quad(integrand, -6, 6, points=[0.8], epsabs=0, epsrel=1e-10)
    closed = log_evidence(y, x[:, None], [m], [[s * s]], sigma)
    assert closed == pytest.approx(np.log(numeric), abs=1e-6)


def test_log_evidence_matches_numerical_integration_two_correlated_parameters():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6, 2))
    y = X @ [0.5, -0.4] + 0.4 * rng.normal(size=6)
    sigma, mean = 0.4, np.array([0.2, 0.0])
    cov = np.array([[0.5, 0.2], [0.2, 0.3]])
    prior = stats.multivariate_normal(mean, cov)

    def integrand(b2, b1):
        b = np.array([b1, b2])
        return np.exp(stats.norm.logpdf(y, X @ b, sigma).sum()) * prior.pdf(b)

    numeric, _ = integrate.dblquad(integrand, -4, 4, -4, 4, epsabs=0, epsrel=1e-8)
    assert log_evidence(y, X, mean, cov, sigma) == pytest.approx(np.log(numeric), abs=1e-5)


def test_log_evidence_batch_equals_dense_gaussian():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(20, 3))
    S = np.diag([1.0, 0.5, 2.0])
    y = rng.normal(size=(5, 20))
    dense = stats.multivariate_normal(np.zeros(20), 0.25 * np.eye(20) + X @ S @ X.T).logpdf(y)
    assert np.allclose(log_evidence(y, X, np.zeros(3), S, 0.5), dense)


@pytest.mark.parametrize("args, match", [
    ((np.ones(4), np.ones((5, 1)), [0.0], [[1.0]], 1.0), "same n"),
    ((np.ones(4), np.ones((4, 1)), [0.0, 1.0], [[1.0]], 1.0), "prior_mean"),
    ((np.ones(4), np.ones((4, 1)), [0.0], [[-1.0]], 1.0), "positive definite"),
    ((np.ones(4), np.ones((4, 1)), [0.0], [[1.0]], 0.0), "sigma"),
    ((np.r_[np.nan, 1, 1, 1], np.ones((4, 1)), [0.0], [[1.0]], 1.0), "NaN"),
])
def test_log_evidence_refuses_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        log_evidence(*args)


def test_symmetric_data_favour_the_symmetric_model_and_distorted_data_the_other():
    d = np.array([[0.0, 0.0], [0.2, 0.0]])
    t = toy_lattices(np.repeat(d, 50, axis=0), sigma=0.05, n_cells=4, seed=0)
    post = symmetry_posterior(t.observed, t.fractional, t.sublattice, 0.05, 0.1)
    assert np.median(post.p_symmetric[:50]) > 0.8
    assert post.p_symmetric[50:].max() < 1e-6
    # the distorted model's posterior mean recovers d (shrunk a little by the prior)
    assert np.allclose(post.displacement[50:].mean(0), [0.2, 0.0], atol=0.01)


def test_prior_odds_move_the_posterior_as_bayes_rule_says():
    t = toy_lattices([0.02, 0.01], sigma=0.05, n_cells=3, seed=1)
    even = symmetry_posterior(t.observed[0], t.fractional, t.sublattice, 0.05, 0.1)
    skew = symmetry_posterior(t.observed[0], t.fractional, t.sublattice, 0.05, 0.1,
                              prior_symmetric=0.9)
    odds = lambda p: p / (1 - p)  # noqa: E731
    assert odds(skew.p_symmetric) == pytest.approx(9 * odds(even.p_symmetric), rel=1e-9)


def test_symmetry_posterior_refuses_mismatched_sites():
    t = toy_lattices([0.0, 0.0], 0.05, 3, seed=0)
    other, sub = toy_lattice_sites(4)
    with pytest.raises(ValueError, match="atoms"):
        symmetry_posterior(t.observed, other, sub, 0.05, 0.1)
    with pytest.raises(ValueError, match="prior_symmetric"):
        symmetry_posterior(t.observed, t.fractional, t.sublattice, 0.05, 0.1, prior_symmetric=1)


# -- the threshold ---------------------------------------------------------------------------
def test_threshold_formula_scales_as_sigma_over_sqrt_n_at_fixed_prior_ratio():
    """With r = N tau^2 / sigma^2 held fixed, delta* is exactly proportional to sigma/sqrt(N)."""
    base = threshold_delta(0.05, 16, 0.1)
    assert threshold_delta(0.1, 16, 0.2) == pytest.approx(2 * base)  # sigma x2 (tau x2)
    assert threshold_delta(0.05, 64, 0.05) == pytest.approx(base / 2)  # N x4 (tau / 2)
    # at fixed prior, more atoms still lower the threshold, but by less than 1/sqrt(N)
    assert base / 2 < threshold_delta(0.05, 64, 0.1) < base


def test_measured_threshold_follows_the_closed_form_and_its_scaling():
    """The P = 1/2 threshold measured through the full model (origin and lattice constant
    fitted, 2D displacement) on simulated lattices matches the closed form for the median data
    set, and quadrupling the atoms at fixed r halves it (sigma / sqrt(N))."""
    rows = []
    for sigma, side in ((0.02, 2), (0.04, 4), (0.04, 8), (0.08, 8)):
        measured = posterior_threshold(sigma, side, 0.1, n_repeats=300, seed=side)
        n_eff = effective_atoms(*toy_lattice_sites(side))
        predicted = threshold_delta(sigma, n_eff, 0.1, median_data=True)
        rows.append((measured, predicted))
    rows = np.array(rows)
    assert np.all(np.abs(rows[:, 0] / rows[:, 1] - 1) < 0.15), rows
    # sigma doubled (0.04 -> 0.08 at 8 x 8 cells) with r 4x smaller: the threshold grows,
    # by less than twice because of the prior factor
    assert 1.2 < rows[3, 0] / rows[2, 0] < 2.0


def test_effective_atoms_is_between_half_and_all_b_atoms():
    for side in (2, 4, 8):
        n = side * side
        assert n / 2 < effective_atoms(*toy_lattice_sites(side)) < n


def test_noise_free_threshold_is_the_bayes_factor_root():
    """Data whose fitted displacement is exactly delta* sit at P = 1/2 (lattice known)."""
    sigma, n, tau = 0.05, 16, 0.1
    d_star = threshold_delta(sigma, n, tau)
    s2 = sigma**2 / n
    log_bf = -np.log1p(tau**2 / s2) + d_star**2 / 2 * (1 / s2 - 1 / (s2 + tau**2))
    assert log_bf == pytest.approx(0.0, abs=1e-9)


# -- calibration ---------------------------------------------------------------------------------
def _prior_draws(n, tau, sigma, side, seed):
    rng = np.random.default_rng(seed)
    distorted = rng.uniform(size=n) < 0.5
    d = tau * rng.standard_normal((n, 2)) * distorted[:, None]
    return distorted.astype(float), toy_lattices(d, sigma, side, seed=seed + 1)


def test_posterior_is_calibrated_on_data_drawn_from_the_prior():
    truth, t = _prior_draws(3000, 0.1, 0.1, 3, seed=0)
    p = symmetry_posterior(t.observed, t.fractional, t.sublattice, 0.1, 0.1).p_distorted
    assert 0.1 < np.mean((p > 0.1) & (p < 0.9))  # not a trivial all-0/1 case
    assert expected_calibration_error(truth, p) < 0.05


def test_a_wrong_prior_is_caught_by_the_calibration_error():
    truth, t = _prior_draws(3000, 0.1, 0.1, 3, seed=0)
    p = symmetry_posterior(t.observed, t.fractional, t.sublattice, 0.1, 1.0).p_distorted
    assert expected_calibration_error(truth, p) > 0.08


def test_reliability_curve_bins_and_counts():
    mean_prob, freq, counts = reliability_curve([0, 1, 1, 0, 1], [0.05, 0.95, 1.0, 0.15, 0.5],
                                                n_bins=2)
    assert counts.tolist() == [2, 3]
    assert mean_prob[0] == pytest.approx(0.1) and freq.tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="binary"):
        reliability_curve([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="probabilities"):
        reliability_curve([0, 1], [0.1, 1.2])


# -- latents --------------------------------------------------------------------------------------
def test_two_state_mixture_recovers_two_clusters_with_posteriors():
    rng = np.random.default_rng(0)
    labels = rng.uniform(size=600) < 0.3
    z = rng.normal(size=(600, 2)) * 0.3 + np.where(labels[:, None], [3.0, 1.0], [0.0, 0.0])
    mix = two_state_mixture(z, seed=0)
    assert np.mean(mix.labels == labels) > 0.98  # ordered by the first coordinate
    assert mix.weights[1] == pytest.approx(0.3, abs=0.05)
    assert np.allclose(mix.probs.sum(1), 1.0)
    # points midway between the clusters are uncertain
    mid = two_state_mixture(np.r_[z, [[1.5, 0.5]]], seed=0).probs[-1]
    assert 0.05 < mid[0] < 0.95
    with pytest.raises(ValueError, match="N >= 4"):
        two_state_mixture(z[:3])


def test_rotational_asymmetry_tells_a_centred_motif_from_an_off_centre_one():
    rr, cc = np.mgrid[:21, :21] - 10.0

    def blobs(shift):
        img = sum(np.exp(-((rr - r) ** 2 + (cc - c) ** 2) / 4) for r, c in
                  ((-5, -5), (-5, 5), (5, -5), (5, 5)))
        return img + 0.5 * np.exp(-((rr - shift) ** 2 + cc**2) / 3)

    centred, off = rotational_asymmetry(np.stack([blobs(0.0), blobs(1.5)]))
    assert centred < 1e-12 < 0.1 < off
    with pytest.raises(ValueError, match="odd"):
        rotational_asymmetry(np.zeros((2, 20, 20)))


def test_knn_r2_separates_informative_from_useless_features():
    rng = np.random.default_rng(0)
    y = rng.uniform(size=500)
    informative = np.c_[np.cos(3 * y), np.sin(3 * y)]  # a nonlinear code of y
    assert knn_r2(y, informative) > 0.95
    assert knn_r2(y, rng.normal(size=(500, 2))) < 0.1
    with pytest.raises(ValueError, match="rows"):
        knn_r2(y, informative[:10])


def test_knn_r2_standardises_with_the_training_folds_only():
    # heavy-tailed features: each fold's training mean and sd differ from the whole set's, so
    # scaling on all samples (test folds included) gives other neighbours than the honest way
    from sklearn.model_selection import KFold
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.preprocessing import StandardScaler

    from helpers.analysis import r2_score

    rng = np.random.default_rng(5)
    x = rng.standard_t(1.5, size=(200, 2)) * [1.0, 30.0]
    y = np.tanh(x[:, 0]) + 0.3 * rng.normal(size=200)
    honest, leaky = np.empty(200), np.empty(200)
    scaled_all = StandardScaler().fit_transform(x)
    for train, test in KFold(5, shuffle=True, random_state=0).split(x):
        scaler = StandardScaler().fit(x[train])
        honest[test] = KNeighborsRegressor(10).fit(scaler.transform(x[train]), y[train]).predict(
            scaler.transform(x[test]))
        leaky[test] = KNeighborsRegressor(10).fit(scaled_all[train], y[train]).predict(
            scaled_all[test])
    assert r2_score(y, honest) != pytest.approx(r2_score(y, leaky), abs=1e-6)
    assert knn_r2(y, x) == pytest.approx(r2_score(y, honest), abs=1e-12)


def test_knn_r2_grouped_folds_catch_a_feature_that_only_marks_its_group():
    # 25 groups (e.g. locations) of 20 samples: y is fixed per group, and the feature is a
    # group tag unrelated to y. Shuffled folds match each sample to its own group's other
    # members and score high; grouped folds never see the group in training and score ~0.
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(25), 20)
    y = rng.uniform(size=25)[groups]
    tag = rng.permutation(25)[groups] + 0.01 * rng.normal(size=500)
    assert knn_r2(y, tag) > 0.9
    assert knn_r2(y, tag, groups=groups) < 0.2
    # a feature that really encodes y keeps its score under grouped folds
    assert knn_r2(y, y + 0.01 * rng.normal(size=500), groups=groups) > 0.95
    with pytest.raises(ValueError, match="distinct labels"):
        knn_r2(y, tag, groups=np.arange(500) % 3)
    with pytest.raises(ValueError, match="labels"):
        knn_r2(y, tag, groups=groups[:10])


def test_lattice_design_columns():
    f, s = toy_lattice_sites(1)
    X = lattice_design(f, s, True)
    assert X.shape == (2 * 5, 5)
    assert np.array_equal(X[-2:, 3:], np.eye(2))  # the last atom is the B atom
