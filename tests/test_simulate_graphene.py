"""Physics of the simulated graphene movie, checked against its own ground truth."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from helpers.simulate import CC_BOND, graphene_local_order, graphene_movie


@pytest.fixture(scope="module")
def movie():
    return graphene_movie(n_frames=6, size=160, seed=3)


def _angstrom(movie, t):
    return movie.atoms[t][:, :2] * movie.pixel_size


def test_shapes_and_types(movie):
    t, h, w = movie.frames.shape
    assert (t, h, w) == (6, 160, 160)
    assert movie.frames.dtype == np.float32
    assert movie.masks.shape == (t, h, w) and set(np.unique(movie.masks)) <= {0, 1, 2}
    for k in range(t):
        n = len(movie.atoms[k])
        assert movie.atoms[k].shape == (n, 3)
        assert len(movie.sublattice[k]) == len(movie.local_order[k]) == n
        assert set(np.unique(movie.sublattice[k])) <= {-1, 0, 1}
        assert np.all((movie.local_order[k] >= 0) & (movie.local_order[k] <= 1))
        rows, cols = movie.atoms[k][:, 0], movie.atoms[k][:, 1]
        assert rows.min() >= -0.5 and rows.max() < h - 0.5
        assert cols.min() >= -0.5 and cols.max() < w - 0.5
    assert movie.grain_angles.shape == (2,)


def test_crystalline_bond_length_is_graphene(movie):
    for t in (0, len(movie) - 1):
        pos = _angstrom(movie, t)
        crystal = (movie.sublattice[t] >= 0) & (movie.local_order[t] > 0.9)
        assert crystal.sum() > 50
        d, _ = cKDTree(pos).query(pos[crystal], k=2)
        nn = d[:, 1]
        assert abs(np.median(nn) - CC_BOND) < 0.02
        assert np.mean(np.abs(nn - CC_BOND) < 0.05) > 0.95


def test_no_overlapping_atoms_and_amorphous_keeps_bond_length(movie):
    for t in range(len(movie)):
        pos = _angstrom(movie, t)
        d, _ = cKDTree(pos).query(pos, k=2)
        assert d[:, 1].min() > 1.2
    pos = _angstrom(movie, len(movie) - 1)
    amorphous = movie.sublattice[-1] < 0
    d, _ = cKDTree(pos).query(pos[amorphous], k=2)
    assert amorphous.sum() > 50
    assert abs(np.median(d[:, 1]) - CC_BOND) < 0.1
    # amorphous atoms have lost the crystal's bond angles: lower local order
    assert movie.local_order[-1][amorphous].mean() < movie.local_order[-1][~amorphous].mean() - 0.3


def test_sublattices_have_bonds_60_degrees_apart(movie):
    """Sublattice 0 bonds at grain angle + 30 deg (mod 120), sublattice 1 at + 90 deg."""
    pos = _angstrom(movie, 0)
    tree = cKDTree(pos)
    checked = 0
    for k in np.flatnonzero((movie.sublattice[0] >= 0) & (movie.local_order[0] > 0.95))[:300]:
        nbr = [j for j in tree.query_ball_point(pos[k], 1.6) if j != k]
        if len(nbr) != 3:
            continue
        d = pos[nbr] - pos[k]
        ang = np.arctan2(-d[:, 0], d[:, 1])  # anticlockwise on screen
        theta = movie.grain_angles[movie.grain[0][k]]
        expected = theta + np.deg2rad(30 + 60 * movie.sublattice[0][k])
        err = np.angle(np.exp(3j * (ang - expected))) / 3
        assert np.all(np.abs(err) < np.deg2rad(3))
        checked += 1
    assert checked > 100


def test_si_brighter_than_carbon(movie):
    frame = movie.frames[0].astype(np.float64)
    atoms = movie.atoms[0]
    r = np.round(atoms[:, 0]).astype(int)
    c = np.round(atoms[:, 1]).astype(int)
    si, carbon = atoms[:, 2] == 1, atoms[:, 2] == 0
    assert si.sum() >= 3
    ratio = frame[r[si], c[si]].mean() / frame[r[carbon], c[carbon]].mean()
    assert 3.2 < ratio < 5.0  # Z^1.7 contrast: (14 / 6)^1.7 = 4.2


def test_masks_label_atoms(movie):
    atoms = movie.atoms[0]
    r = np.round(atoms[:, 0]).astype(int)
    c = np.round(atoms[:, 1]).astype(int)
    labels = movie.masks[0][r, c]
    assert np.all(labels == atoms[:, 2].astype(int) + 1)
    frac = np.mean(movie.masks[0] > 0)
    assert 0.1 < frac < 0.5


def test_beam_damage_disorders_the_lattice(movie):
    assert movie.disordered_fraction[-1] > movie.disordered_fraction[0] + 0.1
    assert np.all(np.diff(movie.crystallinity) < 0.01)
    assert movie.crystallinity[-1] < movie.crystallinity[0] - 0.05
    assert movie.hole_fraction[-1] > movie.hole_fraction[0]
    mean_order = [lo.mean() for lo in movie.local_order]
    assert np.allclose(mean_order, movie.crystallinity)


def test_drift_moves_crystalline_atoms(movie):
    ids0, ids1 = movie.atom_ids[0], movie.atom_ids[1]
    common, i0, i1 = np.intersect1d(ids0, ids1, return_indices=True)
    still = (movie.sublattice[0][i0] >= 0) & (movie.sublattice[1][i1] >= 0)
    moved = movie.atoms[1][i1[still], :2] - movie.atoms[0][i0[still], :2]
    assert np.allclose(moved, movie.drift[1] - movie.drift[0], atol=1e-9)


def test_local_order_of_perfect_and_damaged_lattice():
    a = CC_BOND * np.sqrt(3)
    n, m = np.meshgrid(np.arange(-8, 9), np.arange(-8, 9), indexing="ij")
    cells = n.reshape(-1, 1) * np.array([0, a]) + m.reshape(-1, 1) * np.array([-a * 0.866, a / 2])
    pos = np.concatenate([cells, cells + np.array([-a * 0.866, a * 1.5]) / 3])
    centre = np.linalg.norm(pos, axis=1) < 8
    order = graphene_local_order(pos)
    assert np.allclose(order[centre], 1.0, atol=1e-6)
    victim = np.argmin(np.linalg.norm(pos, axis=1))
    damaged = graphene_local_order(np.delete(pos, victim, axis=0))
    near = np.linalg.norm(np.delete(pos, victim, axis=0) - pos[victim], axis=1) < 1.6
    assert np.all(damaged[near] < 0.8)


def test_deterministic_by_seed():
    a = graphene_movie(n_frames=2, size=64, seed=11)
    b = graphene_movie(n_frames=2, size=64, seed=11)
    c = graphene_movie(n_frames=2, size=64, seed=12)
    assert np.array_equal(a.frames, b.frames)
    assert np.array_equal(a.atoms[1], b.atoms[1])
    assert not np.array_equal(a.frames, c.frames)


@pytest.mark.parametrize("kwargs, word", [
    (dict(n_frames=0), "n_frames"),
    (dict(size=8), "size"),
    (dict(pixel_size=1.5), "pixel_size"),
    (dict(seed=-1), "seed"),
    (dict(dose=0), "dose"),
    (dict(misorientation=1.0), "misorientation"),
])
def test_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        graphene_movie(**{"n_frames": 2, "size": 64, **kwargs})


def test_preview_draws_frames_and_trends(movie):
    import matplotlib.pyplot as plt

    from helpers.plot import plot_preview_graphene

    fig = plot_preview_graphene(movie, frames=[0, -1])
    assert len(fig.axes) >= 3
    assert fig.axes[0].get_xlabel() == "x (Å)"
    plt.close(fig)
    with pytest.raises(ValueError, match="out of range"):
        plot_preview_graphene(movie, frames=[99])


def test_default_movie_is_unchanged_by_the_beam_history_options():
    """The defaults (even dose, no healing) give the same movie as before the options existed:
    a fingerprint of a small movie, and explicit defaults equal implicit ones."""
    m = graphene_movie(n_frames=3, size=64, seed=5)
    assert m.n_atoms.tolist() == [82, 70, 68]
    assert m.n_si.tolist() == [0, 0, 1]
    assert [int(a.sum()) for a in m.atom_ids] == [10778, 8906, 8256]
    assert int(m.masks.sum()) == 2781
    explicit = graphene_movie(n_frames=3, size=64, seed=5, dose_profile=None, healing=0.0)
    assert np.array_equal(m.frames, explicit.frames)
    assert "healing" not in m.params and "dose_profile" not in m.params


@pytest.fixture(scope="module")
def burst_movies():
    kw = dict(n_frames=12, size=128, seed=0, dose_profile="burst", exposure=40.0)
    return graphene_movie(healing=1.0, **kw), graphene_movie(healing=0.0, **kw)


def test_healing_makes_frame_mean_order_fall_and_recover(burst_movies):
    healed, unhealed = burst_movies
    c = healed.crystallinity
    low = int(np.argmin(c))
    assert 0 < low < len(c) - 1
    assert c[-1] > c[low] + 0.05  # recovers after the burst
    assert abs(np.corrcoef(np.arange(len(c)), c)[0, 1]) < 0.6  # not a function of time
    # without healing the same burst leaves the lattice damaged and order only falls
    u = unhealed.crystallinity
    assert np.all(np.diff(u) < 0.01)
    assert u[-1] < c[-1] - 0.2
    assert healed.params["healing"] == 1.0 and len(healed.params["dose_profile"]) == 11


def test_healed_lattice_is_graphene_and_order_varies_within_frames(burst_movies):
    healed, _ = burst_movies
    for t in range(len(healed)):
        pos = _angstrom(healed, t)
        d, _ = cKDTree(pos).query(pos, k=2)
        assert d[:, 1].min() > 1.2  # healing leaves no overlapping atoms
    last = len(healed) - 1
    pos = _angstrom(healed, last)
    crystal = (healed.sublattice[last] >= 0) & (healed.local_order[last] > 0.9)
    d, _ = cKDTree(pos).query(pos[crystal], k=2)
    assert abs(np.median(d[:, 1]) - CC_BOND) < 0.02  # refilled sites sit on the lattice
    # order varies in space within the damaged frames (fronts, holes, grain boundary)
    assert max(lo.std() for lo in healed.local_order) > 0.15


@pytest.mark.parametrize("profile, word", [
    (np.ones(3), "dose_profile"),
    (-np.ones(4), "dose_profile"),
    (np.zeros(4), "dose_profile"),
    ("bursty", "burst"),
])
def test_bad_dose_profile(profile, word):
    with pytest.raises(ValueError, match=word):
        graphene_movie(n_frames=5, size=64, dose_profile=profile)


def test_bad_healing():
    with pytest.raises(ValueError, match="healing"):
        graphene_movie(n_frames=2, size=64, healing=-1.0)


def test_flat_dose_profile_is_the_even_dose():
    """A profile of equal doses spreads the exposure as the default does: the same movie."""
    even = graphene_movie(n_frames=4, size=64, seed=2)
    flat = graphene_movie(n_frames=4, size=64, seed=2, dose_profile=np.ones(3))
    assert np.array_equal(even.frames, flat.frames)
    assert all(np.array_equal(a, b) for a, b in zip(even.atom_ids, flat.atom_ids))
    assert flat.params["dose_profile"] == [1.0, 1.0, 1.0]


def test_blanked_beam_leaves_the_sample_unchanged():
    """An interval of zero dose without healing: the atoms, their labels and order stay."""
    m = graphene_movie(n_frames=4, size=64, seed=1, drift=0.0, dose_profile=[1.0, 0.0, 1.0])
    for key in ("atom_ids", "sublattice", "local_order"):
        assert np.array_equal(getattr(m, key)[1], getattr(m, key)[2]), key
    np.testing.assert_allclose(m.atoms[2], m.atoms[1], atol=1e-9)  # (drift 0 up to rounding)
    assert not np.array_equal(m.atom_ids[0], m.atom_ids[1])  # the dosed interval damages
    assert not np.array_equal(m.frames[1], m.frames[2])  # fresh counting noise
