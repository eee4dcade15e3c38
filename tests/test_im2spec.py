"""im2spec / spec2im: do they learn a known patch <-> loop mapping, and the pair utilities."""

import numpy as np
import pytest

from helpers.models import Im2Spec, Spec2Im
from helpers.spectra import (
    error_ratio,
    latent_grid,
    loop_area,
    loop_map_from_arrays,
    nearest_on_grid,
    normalized_rmse,
    patch_loop_pairs,
    patch_ssim,
    r2_score,
    spatial_split,
    values_to_map,
)

N_POINTS = 64
PATCH = 8


def synthetic_pairs(n, seed=0, noise=0.05):
    """Patches and loops both driven by 4 hidden factors u in [-1, 1]^4.

    Patch: a sum of 4 fixed 8x8 basis images weighted by u. Loop: tanh branches over a
    triangular voltage sweep whose amplitude, coercive voltage, imprint and switching width
    are set by u (so the truth needs 4 latent factors, more than 2).
    """
    rng = np.random.default_rng(seed)
    u = rng.uniform(-1, 1, size=(n, 4))
    r, c = np.mgrid[0:PATCH, 0:PATCH] / (PATCH - 1) * 2 - 1
    basis = np.stack([c, r, np.exp(-(r**2 + c**2) / 0.3) - 0.5,
                      np.cos(np.pi * r) * np.cos(np.pi * c)])
    patches = np.einsum("nk,kij->nij", u, basis)
    patches += noise * rng.normal(size=patches.shape)
    half = N_POINTS // 2
    v = np.concatenate([np.linspace(-1, 1, half), np.linspace(1, -1, N_POINTS - half)])
    up = np.arange(N_POINTS) < half
    amp, coercive = 1 + 0.4 * u[:, :1], 0.45 + 0.2 * u[:, 1:2]
    imprint, width = 0.2 * u[:, 2:3], 0.2 + 0.08 * u[:, 3:4]
    loops = amp * np.tanh((v - np.where(up, coercive, -coercive) - imprint) / width)
    loops += noise * rng.normal(size=loops.shape)
    return patches.astype(np.float32), loops.astype(np.float32)


@pytest.fixture(scope="module")
def data():
    return synthetic_pairs(1200, seed=0), synthetic_pairs(400, seed=1)


def small(cls, **kw):
    return cls(patch_size=PATCH, n_points=N_POINTS, n_filters=8, device="cpu", **kw)


# -- science ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_im2spec_predicts_held_out_loops_and_needs_more_than_two_latents(data):
    (x, y), (xt, yt) = data
    scores = {}
    for latent in (2, 10):
        model = Im2Spec(PATCH, N_POINTS, latent_dim=latent, seed=0, device="cpu")
        hist = model.fit(x, y, epochs=10, batch_size=64, progress=False)
        assert hist.loss[-1] < hist.loss[0]
        scores[latent] = r2_score(model.predict(xt), yt)
    # the truth has 4 factors: 10 latents recover it, 2 cannot
    assert scores[10] >= 0.85, scores
    assert scores[10] - scores[2] >= 0.1, scores


@pytest.mark.slow
def test_spec2im_reconstructs_held_out_patches(data):
    (x, y), (xt, yt) = data
    model = Spec2Im(PATCH, N_POINTS, latent_dim=10, seed=0, device="cpu")
    model.fit(y, x, epochs=10, progress=False)
    pred = model.predict(yt)
    assert pred.shape == xt.shape
    corr = np.mean([np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(pred, xt)])
    ssim = patch_ssim(pred, xt).mean()
    assert corr >= 0.85 and ssim >= 0.8, (corr, ssim)
    # and far better than predicting the mean patch
    assert r2_score(pred, xt) >= 0.75


