"""helpers.analysis.circular: wrapped angles, circular means modulo a symmetry, and a von
Mises mixture that recovers the means, concentrations and weights it was sampled from."""

import numpy as np
import pytest
from scipy.special import i0e
from scipy.stats import vonmises

from helpers.analysis import circular as C


def test_wrap_angle_and_circular_mean():
    np.testing.assert_allclose(C.wrap_angle([0.0, 3 * np.pi / 2, -3 * np.pi / 2, 2 * np.pi]),
                               [0.0, -np.pi / 2, np.pi / 2, 0.0], atol=1e-12)
    assert C.wrap_angle(np.pi) == pytest.approx(np.pi)  # (-pi, pi]
    # the mean of 350 and 20 degrees is 5 degrees, not 185
    assert np.degrees(C.circular_mean(np.radians([350.0, 20.0]))) == pytest.approx(5.0)
    # modulo 180 degrees an axis at 10 degrees and its reverse at 190 agree
    axis = C.circular_mean(np.radians([10.0, 190.0, 10.0]), symmetry=2)
    assert np.degrees(axis) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="non-empty"):
        C.circular_mean([])
    with pytest.raises(ValueError, match="non-empty"):
        C.circular_mean([0.0, np.nan])


def _sample(means, kappas, weights, n, seed):
    rng = np.random.default_rng(seed)
    comp = rng.choice(len(weights), size=n, p=weights)
    x = vonmises.rvs(np.asarray(kappas)[comp], loc=np.asarray(means)[comp], random_state=rng)
    return C.wrap_angle(x), comp


@pytest.mark.parametrize("means, kappas, weights", [
    ((0.5, 0.5 + np.pi), (20.0, 5.0), (0.7, 0.3)),
    ((-2.0, 0.3, 2.2), (30.0, 10.0, 50.0), (0.2, 0.5, 0.3)),
])
def test_von_mises_mixture_recovers_known_components(means, kappas, weights):
    x, comp = _sample(means, kappas, weights, 4000, seed=0)
    fit = C.fit_von_mises_mixture(x, n_components=len(means))
    # components come back in any order: match each true one to the nearest fitted mean
    order = [int(np.argmin(np.abs(C.wrap_angle(fit.means - m)))) for m in means]
    assert sorted(order) == list(range(len(means)))
    np.testing.assert_allclose(C.wrap_angle(fit.means[order] - np.array(means)), 0, atol=0.05)
    np.testing.assert_allclose(fit.concentrations[order], kappas, rtol=0.15)
    np.testing.assert_allclose(fit.weights[order], weights, atol=0.03)
    assert fit.weights.sum() == pytest.approx(1.0)
    assert fit.responsibilities.shape == (len(x), len(means))
    # the most probable component is the one that drew the sample, nearly always
    assert np.mean(np.asarray(order)[comp] == fit.labels) > 0.95
    # the density is normalised on the circle
    grid = np.linspace(-np.pi, np.pi, 20001)
    assert np.trapezoid(fit.pdf(grid), grid) == pytest.approx(1.0, abs=1e-3)


def _notebook_01_em(phi, n_iter=200):
    """The two-component EM notebook 01 held inline before it moved to the helper (the same
    arithmetic, so the helper must reproduce it exactly)."""
    axis = np.angle(np.mean(np.exp(2j * phi))) / 2
    mu, kappa, w = np.array([axis, axis + np.pi]), np.array([2.0, 2.0]), np.array([0.5, 0.5])
    for _ in range(n_iter):
        logp = np.log(w) + kappa * (np.cos(phi[:, None] - mu) - 1) - np.log(i0e(kappa))
        unnormalised = np.exp(logp - logp.max(1, keepdims=True))
        resp = unnormalised / unnormalised.sum(1, keepdims=True)
        s = (resp * np.exp(1j * phi[:, None])).sum(0)
        n_m = resp.sum(0)
        big_r = np.abs(s) / n_m
        mu, w = np.angle(s), n_m / len(phi)
        kappa = np.clip(big_r * (2 - big_r**2) / (1 - big_r**2 + 1e-12), 1e-3, 1e3)
    return mu, kappa, w, resp


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_von_mises_mixture_reproduces_the_notebook_numbers_exactly(dtype):
    x, _ = _sample((1.0, -1.5), (15.0, 8.0), (0.6, 0.4), 1500, seed=1)
    phi = x.astype(dtype)  # encodings are float32
    fit = C.fit_von_mises_mixture(phi, n_components=2)
    mu, kappa, w, resp = _notebook_01_em(phi)
    np.testing.assert_array_equal(fit.means, mu)
    np.testing.assert_array_equal(fit.concentrations, kappa)
    np.testing.assert_array_equal(fit.weights, w)
    np.testing.assert_array_equal(fit.responsibilities, resp)


def test_von_mises_mixture_is_deterministic_and_checks_input():
    x, _ = _sample((0.0, 2.0), (10.0, 10.0), (0.5, 0.5), 300, seed=2)
    a, b = C.fit_von_mises_mixture(x), C.fit_von_mises_mixture(x)
    np.testing.assert_array_equal(a.means, b.means)
    one = C.fit_von_mises_mixture(x[:50] * 0 + 0.3 + 0.01 * np.arange(50) / 50, n_components=1)
    assert one.means[0] == pytest.approx(0.305, abs=1e-3) and one.weights[0] == 1.0
    with pytest.raises(ValueError, match="n_components"):
        C.fit_von_mises_mixture(x[:2], n_components=3)
    with pytest.raises(ValueError, match="finite"):
        C.fit_von_mises_mixture(np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match=r"\(N,\)"):
        C.fit_von_mises_mixture(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="complex"):
        C.fit_von_mises_mixture(np.zeros(3) + 1j)
