"""Trajectory PCA, the baselines, the lattice fit and the scan-aware GP on known fields."""

import numpy as np
import pytest

from helpers.analysis import (
    fit_lattice,
    full_trajectories,
    locate_atoms,
    r2_score,
    row_polynomial,
    trajectory_pca,
)
from helpers.models import DistortionGP
from helpers.simulate import scan_distortion_stack


def test_pca_finds_a_shared_drift():
    rng = np.random.default_rng(0)
    drift = np.cumsum(rng.normal(0, 5, (10, 2)), 0)
    d = drift[None] + rng.normal(0, 0.5, (50, 10, 2))
    pca = trajectory_pca(d - d.mean(1, keepdims=True), n_components=3)
    truth = (drift - drift.mean(0)).ravel()
    assert abs(np.corrcoef(pca.series[0].ravel(), truth)[0, 1]) > 0.99
    assert pca.explained[0] > 0.9 and pca.scores[0].mean() > 0
    with pytest.raises(ValueError, match="n_components"):
        trajectory_pca(d, n_components=0)


def test_lattice_fit_recovers_vectors_and_residuals():
    rng = np.random.default_rng(1)
    vectors = np.array([[0.0, 10.0], [8.66, 5.0]])  # triangular, 10 px
    ij = np.stack(np.meshgrid(np.arange(-6, 7), np.arange(-6, 7)), -1).reshape(-1, 2)
    bump = rng.normal(0, 0.2, (len(ij), 2))
    pts = 100 + ij @ vectors + bump
    lat = fit_lattice(pts)
    assert np.allclose(np.sort(np.linalg.norm(lat.vectors, axis=1)), 10.0, atol=0.05)
    assert np.corrcoef(lat.residuals.ravel(), (bump - bump.mean(0)).ravel())[0, 1] > 0.95
    with pytest.raises(ValueError, match="at least 12"):
        fit_lattice(pts[:5])


def test_row_polynomial_follows_a_row_jitter_and_names_errors():
    rng = np.random.default_rng(2)
    pts = rng.uniform(0, 100, (400, 2))
    jitter = np.sin(pts[:, 0] / 4.0)[:, None]
    q = rng.uniform(5, 95, (50, 2))
    pred = row_polynomial(pts, jitter, q, band=3.0, degree=1)
    assert r2_score(np.sin(q[:, 0] / 4.0), pred[:, 0]) > 0.9
    # a query beyond the columns of its band takes the value at the band's last column
    # instead of the polynomial's divergent extrapolation
    line = np.column_stack([np.full(6, 10.0), np.linspace(0, 50, 6)])
    curve = (0.01 * line[:, 1] ** 2)[:, None]
    far = row_polynomial(line, curve, np.array([[10.0, 150.0]]), band=3.0, degree=2)
    assert far[0, 0] == pytest.approx(25.0, abs=1e-6)
    with pytest.raises(ValueError, match="one displacement per point"):
        row_polynomial(pts, jitter[:10], q, band=3.0)
    with pytest.raises(ValueError, match="band"):
        row_polynomial(pts, jitter, q, band=0.0)


@pytest.fixture(scope="module")
def small_problem():
    s = scan_distortion_stack(n_frames=6, size=80, strain=0.0, seed=5)
    x = full_trajectories(locate_atoms(s.frames), 4.0, s.pixel_size)
    return s, x


def _truth(s, x):
    from helpers.analysis import match_points

    pairs, _ = match_points(s.distorted_positions[0], x[:, 0], 2 * s.pixel_size)
    return pairs