# -- conventions ------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [Im2Spec, Spec2Im])
def test_save_load_round_trip_is_exact(cls, data, tmp_path):
    (x, y), (xt, yt) = data
    model = small(cls, latent_dim=3, seed=1)
    inp, out = (x, y) if cls is Im2Spec else (y, x)
    model.fit(inp[:200], out[:200], epochs=1, progress=False)
    path = model.save(tmp_path / "m.pt")
    back = cls.load(path, device="cpu")
    probe = xt[:50] if cls is Im2Spec else yt[:50]
    z = model.encode(probe)
    assert z.shape == (50, 3)
    np.testing.assert_array_equal(back.encode(probe), z)
    np.testing.assert_array_equal(back.predict(probe), model.predict(probe))
    np.testing.assert_array_equal(back.decode(z), model.decode(z))
    assert back.config == model.config
    # predictions come back in the caller's units (standardisation stored in the checkpoint)
    assert abs(float(model.predict(probe).mean()) - float(out.mean())) < 3 * float(out.std())


@pytest.mark.parametrize("cls", [Im2Spec, Spec2Im])
def test_same_seed_same_numbers(cls, data):
    (x, y), _ = data
    inp, out = (x[:256], y[:256]) if cls is Im2Spec else (y[:256], x[:256])
    preds = []
    for seed in (5, 5, 6):
        m = small(cls, latent_dim=2, seed=seed)
        m.fit(inp, out, epochs=2, progress=False)
        preds.append(m.predict(inp[:20]))
    np.testing.assert_array_equal(preds[0], preds[1])
    assert not np.allclose(preds[0], preds[2])


def test_bad_input_raises_clear_errors(data, tmp_path):
    (x, y), _ = data
    m = small(Im2Spec, latent_dim=2)
    with pytest.raises(ValueError, match="not fitted"):
        m.predict(x[:4])
    with pytest.raises(ValueError, match="trailing shape"):
        m.fit(np.zeros((10, 6, 6)), y[:10], epochs=1, progress=False)
    bad = x[:10].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        m.fit(bad, y[:10], epochs=1, progress=False)
    with pytest.raises(ValueError, match="same number"):
        m.fit(x[:10], y[:9], epochs=1, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        m.fit(x[:10], y[:10], epochs=0, progress=False)
    m.fit(x[:10], y[:10], epochs=1, progress=False)
    with pytest.raises(ValueError, match="trailing shape"):
        m.decode(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="dimensions"):
        m.predict(x[0])
    with pytest.raises(ValueError, match="latent_dim"):
        Im2Spec(latent_dim=0)
    with pytest.raises(FileNotFoundError):
        Im2Spec.load(tmp_path / "missing.pt")
    path = m.save(tmp_path / "im2spec.pt")
    with pytest.raises(ValueError, match="Im2Spec"):
        Spec2Im.load(path)


# -- pair utilities and metrics ---------------------------------------------------------------
def test_patch_loop_pairs_and_spatial_split():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(20, 30))
    loops = rng.normal(size=(20, 30, 5))
    pairs = patch_loop_pairs(image, loops, patch_size=4)
    assert len(pairs) == 17 * 27 and pairs.patches.shape == (17 * 27, 4, 4)
    i = 100
    r, c = pairs.rows[i], pairs.cols[i]
    np.testing.assert_allclose(pairs.loops[i], loops[r, c], rtol=1e-6)
    np.testing.assert_allclose(pairs.patches[i][2, 2], image[r, c], rtol=1e-6)
    split = spatial_split(pairs, 0.5)
    first = pairs.cols - 2
    assert (first[split.train] + 4 <= split.boundary).all()
    assert (first[split.test] >= split.boundary).all()
    assert not (split.train & split.test).any()
    with pytest.raises(ValueError, match="image grid"):
        patch_loop_pairs(image, loops[:10], patch_size=4)
    with pytest.raises(ValueError, match="larger"):
        patch_loop_pairs(image, loops, patch_size=25)


