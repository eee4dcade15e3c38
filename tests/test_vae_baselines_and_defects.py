"""Notebooks 00 and 06: early stopping in the VAE family's fit, the score of a one-number
rule, per-group angle offsets and training curves in the figures, the latent explorer's picture
for pages without a kernel, and the three-/four-fold Si simulator."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

from helpers.analysis.scores import best_threshold_accuracy  # noqa: E402
from helpers.models import VAE  # noqa: E402
from helpers.simulate.graphene_defects import (  # noqa: E402
    SI_C_BOND_4FOLD,
    graphene_si_defects,
)


# -- fit(patience=...) ---------------------------------------------------------------------
def _blobs(n, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:12, :12]
    c = rng.uniform(3, 9, (n, 2))
    return np.exp(-((yy - c[:, :1, None]) ** 2 + (xx - c[:, 1:, None]) ** 2) / 4.0).astype(
        np.float32)


def test_fit_with_patience_stops_early_and_keeps_the_best_weights():
    X, V = _blobs(64, 0), _blobs(32, 1)
    m = VAE((12, 12), 2, seed=0, device="cpu")
    # a learning rate far too large for the decoder to settle: the validation loss stops
    # improving within a few epochs, and patience 1 ends training there
    h = m.fit(X, epochs=40, batch_size=16, lr=0.5, validation=V, patience=1, progress=False)
    assert h.stopped_early and h.epochs_run < 40
    assert h.best_epoch == int(np.argmin(h["val_loss"])) + 1
    # the weights kept are those of the best epoch: scoring the validation set again gives
    # (up to the sampling noise of the ELBO estimate) the best recorded validation loss
    again = m._eval_loss(m.module.training_inputs(m._normalise(V)), None,
                         m._generator(123), 16)
    assert again == pytest.approx(min(h["val_loss"]), rel=0.15)
    assert again < max(h["val_loss"])


def test_fit_patience_needs_validation_and_default_trains_every_epoch():
    X = _blobs(32, 0)
    m = VAE((12, 12), 2, seed=0, device="cpu")
    with pytest.raises(ValueError, match="patience.*validation"):
        m.fit(X, epochs=2, patience=2, progress=False)
    h = VAE((12, 12), 2, seed=0, device="cpu").fit(X, epochs=3, batch_size=16, progress=False)
    assert h.epochs_run == 3 and not h.stopped_early


# -- best_threshold_accuracy ---------------------------------------------------------------
def test_best_threshold_accuracy_finds_the_best_cut_either_way():
    assert best_threshold_accuracy([0, 0, 1, 1], [1, 2, 3, 4]) == 1.0
    assert best_threshold_accuracy([1, 1, 0, 0], [1, 2, 3, 4]) == 1.0  # class 1 below
    assert best_threshold_accuracy([0, 1, 0, 1], [1, 2, 3, 4]) == 0.75
    # tied values cannot be split: the best is the majority share
    assert best_threshold_accuracy([0, 0, 0, 1], [5, 5, 5, 5]) == 0.75
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    v = rng.normal(size=200)
    brute = max(max(np.mean((v > t) == y), np.mean((v <= t) == y)) for t in np.r_[v, -np.inf])
    assert best_threshold_accuracy(y, v) == pytest.approx(brute)
    with pytest.raises(ValueError, match="binary"):
        best_threshold_accuracy([0, 2], [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        best_threshold_accuracy([0, 1], [1.0, np.nan])


# -- figures -------------------------------------------------------------------------------
def test_angle_recovery_removes_one_offset_per_group():
    import helpers.plot as hplot

    rng = np.random.default_rng(0)
    t = rng.uniform(0, 2 * np.pi, 300)
    groups = np.arange(300) % 3
    e = t + np.array([0.0, 1.0, 2.5])[groups]  # each group has its own canonical zero
    ax = hplot.plot_angle_recovery(t, e, groups=groups).axes[0]
    shown = ax.collections[0].get_offsets()
    # every point on the diagonal (modulo the wrap at 360 degrees)
    gap = np.angle(np.exp(1j * np.radians(shown[:, 1] - shown[:, 0])))
    assert np.abs(gap).max() < 1e-6
    assert "r = 1.000" in ax.get_title()
    one = hplot.plot_angle_recovery(t, e).axes[0].collections[0].get_offsets()
    assert np.abs(np.angle(np.exp(1j * np.radians(one[:, 1] - one[:, 0])))).max() > 0.5
    plt.close("all")


def test_training_curves_show_both_losses_and_the_kept_epoch():
    import helpers.plot as hplot
    from helpers.models.training import History

    h = History()
    for loss, val in ((5.0, 6.0), (4.0, 4.5), (3.5, 4.8)):
        h.append("loss", loss)
        h.append("val_loss", val)
    h.best_epoch = 2
    ax = hplot.plot_training_curves(h, title="VAE").axes[0]
    lines = ax.get_lines()
    np.testing.assert_allclose(lines[0].get_ydata(), [5.0, 4.0, 3.5])
    np.testing.assert_allclose(lines[1].get_ydata(), [6.0, 4.5, 4.8])
    assert lines[2].get_xdata()[0] == 2  # the kept epoch
    assert ax.get_xlabel() == "epoch" and "nats" in ax.get_ylabel()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["training", "validation", "weights kept (epoch 2)"]
    plt.close("all")
    with pytest.raises(ValueError, match="non-empty 'loss'"):
        hplot.plot_training_curves(History())


# -- the latent explorer on a page without a kernel ------------------------------------------
def test_latent_explorer_carries_a_picture_of_the_decoded_image():
    from PIL import Image

    from helpers.models import RVAE
    from helpers.widgets import latent_explorer

    m = RVAE((12, 12), 2, seed=0, device="cpu")
    m.fit(_blobs(16, 0), epochs=1, batch_size=16, progress=False)
    box = latent_explorer(m)
    bundle = box._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "Jupyter" in bundle["text/plain"] and not bundle["text/plain"].startswith("VBox")
    first = base64.b64decode(bundle["image/jpeg"])
    assert first.startswith(b"\xff\xd8")
    with Image.open(io.BytesIO(first)) as im:
        assert min(im.size) > 100
    box.children[0].children[0].children[0].value = 2.5  # move z1: the picture follows
    assert base64.b64decode(box._repr_mimebundle_()["image/jpeg"]) != first
    plt.close("all")


# -- the three-/four-fold Si simulator -------------------------------------------------------
def test_dopants_have_three_or_four_neighbours_and_the_natural_ratio():
    d = graphene_si_defects(n_frames=6, size=128, n_si=8, fourfold_fraction=0.3, seed=3,
                            position_noise=0.0)
    assert d.frames.shape == (6, 128, 128) and d.frames.dtype == np.float32
    px = d.pixel_size
    kinds = []
    for atoms, dopants in zip(d.atoms, d.dopants):
        tree = cKDTree(atoms[:, :2] * px)
        si = atoms[atoms[:, 2] == 1, :2] * px
        assert len(si) == len(dopants)
        for r, c, k in dopants:
            if min(r, c) < 12 or max(r, c) > 116:  # neighbours may lie outside the view
                continue
            near = [j for j in tree.query_ball_point([r * px, c * px], 2.1)
                    if np.hypot(*(atoms[j, :2] * px - [r * px, c * px])) > 0.1]
            assert len(near) == int(k), (k, len(near))
            dist = np.hypot(*(atoms[near, :2] * px - [r * px, c * px]).T)
            if k == 4:
                np.testing.assert_allclose(dist, SI_C_BOND_4FOLD, atol=1e-6)
            kinds.append(k)
    share = np.mean(np.asarray(kinds) == 4)
    assert 0.1 < share < 0.5  # about fourfold_fraction, not balanced


def test_both_coordinations_have_the_same_centre_brightness():
    d = graphene_si_defects(n_frames=12, n_si=12, seed=1)
    centre, four = [], []
    for frame, dopants in zip(d.frames, d.dopants):
        for r, c, k in dopants:
            i, j = int(round(r)), int(round(c))
            if 2 <= i < frame.shape[0] - 2 and 2 <= j < frame.shape[1] - 2:
                centre.append(frame[i - 1:i + 2, j - 1:j + 2].mean())
                four.append(int(k == 4))
    four = np.asarray(four)
    majority = max(four.mean(), 1 - four.mean())
    # no threshold on the centre does much better than always answering the majority
    assert best_threshold_accuracy(four, centre) < majority + 0.12


def test_simulator_is_reproducible_and_checks_its_input():
    a = graphene_si_defects(n_frames=2, size=64, seed=5)
    b = graphene_si_defects(n_frames=2, size=64, seed=5)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.dopants[1], b.dopants[1])
    assert not np.array_equal(a.frames, graphene_si_defects(n_frames=2, size=64, seed=6).frames)
    with pytest.raises(ValueError, match="fourfold_fraction"):
        graphene_si_defects(fourfold_fraction=1.5)
    with pytest.raises(ValueError, match="pixel_size"):
        graphene_si_defects(pixel_size=0.8)
