"""DIVIDE: the synthetic mechanism benchmark and the structured deep-kernel GP.

The model is tested on what it is for: recovering each mechanism's contribution against the
simulator's ground truth, with calibrated uncertainty; plus checkpoints, reproducibility and
input checks.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers.analysis import interval_coverage, recovery_r2
from helpers.models import History
from helpers.models.divide import Divide, active_learning
from helpers.simulate.mechanisms import (
    lattice_mechanisms,
    mechanism_benchmark,
    site_windows,
    spatial_field,
)

MECHANISMS = [
    {"name": "patch", "encoder": "cnn", "shape": [12, 12], "latent_dim": 2},
    {"name": "position", "encoder": "identity", "shape": [2]},
]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """These models are small: one intra-op thread is as fast on a free machine and avoids
    the large slow-downs of busy-waiting thread pools on a shared one. Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small_model(**kw):
    kw.setdefault("device", "cpu")
    return Divide(MECHANISMS, **kw)


# -- the benchmark --------------------------------------------------------------------------
def test_benchmark_contributions_add_up_and_are_deterministic():
    add = mechanism_benchmark(grid_shape=(8, 9), noise_std=0.1, seed=3)
    assert add.patches.shape == (72, 12, 12) and add.coords.shape == (72, 2)
    np.testing.assert_allclose(
        add.y_clean, add.contributions["patch"] + add.contributions["position"], atol=1e-5)
    np.testing.assert_allclose(add.contributions["patch"], add.category_values[add.labels])
    assert 0.05 < np.std(add.y - add.y_clean) < 0.15
    again = mechanism_benchmark(grid_shape=(8, 9), noise_std=0.1, seed=3)
    np.testing.assert_array_equal(add.patches, again.patches)
    np.testing.assert_array_equal(add.y, again.y)
    sc = mechanism_benchmark(grid_shape=(8, 9), interaction="scaled", noise_std=0.0, seed=3)
    np.testing.assert_allclose(
        sc.y_clean, sc.contributions["patch"] * sc.contributions["position"], atol=1e-5)
    np.testing.assert_array_equal(sc.y, sc.y_clean)


def test_benchmark_motifs_are_distinguishable_and_field_is_standardised():
    d = mechanism_benchmark(grid_shape=(12, 12), n_categories=4, seed=0)
    means = np.stack([d.patches[d.labels == c].mean(0) for c in range(4)])
    gaps = [np.abs(means[i] - means[j]).mean() for i in range(4) for j in range(i + 1, 4)]
    assert min(gaps) > 0.05  # mean |difference| of the class-average patches
    grid = np.stack(np.meshgrid(np.linspace(0, 1, 101), np.linspace(0, 1, 101)), -1)
    h = spatial_field(grid.reshape(-1, 2))
    assert abs(h.mean()) < 0.05 and abs(h.std() - 1.0) < 0.05


def test_benchmark_split_subset_and_maps():
    d = mechanism_benchmark(grid_shape=(6, 6), seed=1)
    tr, te = d.split(0.25, seed=0)
    assert len(tr) + len(te) == 36 and not set(tr.index) & set(te.index)
    m = te.as_map(te.y)
    assert m.shape == (6, 6) and np.isfinite(m).sum() == len(te)
    assert d.mosaic().shape == (72, 72)


def test_lattice_mechanisms_ground_truth_decomposes_the_signal():
    d = lattice_mechanisms(size=12, half=1, n_steps=200, noise_std=0.0, seed=0)
    assert d.patches.shape == (144, 3, 3)
    np.testing.assert_allclose(
        d.y_clean, d.contributions["patch"] + d.contributions["position"], atol=1e-5)
    # sites without a defect nearby barely feel the defects; a +P0 defect raises P0
    eff = d.contributions["patch"]
    assert eff[d.labels == 1].mean() > 0.05 > abs(eff[d.labels == 0].mean())
    assert eff[d.labels == 2].mean() < -0.05


