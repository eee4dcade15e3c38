"""The invariant VAE family's estimators (``helpers.models.vae``), checked against simulator
ground truth.

Fast tests: the API contract (shapes, errors, checkpoints, seeds, the arguments each class
takes, the history ``fit`` returns). Slow tests (``-m slow``) train small models and check
the science: an RVAE recovers angle, offsets and shape on full-circle rotations, a plain VAE
leaks the angle into its latents, a JRVAE finds the classes without labels.
"""

import numpy as np
import pytest

from helpers.analysis.scores import angle_leak, circular_correlation, hungarian_accuracy
from helpers.models import JRVAE, RVAE, VAE, Encoding
from helpers.models.pose import rotate_images
from helpers.models.training import History
from helpers.simulate.objects import card_glyphs, rotated_objects

SHAPE = (28, 28)


@pytest.fixture(scope="module")
def objects():
    return rotated_objects(2000, seed=0)


@pytest.fixture(scope="module")
def small():
    return rotated_objects(256, seed=1).images


# -- API contract -----------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [VAE, RVAE, JRVAE])
def test_api_shapes_after_one_step(cls, small):
    m = cls(SHAPE, latent_dim=3, seed=0, device="cpu")
    m.fit(small[:16], epochs=1, batch_size=16, progress=False)  # one optimiser step
    enc = m.encode(small[:10])
    assert isinstance(enc, Encoding)
    assert enc.z.shape == (10, 3) and enc.z_std.shape == (10, 3) and (enc.z_std > 0).all()
    if cls is VAE:
        assert enc.angle is None and enc.offset is None and enc.class_probs is None
        assert m.decode(enc.z).shape == (10, 28, 28)
    else:
        assert enc.angle.shape == (10,) and enc.offset.shape == (10, 2)
        assert ((enc.angle >= 0) & (enc.angle < 2 * np.pi)).all()
        assert m.decode(enc.z, angle=enc.angle, offset=enc.offset).shape == (10, 28, 28)
        assert m.decode(enc.z, angle=0.5).shape == (10, 28, 28)  # scalar pose broadcasts
    if cls is JRVAE:
        assert enc.class_probs.shape == (10, 4)
        np.testing.assert_allclose(enc.class_probs.sum(1), 1, rtol=1e-5)
        assert m.decode(enc.z, classes=enc.classes).shape == (10, 28, 28)
    assert m.manifold(5).shape == (5, 5, 28, 28)


def test_manifold_along_rotated_axes_decodes_the_rotated_codes(small):
    m = RVAE(SHAPE, seed=0, device="cpu")
    m.fit(small[:16], epochs=1, batch_size=16, progress=False)
    c, s = np.cos(0.6), np.sin(0.6)
    axes = np.array([[c, -s], [s, c]])
    grid = m.manifold(3, limits=((-1, 1), (-1, 1)), axes=axes)
    # the top-left tile has rotated coordinates (-1, +1): in the model's latents, axes @ (-1, 1)
    np.testing.assert_allclose(grid[0, 0], m.decode((axes @ [-1.0, 1.0])[None])[0], atol=1e-5)
    with pytest.raises(ValueError, match="orthonormal"):
        m.manifold(3, axes=2 * axes)


