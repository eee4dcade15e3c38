"""Physics of the simulated HS-AFM protein-rod movie, checked against its ground truth."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from helpers.simulate import nematic_order, protein_assembly_movie


@pytest.fixture(scope="module")
def movie():
    return protein_assembly_movie(n_frames=12, size=160, seed=5)


def test_shapes_and_ground_truth(movie):
    t, h, w = movie.frames.shape
    assert (t, h, w) == (12, 160, 160) and movie.frames.dtype == np.float32
    for k in range(t):
        n = len(movie.ids[k])
        assert movie.centres[k].shape == (n, 2) and movie.orientations[k].shape == (n,)
        assert len(np.unique(movie.ids[k])) == n
        assert np.all((movie.orientations[k] >= 0) & (movie.orientations[k] < np.pi))
        assert np.isclose(movie.order[k], nematic_order(movie.orientations[k]))
    assert n > 20


def test_orientational_order_rises(movie):
    assert movie.order[:3].mean() < 0.35
    assert movie.order[-3:].mean() > movie.order[:3].mean() + 0.4
    assert np.all(np.diff(movie.coupling) >= 0)


def test_steps_are_small_compared_with_spacing(movie):
    steps, spacing = [], []
    for t in range(1, len(movie)):
        _, i0, i1 = np.intersect1d(movie.ids[t - 1], movie.ids[t], return_indices=True)
        steps.append(np.linalg.norm(movie.centres[t][i1] - movie.centres[t - 1][i0], axis=1))
        d, _ = cKDTree(movie.centres[t]).query(movie.centres[t], k=2)
        spacing.append(d[:, 1])
    steps, spacing = np.concatenate(steps), np.concatenate(spacing)
    assert np.percentile(steps, 99) < 0.35 * np.median(spacing)
    # nearest-centre linking recovers the identities
    right = total = 0
    for t in range(1, len(movie)):
        _, j = cKDTree(movie.centres[t]).query(movie.centres[t - 1])
        present = np.isin(movie.ids[t - 1], movie.ids[t])
        right += np.sum(movie.ids[t][j][present] == movie.ids[t - 1][present])
        total += present.sum()
    assert right / total > 0.98


def test_rods_do_not_overlap(movie):
    ps, width = movie.pixel_size, movie.params["rod_width"]
    half = (movie.params["rod_length"] - width) / 2
    for t in (0, len(movie) - 1):
        c, th = movie.centres[t] * ps, movie.orientations[t]
        axis = np.stack([-np.sin(th), np.cos(th)], axis=1)
        s = np.linspace(-half, half, 9)
        pts = (c[:, None] + s[None, :, None] * axis[:, None]).reshape(-1, 2)
        rod = np.repeat(np.arange(len(c)), len(s))
        pairs = cKDTree(pts).query_pairs(0.65 * width, output_type="ndarray")
        assert np.all(rod[pairs[:, 0]] == rod[pairs[:, 1]])


def test_height_and_orientation_in_the_image(movie):
    """Rods stand ``height`` nm tall; the image's long axis matches the true angle."""
    frame, ps = movie.frames[-1].astype(np.float64), movie.pixel_size
    c, th = movie.centres[-1], movie.orientations[-1]
    tree = cKDTree(c)
    r = int(round(0.6 * movie.params["rod_length"] / ps))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    checked = 0
    for k, (row, col) in enumerate(c):
        row, col = int(round(row)), int(round(col))
        if min(row, col) < r or row >= frame.shape[0] - r or col >= frame.shape[1] - r:
            continue
        assert abs(frame[row, col] - movie.params["height"]) < 0.5
        # the pixels of this rod's Voronoi cell (nearer to its centre than to any other)
        pix = np.stack([yy.ravel() + row, xx.ravel() + col], axis=1)
        mine = tree.query(pix)[1] == k
        win = frame[row - r:row + r + 1, col - r:col + r + 1].ravel()
        wts = np.clip(win - 0.5 * movie.params["height"], 0, None) * mine
        x, y = xx.ravel().astype(float), -yy.ravel().astype(float)  # on screen, y up
        cov = np.cov(np.stack([x, y]), aweights=wts)
        if np.linalg.eigvalsh(cov)[0] > 0.3 * np.linalg.eigvalsh(cov)[1]:
            continue  # a neighbour's cell cut the rod short: no clear long axis
        angle = 0.5 * np.arctan2(2 * cov[0, 1], cov[0, 0] - cov[1, 1])
        err = abs(np.angle(np.exp(2j * (angle - th[k])))) / 2
        assert err < np.deg2rad(10)
        checked += 1
    assert checked >= 10
    background = np.median(frame[frame < 0.5 * movie.params["height"]])
    assert abs(background) < 0.1


