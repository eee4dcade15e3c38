"""helpers.segment: U-Net mechanics, atom and particle finding, and graphene ground truth."""

import numpy as np
import pytest
from support import disc_segmentation_data

from helpers import segment as S


def _gauss_map(shape, centres, sigma=1.2):
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]]
    out = np.zeros(shape)
    for r, c in centres:
        out = np.maximum(out, np.exp(-((rr - r) ** 2 + (cc - c) ** 2) / (2 * sigma**2)))
    return out


def _one_step_unet(seed=0, **kwargs):
    """A U-Net after one training step (predict needs a fitted or loaded network)."""
    images, masks = disc_segmentation_data(2, 32, seed)
    net = S.UNet(n_classes=3, seed=seed, device="cpu", **kwargs)
    net.fit(images, masks, epochs=1, steps_per_epoch=1, batch_size=2, crop=16, progress=False)
    return net


# ------------------------------------------------------------------------------ U-Net mechanics
def test_unet_any_size_probabilities():
    net = _one_step_unet()
    probs = net.predict(np.random.default_rng(0).random((2, 50, 37)), progress=False)
    assert probs.shape == (2, 3, 50, 37) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    single = net.predict(np.random.default_rng(0).random((50, 37)), progress=False)
    assert single.shape == (3, 50, 37)