def test_bad_input_raises_value_error_naming_the_problem(small):
    m = RVAE(SHAPE, seed=0, device="cpu")
    bad = small[:4].copy()
    bad[0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        m.fit(bad, epochs=1, progress=False)
    with pytest.raises(ValueError, match="dimensions"):
        m.encode(small[0])
    with pytest.raises(ValueError, match="built for"):
        m.encode(np.zeros((3, 32, 32)))
    with pytest.raises(ValueError, match="latent_dim"):
        m.decode(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="no pose"):
        VAE(SHAPE, device="cpu").decode(np.zeros((1, 2)), angle=0.3)
    with pytest.raises(ValueError, match="decoder"):
        RVAE(SHAPE, decoder="spatial")
    with pytest.raises(ValueError, match="condition"):
        RVAE(SHAPE, condition_dim=2, device="cpu").encode(small[:2])


def test_non_finite_loss_stops_with_the_epoch_named(small, monkeypatch):
    m = RVAE(SHAPE, seed=0, device="cpu")
    calls = {"n": 0}
    original = m.module.loss

    def flaky(*args, **kwargs):
        loss, parts = original(*args, **kwargs)
        calls["n"] += 1
        return (loss * float("nan") if calls["n"] > 4 else loss), parts

    monkeypatch.setattr(m.module, "loss", flaky)
    with pytest.raises(FloatingPointError, match="epoch 2"):
        m.fit(small[:128], epochs=3, batch_size=32, progress=False)  # 4 steps per epoch


def test_save_load_round_trip_and_seed_reproducibility(tmp_path, small):
    small = small[:128]
    a = JRVAE(SHAPE, latent_dim=2, n_classes=3, seed=5, device="cpu")
    ha = a.fit(small, epochs=1, batch_size=64, progress=False)
    b = JRVAE(SHAPE, latent_dim=2, n_classes=3, seed=5, device="cpu")
    hb = b.fit(small, epochs=1, batch_size=64, progress=False)
    assert ha["loss"] == hb["loss"]
    ea, eb = a.encode(small), b.encode(small)
    for f in ("z", "z_std", "angle", "offset", "class_probs"):
        np.testing.assert_array_equal(getattr(ea, f), getattr(eb, f))
    c = JRVAE(SHAPE, latent_dim=2, n_classes=3, seed=6, device="cpu")
    assert c.fit(small, epochs=1, batch_size=64, progress=False)["loss"] != ha["loss"]

    path = a.save(tmp_path / "m.pt")
    loaded = JRVAE.load(path, device="cpu")
    el = loaded.encode(small)
    for f in ("z", "z_std", "angle", "offset", "class_probs"):
        np.testing.assert_array_equal(getattr(ea, f), getattr(el, f))
    np.testing.assert_array_equal(a.decode(ea.z, angle=1.0), loaded.decode(ea.z, angle=1.0))
    with pytest.raises(ValueError, match="JRVAE"):
        RVAE.load(path)
    with pytest.raises(FileNotFoundError):
        RVAE.load(tmp_path / "missing.pt")


@pytest.mark.parametrize("kwargs", [
    dict(encoder="conv"),
    dict(decoder="coordinate", n_rotations=4),
    dict(pose="regress"),
    dict(scale=True, symmetry=2),
    dict(condition_dim=2),
])
def test_variants_train_and_round_trip(kwargs, small, tmp_path):
    m = RVAE(SHAPE, seed=0, device="cpu", **kwargs)
    cond = np.eye(2, dtype=np.float32)[np.arange(64) % 2] if "condition_dim" in kwargs else None
    h = m.fit(small[:64], epochs=2, batch_size=32, progress=False, condition=cond,
              validation=small[64:96], validation_condition=None if cond is None else cond[:32])
    assert len(h["loss"]) == 2 and np.isfinite(h["loss"]).all()
    assert np.isfinite(h["val_loss"]).all()  # every hypothesis scored exactly
    assert h["loss"][1] < h["loss"][0]
    enc = m.encode(small[:64], condition=cond)
    if kwargs.get("symmetry") == 2:
        assert (enc.angle < np.pi).all() and enc.scale.shape == (64,)
    m2 = RVAE.load(m.save(tmp_path / "v.pt"), device="cpu")
    np.testing.assert_array_equal(enc.z, m2.encode(small[:64], condition=cond).z)


def test_decode_applies_pose_with_the_suite_convention(objects):
    """decode(z, angle + t) equals decode(z, angle) turned by +t (up to resampling)."""
    m = RVAE(SHAPE, seed=0, device="cpu")
    m.fit(objects.images[:256], epochs=1, progress=False)
    z = np.zeros((1, 2), np.float32)
    base = m.decode(z, angle=0.0)
    turned = m.decode(z, angle=0.9)
    inner = (slice(None), slice(6, -6), slice(6, -6))

    def err(t):
        ref = rotate_images(base - base.mean(), t) + base.mean()
        return np.abs(turned - ref)[inner].mean()

    signal = np.abs(base - base.mean())[inner].mean()
    assert err(0.9) < 0.25 * signal and err(0.9) < 0.3 * err(-0.9), (err(0.9), err(-0.9))


POSE_ARGUMENTS = dict(translation=True, scale=True, n_rotations=8, symmetry=2,
                      angle_prior=0.2, translation_prior=0.2, scale_prior=0.2,
                      pose="regress", top_hypotheses=2)


@pytest.mark.parametrize("name", list(POSE_ARGUMENTS))
def test_plain_vae_refuses_pose_arguments_and_names_rvae(name):
    with pytest.raises(TypeError, match=f"VAE takes no {name}: .*use RVAE"):
        VAE(SHAPE, **{name: POSE_ARGUMENTS[name]})
    with pytest.raises(TypeError, match="use JRVAE"):
        VAE(SHAPE, n_classes=2)
    with pytest.raises(TypeError, match="use JRVAE"):
        RVAE(SHAPE, n_classes=2)
    with pytest.raises(TypeError):  # an argument no model has
        RVAE(SHAPE, n_rotation=8)


def test_each_class_keeps_exactly_its_arguments_in_the_config():
    vae = set(VAE(SHAPE).config)
    assert not vae & set(POSE_ARGUMENTS) and "n_classes" not in vae
    rvae = set(RVAE(SHAPE).config)
    assert rvae == vae | set(POSE_ARGUMENTS)
    assert set(JRVAE(SHAPE).config) == rvae | {"n_classes", "class_balance"}
    assert RVAE(SHAPE).config["n_rotations"] == 12 and JRVAE(SHAPE).config["n_rotations"] == 16


def test_fit_returns_a_history_with_every_loss_part(small):
    m = RVAE(SHAPE, seed=0, device="cpu")
    h = m.fit(small[:64], epochs=2, batch_size=32, progress=False, validation=small[64:96])
    assert isinstance(h, History) and h.epochs_run == 2
    assert list(h) == ["loss", "recon", "kl_z", "kl_pose", "kl_class", "class_balance",
                       "seconds", "val_loss"]
    assert all(len(h[k]) == 2 for k in h) and h.loss is h["loss"]
    assert h["class_balance"] == [0.0, 0.0]  # no classes: recorded as 0
    assert np.allclose(h["loss"], np.add(h["recon"], h["kl_z"]) + np.add(h["kl_pose"],
                                                                        h["kl_class"]),
                       rtol=1e-5)


# -- science (slow) ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_rvae(objects):
    m = RVAE(SHAPE, latent_dim=2, translation=True, seed=0, device="cpu")
    m.fit(objects.images, epochs=2, progress=False)
    return m


@pytest.mark.slow
def test_rvae_recovers_angle_offsets_and_shape_over_the_full_circle(objects, trained_rvae):
    enc = trained_rvae.encode(objects.images)
    r_angle = circular_correlation(objects.angle, enc.angle)
    assert r_angle >= 0.95, r_angle  # positive: +t encodes as +t (the convention)
    for axis in range(2):
        r_off = np.corrcoef(enc.offset[:, axis], objects.offset[:, axis])[0, 1]
        assert r_off >= 0.9, (axis, r_off)
    r_shape = max(abs(np.corrcoef(enc.z[:, i], objects.shape_factor)[0, 1]) for i in range(2))
    assert r_shape >= 0.9, r_shape
    # its content latents are rotation-invariant ...
    assert angle_leak(objects.angle, enc.z) < 0.3
    # ... while a plain VAE on the same data mixes the angle into its latents
    vae = VAE(SHAPE, latent_dim=2, seed=0, device="cpu")
    vae.fit(objects.images, epochs=2, progress=False)
    assert angle_leak(objects.angle, vae.encode(objects.images).z) > 0.8


@pytest.mark.slow
def test_rvae_encodes_a_turn_as_a_larger_angle(objects, trained_rvae):
    """The same images turned by +t encode to angles larger by t (modulo 2 pi)."""
    m = trained_rvae
    x = objects.images[:300]
    t = 0.8
    a0 = m.encode(x).angle
    a1 = m.encode(rotate_images(x, t)).angle
    d = np.angle(np.exp(1j * (a1 - a0 - t)))
    assert np.median(np.abs(d)) < np.radians(5), np.degrees(np.median(np.abs(d)))


@pytest.mark.slow
def test_jrvae_finds_the_classes_and_their_angles_without_labels():
    g = card_glyphs(2000, difficulty=1, seed=0)
    m = JRVAE(SHAPE, latent_dim=2, n_classes=4, seed=0, device="cpu")
    m.fit(g.images, epochs=3, progress=False)
    enc = m.encode(g.images)
    acc = hungarian_accuracy(g.labels, enc.classes)
    assert acc >= 0.95, acc
    # each class has its own canonical orientation: remove one offset per discovered class
    r = circular_correlation(g.angle, enc.angle, groups=enc.classes)
    assert r >= 0.9, r


def test_plots_and_widget_build_headless(small):
    import matplotlib.pyplot as plt

    from helpers.plot import (
        plot_angle_recovery,
        plot_latent_histograms,
        plot_manifold,
        tile_mosaic,
    )
    from helpers.widgets import decode_point, latent_explorer

    m = JRVAE(SHAPE, latent_dim=2, n_classes=2, seed=0, device="cpu")
    m.fit(small[:16], epochs=1, batch_size=16, progress=False)  # one optimiser step
    grid = m.manifold(4, limits=((-1, 1), (-2, 2)), classes=1)
    assert grid.shape == (4, 4, 28, 28) and tile_mosaic(grid).shape == (4 * 29 - 1, 4 * 29 - 1)
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 2 * np.pi, 100)
    for fig in (plot_manifold(grid), plot_angle_recovery(a, a + 0.3),
                plot_latent_histograms(rng.normal(size=(100, 3)))):
        assert fig.axes
        plt.close(fig)
    # the manifold knows its latent values, and its figure puts them on the axes (z1 to the
    # right, z2 upwards, so the top row holds the largest z2)
    np.testing.assert_allclose(grid.x_values, np.linspace(-1, 1, 4))
    np.testing.assert_allclose(grid.y_values, np.linspace(2, -2, 4))
    corner = m.decode(np.array([[1.0, 2.0]]), classes=[1])[0]
    np.testing.assert_allclose(grid[0, 3], corner, atol=1e-6)
    assert type(np.abs(grid - corner).max()) is np.float32  # reductions are plain numbers
    ax = plot_manifold(grid).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["-1", "-0.33", "0.33", "1"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["2", "0.67", "-0.67", "-2"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("$z_{1}$", "$z_{2}$")
    swapped = plot_manifold(m.manifold(3, dims=(1, 0))).axes[0]
    assert (swapped.get_xlabel(), swapped.get_ylabel()) == ("$z_{2}$", "$z_{1}$")
    plain = plot_manifold(np.asarray(grid)).axes[0]  # no values: arrows, no ticks
    assert not plain.get_xticks().size and "rightarrow" in plain.get_xlabel()
    plt.close("all")
    img = decode_point(m, [0.5, -0.5], angle_deg=30, offset=(1, 0), class_index=1)
    np.testing.assert_allclose(img, m.decode(np.array([[0.5, -0.5]]), angle=np.radians(30),
                                             offset=np.array([[1.0, 0.0]]), classes=[1])[0])
    box = latent_explorer(m)
    sliders = box.children[0].children[0].children
    assert len(sliders) == 2 + 1 + 2 + 1  # z1, z2, angle, offsets, class
    sliders[2].value = 45.0  # moving the angle slider redraws without error
    plt.close("all")
