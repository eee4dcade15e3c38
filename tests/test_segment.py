"""helpers.segment: atom finding in probability maps and particle finding (the U-Net that
makes the maps is tested in test_unet.py)."""

import numpy as np
import pytest

from helpers import segment as S
from helpers.analysis import match_points


def _gauss_map(shape, centres, sigma=1.2):
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]]
    out = np.zeros(shape)
    for r, c in centres:
        out = np.maximum(out, np.exp(-((rr - r) ** 2 + (cc - c) ** 2) / (2 * sigma**2)))
    return out


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
    pairs, d = match_points(np.array(specs)[:, :2], found.coords, 1.0)
    assert len(pairs) == 4 and d.max() < 0.5
    for j, i in pairs:
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


# hostile thresholds (issue 22)
@pytest.mark.parametrize("threshold", [-1, 0, 1, 2, float("nan"), float("inf"), "high"])
def test_find_atoms_rejects_thresholds_outside_0_1(threshold):
    probs = np.zeros((3, 20, 20))
    probs[0] = 1.0
    probs[0, 8:11, 8:11], probs[1, 8:11, 8:11] = 0.1, 0.9
    assert len(S.find_atoms(probs, threshold=0.5)) == 1
    with pytest.raises(ValueError, match=r"threshold.*0.*1"):
        S.find_atoms(probs, threshold=threshold)