def test_deterministic_by_seed():
    a = protein_assembly_movie(n_frames=2, size=64, seed=9)
    b = protein_assembly_movie(n_frames=2, size=64, seed=9)
    c = protein_assembly_movie(n_frames=2, size=64, seed=10)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.centres[1], b.centres[1])
    assert not np.array_equal(a.frames, c.frames)


@pytest.mark.parametrize("kwargs, word", [
    (dict(n_frames=0), "n_frames"),
    (dict(size=(64,)), "size"),
    (dict(coverage=0.9), "coverage"),
    (dict(rod_width=20.0), "rod_width"),
    (dict(size=32, pixel_size=0.2), "field of view"),
    (dict(seed=1.5), "seed"),
])
def test_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        protein_assembly_movie(**{"n_frames": 2, "size": 64, **kwargs})


def test_preview_draws_frames_and_order(movie):
    import matplotlib.pyplot as plt

    from helpers.plot import plot_preview_protein

    fig = plot_preview_protein(movie)
    assert fig.axes[0].get_xlabel() == "x (nm)"
    plt.close(fig)


# -- heterogeneous assemblies and a non-monotonic ordering history -----------------------------
HETERO = dict(lengths=(8.0, 12.0, 16.0), class_rate=0.05, length_jitter=0.5,
              schedule=(0, 0.6, 0.6, 0, 0, 0.6, 0.6, 0), hot_rotation_deg=25.0)


@pytest.fixture(scope="module")
def hetero():
    return protein_assembly_movie(n_frames=40, size=160, seed=3, **HETERO)


def test_shape_classes_and_lengths_are_ground_truth(hetero):
    lengths = np.asarray(HETERO["lengths"])
    assert hetero.params["lengths"] == HETERO["lengths"]
    for t in range(len(hetero)):
        n = len(hetero.ids[t])
        assert hetero.shape_class[t].shape == (n,) and hetero.lengths[t].shape == (n,)
        dev = hetero.lengths[t] - lengths[hetero.shape_class[t]]
        assert np.all(np.abs(dev) <= 1.5 * HETERO["length_jitter"] + 1e-9)
    all_classes = np.concatenate(hetero.shape_class)
    assert set(np.unique(all_classes)) == {0, 1, 2}


def test_shape_changes_are_single_subunit_steps_at_the_set_rate(hetero):
    steps = []
    for t in range(1, len(hetero)):
        _, i0, i1 = np.intersect1d(hetero.ids[t - 1], hetero.ids[t], return_indices=True)
        steps.append(hetero.shape_class[t][i1] - hetero.shape_class[t - 1][i0])
        # a rod keeps its own length offset: it changes only with its class
        same = hetero.shape_class[t][i1] == hetero.shape_class[t - 1][i0]
        assert np.allclose(hetero.lengths[t][i1][same], hetero.lengths[t - 1][i0][same])
    steps = np.concatenate(steps)
    assert set(np.unique(steps)) <= {-1, 0, 1}
    rate = np.mean(steps != 0)
    assert 0.5 * HETERO["class_rate"] < rate < 1.5 * HETERO["class_rate"]


