"""The invariant VAE family, checked against simulator ground truth.

Fast tests: geometry and angle convention, metrics, the API contract (shapes, errors,
checkpoints, seeds). Slow tests (``-m slow``) train small models and check the science: an
RVAE recovers angle, offsets and shape on full-circle rotations, a plain VAE leaks the angle
into its latents, a JRVAE finds the classes without labels.
"""

import math

import numpy as np
import pytest
import torch

from helpers.models import JRVAE, RVAE, VAE, Encoding, pose
from helpers.models.decoders import CoordinateDecoder
from helpers.models.metrics import (
    angle_error,
    angle_leak,
    circular_correlation,
    hungarian_accuracy,
)
from helpers.models.network import class_marginal_kl, class_posteriors
from helpers.models.pose import (
    homogeneous,
    pixel_points,
    point_poses,
    render,
    render_points,
    rotate_images,
    rotate_vectors,
    sample_points,
    sampled_squared_error,
    squared_error,
)
from helpers.simulate.objects import card_glyphs, rotated_objects

SHAPE = (28, 28)


@pytest.fixture(scope="module")
def objects():
    return rotated_objects(2000, seed=0)


@pytest.fixture(scope="module")
def small():
    return rotated_objects(256, seed=1).images


# -- geometry and metrics ---------------------------------------------------------------------
def test_render_turns_anticlockwise_on_screen_and_shifts_by_row_col():
    img = np.zeros((1, 21, 21), np.float32)
    img[0, 10, 16] = 1.0  # a dot to the right of the centre
    up = rotate_images(img, np.pi / 2)[0]
    assert np.unravel_index(up.argmax(), up.shape) == (4, 10)  # now above the centre
    shifted = rotate_images(img, 0.0, offset=np.array([[3.0, -2.0]]))[0]
    assert np.unravel_index(shifted.argmax(), shifted.shape) == (13, 14)
    v = rotate_vectors(torch.tensor([[0.0, 6.0]]), torch.tensor([math.pi / 2]))
    np.testing.assert_allclose(v.numpy(), [[-6.0, 0.0]], atol=1e-6)  # right -> up


def test_render_from_a_larger_canvas_fills_the_corners():
    canvas = torch.ones(1, 40, 40)
    out = render(canvas, (28, 28), torch.tensor([[math.pi / 4]]))
    assert out.shape == (1, 1, 28, 28) and float(out.min()) > 0.99
    small_canvas = render(torch.ones(1, 28, 28), (28, 28), torch.tensor([[math.pi / 4]]))
    assert float(small_canvas.min()) < 0.5  # the corners a same-size image cannot fill


@pytest.mark.parametrize("k", [1, 16])  # one pose per image, and many
def test_render_points_equals_render_at_the_disk_pixels(k):
    gen = torch.Generator().manual_seed(0)
    canvas = torch.randn(3, 34, 34, generator=gen)
    angle = torch.rand(3, k, generator=gen) * 2 * math.pi
    offset = 2 * torch.randn(3, k, 2, generator=gen)
    scale = 0.8 + 0.4 * torch.rand(3, k, generator=gen)
    index, weight, points = pixel_points(SHAPE)
    assert 600 < len(index) < 28 * 28 and float(weight.min()) > 0 and float(weight.max()) == 1
    full = render(canvas, SHAPE, angle, offset, scale).reshape(3, k, -1)[..., index]
    torch.testing.assert_close(render_points(canvas, points, angle, offset, scale), full,
                               atol=1e-4, rtol=0)
    # the coordinate decoder reads the same pixel convention
    dec = CoordinateDecoder(SHAPE, in_dim=2)
    emb = dec.prepare(torch.randn(3, 2, generator=gen))
    with torch.no_grad():
        whole = dec.draw(emb, angle, offset, scale).reshape(3, k, -1)[..., index]
        theta = point_poses(dec.canvas, angle, offset, scale)
        torch.testing.assert_close(dec.draw_points(emb, homogeneous(points), theta), whole)


@pytest.mark.parametrize("k", [1, 3])
def test_sampled_squared_error_matches_sampling_then_error_and_its_gradient(k):
    """The training loss's one-step rendering and error equals ``sample_points`` followed by
    ``squared_error``, and its hand-written gradient equals autograd's (float64)."""
    gen = torch.Generator().manual_seed(0)
    canvas = torch.randn(2, 14, 14, generator=gen, dtype=torch.float64, requires_grad=True)
    angle = torch.rand(2, k, generator=gen, dtype=torch.float64) * 2 * math.pi
    offset = torch.randn(2, k, 2, generator=gen, dtype=torch.float64)
    theta = point_poses((14, 14), angle, offset).requires_grad_()
    index, weight, points = pixel_points((12, 12))
    xy1, half = homogeneous(points).double(), 0.5 * weight.double()
    target = torch.randn(2, len(index), generator=gen, dtype=torch.float64)
    err = sampled_squared_error(canvas, xy1, theta, target, half)
    ref = squared_error(sample_points(canvas, xy1, theta), target, half)
    assert err.shape == (2, k)
    torch.testing.assert_close(err, ref)
    g = torch.randn(2, k, generator=gen, dtype=torch.float64)
    for a, b in zip(torch.autograd.grad(err, (canvas, theta), g),
                    torch.autograd.grad(ref, (canvas, theta), g)):
        torch.testing.assert_close(a, b)
    assert torch.autograd.gradcheck(
        lambda c, t: sampled_squared_error(c, xy1, t, target, half), (canvas, theta))