def test_site_windows_are_periodic_and_centred():
    img = np.arange(20.0).reshape(4, 5)
    w = site_windows(img, 1)
    assert w.shape == (20, 3, 3)
    np.testing.assert_array_equal(w[:, 1, 1], img.ravel())
    assert w[0, 0, 0] == img[-1, -1]


@pytest.mark.parametrize("kwargs", [
    {"grid_shape": (1, 5)}, {"n_categories": 9}, {"interaction": "multiplicative"},
    {"noise_std": -1.0}, {"noise_std": float("nan")},
])
def test_benchmark_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        mechanism_benchmark(**kwargs)


# -- the model: science ---------------------------------------------------------------------
@pytest.mark.slow
def test_additive_divide_recovers_each_mechanism_with_calibrated_uncertainty():
    d = mechanism_benchmark(grid_shape=(20, 20), interaction="additive", noise_std=0.1, seed=0)
    tr, te = d.split(0.3, seed=1)
    model = small_model(structure="additive", seed=0)
    hist = model.fit(tr.inputs, tr.y, epochs=400, progress=False)
    assert isinstance(hist, History) and hist.best_epoch is not None
    assert 0 < hist.best_epoch <= hist.epochs_run <= 400 and np.isfinite(hist["loss"]).all()
    assert len(hist.noise) == hist.epochs_run and len(hist.val_loss) >= 1
    pred = model.predict(te.inputs)
    for name in ("patch", "position"):
        r2 = recovery_r2(te.contributions[name], pred.components[name])
        assert r2 > 0.9, f"{name}: R^2 {r2:.3f}"
    # the split is exact: constant + sum of components = total posterior mean
    total = pred.constant + pred.components["patch"] + pred.components["position"]
    np.testing.assert_allclose(total, pred.mean, atol=1e-3)
    low, high = pred.interval(0.95)
    assert 0.85 <= interval_coverage(te.y, low, high) <= 1.0
    # the fitted noise is close to the true one (0.1^2), i.e. the GP did not absorb the noise
    assert 0.3 * 0.01 < pred.noise_variance < 4 * 0.01
    # the per-component uncertainty is what a component's error looks like
    z = (pred.components["position"] - pred.components["position"].mean()
         - (te.contributions["position"] - te.contributions["position"].mean()))
    assert np.median(np.abs(z) / np.sqrt(pred.component_variances["position"])) < 3.0
    # the patch encoder separates the categories in its latent space
    lat = model.encode(te.inputs)["patch"]
    centres = np.stack([lat[te.labels == c].mean(0) for c in range(4)])
    spread = max(lat[te.labels == c].std(0).max() for c in range(4))
    gap = min(np.linalg.norm(centres[i] - centres[j]) for i in range(4) for j in range(i + 1, 4))
    assert gap > 1.5 * spread


@pytest.mark.slow
def test_scaled_divide_recovers_factors_by_partial_dependence():
    d = mechanism_benchmark(grid_shape=(20, 20), interaction="scaled", noise_std=0.05, seed=2)
    tr, te = d.split(0.3, seed=1)
    model = small_model(structure="scaled", seed=0)
    model.fit(tr.inputs, tr.y, epochs=400, progress=False)
    ref = tr.subset(np.arange(0, len(tr), 10)).inputs
    for name in ("patch", "position"):
        pd = model.partial_dependence(te.inputs, name, ref)
        r2 = recovery_r2(te.contributions[name], pd, mode="affine")
        assert r2 > 0.85, f"{name}: R^2 {r2:.3f}"
    # an additive model cannot fit a product as well as the scaled one
    add = small_model(structure="additive", seed=0)
    add.fit(tr.inputs, tr.y, epochs=400, progress=False)
    rmse = {k: np.sqrt(np.mean((m.predict(te.inputs, components=False).mean - te.y_clean) ** 2))
            for k, m in (("scaled", model), ("additive", add))}
    assert rmse["scaled"] < rmse["additive"]


