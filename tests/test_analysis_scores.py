"""helpers.analysis.scores: every score takes the truth first, as scikit-learn does, and
scores known cases (perfect, offset, anti-correlated, shuffled) correctly."""

import numpy as np
import pytest
from sklearn import metrics as skm

from helpers.analysis import scores as SC


# -------------------------------------------------------------------------- argument order
def test_r2_score_matches_sklearn_with_the_truth_first():
    rng = np.random.default_rng(0)
    y_true = rng.normal(size=(40, 6)) * np.arange(1, 7)
    y_pred = 0.5 * y_true + rng.normal(size=(40, 6))
    ours = SC.r2_score(y_true, y_pred)
    assert ours == pytest.approx(skm.r2_score(y_true, y_pred, multioutput="variance_weighted"))
    # the score is not symmetric: swapping the arguments gives another number
    assert SC.r2_score(y_pred, y_true) != pytest.approx(ours, rel=1e-3)
    # (N, h, w) samples are flattened per sample
    assert SC.r2_score(y_true.reshape(40, 2, 3), y_pred.reshape(40, 2, 3)) == pytest.approx(ours)
    # (N,) values: the usual R^2
    assert SC.r2_score(y_true[:, 0], y_pred[:, 0]) == pytest.approx(
        skm.r2_score(y_true[:, 0], y_pred[:, 0]))
    t = rng.normal(size=(50, 8))
    assert SC.r2_score(t, t) == 1.0
    assert SC.r2_score(t, np.broadcast_to(t.mean(0), t.shape)) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="NaN"):
        SC.r2_score(t[:2, :2], np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="constant"):
        SC.r2_score(np.ones((3, 2)), t[:3, :2])


def test_normalized_rmse_and_patch_ssim_take_their_scale_from_the_truth():
    t = np.random.default_rng(0).normal(size=(50, 8))
    np.testing.assert_allclose(SC.normalized_rmse(t, t + 0.5, scale=1.0), 0.5)
    # default scale: the spread of y_true, not of the prediction
    np.testing.assert_allclose(SC.normalized_rmse(t, 3 * t),
                               np.sqrt(np.mean((2 * t) ** 2, axis=1)) / t.std())
    p = t.reshape(50, 2, 4)
    np.testing.assert_allclose(SC.patch_ssim(p, p), 1.0)
    q = p - p.mean(axis=(1, 2), keepdims=True)
    assert (SC.patch_ssim(q, -q) < 0).all()  # anti-correlated structure
    # data range from y_true: a prediction with a larger range does not relax the constants
    assert SC.patch_ssim(p, 10 * p)[0] == pytest.approx(
        SC.patch_ssim(p, 10 * p, data_range=float(np.ptp(p)))[0])
    with pytest.raises(ValueError, match="same shape"):
        SC.patch_ssim(p, p[:3])


def test_recovery_r2_modes_and_order():
    rng = np.random.default_rng(0)
    t = rng.standard_normal(200)
    assert SC.recovery_r2(t, t + 3.0) == pytest.approx(1.0)  # offsets are not identifiable
    assert SC.recovery_r2(t, 2 * t) == pytest.approx(0.0, abs=1e-9)  # ... but the slope is
    # the truth sets SS_tot: a half-size truth against a full-size estimate scores 0.75
    assert SC.recovery_r2(2 * t, t) == pytest.approx(0.75)
    assert SC.recovery_r2(t, 2 * t + 1, mode="affine") == pytest.approx(1.0)
    assert SC.recovery_r2(t, rng.standard_normal(200), mode="affine") < 0.05
    with pytest.raises(ValueError, match="constant"):
        SC.recovery_r2(np.ones(200), t)
    with pytest.raises(ValueError, match="same length"):
        SC.recovery_r2(t[:10], t)
    with pytest.raises(ValueError, match="complex"):
        SC.recovery_r2(t, t + 1j)
    with pytest.raises(ValueError, match="mode"):
        SC.recovery_r2(t, t, mode="slope")


def test_interval_coverage_counts_the_truth_inside_its_interval():
    t = np.arange(10.0)
    assert SC.interval_coverage(t, t - 1, t + 1) == 1.0
    assert SC.interval_coverage(t, t + 0.5, t + 1) == 0.0
    assert SC.interval_coverage(t, np.full(10, 2.0), np.full(10, 6.0)) == 0.5  # 2..6 inclusive
    with pytest.raises(ValueError, match="shapes differ"):
        SC.interval_coverage(t, t[:3], t)