def _pose_written_out(net, pose_out, eps):
    """The pose sampler's maths with autograd, from ``pose_matrices``: (K, B, 2, 3), (B, K)."""
    ps = net.pose_sampler
    po = pose_out.transpose(0, 1)
    mu, log_s = po[..., : ps.n], po[..., ps.n:].clamp(-7.0, 2.0)
    s, e = log_s.exp(), eps.transpose(0, 1)
    v = mu + s * e
    names, hyp = ps.names, net.hyp
    angle = torch.zeros_like(mu[..., 0])
    offset = scale = None
    spread = []
    if "angle" in names:
        i = names.index("angle")
        raw = mu[..., i]
        mean = hyp + net.refine * torch.tanh(raw) if net.enumerate else raw
        angle = mean + s[..., i] * e[..., i]
        spread.append(net.angle_prior)
    if "offset_row" in names:
        i = names.index("offset_row")
        offset = rotate_vectors(v[..., i:i + 2], hyp)  # the copy's frame turned back
        spread += [net.offset_prior] * 2
    if "scale" in names:
        scale = torch.exp(net.scale_prior * v[..., names.index("scale")])
        spread.append(1.0)
    p = torch.tensor(spread, dtype=mu.dtype)
    mean_weight = torch.tensor([0.0 if n == "angle" else 1.0 for n in names], dtype=mu.dtype)
    kl = (0.5 * ((mu * mean_weight / p) ** 2 + (s / p) ** 2 - 1) - torch.log(s / p)).sum(-1)
    return point_poses(net.decoder.canvas, angle, offset, scale), kl


@pytest.mark.parametrize("kwargs", [dict(), dict(scale=True, symmetry=2), dict(translation=False),
                                    dict(pose="regress")])
def test_pose_sampler_matches_the_pose_written_out_and_its_gradient(kwargs):
    """The hand-differentiated pose step equals the pose built with pose_matrices, and its
    gradient equals autograd's (finite differences, float64)."""
    net = RVAE((12, 12), seed=0, device="cpu", **kwargs).module.double()
    n, k = net.pose_sampler.n, net.k
    gen = torch.Generator().manual_seed(0)
    pose_out = torch.randn(k, 3, 2 * n, generator=gen, dtype=torch.float64)
    pose_out[..., n:] = 3 * pose_out[..., n:] - 1  # some log-stds beyond the clamp
    eps = torch.randn(k, 3, n, generator=gen, dtype=torch.float64)
    theta, kl = net.pose_sampler(pose_out, eps)
    ref_theta, ref_kl = _pose_written_out(net, pose_out, eps)
    torch.testing.assert_close(theta, ref_theta)
    torch.testing.assert_close(kl, ref_kl)
    pose_out.requires_grad_()
    assert torch.autograd.gradcheck(lambda t: net.pose_sampler(t, eps), (pose_out,))
    assert torch.autograd.gradcheck(lambda t: net.pose_sampler(t, None), (pose_out,))


def test_pose_constants_first_built_in_inference_mode_still_train():
    pose._pose_coefficients.cache_clear()
    angle = torch.rand(2, 3)
    with torch.inference_mode():
        render_points(torch.ones(2, 10, 10), torch.zeros(1, 2), angle, torch.zeros(2, 3, 2))
    offset = torch.zeros(2, 3, 2, requires_grad=True)
    render_points(torch.ones(2, 10, 10), torch.zeros(1, 2), angle, offset).sum().backward()
    assert offset.grad is not None


def test_circular_correlation_is_signed_offset_free_and_symmetry_aware():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 2 * np.pi, 400)
    assert circular_correlation(a + 1.0, a) == pytest.approx(1.0)
    assert circular_correlation(-a + 0.3, a) == pytest.approx(-1.0)
    assert abs(circular_correlation(rng.uniform(0, 2 * np.pi, 400), a)) < 0.15
    assert circular_correlation(a + np.pi * rng.integers(0, 2, 400), a) < 0.2
    assert circular_correlation(a + np.pi * rng.integers(0, 2, 400), a, symmetry=2) > 0.99
    groups = rng.integers(0, 3, 400)
    assert circular_correlation(a + groups, a, groups=groups) == pytest.approx(1.0)
    assert np.abs(angle_error(a + 0.2, a)).max() < 1e-9


def test_hungarian_accuracy_ignores_cluster_names():
    labels = np.repeat(np.arange(4), 25)
    assert hungarian_accuracy(labels, (labels + 1) % 4) == 1.0
    assert hungarian_accuracy(labels, np.zeros(100, int)) == 0.25


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


# -- science (slow) ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_rvae(objects):
    m = RVAE(SHAPE, latent_dim=2, translation=True, seed=0, device="cpu")
    m.fit(objects.images, epochs=2, progress=False)
    return m


