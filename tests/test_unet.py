"""helpers.models.UNet: an estimator for per-pixel classes; tiles, seeds, checkpoints, and the
graphene atoms it is for."""

import numpy as np
import pytest
import torch
from support import disc_segmentation_data

from helpers.analysis import detection_scores
from helpers.models import Estimator, History, UNet
from helpers.models.base import CHECKPOINT_FORMAT
from helpers.segment import find_atoms


def _one_step_unet(seed=0, **kwargs):
    """A U-Net after one training step (predict needs a fitted or loaded network)."""
    images, masks = disc_segmentation_data(2, 32, seed)
    net = UNet(n_classes=3, seed=seed, device="cpu", **kwargs)
    net.fit(images, masks, epochs=1, steps_per_epoch=1, batch_size=2, crop=16, progress=False)
    return net


def test_unet_is_an_estimator_with_the_shared_history():
    images, masks = disc_segmentation_data()
    net = UNet(n_classes=3, seed=0, device="cpu")
    assert isinstance(net, Estimator) and isinstance(net.module, torch.nn.Module)
    assert net.device == "cpu" and net.n_classes == 3
    hist = net.fit(images, masks, epochs=3, steps_per_epoch=2, batch_size=2, crop=16,
                   progress=False)
    assert isinstance(hist, History) and hist.epochs_run == 3
    assert len(hist["loss"]) == 3 and hist.loss is hist["loss"] and len(hist.seconds) == 3
    assert not net.module.training


def test_unet_any_size_probabilities():
    net = _one_step_unet()
    probs = net.predict(np.random.default_rng(0).random((2, 50, 37)), progress=False)
    assert probs.shape == (2, 3, 50, 37) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    single = net.predict(np.random.default_rng(0).random((50, 37)), progress=False)
    assert single.shape == (3, 50, 37)


def test_unet_tiles_match_whole_frame():
    images, masks = disc_segmentation_data(2, 64)
    net = UNet(n_classes=3, seed=0, device="cpu")
    net.fit(images, masks, epochs=1, steps_per_epoch=5, batch_size=4, crop=32, progress=False)
    frame = np.tile(images[0], (2, 3))  # 128 x 192
    whole = net.predict(frame, tile=256, progress=False)
    tiled = net.predict(frame, tile=64, overlap=24, progress=False)
    # blended tiles differ from one pass only near tile seams, and only slightly
    assert np.abs(whole - tiled).mean() < 0.02
    assert (whole.argmax(0) == tiled.argmax(0)).mean() > 0.98


def test_unet_seeded_training_is_reproducible_and_roundtrips(tmp_path):
    images, masks = disc_segmentation_data()
    runs = []
    for _ in range(2):
        net = UNet(n_classes=3, seed=3, device="cpu")
        hist = net.fit(images, masks, epochs=2, steps_per_epoch=2, batch_size=2, crop=16,
                       progress=False)
        runs.append((hist["loss"], net.predict(images, progress=False)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    other = UNet(n_classes=3, seed=4, device="cpu")
    assert other.fit(images, masks, epochs=2, steps_per_epoch=2, batch_size=2, crop=16,
                     progress=False).loss != runs[0][0]
    path = tmp_path / "sub" / "unet.pt"
    assert net.save(path) == path
    loaded = UNet.load(path, device="cpu")
    assert loaded.config == net.config
    np.testing.assert_allclose(loaded.predict(images, progress=False), runs[1][1], atol=1e-6)
    blob = torch.load(path, weights_only=True)
    assert blob["format"] == CHECKPOINT_FORMAT and blob["class"] == "UNet"


def test_unet_second_fit_draws_new_crops():
    """Each fit has its own seed (seed + 1000 * fits so far), so a second fit of the same
    network does not repeat the first one's crops."""
    images, masks = disc_segmentation_data()
    a = UNet(n_classes=3, seed=0, device="cpu")
    b = UNet(n_classes=3, seed=0, device="cpu")
    kw = dict(epochs=1, steps_per_epoch=2, batch_size=2, crop=16, lr=0.0, progress=False)
    first = a.fit(images, masks, **kw).loss
    b.fit(images, masks, **kw)
    # lr=0: weights never move, so the loss only depends on the crops drawn
    assert b.fit(images, masks, **kw).loss != first


def test_unet_bad_input(tmp_path):
    net = UNet(n_classes=3, seed=0, device="cpu")
    images, masks = disc_segmentation_data()
    with pytest.raises(ValueError, match="NaN"):
        net.predict(np.full((8, 8), np.nan), progress=False)
    with pytest.raises(ValueError, match="shape"):
        net.fit(images, masks[:, :-1], epochs=1, progress=False)
    with pytest.raises(ValueError, match="n_classes"):
        net.fit(images, masks + 2, epochs=1, progress=False)
    with pytest.raises(ValueError, match="integer class labels"):
        net.fit(images, masks + 0.5, epochs=1, progress=False)
    with pytest.raises(ValueError, match="shape"):
        net.predict(np.zeros((2, 2, 8, 8)), progress=False)
    with pytest.raises(FileNotFoundError, match="save"):
        UNet.load(tmp_path / "missing.pt")


def _truth(atoms, shape, margin):
    """Simulator atoms [row, col, species] -> [row, col, class] away from the border."""
    a = np.asarray(atoms)
    keep = (a[:, 0] >= margin) & (a[:, 0] <= shape[0] - 1 - margin)
    keep &= (a[:, 1] >= margin) & (a[:, 1] <= shape[1] - 1 - margin)
    return np.column_stack([a[keep, :2], a[keep, 2] + 1])


@pytest.mark.slow
def test_unet_on_graphene_meets_the_bars():
    from helpers.simulate import graphene_movie

    train = graphene_movie(n_frames=12, seed=10)
    test = graphene_movie(n_frames=12, seed=11)
    pick = [0, 3, 6, 9, 11]  # intact to damaged frames
    net = UNet(n_classes=3, seed=0, device="cpu")
    net.fit(train.frames[pick], train.masks[pick], epochs=1, steps_per_epoch=120,
            batch_size=16, crop=64, progress=False)
    held = [0, 5, 11]
    probs = net.predict(test.frames[held], progress=False)
    margin = 3.0
    found = [find_atoms(p, threshold=0.5, margin=margin) for p in probs]
    true = [_truth(test.atoms[t], test.frames.shape[1:], margin) for t in held]
    scores = detection_scores(true, found, max_distance=0.5 / test.pixel_size)
    assert scores.f1 >= 0.98, scores
    assert scores.class_accuracy >= 0.98, scores
    assert scores.class_recall(2) >= 0.9, scores.confusion  # Si found as Si, not only C
