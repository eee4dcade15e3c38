"""The parallel GP on maps with known structure: recovery, the shared kernel, calibration,
sparse pixels, errors; and the unmixing helpers it is used with."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.analysis import interpolate_sparse, mean_interval, unmix_spectra
from helpers.analysis.scores import interval_coverage, r2_score
from helpers.models import NotFittedError, ParallelGP


def _lattice(h=40, w=40, spacing=7.3, sigma=1.6, shift=(0.37, 0.81)):
    """Gaussian columns off the pixel grid: a smooth map with known structure."""
    r, c = np.mgrid[0:h, 0:w].astype(float)
    out = np.zeros((h, w))
    for r0 in np.arange(-2, h + 2, spacing) + shift[0]:
        for c0 in np.arange(-2, w + 2, spacing) + shift[1]:
            out += np.exp(-((r - r0) ** 2 + (c - c0) ** 2) / (2 * sigma**2))
    return out


def _r2(t, p):
    return r2_score(t.ravel(), p.ravel())


@pytest.fixture(scope="module")
def shared_maps():
    """Three maps sharing the column structure: two strong (high SNR), one weak."""
    rng = np.random.default_rng(0)
    base = _lattice()
    grad = np.linspace(0, 1, 40)[:, None] * np.ones((1, 40))
    truth = np.stack([base, base * (1 - 0.5 * grad), 0.2 * base * grad])
    noise = np.array([0.08, 0.08, 0.12])[:, None, None]
    return truth, truth + noise * rng.normal(size=truth.shape)


def test_recovers_a_known_smooth_map_and_is_calibrated(shared_maps):
    truth, noisy = shared_maps
    gp = ParallelGP(shared_kernel=True, epochs=40, n_train=300, seed=0, device="cpu")
    hist = gp.fit(noisy, progress=False)
    assert len(hist["loss"]) == 40 and hist["loss"][-1] < hist["loss"][0]
    post = gp.predict()
    for k in range(2):
        gain = _r2(truth[k], post.mean[k]) - _r2(truth[k], noisy[k])
        assert _r2(truth[k], post.mean[k]) > 0.9 and gain > 0.05, (k, gain)
    cover = interval_coverage(truth.ravel(), (post.mean - 1.96 * post.std).ravel(),
                              (post.mean + 1.96 * post.std).ravel())
    assert 0.85 <= cover <= 0.995
    # deterministic: predicting twice gives the same numbers
    np.testing.assert_array_equal(post.mean, gp.predict().mean)


def test_shared_kernel_helps_a_weak_component_that_shares_structure(shared_maps):
    truth, noisy = shared_maps
    r2 = {}
    for shared in (True, False):
        gp = ParallelGP(shared_kernel=shared, epochs=40, n_train=300, seed=0, device="cpu")
        gp.fit(noisy, progress=False)
        r2[shared] = _r2(truth[2], gp.predict(return_std=False).mean[2])
        if shared:
            ls = gp.hyperparameters()["lengthscale"]
            assert np.ptp(ls) == 0 and 1.0 < ls[0] < 3.0  # one length scale, the columns'
    assert r2[True] > r2[False] + 0.02, r2


def test_finer_grid_and_sparse_pixels(shared_maps):
    truth, noisy = shared_maps
    gp = ParallelGP(epochs=30, n_train=300, seed=1, device="cpu")
    gp.fit(noisy, progress=False)
    fine = gp.predict(upsample=2, return_std=False)
    assert fine.mean.shape == (3, 80, 80)
    np.testing.assert_allclose(fine.mean[:, ::2, ::2], gp.predict().mean, atol=1e-8)
    # from 30 % of the pixels the GP beats bicubic interpolation of the same pixels
    mask = np.random.default_rng(2).random((40, 40)) < 0.3
    sparse = ParallelGP(epochs=30, n_train=300, seed=1, device="cpu")
    sparse.fit(noisy, mask, progress=False)
    pred = sparse.predict(return_std=True)
    bicubic = interpolate_sparse(noisy, mask)
    assert _r2(truth[0], pred.mean[0]) > max(0.8, _r2(truth[0], bicubic[0]))
    assert np.all(pred.std >= 0)


def test_periodic_kernel_learns_the_lattice_and_beats_the_smooth_kernel_from_sparse_pixels(
        shared_maps):
    truth, noisy = shared_maps
    mask = np.random.default_rng(3).random((40, 40)) < 0.2
    r2, gps = {}, {}
    for periodic in (False, True):
        gps[periodic] = ParallelGP(epochs=40, n_train=400, periodic=periodic, seed=0,
                                   device="cpu")
        gps[periodic].fit(noisy, mask, progress=False)
        r2[periodic] = _r2(truth[0], gps[periodic].predict(return_std=False).mean[0])
    # the columns repeat every 7.3 px along both axes: the learned periods find that
    np.testing.assert_allclose(gps[True].hyperparameters()["period"][0], 7.3, atol=0.3)
    assert r2[True] > max(0.9, r2[False] + 0.05), r2


def test_periodic_posterior_matches_gpytorch(shared_maps):
    # the closed-form posterior (per-axis kernel factors) equals gpytorch's own prediction
    # from the same hyperparameters when every observed pixel trained them
    import gpytorch
    import torch

    _, noisy = shared_maps
    mask = np.random.default_rng(4).random((40, 40)) < 0.15
    gp = ParallelGP(shared_kernel=False, epochs=5, n_train=400, periodic=True, seed=0,
                    device="cpu")
    gp.fit(noisy, mask, progress=False)
    ours = gp.predict(return_std=True)
    r, c = np.mgrid[0:40, 0:40]
    x = torch.tensor(np.stack([r.ravel(), c.ravel()], 1), dtype=torch.float64)
    gp.module.eval()
    with torch.no_grad(), gpytorch.settings.fast_computations(False, False, False):
        post = gp.module(x.expand(3, -1, -1))
    sd, mu = gp._sd[:, None], gp._mu[:, None]
    np.testing.assert_allclose(ours.mean.reshape(3, -1), post.mean.numpy() * sd + mu,
                               atol=1e-6)
    np.testing.assert_allclose(ours.std.reshape(3, -1), post.stddev.numpy() * sd, atol=1e-5)


def test_bad_input_is_named():
    gp = ParallelGP(epochs=2, device="cpu")
    with pytest.raises(NotFittedError):
        gp.predict()
    with pytest.raises(ValueError, match="mask"):
        gp.fit(np.zeros((2, 10, 10)), mask=np.ones((9, 10), bool))
    with pytest.raises(ValueError, match="non-finite"):
        gp.fit(np.full((2, 10, 10), np.nan))
    with pytest.raises(ValueError, match="epochs"):
        ParallelGP(epochs=0)


def test_unmixing_recovers_two_spectra_and_orders_by_counts():
    rng = np.random.default_rng(0)
    e = np.linspace(0, 1, 60)
    s1, s2 = 50 * np.exp(-((e - 0.3) / 0.05) ** 2), 10 * np.exp(-((e - 0.7) / 0.05) ** 2)
    a1, a2 = rng.uniform(0.5, 1.5, (20, 20)), rng.uniform(0.0, 1.0, (20, 20))
    x = rng.poisson(a1[..., None] * s1 + a2[..., None] * s2).astype(float)
    um = unmix_spectra(x, 2, seed=0)
    assert um.share[0] > um.share[1]
    assert np.corrcoef(um.maps[0].ravel(), a1.ravel())[0, 1] > 0.9
    assert np.corrcoef(um.maps[1].ravel(), a2.ravel())[0, 1] > 0.9
    with pytest.raises(ValueError, match="non-negative"):
        unmix_spectra(x - 100, 2)


def test_unmixing_transform_is_the_exact_projection_on_the_spectra():
    # an image that is an exact non-negative mix of the fitted spectra maps back to its
    # weights to rounding: the projection is solved exactly, not to an iteration tolerance
    rng = np.random.default_rng(1)
    e = np.linspace(0, 1, 60)
    s1, s2 = 50 * np.exp(-((e - 0.3) / 0.05) ** 2), 10 * np.exp(-((e - 0.7) / 0.05) ** 2) + 1
    x = rng.poisson(rng.uniform(0.5, 1.5, (12, 12, 1)) * s1
                    + rng.uniform(0.0, 1.0, (12, 12, 1)) * s2).astype(float)
    um = unmix_spectra(x, 2, seed=0)
    w = rng.uniform(0.0, 2.0, (2, 6, 6))
    w[0, 0, 0] = 0.0  # a weight on the non-negativity bound
    mix = np.einsum("khw,ke->hwe", w, um.spectra)
    np.testing.assert_allclose(um.transform(mix), w, atol=1e-8)
    np.testing.assert_allclose(um.transform(x), um.maps, atol=1e-10)


def test_mean_interval():
    m, lo, hi = mean_interval([1.0, 2.0, 3.0])
    assert m == 2.0 and lo < 2.0 < hi and np.isclose(hi - m, 4.302653 * 1.0 / np.sqrt(3))
    with pytest.raises(ValueError):
        mean_interval([1.0])