def test_loop_metrics():
    # a square loop from -1 to 1 in V and P encloses 4 V x a.u.; a single-valued curve 0
    v = np.array([-1.0, 1.0, 1.0, -1.0])
    assert loop_area(np.array([-1.0, -1.0, 1.0, 1.0]), v) == pytest.approx(4.0)
    vv = np.concatenate([np.linspace(-1, 1, 20), np.linspace(1, -1, 20)])
    assert loop_area(np.tanh(3 * vv)[None], vv)[0] == pytest.approx(0.0, abs=1e-12)
    t = np.random.default_rng(0).normal(size=(50, 8))
    assert r2_score(t, t) == 1.0
    assert r2_score(np.broadcast_to(t.mean(0), t.shape), t) == pytest.approx(0.0)
    np.testing.assert_allclose(normalized_rmse(t + 0.5, t, scale=1.0), 0.5)
    p = t.reshape(50, 2, 4)
    np.testing.assert_allclose(patch_ssim(p, p), 1.0)
    q = p - p.mean(axis=(1, 2), keepdims=True)
    assert (patch_ssim(-q, q) < 0).all()  # anti-correlated structure
    assert error_ratio(np.array([2.0, 2.0, 1.0, 1.0]), np.array([1, 1, 0, 0], bool)) == 2.0
    m = values_to_map(np.arange(3.0), [0, 1, 2], [2, 1, 0], (3, 3))
    assert m[2, 0] == 2.0 and np.isnan(m[0, 0])
    z = np.random.default_rng(1).normal(size=(500, 3))
    grid, axes = latent_grid(z, n=4)
    assert grid.shape == (16, 3) and axes.shape == (2, 4)
    assert grid[0, 1] > grid[-1, 1] and grid[0, 0] < grid[3, 0]
    idx = nearest_on_grid(z, grid)
    assert idx.shape == (16,) and idx.min() >= 0
    assert (nearest_on_grid(z, grid + 100, max_distance=1.0) == -1).all()
    with pytest.raises(ValueError, match="NaN"):
        r2_score(np.full((2, 2), np.nan), t[:2, :2])


def test_loop_map_from_arrays_finds_loops_and_voltage_by_shape():
    loops = np.random.default_rng(0).normal(size=(6, 5, 16))
    v = np.linspace(-1, 1, 16)
    got, volts = loop_map_from_arrays({"v": v, "loop": loops, "note": np.zeros(3)})
    assert got.shape == (6, 5, 16) and got.dtype == np.float32
    np.testing.assert_array_equal(volts, v)
    with pytest.raises(ValueError, match="one \\(H, W, L\\)"):
        loop_map_from_arrays({"v": v})
    with pytest.raises(ValueError, match="voltage vector"):
        loop_map_from_arrays({"loops": loops, "v": v[:3]})


def test_spectra_figures_draw_and_check_shapes():
    import matplotlib.pyplot as plt

    from helpers.plot import spectra as sfig

    rng = np.random.default_rng(0)
    v = np.linspace(-1, 1, 16)
    loops = rng.normal(size=(3, 16))
    image = rng.normal(size=(10, 12))
    figs = [
        sfig.plot_loop_predictions(v, loops, loops + 0.1, titles=["a", "b", "c"]),
        sfig.plot_error_maps(image, {"err": np.abs(image)}, walls=image > 1),
        sfig.plot_latent_classes(rng.normal(size=(50, 2)), rng.integers(0, 3, 50),
                                 rng.integers(0, 3, (10, 12)).astype(float), v, loops),
        sfig.plot_latent_mosaic(rng.normal(size=(3, 3, 4, 4)),
                                np.stack([np.linspace(0, 1, 3)] * 2)),
        sfig.plot_loop_grid(v, rng.normal(size=(3, 3, 16))),
        sfig.plot_patch_predictions(rng.normal(size=(2, 4, 4)), rng.normal(size=(2, 4, 4))),
    ]
    assert all(isinstance(f, plt.Figure) for f in figs)
    plt.close("all")
    with pytest.raises(ValueError, match="same|both"):
        sfig.plot_loop_predictions(v, loops, loops[:2])
    with pytest.raises(ValueError, match="shape"):
        sfig.plot_error_maps(image, {"err": image[:5]})
    with pytest.raises(ValueError, match=r"\(n, n, 16\)"):
        sfig.plot_loop_grid(v, rng.normal(size=(3, 2, 16)))