@pytest.mark.slow
def test_variational_divide_recovers_components_on_a_full_grid():
    d = mechanism_benchmark(grid_shape=(24, 24), interaction="additive", noise_std=0.1, seed=4)
    tr, te = d.split(0.2, seed=0)
    model = small_model(method="variational", num_inducing=64, seed=0)
    model.fit(tr.inputs, tr.y, epochs=120, batch_size=128, progress=False)
    pred = model.predict(te.inputs)
    total = pred.constant + pred.components["patch"] + pred.components["position"]
    np.testing.assert_allclose(total, pred.mean, atol=1e-3)
    for name in ("patch", "position"):
        r2 = recovery_r2(te.contributions[name], pred.components[name])
        assert r2 > 0.85, f"{name}: R^2 {r2:.3f}"
    low, high = pred.interval(0.95)
    assert 0.85 <= interval_coverage(te.y, low, high) <= 1.0


# -- the model: engineering -----------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    d = mechanism_benchmark(grid_shape=(8, 8), noise_std=0.1, seed=0)
    return d.split(0.25, seed=0)


@pytest.mark.parametrize("method", ["exact", "variational"])
def test_save_load_round_trip(tiny, tmp_path, method):
    tr, te = tiny
    model = small_model(method=method, num_inducing=16, seed=1)
    model.fit(tr.inputs, tr.y, epochs=15, progress=False)
    before = model.predict(te.inputs)
    path = model.save(tmp_path / "divide.pt")
    loaded = Divide.load(path, device="cpu")
    after = loaded.predict(te.inputs)
    np.testing.assert_allclose(after.mean, before.mean, atol=1e-5)
    np.testing.assert_allclose(after.variance, before.variance, atol=1e-5)
    for name in before.components:
        np.testing.assert_allclose(after.components[name], before.components[name], atol=1e-5)
    assert loaded.config == model.config
    with pytest.raises(FileNotFoundError):
        Divide.load(tmp_path / "missing.pt")


def test_same_seed_same_numbers(tiny):
    tr, te = tiny
    preds = []
    for seed in (0, 0, 1):
        m = small_model(seed=seed)
        m.fit(tr.inputs, tr.y, epochs=15, progress=False)
        preds.append(m.predict(te.inputs).mean)
    np.testing.assert_array_equal(preds[0], preds[1])
    assert not np.allclose(preds[0], preds[2])


def test_bad_input_is_rejected_with_a_clear_message(tiny):
    tr, _ = tiny
    model = small_model()
    with pytest.raises(ValueError, match="not fitted"):
        model.predict(tr.inputs)
    with pytest.raises(ValueError, match="missing"):
        model.fit({"patch": tr.patches}, tr.y)
    with pytest.raises(ValueError, match="trailing shape"):
        model.fit({"patch": tr.patches[:, :10, :10], "position": tr.coords}, tr.y)
    bad = tr.coords.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        model.fit({"patch": tr.patches, "position": bad}, tr.y)
    with pytest.raises(ValueError, match="same number"):
        model.fit({"patch": tr.patches, "position": tr.coords[:-1]}, tr.y)
    with pytest.raises(ValueError, match="y has"):
        model.fit(tr.inputs, tr.y[:-1])
    with pytest.raises(ValueError):
        Divide(MECHANISMS, structure="multiplicative")
    with pytest.raises(ValueError):
        Divide([{"name": "x", "encoder": "transformer", "shape": [3]}])
    with pytest.raises(ValueError):
        Divide([{"name": "x", "encoder": "cnn", "shape": [3]}])
    with pytest.raises(ValueError):
        Divide(MECHANISMS, structure=[["patch"], ["nope"]])


def test_active_learning_bookkeeping(tiny):
    tr, te = tiny
    res = active_learning(lambda: small_model(seed=0), tr.inputs, tr.y, te.inputs, te.y_clean,
                          n_init=10, n_steps=2, batch_size=3, epochs_init=10, epochs_step=5,
                          strategy="uncertainty", progress=False)
    assert list(res.n_labelled) == [10, 13, 16]
    assert len(set(res.chosen.tolist())) == 16 and res.rmse.shape == (3,)
    with pytest.raises(ValueError):
        active_learning(lambda: small_model(), tr.inputs, tr.y, te.inputs, te.y_clean,
                        n_init=10, n_steps=100, batch_size=5)