def test_error_ratio():
    assert SC.error_ratio(np.array([2.0, 2.0, 1.0, 1.0]), np.array([1, 1, 0, 0], bool)) == 2.0
    with pytest.raises(ValueError, match="some but not all"):
        SC.error_ratio(np.ones(3), np.ones(3, bool))


# -------------------------------------------------------------------------- angles
def test_circular_correlation_is_signed_offset_free_and_symmetry_aware():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 2 * np.pi, 400)
    assert SC.circular_correlation(a, a + 1.0) == pytest.approx(1.0)
    assert SC.circular_correlation(a, -a + 0.3) == pytest.approx(-1.0)
    assert abs(SC.circular_correlation(a, rng.uniform(0, 2 * np.pi, 400))) < 0.15
    flips = a + np.pi * rng.integers(0, 2, 400)
    assert SC.circular_correlation(a, flips) < 0.2
    assert SC.circular_correlation(a, flips, symmetry=2) > 0.99
    groups = rng.integers(0, 3, 400)
    assert SC.circular_correlation(a, a + groups, groups=groups) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="equal length"):
        SC.circular_correlation(a, a[:10])


def test_angle_error_is_the_estimate_minus_the_truth_after_the_offset():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 2 * np.pi, 400)
    assert np.abs(SC.angle_error(a, a + 0.2)).max() < 1e-9
    noise = rng.normal(0, 0.05, 400)
    err = SC.angle_error(a, a + 0.7 + noise)
    np.testing.assert_allclose(err, noise - noise.mean(), atol=5e-3)
    # modulo pi for a two-fold symmetric object: errors lie in (-pi/2, pi/2]
    err2 = SC.angle_error(a, a + np.pi * rng.integers(0, 2, 400), symmetry=2)
    assert np.abs(err2).max() < 1e-9


def test_angle_leak_sees_the_angle_in_latents_that_encode_it():
    rng = np.random.default_rng(2)
    angle = rng.uniform(0, 2 * np.pi, 300)
    leaky = np.c_[np.cos(angle), np.sin(angle)] + rng.normal(0, 0.05, (300, 2))
    assert SC.angle_leak(angle, leaky) > 0.9
    assert SC.angle_leak(angle, rng.normal(size=(300, 2))) < 0.3
    with pytest.raises(ValueError, match="rows"):
        SC.angle_leak(angle, leaky[:10])


