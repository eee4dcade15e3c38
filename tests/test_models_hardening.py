"""Hostile input to the models (issue 22, items 4, 5 and 12); segmentation and features
have theirs in ``test_segment.py`` and ``test_features.py``.

Each test here failed on the code before the fix: training that diverged returned normally,
unfitted models encoded, small frames crashed the U-Net, bad thresholds/coordinates/frame keys
were silently accepted, complex or huge inputs were truncated or trained on zeros, and broken
checkpoints gave raw torch errors.
"""

from __future__ import annotations

import io
import json
import os
import pickle

import numpy as np
import pytest
import torch
from support import disc_segmentation_data

from helpers import features as F
from helpers.analysis import recovery_r2
from helpers.models import JRVAE, RVAE, VAE, Divide, Im2Spec, Spec2Im, UNet
from helpers.models.sivae import multiscale_patches, progressive_fit
from helpers.models.standardize import standardize_images


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small models: one intra-op thread (restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _images(n=64, size=16, seed=0):
    return np.random.default_rng(seed).normal(size=(n, size, size)).astype(np.float32)


def _pairs(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 8, 8)).astype(np.float32),
            rng.normal(size=(n, 16)).astype(np.float32))


def _small_im2spec(**kw):
    return Im2Spec(patch_size=8, n_points=16, latent_dim=2, n_filters=8, device="cpu", **kw)


def _fitted_unet(**kw):
    images, masks = disc_segmentation_data()
    net = UNet(n_classes=3, seed=0, device="cpu", **kw)
    net.fit(images, masks, epochs=1, steps_per_epoch=2, batch_size=2, crop=16, progress=False)
    return net


DIVIDE_MECH = [{"name": "v", "encoder": "mlp", "shape": [3], "latent_dim": 2}]


def _divide_data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, 3)).astype(np.float32)
    return {"v": v}, (v[:, 0] + 0.1 * rng.normal(size=n)).astype(np.float32)


# -- item 4: divergence stops training -------------------------------------------------------
@pytest.mark.parametrize("cls, lr", [(RVAE, 1e3), (VAE, 1e8)])
def test_vae_family_divergence_stops_naming_epoch_and_fix(cls, lr):
    m = cls((16, 16), seed=0, device="cpu")
    with pytest.raises(RuntimeError, match=r"diverged at epoch 1.*learning rate") as info:
        m.fit(_images(), epochs=5, lr=lr, progress=False)
    assert isinstance(info.value, FloatingPointError)  # what a NaN stop always raised
    assert "first value" in str(info.value)


def test_im2spec_and_spec2im_divergence_stops():
    x, y = _pairs()
    with pytest.raises(RuntimeError, match=r"diverged at epoch 1.*learning rate"):
        _small_im2spec().fit(x, y, epochs=3, batch_size=16, lr=1e3, progress=False)
    s = Spec2Im(patch_size=8, n_points=16, latent_dim=2, n_filters=8, device="cpu")
    with pytest.raises(RuntimeError, match=r"diverged at epoch 1.*learning rate"):
        s.fit(y, x, epochs=3, batch_size=16, lr=1e5, progress=False)


def test_unet_divergence_stops():
    images, masks = disc_segmentation_data()
    net = UNet(n_classes=3, filters=4, depth=2, seed=0, device="cpu")
    with pytest.raises(RuntimeError, match=r"diverged at epoch 1.*learning rate"):
        net.fit(images, masks, epochs=3, steps_per_epoch=3, batch_size=2, crop=16, lr=1e4,
                progress=False)


@pytest.mark.parametrize("method", ["exact", "variational"])
def test_divide_divergence_stops(method):
    X, y = _divide_data()
    m = Divide(DIVIDE_MECH, method=method, num_inducing=8, device="cpu")
    with pytest.raises(RuntimeError, match=r"diverged at (step|epoch) \d+.*lr"):
        m.fit(X, y, epochs=30, lr=1e3, encoder_lr=1e3, validation_fraction=0, batch_size=16,
              progress=False)


def test_normal_training_is_not_stopped():
    """The guard's bound (1e3 x the first loss) is far from what working runs show."""
    h = RVAE((16, 16), seed=0, device="cpu").fit(_images(), epochs=3, progress=False)
    assert len(h["loss"]) == 3
    x, y = _pairs()
    assert len(_small_im2spec().fit(x, y, epochs=3, batch_size=16, progress=False).loss) == 3


def test_guard_unit():
    from helpers._checks import DivergenceGuard, TrainingDivergedError

    g = DivergenceGuard(factor=1e3, floor=1.0)
    g.check(0.01, 1)  # the floor, not 0.01, sets the scale
    g.check(999.0, 2)
    with pytest.raises(TrainingDivergedError, match="epoch 3"):
        g.check(1001.0, 3)
    with pytest.raises(TrainingDivergedError, match="nan at epoch 4"):
        DivergenceGuard().check(float("nan"), 4)