def test_lengthscale_min_is_a_hard_lower_bound(tiny):
    tr, _ = tiny
    mech = [dict(MECHANISMS[0]), dict(MECHANISMS[1], lengthscale_min=2.0)]
    model = Divide(mech, device="cpu", seed=0)
    model.fit(tr.inputs, tr.y, epochs=20, progress=False)
    scales = model.kernel_summary()["position"]["lengthscales"][0]
    assert min(scales) >= 2.0
    with pytest.raises(ValueError):
        Divide([dict(MECHANISMS[1], lengthscale_min=-1.0)])


def test_hysteresis_mechanisms_inputs_and_targets():
    from helpers.simulate import hysteresis_map
    from helpers.simulate.mechanisms import hysteresis_mechanisms

    hmap = hysteresis_map(size=12, n_voltages=16, steps_per_cycle=64, seed=0)
    d = hysteresis_mechanisms(hmap, half=2, target="shift")
    cv = hmap.coercive_voltages.reshape(-1, 2)
    np.testing.assert_allclose(d.y, cv[d.index].mean(1), rtol=1e-5)
    assert d.patches.shape == (len(d), 5, 5)
    np.testing.assert_allclose(d.patches[:, 2, 2], hmap.image.ravel()[d.index])
    np.testing.assert_allclose(d.contributions["position"],
                               -hmap.imprint.ravel()[d.index] / hmap.field_per_volt)
    up = hysteresis_mechanisms(hmap, half=2, target="up")
    assert np.isfinite(up.y).all()
    with pytest.raises(ValueError):
        hysteresis_mechanisms(hmap, target="area")
    with pytest.raises(ValueError):
        hysteresis_mechanisms(object())


def test_prediction_log_density_is_the_gaussian_logpdf_of_each_measurement():
    from scipy.stats import norm

    from helpers.models.divide import DividePrediction

    pred = DividePrediction(mean=np.array([0.0, 1.0, -2.0]), variance=np.array([0.5, 1.0, 3.0]),
                            noise_variance=0.5)
    y = np.array([0.3, 1.0, 0.5])
    lpd = pred.log_density(y)
    assert lpd.shape == (3,) and lpd.dtype == np.float64
    sd = np.sqrt(pred.variance + 0.5)  # predictive: f's variance plus the noise
    np.testing.assert_allclose(lpd, norm.logpdf(y, pred.mean, sd), rtol=1e-12)
    assert pred.log_density([0.0, 1.0, -2.0])[0] == pytest.approx(-0.5 * np.log(2 * np.pi))
    # measurements near the mean are more probable than far ones
    assert pred.log_density(pred.mean + 0.1).mean() > pred.log_density(pred.mean + 5.0).mean()
    with pytest.raises(ValueError, match="shape"):
        pred.log_density(np.zeros(2))


# -- model selection by the evidence ----------------------------------------------------------
def test_log_marginal_likelihood_is_the_gaussian_density_of_the_targets():
    import torch
    from scipy.stats import multivariate_normal

    d = mechanism_benchmark(grid_shape=(6, 6), noise_std=0.2, seed=5)
    pos = [MECHANISMS[1]]  # identity encoder: the latent is the standardised position
    model = Divide(pos, device="cpu", seed=0)
    model.fit({"position": d.coords}, 3.0 * d.y + 1.0, epochs=30, progress=False)
    net = model.module
    with torch.no_grad():
        z = net.encoder(net.train_x)
        k = net.model.covar_module(z).to_dense().double().numpy()
    scale, shift = float(net.y_norm.std), float(net.y_norm.mean)
    noise = model.kernel_summary()["noise_variance"]
    mean = float(net.model.mean_module.constant.detach()) * scale + shift
    cov = k * scale**2 + noise * np.eye(len(k))
    expected = multivariate_normal(np.full(len(k), mean), cov).logpdf(3.0 * d.y + 1.0)
    assert model.log_marginal_likelihood() == pytest.approx(expected, rel=1e-4, abs=1e-3)
    vgp = Divide(pos, method="variational", num_inducing=8, device="cpu")
    vgp.fit({"position": d.coords}, d.y, epochs=2, progress=False)
    with pytest.raises(ValueError, match="method='exact'"):
        vgp.log_marginal_likelihood()


