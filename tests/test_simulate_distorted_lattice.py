"""The distorted-lattice simulators: the toy lattices carry the stated noise and displacement,
and the image's displacement field has its domains, gradient and per-atom truth."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.simulate import distorted_lattice_image, toy_lattice_sites, toy_lattices


def test_toy_sites_count_corner_and_centre_atoms():
    fractional, sublattice = toy_lattice_sites((2, 3))
    assert (sublattice == 0).sum() == 3 * 4 and (sublattice == 1).sum() == 2 * 3
    centres = fractional[sublattice == 1]
    assert np.allclose(np.mod(centres, 1.0), 0.5)


def test_toy_lattices_noise_and_displacement_are_what_was_asked():
    d = np.tile([0.03, -0.02], (400, 1))
    t = toy_lattices(d, sigma=0.05, n_cells=4, seed=3)
    ideal = (t.origin[:, None, :] + t.lattice_constant[:, None, None] * t.fractional[None]
             + t.sublattice[None, :, None] * d[:, None, :])
    residual = t.observed - ideal
    assert abs(residual.std() - 0.05) < 0.002
    assert abs(residual.mean()) < 0.001
    # the B atoms sit off the cell centres by d on average, the A atoms do not
    frac_shift = t.observed - (t.origin[:, None, :]
                               + t.lattice_constant[:, None, None] * t.fractional[None])
    assert np.allclose(frac_shift[:, t.sublattice == 1].mean((0, 1)), [0.03, -0.02], atol=0.002)
    assert np.allclose(frac_shift[:, t.sublattice == 0].mean((0, 1)), 0.0, atol=0.002)
    assert t.n_distorted_atoms == 16 and len(t) == 400
    assert np.allclose(t.delta, np.hypot(0.03, 0.02))


def test_toy_lattices_is_deterministic_by_seed():
    a = toy_lattices(np.zeros((3, 2)), 0.1, 3, seed=5)
    b = toy_lattices(np.zeros((3, 2)), 0.1, 3, seed=5)
    c = toy_lattices(np.zeros((3, 2)), 0.1, 3, seed=6)
    assert np.array_equal(a.observed, b.observed) and not np.array_equal(a.observed, c.observed)


@pytest.mark.parametrize("kwargs, match", [
    (dict(displacement=np.zeros((2, 3)), sigma=0.1), "displacement must be"),
    (dict(displacement=[np.nan, 0.0], sigma=0.1), "NaN"),
    (dict(displacement=[0.0, 0.0], sigma=0.0), "sigma"),
    (dict(displacement=[0.0, 0.0], sigma=0.1, n_cells=0), "n_cells"),
])
def test_toy_lattices_refuse_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        toy_lattices(**kwargs)


@pytest.fixture(scope="module")
def image():
    return distorted_lattice_image(192, seed=4)


def test_image_has_symmetric_gradient_and_distorted_regions(image):
    b = image.sublattice == 1
    assert set(np.unique(image.region[b])) == {0, 1, 2}
    assert np.all(image.delta[b & (image.region == 0)] == 0)
    assert np.allclose(image.delta[b & (image.region == 2)], image.max_delta)
    grad = image.delta[b & (image.region == 1)]
    assert grad.min() > 0 and grad.max() < image.max_delta
    # the truth is continuous, not a few levels on a grid
    assert len(np.unique(np.round(grad, 6))) > 0.9 * len(grad)
    assert image.max_delta == pytest.approx(0.12 * image.lattice_constant)


def test_image_atoms_sit_where_the_truth_says(image):
    """Every B atom is displaced from the centre of its four A neighbours by its delta."""
    from scipy.spatial import cKDTree

    a_pos = image.positions[image.sublattice == 0]
    b = np.flatnonzero(image.sublattice == 1)
    tree = cKDTree(a_pos)
    dist, idx = tree.query(image.positions[b], k=4)
    full = dist[:, -1] < 0.9 * image.lattice_constant  # all four A neighbours in the image
    cage = a_pos[idx[full]].mean(1)
    shift = np.hypot(*(image.positions[b[full]] - cage).T)
    # jitter (0.08 px per coordinate, on five atoms) blurs the shift slightly
    err = shift - image.delta[b[full]]
    assert np.median(np.abs(err)) < 0.15
    assert np.corrcoef(shift, image.delta[b[full]])[0, 1] > 0.98


def test_image_walls_are_not_along_lattice_rows():
    """Over seeds, the wall direction is independent of the lattice angle."""
    offsets = []
    for seed in range(8):
        img = distorted_lattice_image(96, seed=seed)
        gy, gx = np.gradient(img.delta_map)
        wall = np.arctan2(gy.sum(), gx.sum())  # direction of increasing delta (rows, cols)
        offsets.append(np.mod(wall - img.lattice_angle, np.pi / 2))
    assert np.ptp(offsets) > 0.5  # radians: not locked to one lattice direction


def test_image_is_deterministic_and_pixel_values_finite():
    a = distorted_lattice_image(96, seed=1)
    b = distorted_lattice_image(96, seed=1)
    assert np.array_equal(a.image, b.image) and np.isfinite(a.image).all()
    assert a.image.dtype == np.float32 and a.image.shape == (96, 96)


@pytest.mark.parametrize("kwargs, match", [
    (dict(size=32), "size"),
    (dict(lattice_constant=3.0), "lattice_constant"),
    (dict(max_distortion=0.5), "max_distortion"),
    (dict(gradient_width=0.0), "gradient_width"),
    (dict(seed=-1), "seed"),
])
def test_image_refuses_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        distorted_lattice_image(**kwargs)
