"""Bayesian optimisation, random search, the regret score and the trajectory VAE: BO finds a
known optimum sooner than random search, the VAE reconstructs held-out trajectories."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.analysis import r2_score, regret_auc
from helpers.models import TrajectoryVAE, bayes_opt, local_refine, random_search
from helpers.simulate import trajectory_families

BOUNDS = np.array([[-2.0, 2.0], [0.0, 4.0]])
OPTIMUM = np.array([0.7, 1.3])  # off every corner and off the centre


def bump(x):
    """A smooth objective on BOUNDS with its maximum 1 at OPTIMUM."""
    return np.exp(-np.sum((np.asarray(x) - OPTIMUM) ** 2, axis=1) / 0.5)


def broad_bump(x):
    """``bump`` with twice the variance (standard deviation 0.71 instead of 0.5), so that a few
    random starting points already see its slope."""
    return np.exp(-np.sum((np.asarray(x) - OPTIMUM) ** 2, axis=1) / 1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bo_finds_a_known_optimum_sooner_than_random_search(seed):
    kw = dict(n_evals=20, n_repeats=4, seed=seed)
    bo = bayes_opt(broad_bump, BOUNDS, n_init=4, q=2, progress=False, **kw)
    rnd = random_search(broad_bump, BOUNDS, **kw)
    assert bo.X.shape == (4, 20, 2) and bo.y.shape == (4, 20)
    # both share each repeat's random start, then BO climbs to the optimum in every repeat
    np.testing.assert_array_equal(bo.X[:, :4], rnd.X[:, :4])
    assert (bo.best_so_far[:, -1] > 0.9).all()
    np.testing.assert_allclose(bo.best_x, np.tile(OPTIMUM, (4, 1)), atol=0.3)
    # sooner on average over the repeats (one lucky random repeat may beat BO's)
    auc_bo, auc_rnd = regret_auc(1.0, bo.best_so_far), regret_auc(1.0, rnd.best_so_far)
    assert auc_bo.mean() < auc_rnd.mean()
    assert ((bo.X >= BOUNDS[:, 0]) & (bo.X <= BOUNDS[:, 1])).all()


def test_same_seed_same_trace_and_the_objective_is_called_in_batches():
    calls = []

    def objective(x):
        calls.append(len(x))
        return bump(x)

    a = bayes_opt(objective, BOUNDS, n_evals=8, n_init=3, q=2, n_repeats=2, seed=4,
                  progress=False)
    b = bayes_opt(bump, BOUNDS, n_evals=8, n_init=3, q=2, n_repeats=2, seed=4, progress=False)
    np.testing.assert_array_equal(a.X, b.X)
    assert calls == [6, 4, 4, 2]  # every repeat's points at once; the last round cut to fit
    c = random_search(bump, BOUNDS, n_evals=5, n_repeats=2, seed=5)
    assert not np.array_equal(c.X[:, :3], a.X[:, :3])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trust_region_keeps_late_proposals_near_the_best_point(seed):
    # the trust region confines the acquisition to a box around the best point, halved after
    # every round without improvement; the whole-box search keeps probing far away. Measured
    # on the rounds after the first two, where the region has had time to narrow
    kw = dict(n_evals=19, n_init=4, q=3, n_repeats=4, seed=seed, progress=False)
    tr = bayes_opt(bump, BOUNDS, trust_region=0.3, **kw)
    again = bayes_opt(bump, BOUNDS, trust_region=0.3, **kw)
    whole = bayes_opt(bump, BOUNDS, **kw)
    np.testing.assert_array_equal(tr.X, again.X)  # same seed, same trace
    np.testing.assert_array_equal(tr.X[:, :4], whole.X[:, :4])  # the shared random start
    span = BOUNDS[:, 1] - BOUNDS[:, 0]

    def spread(trace):
        """Mean distance of each proposal from the best point known when it was proposed,
        from the third BO round on."""
        dist = []
        for r in range(len(trace.X)):
            for k in range(10, trace.X.shape[1], 3):
                best = trace.X[r, :k][trace.y[r, :k].argmax()]
                dist.append(np.linalg.norm((trace.X[r, k:k + 3] - best) / span, axis=1))
        return float(np.concatenate(dist).mean())

    assert spread(tr) < 0.5 * spread(whole)
    assert (tr.best_so_far[:, -1] >= tr.best_so_far[:, 3]).all()
    assert ((tr.X >= BOUNDS[:, 0]) & (tr.X <= BOUNDS[:, 1])).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sequential_trust_region_halves_only_after_the_failure_tolerance(seed):
    # one point per round: TuRBO halves the region after ceil(max(4, d) / q) = 4 rounds
    # without improvement in a row, not after each one, so a sequential search keeps a wider
    # region than one that halves after every miss
    kw = dict(n_evals=22, n_init=4, q=1, n_repeats=4, seed=seed, trust_region=0.6,
              progress=False)
    turbo = bayes_opt(bump, BOUNDS, **kw)
    assert np.array_equal(turbo.X, bayes_opt(bump, BOUNDS, failure_tolerance=4, **kw).X)
    hasty = bayes_opt(bump, BOUNDS, failure_tolerance=1, **kw)
    span = BOUNDS[:, 1] - BOUNDS[:, 0]

    def late_spread(trace):
        """Mean distance of the last 8 proposals from the best point known before each."""
        return float(np.mean([np.linalg.norm((trace.X[r, k] - trace.X[r, :k][
            trace.y[r, :k].argmax()]) / span) for r in range(4) for k in range(14, 22)]))

    assert late_spread(hasty) < 0.5 * late_spread(turbo)


def test_local_refine_climbs_to_the_optimum_and_never_loses_ground():
    starts = np.array([[0.2, 1.8], [1.2, 0.9], [2.0, 4.0]])  # 0.5-1.3 from the optimum
    x, y = local_refine(bump, BOUNDS, starts, n_rounds=8, n_perturb=16, seed=1)
    assert x.shape == (3, 2) and y.shape == (3,)
    np.testing.assert_allclose(y, bump(x))
    assert (y >= bump(starts)).all()
    assert (y[:2] > 0.99).all()
    np.testing.assert_allclose(x[:2], np.tile(OPTIMUM, (2, 1)), atol=0.08)
    assert ((x >= BOUNDS[:, 0]) & (x <= BOUNDS[:, 1])).all()
    with pytest.raises(ValueError, match="inside the bounds"):
        local_refine(bump, BOUNDS, [[3.0, 1.0]])
    with pytest.raises(ValueError, match=r"shape \(S, 2\)"):
        local_refine(bump, BOUNDS, [0.0, 1.0])
    with pytest.raises(ValueError, match="step"):
        local_refine(bump, BOUNDS, starts, step=0.0)


def test_regret_auc_values_and_errors():
    best = np.array([[0.5, 0.5, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    np.testing.assert_allclose(regret_auc(1.0, best), [0.25, 0.0])
    with pytest.raises(ValueError, match="running maximum"):
        regret_auc(1.0, [[1.0, 0.5]])
    with pytest.raises(ValueError, match="positive"):
        regret_auc(0.0, best)


@pytest.mark.parametrize("kwargs, word", [
    (dict(bounds=[[1.0, 0.0]]), "high > low"),
    (dict(bounds=[0.0, 1.0]), r"\(d, 2\)"),
    (dict(n_init=20), "exceed"),
    (dict(n_init=1), "n_init"),
    (dict(q=0), "q must"),
    (dict(trust_region=0.0), "trust_region"),
    (dict(trust_region=1.5), "trust_region"),
    (dict(noise=-1.0), "noise must"),
    (dict(failure_tolerance=0), "failure_tolerance"),
    (dict(failure_tolerance=1.5), "failure_tolerance"),
    (dict(failure_tolerance=True), "failure_tolerance"),
])
def test_bad_search_settings_are_named(kwargs, word):
    args = dict(bounds=BOUNDS, n_evals=6, n_init=3, q=2, n_repeats=2, progress=False)
    args.update(kwargs)
    with pytest.raises(ValueError, match=word):
        bayes_opt(bump, **args)


def test_bad_objectives_are_named():
    with pytest.raises(ValueError, match="one value per point"):
        random_search(lambda x: bump(x)[:1], BOUNDS, n_evals=3, n_repeats=2)
    with pytest.raises(ValueError, match="NaN or inf"):
        random_search(lambda x: np.full(len(x), np.nan), BOUNDS, n_evals=3, n_repeats=2)


def test_trajectory_vae_reconstructs_held_out_trajectories(tmp_path):
    train = trajectory_families(800, n_times=32, seed=0)
    test = trajectory_families(200, n_times=32, seed=1)
    vae = TrajectoryVAE(n_times=32, latent_dim=4, hidden=128, seed=0, device="cpu")
    history = vae.fit(train.fields, epochs=40, X_val=test.fields, progress=False)
    assert history.loss[-1] < history.loss[0]
    recon = vae.decode(vae.encode(test.fields))
    assert recon.shape == test.fields.shape
    r2 = r2_score(test.fields, recon)
    # the linear baseline with as many components
    flat, flat_test = train.fields.reshape(800, -1), test.fields.reshape(200, -1)
    mean = flat.mean(0)
    _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
    pca = mean + (flat_test - mean) @ vt[:4].T @ vt[:4]
    assert r2 > 0.7 and r2 > r2_score(flat_test, pca) + 0.1
    path = vae.save(tmp_path / "vae.pt")
    again = TrajectoryVAE.load(path, device="cpu")
    np.testing.assert_allclose(again.decode(again.encode(test.fields[:5])), recon[:5],
                               rtol=1e-5, atol=1e-5)


def test_trajectory_vae_errors_are_named():
    vae = TrajectoryVAE(n_times=16, latent_dim=2, seed=0, device="cpu")
    with pytest.raises(ValueError, match="fit"):
        vae.encode(np.zeros((2, 16, 2)))
    with pytest.raises(ValueError, match="trailing shape"):
        vae.fit(np.zeros((4, 8, 2)), epochs=1)
    with pytest.raises(ValueError, match="latent_dim"):
        TrajectoryVAE(latent_dim=0)
    with pytest.raises(ValueError, match="noise"):
        TrajectoryVAE(noise=-1.0)


def test_optimisation_figures_draw_bands_and_colour_bars():
    import matplotlib.pyplot as plt

    import helpers.plot as hplot

    rng = np.random.default_rng(0)
    best = np.maximum.accumulate(rng.random((4, 10)), axis=1)
    fig = hplot.plot_best_so_far({"a": best, "b": best * 0.9})
    ax = fig.axes[0]
    assert len(ax.lines) == 3 and len(ax.collections) == 2  # two means, the threshold, bands
    np.testing.assert_allclose(ax.lines[0].get_ydata(), best.mean(0))
    assert "evaluations" in ax.get_xlabel()
    plt.close(fig)
    P = rng.normal(size=(2, 8, 8))
    fig = hplot.plot_polarisation_curl(P, title="t")
    assert len(fig.axes) == 2 and "curl" in fig.axes[1].get_ylabel()
    plt.close(fig)
    with pytest.raises(ValueError, match="repeats"):
        hplot.plot_best_so_far({"a": best[:1]})
    with pytest.raises(ValueError, match=r"\(2, H, W\)"):
        hplot.plot_polarisation_curl(P[0])


def test_compared_polarisation_panels_share_one_colour_scale():
    import matplotlib.pyplot as plt

    import helpers.plot as hplot

    rng = np.random.default_rng(1)
    weak, strong = 0.1 * rng.normal(size=(2, 8, 8)), rng.normal(size=(2, 8, 8))
    fig, axes = plt.subplots(1, 2)
    for P, ax in ((weak, axes[0]), (strong, axes[1])):
        hplot.plot_polarisation_curl(P, ax=ax, vlim=1.5)
    assert [im.get_clim() for im in (axes[0].images[0], axes[1].images[0])] == [(-1.5, 1.5)] * 2
    plt.close(fig)
    with pytest.raises(ValueError, match="vlim"):
        hplot.plot_polarisation_curl(weak, vlim=0.0)


def test_latent_objective_marks_the_reference_optimum():
    import matplotlib.pyplot as plt

    import helpers.plot as hplot

    rng = np.random.default_rng(2)
    z, star = rng.normal(size=(50, 3)), np.array([0.3, -0.2, 1.1])
    fig = hplot.plot_latent_objective(z, z[:, 0], dims=(0, 2), reference=star)
    ax = fig.axes[0]
    marked = ax.collections[-1].get_offsets()
    np.testing.assert_allclose(np.asarray(marked), [[0.3, 1.1]])
    assert "reference optimum" in [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(fig)
    with pytest.raises(ValueError, match="reference"):
        hplot.plot_latent_objective(z, z[:, 0], reference=star[:2])