@pytest.mark.slow
@pytest.mark.parametrize("interaction", ["additive", "scaled"])
def test_select_structure_finds_the_generating_interaction(interaction):
    from helpers.models import select_structure

    d = mechanism_benchmark(grid_shape=(12, 12), interaction=interaction, noise_std=0.05,
                            seed=3)
    sel = select_structure(MECHANISMS, d.inputs, d.y, seed=0, device="cpu", epochs=200)
    assert sel.chosen == interaction, sel.log_evidence
    assert sel.margin > 0 and sel.margin_per_point == pytest.approx(sel.margin / len(d))
    assert sel.model.config["structure"] == interaction
    assert sel.log_evidence[interaction] == pytest.approx(sel.model.log_marginal_likelihood())


def test_select_structure_keeps_every_candidate(tiny):
    """Every fitted candidate is returned, so the evidence choice can be checked on held-out
    data; the chosen one is ``model`` and each evidence is its model's."""
    from helpers.models import select_structure

    tr, te = tiny
    sel = select_structure(MECHANISMS, tr.inputs, tr.y, device="cpu", epochs=3)
    assert set(sel.models) == {"additive", "scaled"} and sel.models[sel.chosen] is sel.model
    for key, model in sel.models.items():
        assert model.config["structure"] == key
        assert sel.log_evidence[key] == pytest.approx(model.log_marginal_likelihood())
        assert np.isfinite(model.predict(te.inputs).mean).all()


def test_select_structure_needs_two_candidates(tiny):
    from helpers.models import select_structure

    tr, _ = tiny
    for structures in (("additive",), ("scaled", "scaled")):
        with pytest.raises(ValueError, match="two distinct"):
            select_structure(MECHANISMS, tr.inputs, tr.y, structures, device="cpu", epochs=2)


# -- scores the notebook reads ------------------------------------------------------------------
def test_coverage_verdict_uses_the_binomial_tolerance():
    from helpers.analysis import coverage_verdict

    verdict, tol = coverage_verdict(0.95, 400)
    assert verdict == "calibrated" and tol == pytest.approx(2 * np.sqrt(0.95 * 0.05 / 400))
    assert coverage_verdict(1.0, 400)[0] == "over-covering"  # the old "stays calibrated"
    assert coverage_verdict(0.90, 400)[0] == "under-covering"
    assert coverage_verdict(1.0, 20)[0] == "calibrated"  # 20 points cannot tell
    with pytest.raises(ValueError):
        coverage_verdict(1.2, 10)


def test_error_curve_auc_and_knn_accuracy_known_answers():
    from helpers.analysis import error_curve_auc, knn_accuracy

    n = np.array([10, 20, 40])
    np.testing.assert_allclose(error_curve_auc(n, [[1.0, 1.0, 1.0], [2.0, 1.0, 0.0]]),
                               [30.0, 25.0])
    with pytest.raises(ValueError, match="increase"):
        error_curve_auc([3, 2, 1], [1.0, 1.0, 1.0])
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 40)
    separated = rng.normal(size=(120, 2)) * 0.1 + labels[:, None]
    assert knn_accuracy(labels, separated) == pytest.approx(1.0)
    assert knn_accuracy(labels, rng.normal(size=(120, 2))) < 0.6  # chance is 1/3
    with pytest.raises(ValueError, match="rows"):
        knn_accuracy(labels, separated[:10])