def test_unet_tiles_match_whole_frame():
    images, masks = disc_segmentation_data(2, 64)
    net = S.UNet(n_classes=3, seed=0, device="cpu")
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
        net = S.UNet(n_classes=3, seed=3, device="cpu")
        hist = net.fit(images, masks, epochs=2, steps_per_epoch=2, batch_size=2, crop=16,
                       progress=False)
        runs.append((hist["loss"], net.predict(images, progress=False)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    path = tmp_path / "sub" / "unet.pt"
    net.save(path)
    loaded = S.UNet.load(path, device="cpu")
    assert loaded.config == net.config
    np.testing.assert_allclose(loaded.predict(images, progress=False), runs[1][1], atol=1e-6)
    import torch

    blob = torch.load(path, weights_only=True)
    assert set(blob) == {"config", "state_dict"}


def test_unet_bad_input(tmp_path):
    net = S.UNet(n_classes=3, seed=0, device="cpu")
    images, masks = disc_segmentation_data()
    with pytest.raises(ValueError, match="NaN"):
        net.predict(np.full((8, 8), np.nan), progress=False)
    with pytest.raises(ValueError, match="shape"):
        net.fit(images, masks[:, :-1], epochs=1, progress=False)
    with pytest.raises(ValueError, match="n_classes"):
        net.fit(images, masks + 2, epochs=1, progress=False)
    with pytest.raises(ValueError, match="shape"):
        net.predict(np.zeros((2, 2, 8, 8)), progress=False)
    with pytest.raises(FileNotFoundError, match="save"):
        S.UNet.load(tmp_path / "missing.pt")


# ------------------------------------------------------------------------------ atoms
def test_find_atoms_subpixel_classes_and_margin():
    shape = (40, 60)
    centres = np.array([[10.3, 12.7], [20.0, 30.25], [30.6, 45.1], [1.0, 30.0]])
    fg = _gauss_map(shape, centres)
    probs = np.zeros((3,) + shape)
    probs[1] = fg
    probs[1][:, 40:] = 0
    probs[2][:, 40:] = fg[:, 40:]  # the atom at col 45 is class 2
    probs[0] = 1 - fg
    atoms = S.find_atoms(probs, threshold=0.5, margin=2)
    assert atoms.shape == (3, 3)  # the one at row 1 is inside the margin
    order = np.argsort(atoms[:, 0])
    np.testing.assert_allclose(atoms[order, :2], centres[:3], atol=0.05)
    np.testing.assert_array_equal(atoms[order, 2], [1, 1, 2])
    assert len(S.find_atoms(probs, margin=0)) == 4
    assert S.find_atoms(np.zeros((3, 8, 8)) + [[[1]], [[0]], [[0]]]).shape == (0, 3)
    with pytest.raises(ValueError, match="probs"):
        S.find_atoms(np.zeros((2, 3, 8, 8)))


def test_detection_scores_counts():
    true = np.array([[0, 0, 1], [10, 10, 2], [20, 20, 1]], dtype=float)
    pred = np.array([[0.3, 0, 1], [10, 10.4, 1], [50, 50, 1]], dtype=float)
    s = S.detection_scores(pred, true, 0.5)
    assert (s.n_matched, s.n_pred, s.n_true) == (2, 3, 3)
    assert s.f1 == pytest.approx(2 / 3) and s.class_accuracy == 0.5
    assert s.class_recall(2) == 0.0 and s.class_recall(1) == 1.0
    pooled = S.detection_scores([pred, pred], [true, true], 0.5)
    assert pooled.n_matched == 4 and pooled.confusion.sum() == 4
    # one-to-one: two detections near one atom count once
    s = S.detection_scores(np.array([[0, 0.1], [0, -0.1]]), np.array([[0.0, 0.0]]), 0.5)
    assert s.n_matched == 1 and s.precision == 0.5


# ------------------------------------------------------------------------------ particles
def _ellipses(shape, specs, seed=0):
    """Height image of ellipses (row, col, angle on screen, semi-axes a > b)."""
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    img = np.zeros(shape)
    for r, c, ang, a, b in specs:
        x, y = cc - c, -(rr - r)  # display axes: x right, y up
        u = x * np.cos(ang) + y * np.sin(ang)
        v = -x * np.sin(ang) + y * np.cos(ang)
        img += np.clip(1 - (u / a) ** 2 - (v / b) ** 2, 0, None)
    return img + np.random.default_rng(seed).normal(0, 0.03, shape)


def test_find_particles_positions_and_orientation():
    specs = [(20, 20, 0.3, 8, 3), (20, 60, -1.0, 9, 3), (60, 30, 1.4, 7, 2.5),
             (60, 70, 0.0, 6, 6)]
    img = _ellipses((90, 100), specs)
    found = S.find_particles(img, sigma=1.0, min_area=10)
    assert len(found.coords) == 4
    pairs, d = S.match_points(found.coords, np.array(specs)[:, :2], 1.0)
    assert len(pairs) == 4 and d.max() < 0.5
    for i, j in pairs:
        if specs[j][3] > specs[j][4]:
            diff = np.angle(np.exp(2j * (found.orientation[i] - specs[j][2]))) / 2
            assert abs(diff) < np.deg2rad(5)
            assert found.elongation[i] > 2
    assert found.labels.max() == 4 and found.area.min() > 10


def test_find_particles_background_and_bad_input():
    img = _ellipses((80, 80), [(40, 40, 0.0, 6, 6)])
    rr, cc = np.mgrid[0:80, 0:80]
    tilted = img + 0.02 * cc  # a tilt larger than the particle height across the frame
    found = S.find_particles(tilted, flatten=1, min_area=10)
    assert len(found.coords) == 1
    np.testing.assert_allclose(found.coords[0], [40, 40], atol=0.5)
    with pytest.raises(ValueError, match="one"):
        S.find_particles(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="otsu"):
        S.find_particles(img, threshold="mean")


# ------------------------------------------------------------------------------ ground truth
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
    net = S.UNet(n_classes=3, seed=0, device="cpu")
    net.fit(train.frames[pick], train.masks[pick], epochs=1, steps_per_epoch=120,
            batch_size=16, crop=64, progress=False)
    held = [0, 5, 11]
    probs = net.predict(test.frames[held], progress=False)
    margin = 3.0
    found = [S.find_atoms(p, threshold=0.5, margin=margin) for p in probs]
    true = [_truth(test.atoms[t], test.frames.shape[1:], margin) for t in held]
    scores = S.detection_scores(found, true, max_distance=0.5 / test.pixel_size)
    assert scores.f1 >= 0.98, scores
    assert scores.class_accuracy >= 0.98, scores
    assert scores.class_recall(2) >= 0.9, scores.confusion  # Si found as Si, not only C
