"""helpers.features: exact patches, descriptors at the lattice spacing, tracking accuracy."""

import numpy as np
import pytest

from helpers import features as F
from helpers.analysis import link_accuracy


def _hex_lattice(a, shape, origin=(3.3, 2.1)):
    """Points of a triangular lattice with nearest-neighbour distance ``a`` px inside shape."""
    height, width = shape
    rows = np.arange(-2, int(height / (a * np.sqrt(3) / 2)) + 2)
    pts = []
    for i in rows:
        r = origin[0] + i * a * np.sqrt(3) / 2
        shift = (i % 2) * a / 2
        for c in np.arange(origin[1] + shift, width, a):
            if 0 <= r < height:
                pts.append((r, c))
    return np.asarray(pts)


def _render(points, shape, sigma=1.2):
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]]
    img = np.zeros(shape)
    for r, c in points:
        img += np.exp(-((rr - r) ** 2 + (cc - c) ** 2) / (2 * sigma**2))
    return img


def _first_local_max(x, start):
    for i in range(max(start, 1), len(x) - 1):
        if x[i] >= x[i - 1] and x[i] > x[i + 1]:
            return i
    raise AssertionError("no local maximum")


# ------------------------------------------------------------------------------ patches
def test_extract_patches_exact_pixels_image():
    img = np.arange(40 * 50, dtype=float).reshape(40, 50)
    coords = np.array([[10.2, 20.6, 7], [1.0, 1.0, 7], [39.0, 49.0, 7], [30.0, 40.0, 7]])
    out = F.extract_patches(img, coords, 5)
    assert out.patches.shape == (2, 5, 5)
    np.testing.assert_array_equal(out.patches[0], img[8:13, 19:24])
    np.testing.assert_array_equal(out.patches[1], img[28:33, 38:43])
    np.testing.assert_array_equal(out.index, [0, 3])
    np.testing.assert_array_equal(out.dropped, [1, 2])
    assert out.n_dropped == 2
    np.testing.assert_array_equal(out.centers, [[10, 21], [30, 40]])
    np.testing.assert_allclose(out.offsets[0], [0.2, -0.4])


def test_extract_patches_even_window_centre_and_borders():
    img = np.arange(20 * 20, dtype=float).reshape(20, 20)
    # window 4 covers r-2 .. r+1: centre 2 is valid, 1 is not; 18 is valid, 19 is not
    coords = np.array([[2, 2], [1, 5], [18, 18], [19, 5]], dtype=float)
    out = F.extract_patches(img, coords, 4)
    np.testing.assert_array_equal(out.index, [0, 2])
    np.testing.assert_array_equal(out.patches[1], img[16:20, 16:20])
    assert out.patches[0][2, 2] == img[2, 2]


def test_extract_patches_movie_formats_agree():
    rng = np.random.default_rng(0)
    movie = rng.random((3, 30, 30)).astype(np.float32)
    per_frame = [rng.uniform(0, 30, (5, 2)) for _ in range(3)]
    a = F.extract_patches(movie, per_frame, 7)
    stacked = np.concatenate([np.column_stack([np.full(5, t), c]) for t, c in
                              enumerate(per_frame)])
    b = F.extract_patches(movie, stacked, 7)
    np.testing.assert_array_equal(a.patches, b.patches)
    np.testing.assert_array_equal(a.index, b.index)
    assert len(a.index) + a.n_dropped == 15
    for k in range(len(a.index)):
        t, (r, c) = a.frame[k], a.centers[k]
        np.testing.assert_array_equal(a.patches[k], movie[t, r - 3 : r + 4, c - 3 : c + 4])


def test_extract_patches_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        F.extract_patches(np.full((10, 10), np.nan), np.zeros((1, 2)), 3)
    with pytest.raises(ValueError, match="shape"):
        F.extract_patches(np.zeros((2, 2, 10, 10)), np.zeros((1, 2)), 3)
    with pytest.raises(ValueError, match="frames"):
        F.extract_patches(np.zeros((3, 10, 10)), [np.zeros((1, 2))], 3)
    with pytest.raises(ValueError, match="window"):
        F.extract_patches(np.zeros((10, 10)), np.zeros((1, 2)), 0)


def test_grid_patches_and_to_grid():
    img = np.arange(12 * 16, dtype=float).reshape(12, 16)
    g = F.grid_patches(img, 4, step=2)
    assert g.grid_shape == (5, 7)
    assert g.patches.shape == (35, 4, 4)
    np.testing.assert_array_equal(g.patches[8], img[2:6, 2:6])  # node (1, 1)
    np.testing.assert_array_equal(g.centers[8], [4, 4])
    grid = g.to_grid(g.patches.mean(axis=(1, 2)))
    assert grid.shape == (5, 7) and grid[1, 1] == img[2:6, 2:6].mean()
    movie = F.grid_patches(np.stack([img, img + 1]), 4, step=4)
    assert movie.grid_shape == (2, 3, 4) and movie.frame[-1] == 1