# -- item 4: inference needs a fitted or loaded model ---------------------------------------
@pytest.mark.parametrize("cls", [VAE, RVAE, JRVAE])
def test_vae_family_unfitted_inference_raises(cls, tmp_path):
    m = cls((16, 16), seed=0, device="cpu")
    X = _images(8)
    with pytest.raises(ValueError, match=r"not fitted.*fit\(X\).*load"):
        m.encode(X)
    with pytest.raises(ValueError, match="not fitted"):
        m.decode(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="not fitted"):
        m.manifold(3)
    m.fit(X, epochs=1, batch_size=8, progress=False)
    loaded = cls.load(m.save(tmp_path / "m.pt"), device="cpu")  # loaded counts as fitted
    np.testing.assert_array_equal(loaded.encode(X).z, m.encode(X).z)


def test_other_models_unfitted_inference_names_fit_and_load():
    x, y = _pairs(8)
    with pytest.raises(ValueError, match=r"not fitted.*load"):
        _small_im2spec().encode(x)
    X, _ = _divide_data()
    with pytest.raises(ValueError, match=r"not fitted.*load"):
        Divide(DIVIDE_MECH, device="cpu").encode(X)
    with pytest.raises(ValueError, match=r"not fitted.*load"):
        UNet(n_classes=3, device="cpu").predict(np.zeros((32, 32)), progress=False)


# -- item 5: U-Net on small frames -----------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (24, 24), (28, 28), (20, 33), (24, 300),
                                   (300, 7)])
def test_unet_predicts_any_small_size(shape):
    net = _fitted_unet()
    frame = np.random.default_rng(1).random(shape).astype(np.float32)
    probs = net.predict(frame, progress=False)
    assert probs.shape == (3, *shape) and np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)


@pytest.mark.parametrize("size", [24, 48])
def test_unet_small_frame_equals_one_forward_pass(size):
    """A frame that is one tile and a multiple of 2**(depth-1) is one forward pass, whether
    its side is below the tile overlap (24 px, which crashed) or above it (48 px)."""
    net = _fitted_unet()
    frame = np.random.default_rng(2).random((size, size)).astype(np.float32)
    with torch.no_grad():
        x = torch.from_numpy(standardize_images(frame[None]))[:, None]
        direct = torch.softmax(net.module(x), dim=1)[0].numpy()
    np.testing.assert_allclose(net.predict(frame, progress=False), direct, rtol=1e-5,
                               atol=1e-6)


# -- item 12: complex input ------------------------------------------------------------------
def test_complex_input_is_rejected_everywhere():
    X = _images(16).astype(np.complex64) * (1 + 1j)
    with pytest.raises(ValueError, match="complex"):
        RVAE((16, 16), device="cpu").fit(X, epochs=1, progress=False)
    x, y = _pairs(16)
    with pytest.raises(ValueError, match="complex"):
        _small_im2spec().fit(x.astype(complex), y, epochs=1, progress=False)
    with pytest.raises(ValueError, match="complex"):
        _small_im2spec().fit(x, y * 1j, epochs=1, progress=False)
    Xd, yd = _divide_data()
    with pytest.raises(ValueError, match="complex"):
        Divide(DIVIDE_MECH, device="cpu").fit({"v": Xd["v"] + 0j}, yd, epochs=1,
                                               progress=False)
    with pytest.raises(ValueError, match="complex"):
        Divide(DIVIDE_MECH, device="cpu").fit(Xd, yd + 1j, epochs=1, progress=False)
    with pytest.raises(ValueError, match="complex"):
        recovery_r2(yd, yd + 1j)
    img = np.random.default_rng(0).random((32, 32)) + 1j
    with pytest.raises(ValueError, match="complex"):
        multiscale_patches(img, [[16, 16]], [8], 8)
    with pytest.raises(ValueError, match="complex"):
        progressive_fit([X], lambda: RVAE((16, 16), device="cpu"), epochs=1, progress=False)
    with pytest.raises(ValueError, match="complex"):
        F.extract_patches(img.real, np.array([[16, 16]]) + 0j, 5)


# -- item 12: huge (and tiny) magnitudes -----------------------------------------------------
def test_huge_inputs_are_standardised_not_zeroed():
    X = _images(64)
    base = RVAE((16, 16), seed=0, device="cpu")
    hb = base.fit(X, epochs=2, progress=False)
    for scale in (1e30, 1e-30):
        big = RVAE((16, 16), seed=0, device="cpu")
        hg = big.fit(X * np.float32(scale), epochs=2, progress=False)
        # the same images in other units: the same training, up to float32 rounding
        np.testing.assert_allclose(hg["loss"], hb["loss"], rtol=1e-3)
        np.testing.assert_allclose(big.encode(X * np.float32(scale)).z, base.encode(X).z,
                                   atol=1e-3)


