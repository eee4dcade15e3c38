"""The scan-distortion simulator: truth consistent with the images, components as documented."""

import numpy as np
import pytest

from helpers.analysis import locate_atoms, match_points
from helpers.simulate import scan_distortion_stack


@pytest.fixture(scope="module")
def stack():
    return scan_distortion_stack(n_frames=4, size=64, seed=3)


def test_truth_is_consistent(stack):
    # distorted = true + field exactly, and the columns appear where the truth says
    np.testing.assert_allclose(stack.distorted_positions,
                               stack.true_positions + stack.field_at_atoms)
    found = locate_atoms(stack.frames)
    for t in range(len(stack)):
        pairs, dist = match_points(stack.distorted_positions[t] / stack.pixel_size, found[t],
                                   1.0)
        assert len(pairs) >= 0.9 * stack.true_positions.shape[1]
        assert np.sqrt(np.mean(dist**2)) * stack.pixel_size < 6.0  # pm


def test_components_follow_the_scan(stack):
    t_n, h, w = stack.frames.shape
    # the field is drift + line jitter + flyback: removing the jitter (constant along each scan
    # line) and the flyback (a profile along the fast scan) leaves the drift, which at mid-line
    # (c = W/2, scan time t + (r + 1/2)/H) is the documented per-line drift
    rest = stack.field - stack.flyback[:, None, :, :] - stack.jitter[:, :, None, :]
    np.testing.assert_allclose(rest[:, :, w // 2], stack.drift, atol=1e-9)
    # along a line the drift moves only during the dwell of each pixel, 1/(H W) frame: at most
    # the fastest drift speed times that
    speed = max(stack.params["drift_start"], stack.params["drift_end"])
    assert np.abs(np.diff(rest, axis=2)).max() <= speed / (h * w) * (1 + 1e-6)
    # and the jitter is not hidden in it: it differs from line to line far more than that
    assert np.abs(np.diff(stack.jitter, axis=1)).max() > 100 * speed / (h * w)
    # the flyback only compresses the start of each line: along the fast scan, decaying as
    # exp(-c / lambda) from its (negative) value at the first column, nothing along the rows
    fly = stack.flyback
    decay = np.exp(-np.arange(w) / stack.params["flyback_width"])
    np.testing.assert_allclose(fly[:, :, 1], fly[:, :1, 1] * decay[None], atol=1e-9)
    assert np.all(fly[:, 0, 1] <= 0) and np.all(fly[:, :, 0] == 0)
    # the strain grows from zero
    assert np.abs(stack.strain[0]).max() == 0
    assert np.abs(stack.strain[-1]).max() > 0.5 * stack.params["strain"]


def test_same_seed_same_stack():
    a = scan_distortion_stack(n_frames=3, size=48, seed=1)
    b = scan_distortion_stack(n_frames=3, size=48, seed=1)
    np.testing.assert_array_equal(a.frames, b.frames)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_frames": 2}, "n_frames"), ({"size": 20}, "size"), ({"drift_start": 200.0}, "drift"),
    ({"jitter_rms": -1.0}, "jitter_rms"), ({"seed": -1}, "seed")])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        scan_distortion_stack(**kwargs)
