"""helpers.analysis.local_crystallography: columns, the fitted ideal lattice, species,
neighbour shells, the distortion mode and the amplitude regression recover what a simulator
put in; bad input is refused with a message naming the fix."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy import ndimage

import helpers.plot as hplot
from helpers.analysis import local_crystallography as lc
from helpers.analysis import match_points, order_parameter
from helpers.analysis.scores import relative_error
from helpers.simulate import alloy_lattice_series, metal_shell_offsets

PX = 0.16


def _pipeline(sim, k):
    """Columns, lattice, metal mask and species of image ``k`` (no truth used)."""
    img = sim.images[k].astype(float)
    sigma = 0.45 / PX
    smooth = ndimage.gaussian_filter(img, 0.7 * sigma)
    pts = lc.refine_centroids(smooth, lc.find_columns(img, 0.7 * sigma, 4.5), 1.2 * sigma)
    pts, _ = lc.refine_gaussian(img, pts, sigma)
    inten = lc.column_intensity(img, pts, 1.2 * sigma)
    lat = lc.fit_ideal_lattice(pts)
    bright = int(np.argmax([np.median(inten[lat.sublattice == s]) for s in (0, 1)]))
    lat = lc.fit_ideal_lattice(pts, reference=lat.sublattice == bright)
    return pts, lat, lat.sublattice == bright, inten


@pytest.fixture(scope="module")
def clean():
    """A bright, noise-light image: no jitter, no scan noise, a high dose, strong drift; a
    smooth (Gaussian-weighted) amplitude field, so a refit can tell it from the drift."""
    return alloy_lattice_series(concentrations=(0.55,), size=192, pixel_size=PX, jitter=0.0,
                                scan_noise=0.0, dose=400.0, drift=1.5, kernel_shape="gaussian",
                                kernel_length=1.2, seed=11)


def test_gaussian_refinement_finds_a_subpixel_centre():
    rr, cc = np.mgrid[:40, :40].astype(float)
    true = np.array([[17.37, 21.81], [8.62, 9.15]])
    img = sum(50 * np.exp(-((rr - r) ** 2 + (cc - c) ** 2) / (2 * 2.2**2)) for r, c in true)
    img = img + 3.0
    start = np.round(true) + 0.4
    got, params = lc.refine_gaussian(img, start, 2.0)
    np.testing.assert_allclose(got, true, atol=0.01)
    np.testing.assert_allclose(params[:, 1], 2.2, atol=0.02)
    np.testing.assert_allclose(params[:, 2], 3.0, atol=0.05)


def test_displacement_from_the_fitted_lattice_matches_the_simulated_one(clean):
    pts, lat, metal, _ = _pipeline(clean, 0)
    pairs, _ = match_points(clean.positions, pts, 3.0)
    first = lat
    cd = lc.chain_distortion(lat.indices[metal], lat.corrected[metal], lat.hexagonal)
    modelled = np.zeros_like(pts)
    modelled[metal] = cd.model
    lat = lc.fit_ideal_lattice(pts, reference=metal, modelled=modelled)
    assert len(pairs) > 0.9 * (clean.species < 2).sum()
    truth = np.full((len(pts), 2), np.nan)
    truth[pairs[:, 1]] = clean.displacement[pairs[:, 0]]
    spec = np.full(len(pts), -1)
    spec[pairs[:, 1]] = clean.species[pairs[:, 0]]
    assert np.all(spec[metal & (spec >= 0)] < 2)  # the brighter sublattice is the metal one
    ok = metal & np.isfinite(truth).all(1)
    est = lat.corrected[ok] * PX * 100  # pm, drift undone
    err = est - truth[ok]
    # the distortion is 10 to 35 pm; the drift would leave errors of several pm
    assert np.abs(err.mean(0)).max() < 0.6
    assert err.std(0).max() < 2.0
    raw = lat.displacement[ok] * PX * 100  # image frame: the drift's scale and shear remain
    assert np.abs(est - truth[ok]).mean() < np.abs(raw - truth[ok]).mean()
    # the first fit took up part of the distortion; the refit without it does better
    err_first = first.corrected[ok] * PX * 100 - truth[ok]
    assert err_first.std(0).max() > 1.5 * err.std(0).max()


def test_species_from_the_mixture_on_a_clean_image_are_exact(clean):
    pts, lat, metal, inten = _pipeline(clean, 0)
    labels, prob = lc.two_species(inten[metal])
    pairs, _ = match_points(clean.positions, pts, 3.0)
    spec = np.full(len(pts), -1)
    spec[pairs[:, 1]] = clean.species[pairs[:, 0]]
    m = spec[metal] >= 0
    np.testing.assert_array_equal(labels[m], spec[metal][m] == 1)
    assert np.all((prob > 0.99) | (prob < 0.01))


def test_chain_distortion_recovers_amplitude_direction_and_chains():
    rng = np.random.default_rng(0)
    ii, jj = np.meshgrid(np.arange(-12, 13), np.arange(-12, 13), indexing="ij")
    idx = np.c_[ii.ravel(), jj.ravel()]
    basis = 10.0 * np.array([[0.0, 1.0], [-np.sin(np.pi / 3), np.cos(np.pi / 3)]])
    u = 8.0 + 0.4 * idx[:, 0] + rng.normal(0, 2.0, len(idx))  # varies, never all alike
    chain = basis[1] / 10.0  # chains along a2: rows numbered by i
    e = np.array([-chain[1], chain[0]])
    d = np.where(idx[:, 0] % 2 == 0, 1.0, -1.0)[:, None] * u[:, None] * e
    noisy = d + rng.normal(0, 1.0, d.shape)
    cd = lc.chain_distortion(idx, noisy, basis)
    assert cd.chain_axis == 1
    assert abs(abs(cd.direction @ e) - 1) < 1e-3
    assert np.corrcoef(cd.amplitude, u)[0, 1] > 0.93  # 0.96 expected: noise 1 on sd 3.5
    assert abs(np.mean(cd.amplitude - u)) < 0.2  # signed, not folded: no bias
    # the model field reproduces the pattern (neighbourhood-averaged amplitude)
    inner = np.all(np.abs(idx) < 12, axis=1)
    assert np.abs(cd.model[inner] - d[inner]).mean() < 0.35 * np.abs(d[inner]).mean()
    # the raw length cannot see the sign: where u crosses zero it folds
    u0 = rng.normal(0, 2.0, len(idx))
    d0 = np.where(idx[:, 0] % 2 == 0, 1.0, -1.0)[:, None] * u0[:, None] * e
    d0 = d0 + 0.05 * np.where(idx[:, 0] % 2 == 0, 1, -1)[:, None] * e  # a weak mean mode
    cd0 = lc.chain_distortion(idx, d0 + rng.normal(0, 0.3, d0.shape), basis)
    assert np.corrcoef(np.abs(cd0.amplitude), np.abs(u0))[0, 1] > 0.95
    assert np.corrcoef(np.linalg.norm(d0, axis=1), u0)[0, 1] < 0.2


def test_regression_on_misspecified_shells_stays_close_to_the_kernel_model():
    """The true local term has Gaussian weights; the candidates count whole shells. No
    candidate is right: the first shell misses by far, the three-shell count (reaching about
    as far as the kernel) comes close, and the candidate chosen for prediction lies between."""
    sim = alloy_lattice_series(concentrations=(0.1, 0.25, 0.4, 0.55, 0.7, 0.85), size=256,
                               image_noise=0.0, kernel_shape="gaussian", kernel_length=1.2,
                               seed=5)
    F, y, x = [], [], []
    for k in range(len(sim)):
        m = (sim.image_index == k) & (sim.species < 2)
        idx, re = sim.lattice_index[m], sim.species[m] == 1
        full = lc.complete_shells(idx, 3)
        F.append(np.stack([lc.shell_fractions(idx, re, s) for s in (1, 2, 3)], 1)[full])
        y.append(sim.amplitude[m][full])
        x.append(np.full(full.sum(), re.mean()))
    F, y, x = np.concatenate(F), np.concatenate(y), np.concatenate(x)
    reg = lc.amplitude_regression(y, F, x, labels=("1", "2", "3"))
    truth = np.array([sim.local_coefficient, sim.global_coefficient])
    err = np.abs(reg.coefficients[:, 1:] / truth - 1)  # (candidate, term)
    assert reg.best > 0  # the kernel reaches past the first shell
    assert err[0].min() > 0.2  # one shell: far off, and the global term absorbs the rest
    assert err[2].max() < 0.05  # three shells: close to the kernel's reach
    assert err[reg.best].max() < 0.2
    assert abs(reg.intercept) < 2.0
    assert 0 < reg.local_share < 1 and abs(reg.local_share + reg.global_share - 1) < 1e-9
    # leaving out x biases the local coefficient: f and x are correlated
    b = np.linalg.lstsq(np.c_[np.ones(len(y)), F[:, reg.best]], y, rcond=None)[0]
    assert relative_error(sim.local_coefficient, b[1]) > 0.15


def _exponential_kernel_data(seed=5):
    """Six images whose local term has exponential weights exp(-r / 0.63): neither the
    Gaussian family of the regression nor a whole-shell count has that shape."""
    sim = alloy_lattice_series(concentrations=(0.1, 0.25, 0.4, 0.55, 0.7, 0.85), size=256,
                               image_noise=0.0, kernel_shape="exponential", kernel_length=0.63,
                               seed=seed)
    parts = []
    for k in range(len(sim)):
        m = (sim.image_index == k) & (sim.species < 2)
        idx, re = sim.lattice_index[m], sim.species[m] == 1
        parts.append((idx, re, lc.complete_shells(idx, 3), sim.amplitude[m], k))
    cat = lambda f: np.concatenate([f(p) for p in parts])  # noqa: E731
    y = cat(lambda p: p[3][p[2]])
    x = cat(lambda p: np.full(p[2].sum(), p[1].mean()))
    g = cat(lambda p: np.full(p[2].sum(), p[4]))
    own = cat(lambda p: p[1][p[2]].astype(float))
    F = cat(lambda p: np.stack([lc.shell_fractions(p[0], p[1], s) for s in (1, 2, 3)],
                               1)[p[2]])

    def neighbours(ell):
        return cat(lambda p: lc.weighted_fractions(p[0], p[1], ell, include_self=False)[p[2]])

    return sim, y, x, g, own, F, neighbours


def test_continuous_length_recovers_coefficients_under_another_kernel_shape():
    """The true weights decay exponentially; the regression fits Gaussian neighbour weights of
    a cross-validated length and a free weight of the atom itself: both coefficients within
    15 %, where the choice among whole shells misses the global one by more."""
    sim, y, x, g, own, F, neighbours = _exponential_kernel_data()
    truth = np.array([sim.local_coefficient, sim.global_coefficient])
    reg = lc.length_regression(y, neighbours, x, own=own, groups=g)
    err = np.abs(np.array([reg.local_coefficient, reg.global_coefficient]) / truth - 1)
    assert err.max() < 0.15, err
    assert reg.grid[0] < reg.length < reg.grid[-1]  # an interior optimum, not an end
    assert reg.cv_rmse <= reg.grid_cv_rmse.min() + 1e-12
    lo, hi = reg.interval("global")
    assert lo < reg.global_coefficient < hi and reg.dof == len(np.unique(g)) - 4
    # the discrete model on the same atoms: its chosen shell count is biased
    shells = lc.amplitude_regression(y, F, x, groups=g)
    err_sh = np.abs(shells.coefficients[shells.best, 1:] / truth - 1)
    assert err_sh.max() > 0.15, err_sh


def test_weighted_fractions_on_a_known_pattern():
    ii, jj = np.meshgrid(np.arange(15), np.arange(15), indexing="ij")
    idx = np.c_[ii.ravel(), jj.ravel()]
    is_b = (idx[:, 0] == 7) & (idx[:, 1] == 7)  # one B site in the middle
    ell = 1.3
    f = lc.weighted_fractions(idx, is_b, [ell, 2.0])
    assert f.shape == (len(idx), 2)
    w = lambda di, dj: np.exp(-(di**2 + dj**2 + di * dj) / ell**2)  # noqa: E731
    total = sum(w(di, dj) for di in range(-5, 6) for dj in range(-5, 6)
                if di**2 + dj**2 + di * dj <= (2.5 * ell) ** 2)
    at = lambda i, j: int(np.flatnonzero((idx[:, 0] == i) & (idx[:, 1] == j))[0])  # noqa
    for di, dj in ((0, 0), (1, 0), (1, -1), (1, 1), (2, 0)):
        assert f[at(7 + di, 7 + dj), 0] == pytest.approx(w(di, dj) / total)
    nb = lc.weighted_fractions(idx, is_b, ell, include_self=False)
    assert nb[at(7, 7)] == 0.0 and nb[at(8, 7)] > f[at(8, 7), 0]
    np.testing.assert_allclose(lc.weighted_fractions(idx, np.ones(len(idx), bool), 0.7), 1.0)


def test_length_regression_refuses_bad_input():
    sim, y, x, g, own, F, neighbours = _exponential_kernel_data()
    with pytest.raises(TypeError, match="callable"):
        lc.length_regression(y, neighbours(1.0), x)
    with pytest.raises(ValueError, match="increasing positive"):
        lc.length_regression(y, neighbours, x, lengths=[1.0, 0.5, 2.0])
    with pytest.raises(ValueError, match="increasing positive"):
        lc.length_regression(y, neighbours, x, lengths=[0.5, 1.0])
    with pytest.raises(ValueError, match="finite fractions"):
        lc.length_regression(y, lambda ell: neighbours(ell)[:-1], x)
    with pytest.raises(ValueError, match="two or more compositions"):
        lc.length_regression(y, neighbours, np.ones_like(x))
    with pytest.raises(ValueError, match=">= 5 groups"):
        lc.length_regression(y, neighbours, x, groups=g % 4)
    with pytest.raises(ValueError, match="own must be \\(N,\\)"):
        lc.length_regression(y, neighbours, x, own=own[:-1])
    with pytest.raises(ValueError, match="positive numbers of lattice constants"):
        lc.weighted_fractions(np.zeros((3, 2), int), np.zeros(3, bool), 0.0)


def test_errors_clustered_by_image_cover_the_global_coefficient():
    """With a term shared by the atoms of each image the interval of bG clustered by image
    covers the truth at about its nominal rate; the one that takes atoms as independent
    does not."""
    rng = np.random.default_rng(0)
    hits, hits_ols = [], []
    for _ in range(300):
        xs = np.sort(rng.uniform(0.05, 0.85, 8))
        g = np.repeat(np.arange(8), 150)
        f = np.clip(xs[g] + rng.normal(0, 0.25, len(g)), 0, 1)
        y = 1.0 + 20 * f + 14 * xs[g] + 0.5 * rng.standard_normal(8)[g] \
            + 2.3 * rng.standard_normal(len(g))
        reg = lc.amplitude_regression(y, f, xs[g], groups=g)
        lo, hi = reg.interval(2, 0.95)
        hits.append(lo <= 14 <= hi)
        half = 1.96 * reg.ols_std_errors[0, 2]
        hits_ols.append(abs(reg.global_coefficient - 14) <= half)
    assert reg.dof == 5
    assert 0.90 <= np.mean(hits) <= 0.99, np.mean(hits)
    assert np.mean(hits_ols) < 0.8, np.mean(hits_ols)
    with pytest.raises(ValueError, match=">= 4 groups"):
        lc.amplitude_regression(y, f, xs[g], groups=g % 3)
    with pytest.raises(ValueError, match="one image label per atom"):
        lc.amplitude_regression(y, f, xs[g], groups=g[:-1])


def _chain_lattice(n=20):
    ii, jj = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
    idx = np.c_[ii.ravel(), jj.ravel()]
    basis = 10.0 * np.array([[0.0, 1.0], [-np.sin(np.pi / 3), np.cos(np.pi / 3)]])
    chain = basis[1] / 10.0
    e = np.array([-chain[1], chain[0]])
    return ii, idx, basis, idx @ basis, e, np.where(idx[:, 0] % 2 == 0, 1.0, -1.0)


def test_distortion_test_is_centred_at_zero_for_noise():
    """Noise with the chain pattern's structure but no sign of its own (a zero-mean field of
    paired rows): the data-signed mean of chain_distortion is pushed above zero, the
    fixed-rule statistic is centred."""
    ii, idx, basis, pos, e, pattern = _chain_lattice()
    fixed, data_signed, power = [], [], []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        field = ndimage.gaussian_filter(rng.standard_normal(ii.shape), 2.0).ravel()
        d = (pattern * field / field.std())[:, None] * e + rng.normal(0, 1.0, (len(idx), 2))
        t = lc.distortion_test(idx, d, basis, pos, seed=seed)
        fixed.append(t.mean_vs_noise)
        cd = lc.chain_distortion(idx, d, basis)
        mean, se = order_parameter(cd.amplitude, pos)
        data_signed.append(mean / se)
        # plain white noise: the block power sits at its sign-flip null
        power.append(lc.distortion_test(idx, rng.normal(0, 1.0, (len(idx), 2)), basis, pos,
                                        seed=seed).block_power_vs_noise)
    assert np.mean(data_signed) > 0.7  # the bias the fixed rule removes
    assert abs(np.mean(fixed)) < 0.6, np.mean(fixed)
    assert abs(np.mean(power)) < 0.6 and np.std(power) < 1.5


def test_distortion_test_sees_one_domain_and_antiphase_domains():
    ii, idx, basis, pos, e, pattern = _chain_lattice()
    rng = np.random.default_rng(3)
    one = lc.distortion_test(idx, pattern[:, None] * e + rng.normal(0, 2.0, (len(idx), 2)),
                             basis, pos)
    assert abs(one.mean_vs_noise) > 5 and one.block_power_vs_noise > 3
    halves = np.where(idx[:, 1] > 0, 1.0, -1.0)  # two antiphase domains: the mean cancels
    two = lc.distortion_test(idx, (pattern * halves)[:, None] * e
                             + rng.normal(0, 2.0, (len(idx), 2)), basis, pos)
    assert abs(two.mean_vs_noise) < 3 and two.block_power_vs_noise > 3
    with pytest.raises(ValueError, match="n_blocks"):
        lc.distortion_test(idx, np.zeros((len(idx), 2)), basis, pos, n_blocks=1)


def test_complete_shells_only_away_from_the_edge():
    ii, jj = np.meshgrid(np.arange(9), np.arange(9), indexing="ij")
    idx = np.c_[ii.ravel(), jj.ravel()]
    full = lc.complete_shells(idx, 2)
    # shell 2 reaches (+-1, +-1)-type offsets (1, 1), (2, -1)...: two sites in from the edge
    expect = np.array([all(0 <= i + di <= 8 and 0 <= j + dj <= 8 for di, dj in
                           np.concatenate(metal_shell_offsets(2))) for i, j in idx])
    np.testing.assert_array_equal(full, expect)
    mask = np.ones(len(idx), bool)
    mask[40] = False  # a lost column breaks its neighbours' shells
    assert full[41] and not lc.complete_shells(idx, 1, mask)[41]


def test_shell_fractions_and_environments_on_a_known_pattern():
    ii, jj = np.meshgrid(np.arange(6), np.arange(6), indexing="ij")
    idx = np.c_[ii.ravel(), jj.ravel()]
    is_b = idx[:, 0] == 2  # one row of B
    f = lc.shell_fractions(idx, is_b, 1, include_self=False)
    centre = np.flatnonzero((idx[:, 0] == 3) & (idx[:, 1] == 3))[0]
    # neighbours of (3, 3): (2, 3) and (2, 4) are in row i = 2
    assert f[centre] == pytest.approx(2 / 6)
    feats, complete = lc.local_environments(idx, idx.astype(float))
    offs = metal_shell_offsets(1)[0]
    np.testing.assert_array_equal(feats[centre, 1:], idx[centre] + offs)
    assert complete[centre] and not complete[0]


def test_order_parameter_against_its_noise_floor():
    rng = np.random.default_rng(1)
    pos = rng.uniform(0, 500, (2000, 2))
    noise = rng.normal(0, 5.0, 2000)
    mean, se = order_parameter(noise, pos)
    assert abs(mean) / se < 4
    assert se == pytest.approx(5.0 / np.sqrt(2000), rel=0.5)
    mean, se = order_parameter(noise + 3.0, pos)
    assert mean / se > 10


def test_bad_input_is_refused_with_a_fix():
    pts = np.random.default_rng(0).uniform(0, 100, (20, 2))
    with pytest.raises(ValueError, match="N >= 12"):
        lc.fit_ideal_lattice(pts[:5])
    with pytest.raises(ValueError, match="NaN"):
        lc.fit_ideal_lattice(np.r_[pts, [[np.nan, 1.0]]])
    with pytest.raises(ValueError, match="degree"):
        lc.fit_ideal_lattice(pts, degree=9)
    with pytest.raises(ValueError, match="positive"):
        lc.two_species(np.r_[np.ones(10), -1.0])
    with pytest.raises(ValueError, match="two or more compositions"):
        lc.amplitude_regression(np.ones(30), np.random.default_rng(0).random(30), np.ones(30))
    with pytest.raises(ValueError, match="radius"):
        lc.refine_centroids(np.zeros((20, 20)), pts, radius=0)
    with pytest.raises(ValueError, match="threshold"):
        lc.find_columns(np.zeros((20, 20)), 1.0, 3.0, threshold=0)
    with pytest.raises(ValueError, match="six neighbours"):
        lc.chain_distortion(np.c_[np.arange(20), np.zeros(20)].astype(int), np.zeros((20, 2)),
                         np.eye(2))
    with pytest.raises(ValueError, match="relative error is undefined"):
        relative_error(0.0, 1.0)


def test_crystallography_figures_draw_and_check_input(clean):
    sel = clean.species < 2
    fig = hplot.plot_site_map(clean.images[0], clean.positions[sel], clean.species[sel], PX,
                              classes=("Mo", "Re"), label="species")
    assert fig.axes and fig.axes[0].get_xlabel() == "x (\u00c5)"
    plt.close(fig)
    fig = hplot.plot_distortion_mode(np.ones((7, 2)), metal_shell_offsets(1)[0], np.eye(2))
    plt.close(fig)
    fig = hplot.plot_amplitude_recovery(np.arange(5.0), np.arange(5.0) + 1, np.arange(5.0))
    plt.close(fig)
    fig = hplot.plot_amplitude_regression(np.random.default_rng(0).random(20),
                                          np.repeat([0.2, 0.6], 10), np.arange(20.0),
                                          [0.0, 1.0, 2.0], cv_rmse=[1.0, 0.9], best=1)
    assert len(fig.axes) == 3  # two panels and a colour bar
    plt.close(fig)
    with pytest.raises(ValueError, match="pixel_size"):
        hplot.plot_site_map(np.zeros((4, 4)), np.zeros((1, 2)), [1.0], 0.0)
    with pytest.raises(ValueError, match="mode"):
        hplot.plot_distortion_mode(np.ones((6, 2)), np.ones((6, 2)), np.eye(2))