# -------------------------------------------------------------------------- classes
def test_confusion_hungarian_and_purity():
    labels = np.repeat(np.arange(4), 25)
    assert SC.hungarian_accuracy(labels, (labels + 1) % 4) == 1.0
    assert SC.hungarian_accuracy(labels, np.zeros(100, int)) == 0.25
    m = SC.confusion_matrix([0, 0, 1], [1, 1, 1])
    np.testing.assert_array_equal(m, [[0, 2], [0, 1]])  # row = truth, column = prediction
    assert m.sum() == 3
    # 8 clusters, each holding one true class: pure, though not one-to-one
    clusters = np.arange(100) % 8 + 8 * (labels >= 2)
    assert SC.cluster_purity(labels // 2, clusters) == 1.0
    assert SC.hungarian_accuracy(labels // 2, clusters) < 0.5
    assert SC.cluster_purity(labels, np.zeros(100, int)) == 0.25
    with pytest.raises(ValueError, match="differ in length"):
        SC.confusion_matrix(labels, labels[:5])


def test_hungarian_correct_marks_each_sample_under_the_best_matching():
    labels = np.array([0, 0, 0, 1, 1, 1])
    clusters = np.array([1, 1, 0, 0, 0, 0])  # cluster 1 -> label 0, cluster 0 -> label 1
    ok = SC.hungarian_correct(labels, clusters)
    np.testing.assert_array_equal(ok, [True, True, False, True, True, True])
    assert ok.mean() == SC.hungarian_accuracy(labels, clusters)


def test_hungarian_correct_matches_within_each_group():
    # two grains whose sublattice names are swapped: one matching for both would score 0.5,
    # a matching per grain scores every atom right
    truth = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    modes = np.array([0, 1, 0, 1, 1, 0, 1, 0])
    grain = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert SC.hungarian_correct(truth, modes).mean() == 0.5
    assert SC.hungarian_correct(truth, modes, groups=grain).all()
    # one wrong atom in grain 1 stays wrong under its grain's matching
    modes[4] = 0
    np.testing.assert_array_equal(SC.hungarian_correct(truth, modes, groups=grain),
                                  [True] * 4 + [False, True, True, True])
    with pytest.raises(ValueError, match="one group per sample"):
        SC.hungarian_correct(truth, modes, groups=grain[:3])
    with pytest.raises(ValueError, match="empty"):
        SC.hungarian_correct([], [])


def test_binomial_margin_is_n_standard_errors_of_a_rate():
    # 0.5 on 100 items: one standard error is 0.05
    assert SC.binomial_margin(0.5, 100) == pytest.approx(0.1)
    assert SC.binomial_margin(0.5, 100, n_se=1.0) == pytest.approx(0.05)
    assert SC.binomial_margin(1.0, 100) == 0.0  # a certain rate has no spread
    # four times the items halve the margin
    assert SC.binomial_margin(0.8, 400) == pytest.approx(SC.binomial_margin(0.8, 100) / 2)
    # the coverage verdict's tolerance is this margin around the nominal level
    assert SC.coverage_verdict(0.9, 50)[1] == pytest.approx(SC.binomial_margin(0.95, 50))
    with pytest.raises(ValueError, match="rate in"):
        SC.binomial_margin(1.2, 10)
    with pytest.raises(ValueError, match="n >= 1"):
        SC.binomial_margin(0.5, 0)


def test_paired_accuracy_test_counts_only_the_discordant_items():
    # a clear winner: a right on all 1000 items, b wrong on 20 of them
    a = np.ones(1000, bool)
    b = a.copy()
    b[:20] = False
    acc_a, acc_b, p, n = SC.paired_accuracy_test(a, b)
    assert (acc_a, acc_b, n) == (1.0, 0.98, 20)
    assert p == pytest.approx(2 * 0.5 ** 20)  # two-sided exact binomial, 20 of 20
    # equal discordant counts (5 each way) on many shared errors: no difference, p = 1
    a, b = np.zeros(1000, int), np.zeros(1000, int)
    a[:5], b[5:10] = 1, 1
    a[100:], b[100:] = 1, 1
    acc_a, acc_b, p, n = SC.paired_accuracy_test(a, b)
    assert acc_a == acc_b and n == 10 and p == pytest.approx(1.0)
    assert SC.paired_accuracy_test(a, a)[2:] == (1.0, 0)  # no discordant item
    with pytest.raises(ValueError, match="equal length"):
        SC.paired_accuracy_test(a, a[:5])
    with pytest.raises(ValueError, match="boolean"):
        SC.paired_accuracy_test(a * 2, a)


def test_latent_correlations_per_latent():
    rng = np.random.default_rng(3)
    factor = rng.normal(size=500)
    z = np.c_[rng.normal(size=500), -2 * factor + 0.01 * rng.normal(size=500)]
    r = SC.latent_correlations(factor, z)
    assert r.shape == (2,) and abs(r[0]) < 0.15 and r[1] < -0.99
    with pytest.raises(ValueError, match="rows"):
        SC.latent_correlations(factor[:10], z)


# -------------------------------------------------------------------------- detection
def test_detection_scores_counts():
    true = np.array([[0, 0, 1], [10, 10, 2], [20, 20, 1]], dtype=float)
    pred = np.array([[0.3, 0, 1], [10, 10.4, 1], [50, 50, 1]], dtype=float)
    s = SC.detection_scores(true, pred, 0.5)
    assert (s.n_matched, s.n_pred, s.n_true) == (2, 3, 3)
    assert s.f1 == pytest.approx(2 / 3) and s.class_accuracy == 0.5
    assert s.class_recall(2) == 0.0 and s.class_recall(1) == 1.0
    # the confusion matrix has the truth in rows: the true Si (2) was found as C (1)
    assert s.confusion[2, 1] == 1 and s.class_precision(1) == 0.5
    pooled = SC.detection_scores([true, true], [pred, pred], 0.5)
    assert pooled.n_matched == 4 and pooled.confusion.sum() == 4
    # one-to-one: two detections near one atom count once
    s = SC.detection_scores(np.array([[0.0, 0.0]]), np.array([[0, 0.1], [0, -0.1]]), 0.5)
    assert s.n_matched == 1 and s.precision == 0.5 and s.recall == 1.0


def test_match_points_pairs_are_true_then_found():
    true = np.array([[0.0, 0.0], [10.0, 10.0], [30.0, 30.0]])
    found = np.array([[10.2, 10.0], [50.0, 50.0], [0.0, 0.3]])
    pairs, d = SC.match_points(true, found, max_distance=1.0)
    order = np.argsort(pairs[:, 0])
    np.testing.assert_array_equal(pairs[order], [[0, 2], [1, 0]])
    np.testing.assert_allclose(d[order], [0.3, 0.2])
    empty, dist = SC.match_points(true, np.zeros((0, 2)), 1.0)
    assert empty.shape == (0, 2) and dist.shape == (0,)
    with pytest.raises(ValueError, match=r"\(N, 2\+\)"):
        SC.match_points(np.zeros(3), found, 1.0)


def test_link_accuracy_counts_true_links_kept_by_the_predicted_ids():
    true = [np.array([0, 1, 2]), np.array([2, 1, 0])]
    perfect = [np.array([5, 6, 7]), np.array([7, 6, 5])]
    assert SC.link_accuracy(true, perfect) == 1.0
    one_broken = [np.array([5, 6, 7]), np.array([7, 6, 9])]
    assert SC.link_accuracy(true, one_broken) == pytest.approx(2 / 3)
    # objects without a true identity (-1) are skipped
    assert SC.link_accuracy([np.array([0, -1]), np.array([0, -1])],
                            [np.array([1, 2]), np.array([1, 3])]) == 1.0
    with pytest.raises(ValueError, match="same lengths"):
        SC.link_accuracy(true, [np.array([5, 6]), np.array([7, 6, 5])])


def test_link_precision_penalises_wrong_joins_that_link_accuracy_ignores():
    # object 1 leaves and object 2 arrives; the tracker joins them on one trajectory (11)
    true = [np.array([0, 1]), np.array([0, 2])]
    joined = [np.array([10, 11]), np.array([10, 11])]
    assert SC.link_accuracy(true, joined) == 1.0  # the one true link (0 -> 0) is kept
    assert SC.link_precision(true, joined) == pytest.approx(1 / 2)  # 1 -> 2 is wrong
    assert SC.link_precision(true, [np.array([10, 11]), np.array([10, 12])]) == 1.0
    # links across a missed frame (gap closing) are scored by the precision; the recall
    # counts them only when its max_gap allows
    gap_true = [np.array([0]), np.array([], int), np.array([0])]
    gap_pred = [np.array([5]), np.array([], int), np.array([5])]
    assert SC.link_precision(gap_true, gap_pred) == 1.0
    assert SC.link_precision([np.array([0]), np.array([], int), np.array([1])], gap_pred) == 0.0
    assert np.isnan(SC.link_accuracy(gap_true, gap_pred))
    assert SC.link_accuracy(gap_true, gap_pred, max_gap=1) == 1.0
    # detections without a true identity (-1) are excluded, but a switch of objects through
    # one of them still counts as one wrong link
    pred = [np.array([5]), np.array([5]), np.array([5])]
    assert SC.link_precision([np.array([0]), np.array([-1]), np.array([0])], pred) == 1.0
    assert SC.link_precision([np.array([0]), np.array([-1]), np.array([1])], pred) == 0.0
    assert np.isnan(SC.link_precision([np.array([-1]), np.array([0])], [np.array([5])] * 2))
    # or every link touching one of them counts as wrong (a lower bound): 0 of 2 links here
    assert SC.link_precision([np.array([0]), np.array([-1]), np.array([0])], pred,
                             unidentified="wrong") == 0.0
    assert SC.link_precision(true, joined, unidentified="wrong") == pytest.approx(1 / 2)
    with pytest.raises(ValueError, match="more than once"):
        SC.link_precision([np.array([0, 1])], [np.array([5, 5])])
    with pytest.raises(ValueError, match="unidentified"):
        SC.link_precision(true, joined, unidentified="skip")


def test_link_accuracy_does_not_keep_links_of_unassigned_detections():
    # the tracker left both detections of a true link without a trajectory (id -1)
    assert SC.link_accuracy([np.array([0]), np.array([0])],
                            [np.array([-1]), np.array([-1])]) == 0.0
    assert SC.link_accuracy([np.array([0]), np.array([0])],
                            [np.array([4]), np.array([4])]) == 1.0
