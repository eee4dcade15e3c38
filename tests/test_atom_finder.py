"""HAADF imaging with dose in e/A^2 (helpers.simulate.haadf_imaging) and the atom finder trained
on randomised images of it (helpers.models.atom_finder)."""

import numpy as np
import pytest
import torch
from scipy import ndimage

import helpers.simulate as hs
from helpers.analysis import detection_scores
from helpers.features import inside_frame
from helpers.models import bin_images, train_atom_finder
from helpers.segment import find_atoms


# ------------------------------------------------------------------------------ dose model
def test_counts_are_poisson_with_mean_fraction_times_dose_times_pixel_area():
    frac = np.full((300, 300), 0.02)
    frac[:, 150:] = 0.002  # two contrasts: each half has its own mean
    counts = hs.haadf_counts(frac, dose=1e5, pixel_size=0.1, seed=0)
    assert counts.dtype == np.float32 and np.all(counts == np.round(counts))
    for half, expected in ((counts[:, :150], 20.0), (counts[:, 150:], 2.0)):  # 0.02 * 1e5 * 0.01
        assert half.mean() == pytest.approx(expected, rel=0.02)
        assert half.var() == pytest.approx(expected, rel=0.05)  # Poisson: variance = mean
    # the pixel area enters squared: 0.2 A/px collects four times the electrons
    assert hs.haadf_counts(frac, 1e5, 0.2, seed=0)[:, :150].mean() == pytest.approx(80.0, rel=0.02)


def test_detector_signal_gain_offset_and_noise():
    n = hs.haadf_counts(np.full((400, 400), 0.05), 1e5, 0.1, seed=1)  # mean 50
    np.testing.assert_array_equal(hs.detector_signal(n), n)  # an ideal counter
    out = hs.detector_signal(n, gain=3.0, offset=10.0, seed=2)
    np.testing.assert_allclose(out, 3.0 * n + 10.0, rtol=1e-6)
    noisy = hs.detector_signal(n, gain=2.0, gain_spread=0.5, read_noise=4.0, seed=3)
    # var = g^2 (mean + spread^2 mean) + read^2 = 4 (50 + 12.5) + 16
    assert noisy.mean() == pytest.approx(100.0, rel=0.01)
    assert noisy.var() == pytest.approx(266.0, rel=0.05)
    lines = hs.detector_signal(n, line_noise=5.0, seed=4)
    row_means = (lines - n).mean(axis=1)
    assert row_means.std() == pytest.approx(5.0, rel=0.15)  # one offset per scan row
    assert np.abs(np.diff(lines - n, axis=1)).max() < 1e-3  # constant along each row


def test_recorded_image_mean_is_fraction_times_dose_times_area():
    cond = hs.HAADFConditions(dose=3e5, probe_fwhm=1.0, background=1e-4)
    pos, species = np.array([[3.2, 3.2], [3.2, 4.62]]), np.array([0, 1])
    draws = [hs.haadf_image(pos, species, (64, 64), 0.1, cond, seed=s) for s in range(200)]
    mean = np.mean([d[0] for d in draws], axis=0)
    frac = draws[0][1]
    np.testing.assert_allclose(mean, frac * 3e5 * 0.01, atol=0.35 + 0.1 * frac.max() * 3e3)


def test_fraction_integrates_to_the_cross_sections_and_peaks_on_the_atoms():
    px = 0.1
    cond = hs.HAADFConditions(dose=1e6, sigma_c=1e-3, z_exponent=1.7, probe_fwhm=0.9,
                           astigmatism=1.3, astig_angle=0.4, tail_fraction=0.2, tail_fwhm=2.5)
    c = hs.haadf_fraction([[4.0, 4.0]], [0], (80, 80), px, cond)
    si = hs.haadf_fraction([[4.0, 4.0]], [1], (80, 80), px, cond)
    # the probe integrates to 1 per A^2: the image sums to the cross-section
    assert c.sum() * px**2 == pytest.approx(1e-3, rel=0.02)
    assert si.sum() / c.sum() == pytest.approx((14 / 6) ** 1.7, rel=1e-6)
    peak = np.unravel_index(np.argmax(c), c.shape)
    assert peak == (40, 40)
    assert c.max() < 1e-3 * 4 * np.log(2) / (np.pi * 0.9**2)  # tails and astigmatism spread it


