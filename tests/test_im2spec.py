"""im2spec / spec2im: do they learn a known patch <-> loop mapping."""

import numpy as np
import pytest

from helpers.analysis import patch_ssim, r2_score
from helpers.models import History, Im2Spec, Spec2Im

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
        scores[latent] = r2_score(yt, model.predict(xt))
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
    ssim = patch_ssim(xt, pred).mean()
    assert corr >= 0.85 and ssim >= 0.8, (corr, ssim)
    # and far better than predicting the mean patch
    assert r2_score(xt, pred) >= 0.75


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


def test_fit_returns_a_history_with_the_validation_loss(data):
    (x, y), (xt, yt) = data
    m = small(Im2Spec, latent_dim=2, seed=0)
    hist = m.fit(x[:200], y[:200], epochs=2, progress=False, validation=(xt[:50], yt[:50]))
    assert isinstance(hist, History) and hist.epochs_run == 2
    assert len(hist.loss) == len(hist["val_loss"]) == 2
    # val_loss: the MSE of the held-out predictions, in standardised target units
    pred = m.predict(xt[:50])
    expected = np.mean(((pred - yt[:50]) / float(m.module.y_norm.std)) ** 2)
    assert hist.val_loss[-1] == pytest.approx(float(expected), rel=1e-6)
    assert "val_loss" not in m.fit(x[:200], y[:200], epochs=1, progress=False)


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


def test_loop_grid_draws_empty_latent_cells_as_background():
    # grid points outside the occupied latent region are NaN: drawn as grey cells, no loop,
    # and the other cells still scaled to their finite values
    import matplotlib.pyplot as plt

    from helpers.plot import spectra as sfig

    rng = np.random.default_rng(1)
    v = np.linspace(-1, 1, 16)
    g = rng.normal(size=(3, 3, 16))
    g[0, 0] = g[2, 1] = np.nan
    ax = sfig.plot_loop_grid(v, g).axes[0]
    drawn = [line for line in ax.get_lines() if np.isfinite(line.get_ydata()).all()]
    assert len(drawn) == 7 and len(ax.patches) == 2
    ys = np.concatenate([line.get_ydata() for line in drawn])
    assert ys.min() >= 0 and ys.max() <= 3
    with pytest.raises(ValueError, match="every cell"):
        sfig.plot_loop_grid(v, np.full((2, 2, 16), np.nan))
    plt.close("all")
