"""The synthetic objects carry the ground truth the VAE tests rely on: check it is right."""

import numpy as np
import pytest

from helpers.models.pose import rotate_images
from helpers.simulate.objects import DIFFICULTY, card_glyphs, rotated_objects


def _centroid(img):
    rr, cc = np.indices(img.shape)
    w = np.clip(img, 0, None)
    return np.array([(rr * w).sum(), (cc * w).sum()]) / w.sum()


def test_rotated_objects_ground_truth_ranges_and_determinism():
    d = rotated_objects(300, size=28, max_shift=2.0, seed=3)
    assert d.images.shape == (300, 28, 28) and d.images.dtype == np.float32
    assert d.angle.shape == (300,) and (d.angle >= 0).all() and (d.angle < 2 * np.pi).all()
    assert np.abs(d.offset).max() <= 2.0 and d.offset.shape == (300, 2)
    assert d.shape_factor.min() >= 0.75 and d.shape_factor.max() <= 1.25
    # the angles cover the full circle
    assert np.histogram(d.angle, bins=8, range=(0, 2 * np.pi))[0].min() > 15
    again = rotated_objects(300, size=28, max_shift=2.0, seed=3)
    np.testing.assert_array_equal(d.images, again.images)
    assert not np.array_equal(d.images, rotated_objects(300, seed=4).images)


def test_angle_convention_positive_is_anticlockwise_on_screen():
    """Turning by +90 degrees moves what was on the right (large col) to the top (small row),
    both in the simulator and in the model's resampler, and the two agree."""
    base = rotated_objects(1, max_shift=0, noise=0, elongation=(1, 1), seed=0)
    # the simulator draws at a random angle: bring the object to angle 0 and to +90 degrees
    canonical = rotate_images(base.images, -base.angle)
    turned = rotate_images(canonical, np.pi / 2)
    # the object is longest along its own x axis: at angle 0 it lies along the columns
    c0 = canonical[0] > 0.5
    rows, cols = np.nonzero(c0)
    assert np.ptp(cols) > 2 * np.ptp(rows)
    # its round head sits at negative x (left); after +90 degrees it must sit at the bottom
    head_left = _centroid(canonical[0])[1] < 13.5
    head_bottom = _centroid(turned[0])[0] > 13.5
    assert head_left and head_bottom


def test_simulated_pose_matches_resampling():
    """The simulator's object drawn at angle a + t, shifted by o, equals the one drawn at a,
    turned by +t and shifted by o by the model's resampler (same convention, both ways)."""
    from helpers.simulate.objects import _draw, _key

    n = 40
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 2 * np.pi, n)
    t = rng.uniform(-np.pi, np.pi, n)
    o = rng.uniform(-2, 2, (n, 2))
    ones, zeros = np.ones(n), np.zeros(n)
    at_a = _draw(_key, 28, a, np.zeros((n, 2)), ones, zeros, elongation=ones)
    direct = _draw(_key, 28, a + t, o, ones, zeros, elongation=ones)
    resampled = rotate_images(at_a, t, o)
    err = np.abs(direct - resampled)[:, 3:-3, 3:-3]
    assert err.mean() < 0.01 and np.percentile(err, 99) < 0.15
    wrong_way = rotate_images(at_a, -t, o)
    assert np.abs(direct - wrong_way)[:, 3:-3, 3:-3].mean() > 5 * err.mean()


def test_card_glyphs_classes_poses_and_difficulty():
    g = card_glyphs(400, difficulty=0, seed=0)
    assert g.images.shape == (400, 28, 28)
    assert np.bincount(g.labels).tolist() == [100, 100, 100, 100]
    assert np.all(g.offset == 0) and np.all(g.shear == 0) and np.all(g.scale == 1)
    hard = card_glyphs(400, difficulty=3, seed=0)
    p = DIFFICULTY[3]
    assert np.abs(hard.offset).max() <= p["shift"] and np.abs(hard.shear).max() <= p["shear"]
    assert np.abs(hard.scale - 1).max() <= p["scale"]
    assert hard.images.std() > g.images.std() * 0.9  # noisier, not emptier
    with pytest.raises(ValueError, match="difficulty"):
        card_glyphs(10, difficulty=7)


@pytest.mark.parametrize("turn_deg", [90, 120, 180])
def test_glyphs_have_no_rotational_symmetry(turn_deg):
    """Each glyph differs from itself turned by 90, 120 or 180 degrees, so its angle is
    identifiable over the full circle (the JRVAE angle test depends on it)."""
    g = card_glyphs(4, difficulty=0, seed=0)
    canon = rotate_images(g.images, -g.angle)
    turned = rotate_images(canon, np.full(4, np.radians(turn_deg)))
    diff = np.abs(turned - canon).sum((1, 2)) / np.abs(canon).sum((1, 2))
    assert diff.min() > 0.15, diff


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="n must be"):
        rotated_objects(0)
    with pytest.raises(ValueError, match="size"):
        card_glyphs(10, size=8)