def test_drift_moves_the_truth_with_the_image():
    cond = hs.HAADFConditions(dose=1e7, drift=(0.01, 0.02), probe_fwhm=0.8)
    pos = np.array([[2.0, 2.0], [6.0, 6.0]])
    _, frac, px = hs.haadf_image(pos, [0, 0], (96, 96), 0.1, cond, seed=0)
    labels, _ = ndimage.label(frac > 0.5 * frac.max())
    centres = np.array(ndimage.center_of_mass(frac, labels, [1, 2]))
    # rows are compressed by a / (a + drift_r), columns sheared by drift_c per row
    assert np.abs(px - pos / 0.1).max() > 1.0
    np.testing.assert_allclose(centres, px, atol=0.15)


# ------------------------------------------------------------------------------ randomisation
def test_random_conditions_cover_the_dose_range_and_are_seeded():
    a, b = hs.random_haadf_conditions(5), hs.random_haadf_conditions(5)
    assert a == b and a != hs.random_haadf_conditions(6)
    doses = np.array([hs.random_haadf_conditions(s).dose for s in range(300)])
    assert doses.min() >= 1e4 and doses.max() <= 1e7
    assert (doses < 3e4).any() and (doses > 3e6).any()  # log-uniform: both ends drawn
    gains = {hs.random_haadf_conditions(s).gain for s in range(50)}
    assert 1.0 in gains and len(gains) > 20  # ideal counters and random detectors both occur


def test_training_frames_are_reproducible_by_seed_and_labelled():
    one = hs.graphene_haadf_frames(2, 96, 0.1, seed=3)
    two = hs.graphene_haadf_frames(2, 96, 0.1, seed=3)
    np.testing.assert_array_equal(one.frames, two.frames)
    np.testing.assert_array_equal(one.masks, two.masks)
    assert one.conditions == two.conditions
    other = hs.graphene_haadf_frames(2, 96, 0.1, seed=4)
    assert not np.array_equal(one.frames, other.frames)
    assert one.frames.shape == one.masks.shape == (2, 96, 96) and one.pixel_size == 0.1
    for a, m in zip(one.atoms, one.masks):
        r, c = np.round(a[:, 0]).astype(int), np.round(a[:, 1]).astype(int)
        np.testing.assert_array_equal(m[r, c], a[:, 2].astype(int) + 1)  # C 1, Si 2
        assert len(a) > 5


def test_bin_images_sums_blocks_and_maps_positions():
    x = np.arange(36, dtype=float).reshape(6, 6)
    b = bin_images(x, 2)
    assert b.shape == (3, 3) and b[0, 0] == 0 + 1 + 6 + 7
    assert bin_images(np.ones((2, 7, 5)), 2).shape == (2, 3, 2)  # ragged edges dropped
    assert bin_images(x, 2).sum() == x.sum()  # counts are preserved
    # a blob at x (input px) lands at (x - (f - 1) / 2) / f: AtomFinder.find maps back with it
    rr, cc = np.mgrid[:64, :64]
    blob = np.exp(-((rr - 20.3) ** 2 + (cc - 31.7) ** 2) / (2 * 3.0**2))
    for f in (2, 3):
        com = np.array(ndimage.center_of_mass(bin_images(blob, f)))
        np.testing.assert_allclose(com * f + (f - 1) / 2, [20.3, 31.7], atol=0.02)