def test_gp_recovers_the_field_better_than_the_row_polynomial(small_problem):
    s, x = small_problem
    t_n, h, w = s.frames.shape
    dev = x - x.mean(1, keepdims=True)
    pairs = _truth(s, x)
    rng = np.random.default_rng(0)
    test = np.zeros(len(x), bool)
    test[rng.choice(pairs[:, 1], len(pairs) // 4, replace=False)] = True
    tid = pairs[np.isin(pairs[:, 1], np.flatnonzero(test))]

    def coords(idx):
        p = x[idx] / s.pixel_size
        f = np.broadcast_to(np.arange(t_n)[None, :, None], p.shape[:2] + (1,))
        return np.concatenate([p, f], -1).reshape(-1, 3)

    gp = DistortionGP((h, w), n_train=300, epochs=25, lr=0.1, seed=0, device="cpu")
    gp.fit(coords(~test), dev[~test].reshape(-1, 2), progress=False)
    pred = gp.predict(coords(tid[:, 1]), groups=np.repeat(np.arange(len(tid)), t_n))
    field = s.field_at_atoms[:, tid[:, 0]].transpose(1, 0, 2)
    truth = field - field.mean(1, keepdims=True)
    gp_dev = pred.mean.reshape(-1, t_n, 2)
    poly = np.stack([row_polynomial(x[~test, t] / s.pixel_size, dev[~test, t],
                                    x[tid[:, 1], t] / s.pixel_size, band=8.0) for t in
                     range(t_n)], 1)
    poly -= poly.mean(1, keepdims=True)
    gp_err = np.sqrt(np.mean((gp_dev - truth) ** 2))
    poly_err = np.sqrt(np.mean((poly - truth) ** 2))
    assert r2_score(truth.ravel(), gp_dev.ravel()) > 0.9
    assert gp_err < poly_err
    # the band is honest: most truths inside 2 sigma
    inside = np.abs(gp_dev - truth) <= 1.96 * pred.std.reshape(-1, t_n, 2)
    assert inside.mean() > 0.75
    # the learned jitter length is a few scan lines, the fast-scan length much longer
    hp = gp.hyperparameters()
    assert np.all(hp["l_jitter_lines"] < 20) and np.all(hp["l_fast"] > 3 * hp["l_jitter_lines"])


def test_gp_errors_are_named():
    gp = DistortionGP((32, 32), seed=0, device="cpu")
    with pytest.raises(ValueError, match="not fitted|fit"):
        gp.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="frame_shape"):
        DistortionGP((4,))
    with pytest.raises(ValueError, match="frame numbers"):
        gp.fit(np.c_[np.zeros((20, 2)), np.full(20, 0.5)], np.zeros((20, 2)))
    with pytest.raises(ValueError, match="one displacement per position"):
        gp.fit(np.zeros((20, 3)), np.zeros((19, 2)))


def test_gp_keeps_a_real_strain_out_of_the_correction():
    # a stack whose specimen dilates locally during the series: the distortion the GP removes
    # must not take the strain with it, and its specimen term must hold it instead
    s = scan_distortion_stack(n_frames=8, size=96, strain=40.0, seed=7)
    x = full_trajectories(locate_atoms(s.frames), 4.0, s.pixel_size)
    t_n, h, w = s.frames.shape
    dev = x - x.mean(1, keepdims=True)
    pairs = _truth(s, x)
    p = x[pairs[:, 1]] / s.pixel_size
    coords = np.concatenate([p, np.broadcast_to(np.arange(t_n)[None, :, None],
                                                p.shape[:2] + (1,))], -1).reshape(-1, 3)
    gp = DistortionGP((h, w), n_train=300, epochs=25, lr=0.1, seed=0, device="cpu")
    gp.fit(coords, dev[pairs[:, 1]].reshape(-1, 2), progress=False)
    group = np.repeat(np.arange(len(pairs)), t_n)
    distortion = gp.predict(coords, groups=group, return_std=False).mean.reshape(-1, t_n, 2)
    specimen = gp.predict(coords, groups=group, return_std=False,
                          part="specimen").mean.reshape(-1, t_n, 2)
    tt = np.arange(t_n) - (t_n - 1) / 2
    row = p[:, :, 0].mean(1)
    basis = np.column_stack([np.ones(len(row)), row, row**2])

    def change(d):  # per-column change over the series beyond what a drift can mimic
        ch = (d * tt[None, :, None]).sum(1) / (tt**2).sum()
        return ch - basis @ np.linalg.lstsq(basis, ch, rcond=None)[0]

    truth = change(s.strain[:, pairs[:, 0]].transpose(1, 0, 2)).ravel()
    corrected = change(dev[pairs[:, 1]] - distortion).ravel()
    assert np.corrcoef(truth, corrected)[0, 1] > 0.8
    assert np.corrcoef(truth, change(specimen).ravel())[0, 1] > 0.8
    with pytest.raises(ValueError, match="part"):
        gp.predict(coords[:3], part="strain")


def test_rigid_shifts_recover_known_steps_without_lattice_jumps():
    # a lattice moved by known sub-pixel steps; the search window keeps the registration from
    # jumping by a whole column spacing, which the full-frame correlation can do
    from scipy import ndimage

    from helpers.analysis import rigid_shifts

    rng = np.random.default_rng(4)
    base = scan_distortion_stack(n_frames=3, size=64, drift_start=0.0, drift_end=0.0,
                                 jitter_rms=0.0, flyback=0.0, strain=0.0, seed=2).frames[0]
    steps = rng.uniform(-1.5, 1.5, (6, 2))
    moves = np.vstack([[0.0, 0.0], np.cumsum(steps, 0)])
    frames = np.stack([ndimage.shift(base, m, order=3, mode="wrap") for m in moves])
    frames = rng.poisson(np.clip(frames, 0, None)).astype(float)
    got = rigid_shifts(frames, max_shift=3.0)
    np.testing.assert_allclose(got, moves - moves.mean(0), atol=0.15)
    # two frames of a jittered stack where the full-frame correlation prefers a translation by
    # a whole perovskite cell (about 16 px) to the true step of well under a pixel
    s = scan_distortion_stack(n_frames=16, size=160, seed=1)
    step = np.diff(rigid_shifts(s.frames[1:3]), axis=0)[0]
    true_step = np.diff(s.frame_drift[1:3], axis=0)[0] / s.pixel_size
    assert np.abs(step - true_step).max() < 0.5
    with pytest.raises(ValueError, match="max_shift"):
        rigid_shifts(frames, max_shift=0.0)
