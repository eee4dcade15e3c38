"""Two-scale domain simulator (notebook 07): two independent factors at two length scales."""
import numpy as np
import pytest

from helpers.models import grid_centres, multiscale_patches
from helpers.simulate import two_scale_domains


def _window_means(field, window, step=8):
    """Mean of ``field`` (n, H, W) over ``window`` px windows on the 48 px-safe centre grid."""
    out = []
    for f in field:
        c = grid_centres(f.shape, (8, 48), step)
        out.append(multiscale_patches(f.astype(float), c, (window,), 4).patches[0]
                   .mean(axis=(1, 2)))
    return np.concatenate(out)


def test_same_seed_same_frames_and_seeds_differ():
    a = two_scale_domains(n_frames=2, size=64, seed=3)
    b = two_scale_domains(n_frames=2, size=64, seed=3)
    c = two_scale_domains(n_frames=2, size=64, seed=4)
    for k in ("frames", "fine", "variant", "fraction_b", "regions"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    assert not np.array_equal(a.frames, c.frames)
    assert len(a) == 2 and a.frames.shape == (2, 64, 64) and a.frames.dtype == np.float32
    assert a.variant.dtype == bool and a.regions.dtype == np.int32


def test_noise_free_frame_is_the_sum_of_the_two_true_structures():
    d = two_scale_domains(n_frames=1, size=48, tip_sigma=0.0, noise=0.0, variant_contrast=0.3)
    expected = d.fine[0] + 0.3 * np.where(d.variant[0], 1.0, -1.0)
    np.testing.assert_allclose(d.frames[0], expected, atol=1e-6)
    # every nanoregion is one offset: the fine field is constant on each raw label only
    # before compensation, so check the raw design through compensation_length=0
    raw = two_scale_domains(n_frames=1, size=48, compensation_length=0.0, seed=1)
    for lab in np.unique(raw.regions[0])[:10]:
        vals = raw.fine[0][raw.regions[0] == lab]
        assert np.ptp(vals) == 0 and abs(vals[0]) <= 1.0


def test_the_factors_are_independent_and_live_at_their_own_scales():
    d = two_scale_domains(n_frames=6, size=192, seed=0)
    fine8 = _window_means(d.fine, 8)
    fine48 = _window_means(d.fine, 48)
    frac48 = _window_means(d.variant, 48)
    frac8 = _window_means(d.variant, 8)
    assert abs(np.corrcoef(fine8, frac48)[0, 1]) <= 0.1  # independent by construction
    # compensated offsets: strong in 8 px windows, nearly gone from 48 px windows
    assert fine8.std() > 0.2 and fine48.std() < 0.25 * fine8.std()
    # the variant fraction varies over 48 px windows, and one 8 px window says little of it
    assert frac48.std() > 0.1 and abs(np.corrcoef(frac8, frac48)[0, 1]) < 0.8
    # P(B) follows the designed probability
    assert abs(d.variant.mean() - d.fraction_b.mean()) < 0.05


def test_the_two_structures_come_from_separate_random_streams():
    # more, smaller nanoregions consume more random numbers; with one shared stream the
    # variant map drawn after them would change too
    a = two_scale_domains(n_frames=2, size=64, seed=5)
    b = two_scale_domains(n_frames=2, size=64, seed=5, cell_size=4.0)
    assert a.regions.max() < b.regions.max()
    np.testing.assert_array_equal(a.variant, b.variant)
    np.testing.assert_array_equal(a.fraction_b, b.fraction_b)


BAD = {"n_frames": 0, "size": 16, "cell_size": 1.0, "fraction_spread": 0.6, "noise": -1.0,
       "seed": -2, "fine_amplitude": float("nan")}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_arguments_name_the_problem(name):
    """The message names the argument (the key is also the text it must contain)."""
    with pytest.raises(ValueError, match=name):
        two_scale_domains(**{"n_frames": 1, "size": 32, name: BAD[name]})