# ------------------------------------------------------------------------------ descriptors
def test_descriptors_peak_at_lattice_spacing():
    a, shape = 9.0, (192, 256)
    pts = _hex_lattice(a, shape)
    img = _render(pts, shape)
    plane = a * np.sqrt(3) / 2  # spacing of the densest lattice planes

    k, power = F.radial_profile(F.fft_power(img), frequency=True, n_bins=128)
    start = np.searchsorted(k, 0.03)
    k_peak = k[start + np.argmax(power[start:])]
    assert abs(1 / k_peak - plane) / plane < 0.05

    r, acf = F.radial_profile(F.autocorrelation(img))
    assert abs(r[_first_local_max(acf, 2)] - a) <= 1.0

    r, g = F.pair_distribution(pts, shape, r_max=40, n_bins=160)
    assert abs(r[np.argmax(g)] - a) <= 0.25
    assert g[r < 0.8 * a].max() == 0


def test_pair_distribution_uncorrelated_is_flat_and_per_frame():
    rng = np.random.default_rng(1)
    pts = rng.uniform(0, 400, (4000, 2))
    r, g = F.pair_distribution([pts, pts[:2000]], (400, 400), r_max=50, n_bins=10)
    assert g.shape == (2, 10)
    assert np.all(np.abs(g[:, 2:] - 1) < 0.1)


def test_autocorrelation_and_fft_shapes():
    movie = np.random.default_rng(0).random((2, 32, 40))
    acf = F.autocorrelation(movie)
    assert acf.shape == (2, 32, 40)
    np.testing.assert_allclose(acf[:, 16, 20], 1.0)
    assert F.fft_power(movie[0], log=True).shape == (32, 40)


def test_inside_frame_keeps_points_at_least_margin_from_every_border():
    shape = (10, 20)  # pixel centres 0..9 (rows) and 0..19 (cols)
    pts = np.array([[3.0, 3.0], [2.99, 10.0], [6.0, 10.0], [6.01, 10.0], [5.0, 16.0],
                    [5.0, 16.01], [np.nan, 5.0]])
    np.testing.assert_array_equal(F.inside_frame(pts, shape, margin=3),
                                  [True, False, True, False, True, False, False])
    # extra columns (a class) are ignored
    with_class = np.column_stack([pts[:1], [2.0]])
    assert F.inside_frame(with_class, shape, 3).tolist() == [True]
    assert F.inside_frame(np.zeros((0, 3)), shape, 3).shape == (0,)
    assert F.inside_frame(pts[:1], shape, 0).all()
    with pytest.raises(ValueError, match="margin"):
        F.inside_frame(pts, shape, -1)
    with pytest.raises(ValueError, match=r"\(N, 2\+\)"):
        F.inside_frame(np.zeros(5), shape, 1)


def test_find_atoms_drops_centres_by_the_same_border_rule():
    from helpers.segment import find_atoms

    prob = np.zeros((20, 20))
    for r, c in ((2, 5), (3, 15), (10, 10), (16, 5), (17, 15)):
        prob[r, c] = 1.0
    found = find_atoms(prob, threshold=0.5, margin=3, grow=0)
    np.testing.assert_allclose(found[:, :2], [[3, 15], [10, 10], [16, 5]])


# ------------------------------------------------------------------------------ tracking
def _brownian(n=150, frames=25, step=1.5, miss=0.05, seed=0):
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 400, (n, 2))
    coords, true = [], []
    for _ in range(frames):
        pos = pos + rng.normal(0, step, pos.shape)
        order = rng.permutation(np.flatnonzero(rng.random(n) > miss))
        coords.append(pos[order])
        true.append(order)
    return coords, true


def test_track_links_random_walkers():
    coords, true = _brownian()
    tr = F.track(coords, max_displacement=8, max_gap=1)
    assert link_accuracy(true, tr.ids) >= 0.98
    assert len(tr.ids) == 25 and all(len(i) == len(c) for i, c in zip(tr.ids, coords))
    # each trajectory holds exactly the positions with its id
    k = tr.ids[3][0]
    traj = tr.trajectories[k]
    row = np.flatnonzero(traj[:, 0] == 3)[0]
    np.testing.assert_allclose(traj[row, 1:], coords[3][0])


def test_track_gap_closing_keeps_identity():
    coords = [np.array([[10.0, 10.0], [50, 50]]), np.array([[50.0, 51]]),
              np.array([[11.0, 11], [50, 52]])]
    with_gap = F.track(coords, max_displacement=3, max_gap=1)
    assert with_gap.n_tracks == 2 and with_gap.ids[2][0] == with_gap.ids[0][0]
    no_gap = F.track(coords, max_displacement=3, max_gap=0)
    assert no_gap.n_tracks == 3


def test_track_prefers_globally_optimal_assignment():
    # greedy nearest would link A->(0, 2) and leave B far from (0, 4.2): optimal swaps
    coords = [np.array([[0.0, 0.0], [0.0, 3.0]]), np.array([[0.0, 2.0], [0.0, 4.2]])]
    tr = F.track(coords, max_displacement=3)
    assert tr.n_tracks == 2
    np.testing.assert_array_equal(tr.ids[1], [0, 1])