# -- measured cKPFM loops ------------------------------------------------------------------------
def fake_ckpfm(rows=10, cols=10, complex_values=False):
    """Arrays shaped like GPim's cKPFM file with known zero crossings (volts)."""
    rr, cc = np.mgrid[0:rows, 0:cols]
    crossing = 0.8 * np.sin(rr / 3.0) + 0.5 * np.cos(cc / 4.0)
    gain = 1.0 + 0.1 * rr
    gain[0, 0] = 0.0  # a flat site: no crossing
    v_read = np.linspace(-3.0, 3.0, 7)
    offset = np.array([-0.4, -0.1, 0.2, 0.3])  # per write voltage, mean 0
    resp = gain[:, :, None, None] * (v_read[None, None, None, :] - crossing[:, :, None, None]
                                     - offset[None, None, :, None])
    resp = np.stack([resp, -resp], axis=2)  # (x, y, field, write, read)
    amp = np.abs(resp)
    if complex_values:
        resp = resp + 0.3j
    return {"Nd_mat": resp, "Nd_mat_amp": amp, "bias_vec_r": v_read,
            "bias_vec_w": np.linspace(-5, 5, 4)}, crossing


@pytest.mark.parametrize("complex_values", [False, True])
def test_ckpfm_mechanisms_recover_the_crossing_voltage(complex_values):
    from helpers.analysis.ckpfm import ckpfm_mechanisms

    arrays, crossing = fake_ckpfm(complex_values=complex_values)
    d = ckpfm_mechanisms(arrays, half=1)
    assert len(d) == 99 and 0 not in d.index  # the flat site is dropped
    np.testing.assert_allclose(d.y, crossing.ravel()[d.index], atol=1e-5)
    assert d.patches.shape == (99, 3, 3) and d.inputs["position"].shape == (99, 2)
    amp = arrays["Nd_mat_amp"][:, :, 0].mean((-2, -1))
    np.testing.assert_allclose(d.patches[:, 1, 1], amp.ravel()[d.index], rtol=1e-5)
    with pytest.raises(ValueError, match="no 'Nd_mat'"):
        ckpfm_mechanisms({"bias_vec_r": arrays["bias_vec_r"]})
    with pytest.raises(ValueError, match="read voltages"):
        ckpfm_mechanisms(dict(arrays, bias_vec_r=np.zeros(7)))


def test_ckpfm_loops_from_the_cache_run_offline(tmp_path, monkeypatch):
    """The notebook's original-data path: the file in the cache is read with downloads off;
    without it, the error says where to put it."""
    from helpers import data
    from helpers.analysis.ckpfm import ckpfm_mechanisms
    from helpers.models import select_structure

    monkeypatch.setenv("MICROSCOPY_DATA_DIR", str(tmp_path))
    with pytest.raises(data.DataUnavailableError, match="not in the cache"):
        data.load("ckpfm_loops", source="original", offline=True)
    arrays, crossing = fake_ckpfm()
    (tmp_path / "ckpfm_loops").mkdir()
    np.savez(tmp_path / "ckpfm_loops" / "ckpfm_loop_0001_10x10_proc.npz", **arrays)
    real = data.load("ckpfm_loops", source="original", offline=True)
    d = ckpfm_mechanisms(real)
    np.testing.assert_allclose(d.y, crossing.ravel()[d.index], atol=1e-5)
    mech = [{"name": "patch", "encoder": "mlp", "shape": [3, 3], "latent_dim": 2},
            MECHANISMS[1]]
    sel = select_structure(mech, d.inputs, d.y, device="cpu", epochs=20)
    assert sel.chosen in ("additive", "scaled") and np.isfinite(sel.margin)
    # on the real file's layout too, the chosen structure is the one with the larger evidence
    assert set(sel.log_evidence) == {"additive", "scaled"}
    assert sel.chosen == max(sel.log_evidence, key=sel.log_evidence.get) and sel.margin >= 0
