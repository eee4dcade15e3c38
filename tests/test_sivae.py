"""SI-VAE helpers: multi-scale patch sampling, progressive (warm-started) training."""
import numpy as np
import pytest
import torch

from helpers.models import VAE, grid_centres, multiscale_patches, progressive_fit


def test_multiscale_patches_exact_on_a_known_image():
    img = np.arange(32 * 32, dtype=np.float64).reshape(32, 32)  # value = 32 * row + col
    centres = np.array([[16, 16], [12, 20]])
    ms = multiscale_patches(img, centres, windows=(4, 8, 16), size=4)
    assert ms.patches.shape == (3, 2, 4, 4) and ms.patches.dtype == np.float32
    # window 4 at (16, 16): rows 14..17, cols 14..17, copied as is
    np.testing.assert_array_equal(ms.at(4)[0], img[14:18, 14:18])
    # window 8 at (12, 20): rows 8..15, cols 16..23 block-averaged 2 x 2
    ref = img[8:16, 16:24].reshape(4, 2, 4, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(ms.at(8)[1], ref)
    # block means of a linear ramp: the centre of each 4 x 4 block
    r = 8 + 4 * np.arange(4) + 1.5
    c = 8 + 4 * np.arange(4) + 1.5
    np.testing.assert_allclose(ms.at(16)[0], 32 * r[:, None] + c[None, :])
    # a window that is not a multiple of size is interpolated to the same size
    assert multiscale_patches(img, centres, (6,), 4).patches.shape == (1, 2, 4, 4)


def test_grid_centres_fit_every_window_and_bad_input_raises():
    c = grid_centres((40, 50), (8, 24), step=4)
    ms = multiscale_patches(np.zeros((40, 50)), c, (8, 24), 8)
    assert len(ms) == len(c) > 0
    with pytest.raises(ValueError, match="border"):
        multiscale_patches(np.zeros((40, 50)), [[2, 2]], (8,), 8)
    with pytest.raises(ValueError, match="NaN"):
        multiscale_patches(np.full((10, 10), np.nan), [[5, 5]], (4,), 4)
    with pytest.raises(ValueError, match="windows"):
        multiscale_patches(np.zeros((10, 10)), [[5, 5]], (), 4)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        multiscale_patches(np.zeros((2, 10, 10)), [[5, 5]], (4,), 4)
    with pytest.raises(ValueError, match="does not fit"):
        grid_centres((10, 10), (16,), 2)


def test_warm_start_copies_the_previous_scale_weights(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2, 64, 8, 8)).astype(np.float32)
    made = []

    def make():
        m = VAE((8, 8), latent_dim=2, seed=len(made) + 1, device="cpu")
        made.append(m)
        return m

    snapshots = []
    original_fit = VAE.fit

    def spy_fit(self, X, **kw):  # weights at the moment training starts
        snapshots.append({k: v.clone() for k, v in self.module.state_dict().items()})
        return original_fit(self, X, **kw)

    monkeypatch.setattr(VAE, "fit", spy_fit)
    res = progressive_fit(X, make, epochs=1, progress=False)
    trained0 = res.models[0].module.state_dict()
    for k, v in snapshots[1].items():
        torch.testing.assert_close(v, trained0[k])  # scale 1 started from scale 0's weights
    assert res.models[0] is not res.models[1] and res.warm_start
    fresh = VAE((8, 8), latent_dim=2, seed=2, device="cpu").module.state_dict()
    snapshots.clear()
    made.clear()
    progressive_fit(X, make, epochs=1, progress=False, warm_start=False)
    assert all(torch.equal(snapshots[1][k], fresh[k]) for k in fresh)  # scratch: own init
    with pytest.raises(ValueError, match="epochs"):
        progressive_fit(X, make, epochs=(1, 2, 3), progress=False)
    with pytest.raises(ValueError, match="same H, W"):
        progressive_fit([X[0], X[1][:, :4]], make, epochs=1, progress=False)


def test_latent_follows_the_factor_at_its_own_scale():
    """Ground truth: bright squares of known area at a small scale, a smooth ramp at a large
    one. At the small window a latent tracks the local square area (|r| >= 0.8)."""
    rng = np.random.default_rng(1)
    H = W = 96
    img = np.zeros((H, W))
    area = np.zeros((H, W))
    for r0 in range(0, H, 8):
        for c0 in range(0, W, 8):
            s = int(rng.integers(0, 7))
            img[r0 + 4 - s // 2:r0 + 4 - s // 2 + s, c0 + 4 - s // 2:c0 + 4 - s // 2 + s] = 1.0
            area[r0:r0 + 8, c0:c0 + 8] = s * s
    img += 0.05 * rng.normal(size=img.shape)
    g = np.arange(20, 80, 8)  # cell centres where the 32 px window fits
    c = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    ms = multiscale_patches(img, c, (8, 32), 8)
    res = progressive_fit(ms.patches, lambda: VAE((8, 8), latent_dim=2, seed=0, device="cpu"),
                          epochs=30, batch_size=16, progress=False)
    z = res.encodings[0].z
    truth = area[c[:, 0], c[:, 1]]
    r = max(abs(np.corrcoef(z[:, j], truth)[0, 1]) for j in range(2))
    assert r >= 0.8, r