@pytest.mark.parametrize("call, match", [
    (lambda: hs.haadf_counts(np.full((4, 4), -0.1), 1e5, 0.1), r"\[0, 1\]"),
    (lambda: hs.haadf_counts(np.full((4, 4), 2.0), 1e5, 0.1), "divide an image in counts"),
    (lambda: hs.haadf_counts(np.full((4, 4), np.nan), 1e5, 0.1), "NaN"),
    (lambda: hs.haadf_counts(np.zeros(4), 1e5, 0.1), r"\(H, W\)"),
    (lambda: hs.haadf_counts(np.zeros((4, 4)), 0.0, 0.1), "dose must be > 0"),
    (lambda: hs.haadf_counts(np.zeros((4, 4)), 1e5, -0.1), "pixel_size"),
    (lambda: hs.detector_signal(-np.ones((4, 4))), "non-negative"),
    (lambda: hs.detector_signal(np.ones((4, 4)), gain=0.0), "gain"),
    (lambda: hs.haadf_fraction([[1.0, 1.0]], [0], (8, 8), 0.1,
                            hs.HAADFConditions(dose=1e5, astigmatism=0.5)), "astigmatism"),
    (lambda: hs.haadf_fraction([[1.0, 1.0]], [0], (8, 8), 0.1, {"dose": 1e5}), "HAADFConditions"),
    (lambda: hs.haadf_fraction([[1.0, 1.0]], [0, 1], (8, 8), 0.1, hs.HAADFConditions(dose=1e5)),
     "species"),
    (lambda: hs.haadf_fraction([[1.0, 1.0]], [2], (8, 8), 0.1, hs.HAADFConditions(dose=1e5)),
     "0 \\(C\\) or 1 \\(Si\\)"),
    (lambda: hs.random_haadf_conditions(0, dose_range=(1e5, 1e4)), "dose_range"),
    (lambda: hs.graphene_haadf_frames(1, 32, si_fraction_range=(0.1, 0.5)), "si_fraction_range"),
    (lambda: bin_images(np.ones((4, 4)), 0), "factor"),
])
def test_bad_input_names_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------------------ science
def _threshold_f1(frames, true, pixel_size, margin):
    """Best F1 of a fixed-threshold finder (smooth by the probe, standardise, blobs above
    ``z`` sd) over a small grid of ``z``, tuned on the test truth: the baseline's best case."""
    best = 0.0
    for z in (0.0, 0.5, 1.0, 1.5):
        found = []
        for frame in frames:
            smooth = ndimage.gaussian_filter(frame.astype(float), 0.3 / pixel_size)
            score = (smooth - smooth.mean()) / smooth.std() - z
            found.append(find_atoms(1 / (1 + np.exp(-score)), threshold=0.5, margin=margin)[:, :2])
        best = max(best, detection_scores([t[:, :2] for t in true], found, 0.5 / pixel_size).f1)
    return best


def test_briefly_trained_finder_beats_a_threshold_at_low_dose():
    torch.set_num_threads(1)
    finder = train_atom_finder(pixel_size=0.1, n_frames=8, size=96, steps=160, batch_size=8,
                               crop=48, seed=0, device="cpu", progress=False)
    # held out: other seeds, one low dose (a C atom peaks at ~2 electrons per 0.1 A pixel)
    test = hs.graphene_haadf_frames(3, 96, 0.1, seed=12345, dose_range=(1e5, 1e5),
                                 sigma_c_range=(1e-3, 1e-3), probe_fwhm_range=(1.0, 1.0),
                                 ideal_detector=1.0)
    margin = 3.0
    true = [np.column_stack([a[inside_frame(a, (96, 96), margin), :2],
                             a[inside_frame(a, (96, 96), margin), 2] + 1]) for a in test.atoms]
    net = detection_scores(true, finder.find(test.frames, margin=margin), 5.0)
    base_f1 = _threshold_f1(test.frames, true, 0.1, margin)
    assert net.f1 > 0.6, net
    assert net.f1 > base_f1 + 0.1, (net.f1, base_f1)