def test_huge_targets_im2spec_and_divide():
    x, y = _pairs()
    a = _small_im2spec(seed=0)
    a.fit(x, y, epochs=2, batch_size=16, progress=False)
    b = _small_im2spec(seed=0)
    b.fit(x * np.float32(1e30), y * np.float32(1e30), epochs=2, batch_size=16, progress=False)
    np.testing.assert_allclose(b.predict(x * np.float32(1e30)) / 1e30, a.predict(x), rtol=1e-3,
                               atol=1e-3)
    X, yd = _divide_data()
    m = Divide(DIVIDE_MECH, device="cpu")
    m.fit(X, yd * np.float32(1e30), epochs=5, validation_fraction=0, progress=False)
    assert 1e29 < float(m.module.y_norm.std) < 1e31


def test_unet_standardises_huge_frames():
    net = _fitted_unet()
    frame = np.random.default_rng(3).random((32, 32)).astype(np.float32)
    np.testing.assert_allclose(net.predict(frame * np.float32(1e30), progress=False),
                               net.predict(frame, progress=False), atol=1e-4)


def test_standardisation_of_normal_data_is_unchanged():
    """Normal data keep their float32 statistics bit for bit (seeded runs unchanged)."""
    from helpers._checks import mean_std

    x = _images(32) * 3 + 7
    assert mean_std(x) == (float(x.mean()), float(x.std()))
    flat = np.full((4, 4), 2.5, np.float32)
    assert mean_std(flat) == (float(flat.mean()), 0.0)
    with pytest.raises(ValueError, match="beyond the float32 range"):
        RVAE((16, 16), device="cpu").fit(_images(8).astype(np.float64) * 1e300, epochs=1,
                                          progress=False)


# -- item 12: checkpoints --------------------------------------------------------------------
class _Payload:
    """Would create a folder if unpickled."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def _trained(kind, tmp_path):
    if kind == "RVAE":
        m = RVAE((16, 16), device="cpu")
        m.fit(_images(8), epochs=1, batch_size=8, progress=False)
        return RVAE, m
    if kind == "Im2Spec":
        m = _small_im2spec()
        m.fit(*_pairs(8), epochs=1, batch_size=8, progress=False)
        return Im2Spec, m
    return UNet, _fitted_unet(filters=2, depth=2)


@pytest.mark.parametrize("kind", ["RVAE", "Im2Spec", "UNet"])
def test_bad_checkpoints_give_one_clear_error(kind, tmp_path):
    cls, model = _trained(kind, tmp_path)
    good = tmp_path / "good.pt"
    model.save(good)

    def refused(path, *words):
        with pytest.raises(ValueError) as info:
            cls.load(path, device="cpu")
        text = str(info.value)
        assert str(path) in text and f"not a valid {cls.__name__} checkpoint" in text
        assert "weights_only" not in text and info.value.__cause__ is None
        for w in words:
            assert w in text
        return text

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(300))
    refused(garbage, "damaged")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    refused(empty)

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as fh:
        torch.save({"config": "{}", "state_dict": _Payload(str(marker))}, fh)
    refused(evil, "never unpickled")
    assert not marker.exists()
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_Payload(str(marker))))
    refused(raw)
    assert not marker.exists()

    blob = torch.load(good, weights_only=True)
    config = json.loads(blob["config"])

    def edited(name, **changes):
        b = dict(blob, **changes)
        path = tmp_path / name
        buf = io.BytesIO()
        torch.save(b, buf)
        path.write_bytes(buf.getvalue())
        return path

    refused(edited("unknown_key.pt", config=json.dumps(dict(config, bogus=1))),
            "config does not match")
    refused(edited("not_json.pt", config="{oops"), "config")
    refused(edited("list_config.pt", config="[1, 2]"), "config")
    bad_value = dict(config)
    key = "latent_dim" if kind != "UNet" else "n_classes"
    bad_value[key] = 0
    refused(edited("bad_value.pt", config=json.dumps(bad_value)), "config does not match")
    state = dict(blob["state_dict"])
    state.pop(next(iter(state)))
    refused(edited("missing_weight.pt", state_dict=state), "weights do not fit")
    state = {k: torch.zeros(3) if i == 0 else v for i, (k, v) in
             enumerate(blob["state_dict"].items())}
    refused(edited("wrong_shape.pt", state_dict=state), "weights do not fit")
    refused(edited("no_state.pt", state_dict=[1, 2]))
    # and the good one still loads (weights_only=True reads it)
    assert cls.load(good, device="cpu").config == model.config


def test_checkpoint_of_another_class_names_it(tmp_path):
    m = RVAE((16, 16), device="cpu")
    m.fit(_images(8), epochs=1, batch_size=8, progress=False)
    path = m.save(tmp_path / "r.pt")
    with pytest.raises(ValueError, match="RVAE"):
        VAE.load(path)
    with pytest.raises(ValueError, match=r"holds a 'RVAE' model, not a UNet.*RVAE\.load"):
        UNet.load(tmp_path / "r.pt")