# ------------------------------------------------------------------------------ wrappers
def test_decompose_cluster_and_map_back():
    rng = np.random.default_rng(0)
    a, b = np.zeros((6, 6)), np.zeros((6, 6))
    a[:, :3], b[:3, :] = 1, 1
    labels = rng.integers(0, 2, 200)
    patches = np.where(labels[:, None, None] == 0, a, b) + 0.05 * rng.random((200, 6, 6))
    dec = F.decompose_patches(patches, 2, method="nmf")
    assert dec.components.shape == (2, 6, 6) and dec.weights.shape == (200, 2)
    pca = F.decompose_patches(patches, 2)
    assert pca.explained_variance_ratio[0] > 0.9
    cl = F.cluster(patches, 2, seed=0)
    agree = (cl.labels == labels).mean()
    assert max(agree, 1 - agree) == 1.0
    img = F.map_to_image([3.0, 7.0], [[10, 10], [10, 20]], (30, 30), radius=4)
    assert img[10, 10] == 3 and img[10, 14] == 3 and img[10, 16] == 7 and img[10, 24] == 7
    assert np.isnan(img[20, 20]) and np.isnan(img[10, 25])
    assert np.isnan(F.map_to_image([1.0], [[5, 5]], (20, 20))).sum() == 399
    with pytest.raises(ValueError, match="non-negative"):
        F.decompose_patches(patches - 1, 2, method="nmf")


# ------------------------------------------------------------------------------ ground truth
def _shuffled(movie, drop=0.0, seed=0):
    """Per-frame true centres in random order (a fraction dropped) and their true ids."""
    rng = np.random.default_rng(seed)
    coords, ids = [], []
    for c, k in zip(movie.centres, movie.ids):
        order = rng.permutation(len(c))
        order = order[rng.random(len(order)) >= drop]
        coords.append(c[order])
        ids.append(k[order])
    return coords, ids


def test_track_on_simulated_protein_movie():
    from helpers.simulate import protein_assembly_movie

    movie = protein_assembly_movie(n_frames=30, seed=0)
    coords, ids = _shuffled(movie, drop=0.05)
    tracks = F.track(coords, max_displacement=6, max_gap=1)
    assert link_accuracy(ids, tracks.ids) >= 0.95
    # gap closing: a rod missed in one frame keeps its trajectory
    assert tracks.n_tracks < 1.2 * len(np.unique(np.concatenate(movie.ids)))


def test_track_detected_particles_on_simulated_protein_movie():
    from helpers.analysis import match_points
    from helpers.segment import find_particles
    from helpers.simulate import protein_assembly_movie

    movie = protein_assembly_movie(n_frames=30, seed=1)
    found = [find_particles(frame, core=0.95, min_area=10).coords for frame in movie.frames]
    true_ids = []
    for f, c, k in zip(found, movie.centres, movie.ids):
        pairs, _ = match_points(c, f, max_distance=3.0)
        ids = np.full(len(f), -1)
        ids[pairs[:, 1]] = k[pairs[:, 0]]
        true_ids.append(ids)
    # away from the edges (where rods whose centre lies outside show up) detections are real
    pts, ids = np.concatenate(found), np.concatenate(true_ids)
    inner = F.inside_frame(pts, movie.frames.shape[1:], margin=12)
    assert np.mean(ids[inner] >= 0) >= 0.98
    tracks = F.track(found, max_displacement=6, max_gap=1)
    assert link_accuracy(true_ids, tracks.ids) >= 0.95


# hostile coordinates and frame keys (issue 22)
def test_extract_patches_far_outside_coordinates_raise_value_error():
    img = np.random.default_rng(0).random((32, 32))
    with pytest.raises(ValueError, match=r"1 of 2 positions lie outside the 32 x 32 image"):
        F.extract_patches(img, [[16, 16], [1e20, 5]], 5)
    with pytest.raises(ValueError, match="outside"):
        F.extract_patches(img, [[-9e18, 3]], 5)
    with pytest.raises(ValueError, match="outside"):
        F.extract_patches(img, [[10, 40]], 5)
    # a position near the border (its window crosses it) is still dropped, as documented
    p = F.extract_patches(img, [[16, 16], [0, 16], [-1, 16], [33, 16]], 5)
    assert p.index.tolist() == [0] and p.dropped.tolist() == [1, 2, 3]


def test_frame_keys_must_be_frame_numbers():
    pts = np.array([[1.0, 1.0]])
    for bad in ({-1: pts}, {0.5: pts}, {"0": pts}, {0: pts, -2: pts}):
        with pytest.raises(ValueError, match="frame"):
            F.track(bad, max_displacement=2)
    tr = F.track({0: pts, 2: pts + 0.5}, max_displacement=2)  # frame 1 empty: kept
    assert len(tr.ids) == 3 and tr.n_tracks == 1
    movie = np.random.default_rng(0).random((2, 16, 16))
    with pytest.raises(ValueError, match="frame"):
        F.extract_patches(movie, {0: [[8, 8]], 5: [[8, 8]]}, 3)
    with pytest.raises(ValueError, match="frame"):
        F.extract_patches(movie, {-1: [[8, 8]]}, 3)
    assert len(F.extract_patches(movie, {1: [[8, 8]]}, 3).patches) == 1