@pytest.mark.slow
def test_rvae_recovers_angle_offsets_and_shape_over_the_full_circle(objects, trained_rvae):
    enc = trained_rvae.encode(objects.images)
    r_angle = circular_correlation(enc.angle, objects.angle)
    assert r_angle >= 0.95, r_angle  # positive: +t encodes as +t (the convention)
    for axis in range(2):
        r_off = np.corrcoef(enc.offset[:, axis], objects.offset[:, axis])[0, 1]
        assert r_off >= 0.9, (axis, r_off)
    r_shape = max(abs(np.corrcoef(enc.z[:, i], objects.shape_factor)[0, 1]) for i in range(2))
    assert r_shape >= 0.9, r_shape
    # its content latents are rotation-invariant ...
    assert angle_leak(enc.z, objects.angle) < 0.3
    # ... while a plain VAE on the same data mixes the angle into its latents
    vae = VAE(SHAPE, latent_dim=2, seed=0, device="cpu")
    vae.fit(objects.images, epochs=2, progress=False)
    assert angle_leak(vae.encode(objects.images).z, objects.angle) > 0.8


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
    r = circular_correlation(enc.angle, g.angle, groups=enc.classes)
    assert r >= 0.9, r


def test_class_marginal_kl_measures_how_unevenly_a_batch_uses_the_classes():
    def kl(q, classes, n_classes):
        return class_marginal_kl(class_posteriors(q, classes, n_classes))

    classes = torch.tensor([[0, 1], [2, 3]])
    assert kl(torch.full((2, 2), 0.5), classes, 4).item() == pytest.approx(
        0.0, abs=1e-6)  # each class a quarter of the batch
    one = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert kl(one, classes, 4).item() == pytest.approx(
        math.log(2), rel=1e-6)  # classes 0 and 2, half each
    same = torch.tensor([[0, 1], [0, 2]])
    assert kl(one, same, 4).item() == pytest.approx(math.log(4), rel=1e-6)
    # its gradient moves posterior mass from the crowded class to the empty one
    q = torch.tensor([[0.9, 0.1], [0.9, 0.1]], requires_grad=True)
    kl(q, torch.tensor([[0, 1], [0, 1]]), 2).backward()
    assert q.grad[0, 0] > 0 > q.grad[0, 1]


def test_jrvae_loss_adds_the_weighted_class_balance_term():
    g = card_glyphs(64, difficulty=0, seed=0)
    m = JRVAE(SHAPE, latent_dim=2, n_classes=4, seed=0, device="cpu")
    assert m.config["class_balance"] == 10.0 and RVAE(SHAPE).config["class_balance"] == 0.0
    for bad in (dict(class_balance=-1.0), dict(class_balance=float("nan"))):
        with pytest.raises(ValueError, match="class_balance"):
            JRVAE(SHAPE, **bad)
    with pytest.raises(ValueError, match="only JRVAE"):
        RVAE(SHAPE, class_balance=1.0)
    net = m.module.train()
    batch = net.batch(net.training_inputs(torch.as_tensor(g.images)), torch.arange(32))
    out = {}
    for weight in (0.0, 5.0):
        net.class_balance = weight
        out[weight] = net.loss(batch, None, torch.Generator().manual_seed(0), 1.0, None, 4)
    kl = out[5.0][1]["class_balance"]
    assert "class_balance" not in out[0.0][1] and 0 < kl <= math.log(4)
    assert out[5.0][0].item() == pytest.approx(out[0.0][0].item() + 5.0 * kl, rel=1e-5)


def test_plots_and_widget_build_headless(small):
    import matplotlib.pyplot as plt

    from helpers.plot.latent import (
        mosaic,
        plot_angle_recovery,
        plot_latent_histograms,
        plot_manifold,
    )
    from helpers.widgets import decode_point, latent_explorer

    m = JRVAE(SHAPE, latent_dim=2, n_classes=2, seed=0, device="cpu")
    m.fit(small[:16], epochs=1, batch_size=16, progress=False)  # one optimiser step
    grid = m.manifold(4, limits=((-1, 1), (-2, 2)), classes=1)
    assert grid.shape == (4, 4, 28, 28) and mosaic(grid).shape == (4 * 29 - 1, 4 * 29 - 1)
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 2 * np.pi, 100)
    for fig in (plot_manifold(grid), plot_angle_recovery(a, a + 0.3),
                plot_latent_histograms(rng.normal(size=(100, 3)))):
        assert fig.axes
        plt.close(fig)
    img = decode_point(m, [0.5, -0.5], angle_deg=30, offset=(1, 0), class_index=1)
    np.testing.assert_allclose(img, m.decode(np.array([[0.5, -0.5]]), angle=np.radians(30),
                                             offset=np.array([[1.0, 0.0]]), classes=[1])[0])
    box = latent_explorer(m)
    sliders = box.children[0].children[0].children
    assert len(sliders) == 2 + 1 + 2 + 1  # z1, z2, angle, offsets, class
    sliders[2].value = 45.0  # moving the angle slider redraws without error
    plt.close("all")