def test_rod_length_in_the_image_follows_its_class(hetero):
    """The imaged extent along each rod's axis grows with its true length."""
    frame, ps = hetero.frames[0].astype(np.float64), hetero.pixel_size
    extent, truth = [], []
    for (row, col), th, length in zip(hetero.centres[0], hetero.orientations[0],
                                      hetero.lengths[0]):
        s = np.arange(-12.0, 12.01, 0.25)  # nm along the axis
        rr = row - s * np.sin(th) / ps
        cc = col + s * np.cos(th) / ps
        inside = (rr >= 0) & (rr < frame.shape[0] - 1) & (cc >= 0) & (cc < frame.shape[1] - 1)
        if not inside.all():
            continue
        from scipy.ndimage import map_coordinates

        profile = map_coordinates(frame, [rr, cc], order=1)
        tall = profile > 0.8 * hetero.params["height"]
        # the run of tall samples through the centre
        centre = len(s) // 2
        if not tall[centre]:
            continue
        lo = centre - np.argmin(tall[centre::-1]) if not tall[:centre].all() else 0
        hi = centre + np.argmin(tall[centre:]) if not tall[centre:].all() else len(s)
        extent.append((hi - lo) * 0.25)
        truth.append(length)
    assert len(truth) >= 10
    assert np.corrcoef(truth, extent)[0, 1] > 0.6


def test_schedule_orders_melts_and_reorders(hetero):
    s = hetero.order
    t = np.arange(len(s))
    assert abs(np.corrcoef(t, s)[0, 1]) < 0.5  # the frame number does not predict the order
    mid = len(s) // 2
    assert s[:mid].max() > 0.6 and s[mid:].max() > 0.6  # orders in both halves
    first_peak = int(np.argmax(s[:mid]))
    assert s[first_peak:mid + 4].min() < s[first_peak] - 0.3  # and melts in between
    # strength follows the knots: zero at both ends, on in between
    assert hetero.coupling[0] == 0 and hetero.coupling[-1] == 0 and hetero.coupling.max() > 0


def test_heterogeneous_movie_is_deterministic_and_default_has_one_class():
    a = protein_assembly_movie(n_frames=3, size=64, seed=4, **HETERO)
    b = protein_assembly_movie(n_frames=3, size=64, seed=4, **HETERO)
    assert np.array_equal(a.frames, b.frames)
    assert all(np.array_equal(x, y) for x, y in zip(a.shape_class, b.shape_class))
    plain = protein_assembly_movie(n_frames=2, size=64, seed=4)
    assert all(np.all(c == 0) for c in plain.shape_class)
    assert all(np.all(v == plain.params["rod_length"]) for v in plain.lengths)


@pytest.mark.parametrize("kwargs, word", [
    (dict(lengths=(12.0, 8.0)), "lengths must increase"),
    (dict(lengths=(3.0, 8.0)), "exceed rod_width"),
    (dict(lengths=[[8.0, 12.0]]), "1D sequence"),
    (dict(class_rate=0.1), "need shape classes"),
    (dict(lengths=(8.0, 12.0), class_rate=1.5), "class_rate"),
    (dict(schedule=(0.0, 2.0)), "schedule"),
    (dict(schedule=(1.0,)), "schedule"),
    (dict(hot_rotation_deg=20.0), "needs a schedule"),
])
def test_bad_heterogeneous_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        protein_assembly_movie(**{"n_frames": 2, "size": 64, **kwargs})


def test_preview_draws_each_rod_at_its_own_length(hetero):
    import matplotlib.pyplot as plt

    from helpers.plot import plot_preview_protein

    fig = plot_preview_protein(hetero, frames=[0])
    drawn = [np.hypot(*np.diff(np.array(line.get_data()), axis=1).ravel())
             for line in fig.axes[0].get_lines()]
    np.testing.assert_allclose(sorted(drawn), sorted(hetero.lengths[0]), rtol=1e-6)
    plt.close(fig)
