"""Every score of a result against ground truth, in scikit-learn's argument order.

Each function takes the truth first and the estimate second, ``score(y_true, y_pred, ...)``,
like ``sklearn.metrics``:

- angles (radians): :func:`circular_correlation`, :func:`angle_error`, :func:`angle_leak`;
- classes: :func:`confusion_matrix`, :func:`hungarian_accuracy` (:func:`hungarian_correct`
  per sample), :func:`cluster_purity`;
- latents against a known factor: :func:`latent_correlations`;
- regression and uncertainty: :func:`recovery_r2`, :func:`interval_coverage`;
- spectra and patches: :func:`normalized_rmse`, :func:`r2_score`, :func:`patch_ssim`,
  :func:`error_ratio`;
- detection of positions: :func:`match_points`, :func:`detection_scores`
  (:class:`DetectionScores`);
- tracking: :func:`link_accuracy` (recall of the links), :func:`link_precision`; events
  along trajectories (class changes): :func:`event_scores` (:class:`EventScores`);
- probabilities and latents: :func:`reliability_curve`, :func:`expected_calibration_error`,
  :func:`knn_r2`.

Positions are ``(row, col)`` in pixels (or any unit shared by truth and estimate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import real_array
from .circular import circular_mean

__all__ = [
    "circular_correlation",
    "angle_error",
    "angle_leak",
    "confusion_matrix",
    "hungarian_accuracy",
    "hungarian_correct",
    "paired_accuracy_test",
    "cluster_purity",
    "latent_correlations",
    "recovery_r2",
    "interval_coverage",
    "normalized_rmse",
    "r2_score",
    "within_group_abs_r",
    "patch_ssim",
    "error_ratio",
    "match_points",
    "DetectionScores",
    "detection_scores",
    "link_accuracy",
    "link_precision",
    "reliability_curve",
    "expected_calibration_error",
    "knn_r2",
    "relative_error",
    "regret_auc",
    "match_maps",
    "EventScores",
    "event_scores",
    "best_threshold_accuracy",
    "knn_accuracy",
    "binomial_margin",
    "coverage_verdict",
    "error_curve_auc",
]


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------
def _finite(arr, name: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    """``arr`` as float64 after checking its number of dimensions, emptiness and NaN/inf."""
    out = np.asarray(real_array(arr, name), dtype=np.float64)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if out.ndim not in allowed:
        raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, "
                         f"got shape {out.shape}")
    if out.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(out).all():
        raise ValueError(f"{name} holds NaN or inf values; clean or mask them first")
    return out


def _pair(y_true, y_pred, ndim) -> tuple[np.ndarray, np.ndarray]:
    """Truth and estimate as finite float64 arrays of one shape."""
    t = _finite(y_true, "y_true", ndim)
    p = _finite(y_pred, "y_pred", ndim)
    if p.shape != t.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} must have the same shape")
    return t, p


def _angles(a, name: str) -> np.ndarray:
    a = np.asarray(real_array(a, name), dtype=np.float64).reshape(-1)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds non-finite angles")
    return a


def _labels(x, name: str) -> np.ndarray:
    return np.asarray(real_array(x, name)).astype(int).reshape(-1)


# --------------------------------------------------------------------------------------------
# angles
# --------------------------------------------------------------------------------------------
def circular_correlation(y_true, y_pred, symmetry: int = 1, groups=None) -> float:
    """Fisher-Lee circular correlation of true and estimated angles (radians), ``(N,)`` each.

    Signed and independent of a constant offset: +1 when ``y_pred = y_true + c`` (same sense
    of rotation), -1 when ``y_pred = -y_true + c``, ~0 when unrelated. Unlike the
    Jammalamadaka-SenGupta coefficient it stays well defined for angles spread uniformly over
    the full circle. ``symmetry=n`` compares the angles modulo ``2 pi / n`` (an n-fold
    symmetric object). ``groups`` ``(N,)`` (e.g. discovered classes, each with its own
    canonical orientation): a separate constant offset is removed from the estimate in each
    group before pooling.
    """
    b = _angles(y_true, "y_true") * symmetry
    a = _angles(y_pred, "y_pred") * symmetry
    if a.shape != b.shape or a.size < 3:
        raise ValueError(f"need two angle arrays of equal length >= 3, got {b.shape}, {a.shape}")
    if groups is not None:
        groups = np.asarray(groups).reshape(-1)
        if groups.shape != a.shape:
            raise ValueError(f"groups has shape {groups.shape}, angles {a.shape}")
        a = a.copy()
        for g in np.unique(groups):
            sel = groups == g
            a[sel] -= circular_mean(a[sel] - b[sel])
    sa, ca, sb, cb = np.sin(a), np.cos(a), np.sin(b), np.cos(b)
    # sum_{i,j} sin(a_i - a_j) sin(b_i - b_j), expanded to O(N)
    num = (sa @ sb) * (ca @ cb) - (sa @ cb) * (ca @ sb)
    da = (sa @ sa) * (ca @ ca) - (sa @ ca) ** 2
    db = (sb @ sb) * (cb @ cb) - (sb @ cb) ** 2
    if da <= 0 or db <= 0:
        return 0.0
    return float(num / np.sqrt(da * db))


def angle_error(y_true, y_pred, symmetry: int = 1) -> np.ndarray:
    """Per-sample error ``y_pred - y_true`` after removing the best constant offset, wrapped
    to ``(-pi/n, pi/n]`` for an n-fold symmetric object; radians, ``(N,)``."""
    b = _angles(y_true, "y_true") * symmetry
    a = _angles(y_pred, "y_pred") * symmetry
    if a.shape != b.shape:
        raise ValueError(f"y_true {b.shape} and y_pred {a.shape} must have the same length")
    offset = circular_mean(a - b)
    d = np.angle(np.exp(1j * (a - b - offset)))
    return d / symmetry


def _knn_out_of_fold(x, target, k: int, folds, groups=None) -> np.ndarray:
    """Out-of-fold k-nearest-neighbour predictions of ``target`` ``(N,)`` or ``(N, m)`` from
    ``x`` ``(N, D)`` over the splitter ``folds``; the features are standardised with each
    training fold's mean and standard deviation only, as the regression is fitted."""
    from sklearn.model_selection import cross_val_predict
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), KNeighborsRegressor(k))
    return cross_val_predict(model, x, target, cv=folds, groups=groups)


def angle_leak(y_true, z, symmetry=(1, 2), n_neighbors: int = 15, seed: int = 0) -> float:
    """How much of the true angle ``y_true`` ``(N,)`` (radians) a set of latents ``z``
    ``(N, D)`` encodes.

    The circular correlation between ``y_true`` and the angle predicted from ``z`` by
    k-nearest-neighbour regression of ``(cos n t, sin n t)`` (5-fold cross-validated, latents
    standardised with the training folds' statistics), the highest over the symmetries ``n``
    in ``symmetry`` (default 1 and 2: a plain VAE often encodes an elongated object's axis,
    i.e. the angle modulo pi). ~1 for latents that encode the rotation, ~0 for
    rotation-invariant ones.
    """
    from sklearn.model_selection import KFold

    angle = _angles(y_true, "y_true")
    z = np.asarray(real_array(z, "z"), dtype=np.float64).reshape(len(z), -1)
    if len(z) != len(angle):
        raise ValueError(f"z has {len(z)} rows but y_true has {len(angle)} angles")
    folds = KFold(5, shuffle=True, random_state=seed)
    best = -1.0
    for n in np.atleast_1d(symmetry):
        t = angle * int(n)
        pred = _knn_out_of_fold(z, np.c_[np.cos(t), np.sin(t)], n_neighbors, folds)
        best = max(best, circular_correlation(t, np.arctan2(pred[:, 1], pred[:, 0])))
    return best


# --------------------------------------------------------------------------------------------
# classes
# --------------------------------------------------------------------------------------------
def confusion_matrix(y_true, y_pred, n_classes: int | None = None) -> np.ndarray:
    """Counts ``(K, K)``: row = true label, column = predicted class or cluster index
    (``K = n_classes``, default the largest label + 1)."""
    labels, clusters = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if labels.shape != clusters.shape:
        raise ValueError(f"y_true {labels.shape} and y_pred {clusters.shape} differ in length")
    n = n_classes or int(max(labels.max(), clusters.max()) + 1)
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (labels, clusters), 1)
    return m


def hungarian_accuracy(y_true, y_pred, n_classes: int | None = None) -> float:
    """Fraction of samples whose cluster maps to their label under the best one-to-one
    matching of clusters to labels (Hungarian algorithm); the mean of
    :func:`hungarian_correct`."""
    return float(hungarian_correct(y_true, y_pred, n_classes=n_classes).mean())


def hungarian_correct(y_true, y_pred, groups=None, n_classes: int | None = None) -> np.ndarray:
    """Whether each sample's cluster maps to its label under the best one-to-one matching of
    clusters to labels (Hungarian algorithm on the confusion matrix).

    Args:
        y_true: ``(N,)`` integer labels >= 0. y_pred: ``(N,)`` integer cluster indices >= 0.
        groups: optional ``(N,)`` group of each sample; the matching is then made within each
            group on its own (a label convention that holds per group only, e.g. the two
            graphene sublattices, whose names swap in a grain turned by 60 degrees).
        n_classes: size of the confusion matrix (default: the largest label or cluster + 1).

    Returns:
        ``(N,)`` bool; its mean over one group is that group's :func:`hungarian_accuracy`.
        Per-sample correctness is what a paired test of two clusterings of the same samples
        needs (:func:`paired_accuracy_test`).
    """
    from scipy.optimize import linear_sum_assignment

    labels, clusters = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if labels.shape != clusters.shape:
        raise ValueError(f"y_true {labels.shape} and y_pred {clusters.shape} differ in length")
    if not len(labels):
        raise ValueError("y_true and y_pred are empty: nothing to score")
    if groups is None:
        g = np.zeros(len(labels), dtype=np.int64)
    else:
        g = np.asarray(groups).reshape(-1)
        if g.shape != labels.shape:
            raise ValueError(f"groups {g.shape} must give one group per sample "
                             f"{labels.shape}")
    n = n_classes or int(max(labels.max(), clusters.max()) + 1)
    correct = np.zeros(len(labels), dtype=bool)
    for k in np.unique(g):
        on = g == k
        m = confusion_matrix(labels[on], clusters[on], n)
        rows, cols = linear_sum_assignment(-m)
        label_of = np.full(n, -1)
        label_of[cols] = rows  # cluster -> the label it is matched to
        correct[on] = label_of[clusters[on]] == labels[on]
    return correct


def paired_accuracy_test(correct_a, correct_b) -> tuple[float, float, float, int]:
    """McNemar's exact test: do two methods scored on the *same* items differ in accuracy?

    Only the discordant items count: ``b`` items that method a gets right and b wrong, ``c``
    the reverse. Under "equally accurate" each discordant item goes either way with
    probability 1/2, so the two-sided p is the exact binomial test of ``b`` in ``b + c``.
    The items of one data set are the repeats, so it says nothing about other data sets.

    Args:
        correct_a: ``(N,)`` bool (or 0/1), whether method a got item i right.
        correct_b: ``(N,)`` bool (or 0/1), the same for method b, items in the same order.

    Returns:
        ``(accuracy_a, accuracy_b, p_value, n_discordant)``: accuracies in [0, 1], the
        two-sided p (1.0 when no item is discordant) and ``b + c``.
    """
    from scipy.stats import binomtest

    a, b = (np.asarray(x).reshape(-1) for x in (correct_a, correct_b))
    if a.shape != b.shape or not len(a):
        raise ValueError(f"correct_a {a.shape} and correct_b {b.shape} must be non-empty and "
                         "of equal length")
    for x, name in ((a, "correct_a"), (b, "correct_b")):
        if not np.isin(x, (0, 1)).all():
            raise ValueError(f"{name} must be boolean (or 0/1)")
    a, b = a.astype(bool), b.astype(bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = only_a + only_b
    p = 1.0 if n == 0 else float(binomtest(only_a, n, 0.5).pvalue)
    return float(a.mean()), float(b.mean()), p, n


def cluster_purity(y_true, y_pred) -> float:
    """Fraction of samples that share the majority true label of their cluster.

    Unlike :func:`hungarian_accuracy` several clusters may carry the same label, so it scores
    an over-segmentation (16 clusters of 4 true orientations) without penalty. In [0, 1].
    """
    m = confusion_matrix(y_true, y_pred)
    return float(m.max(0).sum() / m.sum())


def latent_correlations(y_true, z) -> np.ndarray:
    """Pearson correlation of each latent with a known factor.

    Args:
        y_true: ``(N,)`` the factor (a true shape parameter, local order...).
        z: ``(N, D)`` latents (e.g. ``Encoding.z``).

    Returns:
        ``(D,)`` signed r of each latent; ``np.abs(...).max()`` is how well the best latent
        follows the factor.
    """
    t = _finite(y_true, "y_true", 1)
    lat = _finite(z, "z", 2)
    if len(lat) != len(t):
        raise ValueError(f"z has {len(lat)} rows but y_true has {len(t)} values")
    return np.array([np.corrcoef(lat[:, j], t)[0, 1] for j in range(lat.shape[1])])


# --------------------------------------------------------------------------------------------
# regression and uncertainty
# --------------------------------------------------------------------------------------------
def recovery_r2(y_true, y_pred, mode: str = "offset") -> float:
    """R^2 of a recovered contribution ``y_pred`` against its ground truth ``y_true``.

    An additive decomposition is identifiable only up to a constant shared between terms, and a
    product only up to a scale, so ``mode`` says what is allowed before scoring:

    - ``"offset"``: both are centred (slope must be 1): ``1 - SS_res / SS_tot``;
    - ``"affine"``: the best line ``a * y_pred + b`` is fitted first (squared correlation);
    - ``"scale"``: only the least-squares scale ``a * y_pred`` is fitted, no offset, against
      ``y_true`` uncentred: a map in arbitrary units (an NMF abundance, whose scale belongs to
      its spectrum) that mixes in a constant or another component scores lower.

    Args:
        y_true, y_pred: arrays of the same size in the same units (pooled; any shape).

    Returns:
        R^2 as a float (1 is perfect; can be negative for ``"offset"``).
    """
    t = np.asarray(real_array(y_true, "y_true"), dtype=np.float64).ravel()
    e = np.asarray(real_array(y_pred, "y_pred"), dtype=np.float64).ravel()
    if e.shape != t.shape or e.size < 2:
        raise ValueError(f"y_true and y_pred need the same length (same size) >= 2, got "
                         f"{t.shape}, {e.shape}")
    if not (np.isfinite(e).all() and np.isfinite(t).all()):
        raise ValueError("y_true and y_pred must be finite")
    if mode == "scale":
        norm = float(e @ e)
        if not norm > 0:
            raise ValueError("y_pred is all zero: no scale fits; check the map")
        return r2_score(t, (t @ e / norm) * e)
    t = t - t.mean()
    e = e - e.mean()
    ss_tot = float(np.sum(t**2))
    if ss_tot == 0.0:
        raise ValueError("y_true is constant: R^2 is undefined")
    if mode == "offset":
        return 1.0 - float(np.sum((e - t) ** 2)) / ss_tot
    if mode == "affine":
        denom = float(np.sum(e**2))
        if denom == 0.0:
            return 0.0
        return float(np.sum(e * t)) ** 2 / (denom * ss_tot)
    raise ValueError(f"mode must be 'offset', 'affine' or 'scale', got {mode!r}")


def interval_coverage(y_true, low, high) -> float:
    """Fraction of ``y_true`` (N,) inside its predicted interval ``[low, high]`` (N,) each."""
    y, lo, hi = (np.asarray(real_array(a, n), dtype=np.float64) for a, n in
                 ((y_true, "y_true"), (low, "low"), (high, "high")))
    if not (y.shape == lo.shape == hi.shape):
        raise ValueError(f"shapes differ: {y.shape}, {lo.shape}, {hi.shape}")
    return float(np.mean((y >= lo) & (y <= hi)))


# --------------------------------------------------------------------------------------------
# spectra and patches
# --------------------------------------------------------------------------------------------
def normalized_rmse(y_true, y_pred, scale: float | None = None) -> np.ndarray:
    """Per-sample root-mean-square error divided by a common scale.

    Args:
        y_true, y_pred: ``(N, L)`` (or ``(N, ...)``) true and predicted spectra.
        scale: the normaliser; default the standard deviation of all values of ``y_true``
            (one number for the whole set, so errors are comparable between sites).

    Returns:
        ``(N,)`` dimensionless errors (0 is perfect; 1 is as large as the spread of the data).
    """
    t, p = _pair(y_true, y_pred, tuple(range(2, 8)))
    s = float(t.std()) if scale is None else float(scale)
    if not s > 0:
        raise ValueError("the normalising scale must be positive (is `y_true` constant?)")
    err = np.sqrt(np.mean((p - t).reshape(len(t), -1) ** 2, axis=1))
    return err / s


def r2_score(y_true, y_pred) -> float:
    """Coefficient of determination pooled over all points of all samples.

    ``1 - sum (y_pred - y_true)^2 / sum (y_true - mean_n y_true)^2``, the mean taken over
    samples at each point: ``sklearn.metrics.r2_score(y_true, y_pred,
    multioutput="variance_weighted")`` on the flattened samples. ``(N,)`` values or
    ``(N, ...)`` samples, the same shape for both.
    """
    t, p = _pair(y_true, y_pred, tuple(range(1, 8)))
    t, p = t.reshape(len(t), -1), p.reshape(len(p), -1)
    total = np.sum((t - t.mean(axis=0)) ** 2)
    if not total > 0:
        raise ValueError("y_true is constant across samples; R^2 is undefined")
    return float(1.0 - np.sum((p - t) ** 2) / total)


def patch_ssim(y_true, y_pred, data_range: float | None = None) -> np.ndarray:
    """Structural similarity of each predicted patch to the true one (one window per patch).

    For small patches (8x8) the whole patch is the SSIM window:
    ``(2 mu_p mu_t + C1)(2 cov + C2) / ((mu_p^2 + mu_t^2 + C1)(var_p + var_t + C2))`` with
    ``C1 = (0.01 R)^2``, ``C2 = (0.03 R)^2`` and ``R = data_range`` (default: the range of all
    of ``y_true``).

    Args:
        y_true, y_pred: ``(N, h, w)`` patches.

    Returns:
        ``(N,)`` SSIM values in [-1, 1] (1 is identical).
    """
    t, p = _pair(y_true, y_pred, 3)
    rng = float(np.ptp(t)) if data_range is None else float(data_range)
    if not rng > 0:
        raise ValueError("data_range must be positive (is `y_true` constant?)")
    c1, c2 = (0.01 * rng) ** 2, (0.03 * rng) ** 2
    p, t = p.reshape(len(p), -1), t.reshape(len(t), -1)
    mp, mt = p.mean(1), t.mean(1)
    vp, vt = p.var(1), t.var(1)
    cov = np.mean((p - mp[:, None]) * (t - mt[:, None]), axis=1)
    return ((2 * mp * mt + c1) * (2 * cov + c2)) / ((mp**2 + mt**2 + c1) * (vp + vt + c2))


def error_ratio(errors, mask) -> float:
    """Mean of ``errors`` where ``mask`` is True over its mean where it is False.

    Used as the domain-wall error ratio: ``errors`` ``(N,)`` per site, ``mask`` ``(N,)`` True
    at sites on a wall.
    """
    e = _finite(errors, "errors", 1)
    m = np.asarray(mask, dtype=bool)
    if m.shape != e.shape:
        raise ValueError(f"mask {m.shape} must match errors {e.shape}")
    if m.all() or not m.any():
        raise ValueError("mask must select some but not all sites")
    inside = float(e[~m].mean())
    if not inside > 0:
        raise ValueError("the mean error outside the mask is zero; the ratio is undefined")
    return float(e[m].mean()) / inside


# --------------------------------------------------------------------------------------------
# detection of positions
# --------------------------------------------------------------------------------------------
def _as_points(x, name: str) -> np.ndarray:
    arr = np.asarray(real_array(x, name), dtype=float)
    if arr.size == 0:
        return np.zeros((0, arr.shape[-1] if arr.ndim == 2 else 2))
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(f"{name} must be an (N, 2+) array [row, col, ...], got {arr.shape}")
    return arr


def match_points(y_true, y_pred, max_distance: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of true to found positions within ``max_distance``.

    Maximises the number of matched pairs, then minimises their total distance
    (``scipy.optimize.linear_sum_assignment`` on the points that have a candidate).

    Args:
        y_true: ``(M, 2+)`` true ``[row, col, ...]``; y_pred: ``(N, 2+)`` found positions
            (same units, e.g. pixels).
        max_distance: largest distance of a match, same units.

    Returns:
        ``(pairs, distances)``: ``(K, 2)`` int indices ``[i_true, i_pred]`` and ``(K,)``.
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial import cKDTree

    t = _as_points(y_true, "y_true")
    p = _as_points(y_pred, "y_pred")
    if not (np.isfinite(p[:, :2]).all() and np.isfinite(t[:, :2]).all()):
        raise ValueError("positions contain NaN or inf")
    empty = np.zeros((0, 2), int), np.zeros(0)
    if not len(p) or not len(t):
        return empty
    # rows of the assignment are the found points: a pair is (found, true) below
    cand = cKDTree(t[:, :2]).query_ball_point(p[:, :2], max_distance)
    rows = np.array([i for i, c in enumerate(cand) if c])
    if rows.size == 0:
        return empty
    cols = np.unique(np.concatenate([cand[i] for i in rows]))
    sub = np.linalg.norm(p[rows, None, :2] - t[None, cols, :2], axis=-1)
    big = 1e6 * (max_distance + 1)
    cost = np.where(sub <= max_distance, sub, big)
    r, c = linear_sum_assignment(cost)
    ok = cost[r, c] <= max_distance
    pairs = np.column_stack([cols[c[ok]], rows[r[ok]]])
    return pairs, sub[r[ok], c[ok]]


@dataclass
class DetectionScores:
    """Detection quality against ground truth.

    Attributes:
        precision, recall, f1: fractions in [0, 1].
        class_accuracy: fraction of matched detections with the right class (nan if no
            classes were given or nothing matched).
        confusion: ``(K, K)`` int counts of matched pairs, row = true class, column = found
            class (``K`` = largest class + 1; empty without classes). With a rare class (Si)
            the accuracy is dominated by the common one: read its row and column here.
        n_pred, n_true, n_matched: counts.
        mean_distance: mean distance of the matched pairs (input units).
        pairs: ``(M, 2)`` ``[i_true, i_pred]`` (empty when frames are pooled).
    """

    precision: float
    recall: float
    f1: float
    class_accuracy: float
    confusion: np.ndarray
    n_pred: int
    n_true: int
    n_matched: int
    mean_distance: float
    pairs: np.ndarray

    def class_recall(self, k: int) -> float:
        """Fraction of matched true class-``k`` objects found with class ``k`` (nan if none)."""
        if k >= len(self.confusion) or self.confusion[k].sum() == 0:
            return float("nan")
        return float(self.confusion[k, k] / self.confusion[k].sum())

    def class_precision(self, k: int) -> float:
        """Fraction of matched class-``k`` detections that are truly class ``k``."""
        if k >= len(self.confusion) or self.confusion[:, k].sum() == 0:
            return float("nan")
        return float(self.confusion[k, k] / self.confusion[:, k].sum())


def detection_scores(y_true, y_pred, max_distance: float) -> DetectionScores:
    """Precision, recall, F1 and class accuracy of found positions against the truth.

    Args:
        y_true: ``(M, 2)`` or ``(M, 3)`` true ``[row, col(, class)]``; y_pred: the found
            positions, same layout and class numbering (for graphene ground truth
            ``[row, col, species]`` use ``species + 1`` to match the mask classes).
        max_distance: a detection counts if it is matched (one-to-one) to a true position
            within this distance (same units as the positions).

    Lists of per-frame arrays for both ``y_true`` and ``y_pred`` pool all frames.
    """
    if isinstance(y_pred, (list, tuple)) and isinstance(y_true, (list, tuple)):
        if len(y_pred) != len(y_true):
            raise ValueError(f"y_true has {len(y_true)} frames but y_pred has {len(y_pred)}")
        parts = [detection_scores(t, p, max_distance) for t, p in zip(y_true, y_pred)]
        size = max((len(s.confusion) for s in parts), default=0)
        confusion = np.zeros((size, size), dtype=np.int64)
        for s in parts:
            k = len(s.confusion)
            confusion[:k, :k] += s.confusion
        n_matched = sum(s.n_matched for s in parts)
        dist = sum(s.mean_distance * s.n_matched for s in parts if s.n_matched)
        return _scores(sum(s.n_pred for s in parts), sum(s.n_true for s in parts), n_matched,
                       confusion, dist / n_matched if n_matched else float("nan"),
                       np.zeros((0, 2), int))
    t = _as_points(y_true, "y_true")
    p = _as_points(y_pred, "y_pred")
    pairs, d = match_points(t, p, max_distance)
    confusion = np.zeros((0, 0), dtype=np.int64)
    if p.shape[1] >= 3 and t.shape[1] >= 3:
        tc, pc = t[pairs[:, 0], 2].astype(int), p[pairs[:, 1], 2].astype(int)
        size = int(max(t[:, 2].max(initial=0), p[:, 2].max(initial=0))) + 1
        confusion = np.zeros((size, size), dtype=np.int64)
        np.add.at(confusion, (tc, pc), 1)
    return _scores(len(p), len(t), len(pairs), confusion,
                   float(d.mean()) if len(d) else float("nan"), pairs)


def _scores(n_pred, n_true, n_matched, confusion, mean_d, pairs) -> DetectionScores:
    precision = n_matched / n_pred if n_pred else 0.0
    recall = n_matched / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    total = confusion.sum()
    cls_acc = float(np.trace(confusion) / total) if total else float("nan")
    return DetectionScores(float(precision), float(recall), float(f1), cls_acc, confusion,
                           int(n_pred), int(n_true), int(n_matched), mean_d, pairs)


# --------------------------------------------------------------------------------------------
# tracking
# --------------------------------------------------------------------------------------------
def _links_by_id(ids_per_frame, max_step: int | None) -> list[tuple[int, int, int, int]]:
    """Links ``(t, i, t2, j)`` between successive detections that carry the same id.

    Detections with an id < 0 are left out; the detections of each id, in frame order, are
    linked in pairs, keeping only pairs at most ``max_step`` frames apart (``None``: any).
    """
    where: dict[int, list[tuple[int, int]]] = {}
    for t, frame in enumerate(ids_per_frame):
        frame = np.asarray(frame)
        ok = frame[frame >= 0]
        if len(np.unique(ok)) != len(ok):
            raise ValueError(f"frame {t}: an id occurs more than once in one frame")
        for i in np.flatnonzero(frame >= 0):
            where.setdefault(int(frame[i]), []).append((t, int(i)))
    return [(t, i, t2, j) for dets in where.values() for (t, i), (t2, j) in zip(dets, dets[1:])
            if max_step is None or t2 - t <= max_step]


def _tracking_pair(y_true, y_pred) -> tuple[list, list]:
    if len(y_pred) != len(y_true):
        raise ValueError(f"y_true has {len(y_true)} frames but y_pred {len(y_pred)}")
    y_true, y_pred = [np.asarray(a) for a in y_true], [np.asarray(a) for a in y_pred]
    for t, (a, b) in enumerate(zip(y_true, y_pred)):
        if a.shape != b.shape:
            raise ValueError(f"frame {t}: y_true and y_pred must have the same lengths")
    return y_true, y_pred


def link_accuracy(y_true, y_pred, max_gap: int = 0) -> float:
    """Recall of the links: fraction of true links that the predicted ids reproduce.

    A true link joins two successive detections of the same true object, at most
    ``max_gap + 1`` frames apart (``max_gap=0``: frames ``t`` and ``t + 1`` only; set it to
    the tracker's ``max_gap`` so that links bridging a missed detection count too). It is kept
    when both detections carry the same predicted id (>= 0). A wrong join (two objects on one
    trajectory) costs nothing here; :func:`link_precision` scores that.

    Args:
        y_true, y_pred: lists of ``T`` integer arrays ``(N_t,)``, the true and the predicted
            id of every detection (e.g. ``Tracks.ids``), the same detections in the same order
            in both (ids < 0 in ``y_true`` mark detections without a true identity and are
            skipped; an id occurs at most once per frame).
        max_gap: number of missed frames a true link may span.

    Returns:
        The fraction of true links kept, in [0, 1] (nan if there are none).
    """
    y_true, y_pred = _tracking_pair(y_true, y_pred)
    links = _links_by_id(y_true, max_gap + 1)
    kept = [y_pred[t][i] >= 0 and y_pred[t][i] == y_pred[t2][j] for t, i, t2, j in links]
    return float(np.mean(kept)) if kept else float("nan")


def link_precision(y_true, y_pred, unidentified: str = "exclude") -> float:
    """Precision of the links: fraction of the tracker's links that join the same true object.

    The links are those between successive detections of one predicted trajectory (same
    predicted id >= 0), whatever the frames between them, so a link that the tracker made
    across a missed detection (gap closing) is scored like any other. Detections without a
    true identity (id < 0 in ``y_true``) cannot be checked:

    - ``unidentified="exclude"`` (default): they are left out, and each predicted trajectory
      is read through its identified detections only, so a switch from object a to object b
      via an unidentified detection still counts as one wrong link (a -> b);
    - ``unidentified="wrong"``: every link the tracker made is scored as it is, and one that
      touches an unidentified detection counts as wrong (a lower bound of the precision).

    Args:
        y_true, y_pred: lists of ``T`` integer arrays ``(N_t,)`` as in :func:`link_accuracy`
            (a predicted id occurs at most once per frame, as in ``Tracks.ids``).
        unidentified: ``"exclude"`` or ``"wrong"``, see above.

    Returns:
        The fraction of scored links whose two detections share the true id, in [0, 1]
        (nan if there are none).
    """
    if unidentified not in ("exclude", "wrong"):
        raise ValueError(f"unidentified must be 'exclude' or 'wrong', got {unidentified!r}")
    y_true, y_pred = _tracking_pair(y_true, y_pred)
    if unidentified == "exclude":
        # predicted ids of the identified detections only; the others get -1 (no trajectory)
        y_pred = [np.where(a >= 0, b, -1) for a, b in zip(y_true, y_pred)]
    links = _links_by_id(y_pred, None)
    right = [y_true[t][i] >= 0 and y_true[t][i] == y_true[t2][j] for t, i, t2, j in links]
    return float(np.mean(right)) if right else float("nan")


# --------------------------------------------------------------------------------------------
# calibration of probabilities, information in latents
# --------------------------------------------------------------------------------------------
def _outcomes_and_probs(y_true, y_prob) -> tuple[np.ndarray, np.ndarray]:
    """Binary outcomes ``(N,)`` and probabilities ``(N,)`` in [0, 1], checked."""
    t, p = _pair(y_true, y_prob, 1)
    if not np.isin(t, (0.0, 1.0)).all():
        raise ValueError("y_true must hold binary outcomes (0/1 or False/True)")
    if p.min() < 0.0 or p.max() > 1.0:
        raise ValueError("y_prob must hold probabilities in [0, 1]")
    return t, p


def reliability_curve(y_true, y_prob, n_bins: int = 10):
    """Reliability diagram data: predicted probability against observed frequency.

    Args:
        y_true: ``(N,)`` binary outcomes (1: the event happened).
        y_prob: ``(N,)`` predicted probabilities of the event.
        n_bins: equal-width bins on [0, 1] (the last one closed).

    Returns:
        ``(mean_prob, frequency, counts)``, each ``(n_bins,)``: the mean prediction and the
        fraction of events in each bin (nan for an empty bin), and the bin populations.
    """
    t, p = _outcomes_and_probs(y_true, y_prob)
    if int(n_bins) < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins!r}")
    k = np.minimum((p * int(n_bins)).astype(int), int(n_bins) - 1)
    counts = np.bincount(k, minlength=int(n_bins)).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_prob = np.bincount(k, weights=p, minlength=int(n_bins)) / counts
        frequency = np.bincount(k, weights=t, minlength=int(n_bins)) / counts
    return mean_prob, frequency, counts.astype(int)


def expected_calibration_error(y_true, y_prob, n_bins: int = 10) -> float:
    """Expected calibration error: ``sum_b (n_b / N) |frequency_b - mean_prob_b|`` over the
    bins of :func:`reliability_curve` (0 for perfectly calibrated probabilities; finite samples
    give a small positive value even then)."""
    mean_prob, frequency, counts = reliability_curve(y_true, y_prob, n_bins)
    used = counts > 0
    return float(np.sum(counts[used] * np.abs(frequency[used] - mean_prob[used]))
                 / counts.sum())


def knn_r2(y_true, features, n_neighbors: int = 10, n_folds: int = 5, seed: int = 0,
           groups=None) -> float:
    """How well ``features`` ``(N, D)`` determine a quantity ``y_true`` ``(N,)``: the R^2 of a
    k-nearest-neighbour regression (``n_folds``-fold cross-validated out-of-fold predictions,
    folds shuffled by ``seed``; the features are standardised with the training folds' mean
    and standard deviation, so no statistic of a test sample enters its own prediction).
    1: the features fix the quantity; about 0 or below: they carry none of it. Nonlinear and
    invariant to rescaling each feature, so latents that encode the quantity through any
    smooth curve score high.

    ``groups`` ``(N,)`` (optional): labels of samples that must share a fold (e.g. spatial
    blocks, so that neighbours of a test sample never sit in its training folds); the folds
    are then grouped (``GroupKFold``, no shuffling) and ``seed`` is unused."""
    from sklearn.model_selection import GroupKFold, KFold

    t = _finite(y_true, "y_true", 1)
    x = _finite(features, "features", (1, 2))
    x = x.reshape(len(x), -1)
    if len(x) != len(t):
        raise ValueError(f"features has {len(x)} rows but y_true has {len(t)} values")
    if len(t) < 2 * int(n_folds) or int(n_neighbors) < 1:
        raise ValueError(f"need n_neighbors >= 1 and at least {2 * int(n_folds)} samples for "
                         f"{n_folds}-fold cross-validation, got {len(t)}")
    k = min(int(n_neighbors), len(t) - len(t) // int(n_folds) - 1)
    if groups is None:
        folds, labels = KFold(int(n_folds), shuffle=True, random_state=seed), None
    else:
        labels = np.asarray(groups).ravel()
        if len(labels) != len(t):
            raise ValueError(f"groups has {len(labels)} labels but y_true has {len(t)} values")
        n_groups = len(np.unique(labels))
        if n_groups < int(n_folds):
            raise ValueError(f"groups holds {n_groups} distinct labels, fewer than n_folds = "
                             f"{n_folds}: use coarser folds or finer groups")
        folds = GroupKFold(int(n_folds))
        k = min(k, min(len(train) for train, _ in folds.split(x, t, labels)))
    return r2_score(t, _knn_out_of_fold(x, t, k, folds, labels))


# --------------------------------------------------------------------------------------------
# optimisation
# --------------------------------------------------------------------------------------------


def regret_auc(y_optimum: float, best_so_far) -> np.ndarray:
    """Area under the normalised simple-regret curve of each optimisation run.

    The regret after ``n`` evaluations is ``(y_optimum - best_so_far[n]) / y_optimum`` (0 at
    the optimum, 1 at a value of 0); its mean over the ``N`` evaluations is the area, so a
    run that finds the optimum sooner has a smaller area.

    Args:
        y_optimum: the reference (true or best known) maximum, > 0.
        best_so_far: ``(R, N)`` (or ``(N,)``) best objective value after each evaluation.

    Returns:
        ``(R,)`` (or a 0-d array) float64 areas, dimensionless.
    """
    best = np.asarray(real_array(best_so_far, "best_so_far"), dtype=np.float64)
    if best.ndim not in (1, 2) or best.shape[-1] < 1 or not np.isfinite(best).all():
        raise ValueError(f"best_so_far must be a finite (R, N) or (N,) array, got shape "
                         f"{best.shape}")
    if not (np.isfinite(y_optimum) and y_optimum > 0):
        raise ValueError(f"y_optimum must be a positive finite maximum, got {y_optimum!r}; "
                         "shift the objective so that its maximum is positive")
    if (np.diff(best, axis=-1) < 0).any():
        raise ValueError("best_so_far must not decrease; pass the running maximum "
                         "(np.maximum.accumulate(y, axis=-1))")
    return ((y_optimum - best) / y_optimum).mean(axis=-1)


def match_maps(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """Match estimated component maps ``y_pred`` ``(K, H, W)`` to true maps ``y_true``
    ``(C, H, W)`` (C >= K), one true map each, maximising the summed Pearson correlation
    (Hungarian assignment): unmixing returns components in its own order and scale.

    Returns:
        ``(index, corr)``: ``(K,)`` int, the true map matched to each estimated map, and
        ``(K,)`` float, their correlation.
    """
    from scipy.optimize import linear_sum_assignment

    t = _finite(y_true, "y_true", 3).reshape(len(y_true), -1)
    p = _finite(y_pred, "y_pred", 3).reshape(len(y_pred), -1)
    if t.shape[1] != p.shape[1] or len(p) > len(t):
        raise ValueError(f"need y_true (C, H, W) and y_pred (K, H, W) on one grid with "
                         f"K <= C, got {np.shape(y_true)} and {np.shape(y_pred)}")
    corr = np.corrcoef(np.vstack([p, t]))[:len(p), len(p):]
    corr = np.nan_to_num(corr)  # a constant map correlates with nothing
    rows, cols = linear_sum_assignment(-corr)
    index = np.empty(len(p), int)
    index[rows] = cols
    return index, corr[np.arange(len(p)), index]


# --------------------------------------------------------------------------------------------
# recovered parameters
# --------------------------------------------------------------------------------------------
def relative_error(y_true, y_pred) -> np.ndarray:
    """``|y_pred - y_true| / |y_true|`` elementwise: how far recovered coefficients are from
    the simulator's, as a fraction of the true value.

    Args:
        y_true: a number or array of true values, none zero.
        y_pred: estimates, the same shape.

    Returns:
        float64 array of the same shape (0-d for scalars; ``float(...)`` it).
    """
    t = np.asarray(real_array(y_true, "y_true"), dtype=np.float64)
    e = np.asarray(real_array(y_pred, "y_pred"), dtype=np.float64)
    if t.shape != e.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {t.shape}, {e.shape}")
    if not (np.isfinite(t).all() and np.isfinite(e).all()):
        raise ValueError("y_true and y_pred must be finite")
    if (t == 0).any():
        raise ValueError("a true value is 0: the relative error is undefined there; score it "
                         "with an absolute error instead")
    return np.abs(e - t) / np.abs(t)


# --------------------------------------------------------------------------------------------
# events along trajectories
# --------------------------------------------------------------------------------------------
@dataclass
class EventScores:
    """Found events against true ones.

    Attributes:
        precision, recall, f1: fractions in [0, 1] (nan where undefined: no events).
        n_true, n_pred, n_matched: counts.
        pairs: ``(M, 2)`` ``[i_true, i_pred]`` matched events.
    """

    precision: float
    recall: float
    f1: float
    n_true: int
    n_pred: int
    n_matched: int
    pairs: np.ndarray


def _events(x, name: str) -> np.ndarray:
    e = np.asarray(x)
    if e.size == 0:
        return np.zeros((0, 2), np.int64)
    if e.ndim != 2 or e.shape[1] < 2 or not np.issubdtype(e.dtype, np.integer):
        raise ValueError(f"{name} must be an (E, 2+) integer array [object, frame, ...], got "
                         f"shape {e.shape} and dtype {e.dtype}")
    return e[:, :2].astype(np.int64)


def event_scores(y_true, y_pred, tolerance: int = 1) -> EventScores:
    """Match found events to true ones on the same object within ``tolerance`` frames.

    Events are ``(E, 2+)`` integer rows ``[object, frame, ...]`` (extra columns, e.g. the
    classes before and after, are ignored). Each true event matches at most one found event
    of the same object with ``|frame difference| <= tolerance``; the matching maximises the
    number of pairs, then minimises the total frame difference (optimal assignment per
    object).

    Args:
        y_true: true events, e.g. the simulator's class changes of observed particles.
        y_pred: found events, with their objects mapped to the true objects' ids.
        tolerance: frames.

    Returns:
        :class:`EventScores`.
    """
    from scipy.optimize import linear_sum_assignment

    t, p = _events(y_true, "y_true"), _events(y_pred, "y_pred")
    if not isinstance(tolerance, (int, np.integer)) or tolerance < 0:
        raise ValueError(f"tolerance must be a non-negative integer of frames, got {tolerance!r}")
    pairs = []
    for obj in np.intersect1d(t[:, 0], p[:, 0]):
        it, ip = np.flatnonzero(t[:, 0] == obj), np.flatnonzero(p[:, 0] == obj)
        dt = np.abs(t[it, 1][:, None] - p[ip, 1][None, :])
        cost = np.where(dt <= tolerance, dt, 10 * (tolerance + 1) * (len(it) + len(ip)))
        rows, cols = linear_sum_assignment(cost)
        ok = dt[rows, cols] <= tolerance
        pairs.extend(zip(it[rows[ok]], ip[cols[ok]]))
    pairs = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    m = len(pairs)
    precision = m / len(p) if len(p) else float("nan")
    recall = m / len(t) if len(t) else float("nan")
    f1 = 2 * m / (len(p) + len(t)) if len(p) + len(t) else float("nan")
    return EventScores(float(precision), float(recall), float(f1), len(t), len(p), m, pairs)


def within_group_abs_r(y_true, y_pred, groups, min_size: int = 10) -> float:
    """Mean over groups (e.g. frames) of ``|Pearson r|`` between ``y_true`` and ``y_pred``
    ``(N,)`` within each group: how well an estimate ranks the items *inside* a group,
    whatever the groups' means do (a quantity that only tracks a trend between groups scores
    about 0). Groups with fewer than ``min_size`` items or no spread in either are skipped.

    Returns:
        float in ``[0, 1]``; NaN when no group qualifies.
    """
    t, p = _pair(y_true, y_pred, 1)
    g = np.asarray(groups)
    if g.shape != t.shape:
        raise ValueError(f"groups must have one label per value, got {g.shape} for {t.shape}")
    rs = []
    for k in np.unique(g):
        sel = g == k
        if sel.sum() >= max(int(min_size), 3) and t[sel].std() > 0 and p[sel].std() > 0:
            rs.append(abs(np.corrcoef(t[sel], p[sel])[0, 1]))
    return float(np.mean(rs)) if rs else float("nan")


def best_threshold_accuracy(y_true, values) -> float:
    """The highest accuracy any single threshold on ``values`` ``(N,)`` reaches on the binary
    labels ``y_true`` ``(N,)`` (0/1), either side of the threshold being class 1.

    An upper bound on what a one-number rule (e.g. the centre brightness of an atom) can
    decide: the threshold is chosen with the labels, so no unsupervised split of ``values``
    does better. It is at least the majority class's share (a threshold beyond all values).
    """
    y = _labels(y_true, "y_true")
    v = np.asarray(real_array(values, "values"), dtype=np.float64).reshape(-1)
    if y.shape != v.shape or not len(y):
        raise ValueError(f"y_true {y.shape} and values {v.shape} must be non-empty and of "
                         "equal length")
    if not np.isfinite(v).all():
        raise ValueError("values contain NaN or inf; drop those samples first")
    if y.max() > 1:
        raise ValueError(f"y_true must be binary (0/1), got labels up to {y.max()}")
    order = np.argsort(v, kind="stable")
    v, y = v[order], y[order]
    # class 1 above the threshold: errors = ones at or below + zeros above, for every cut
    ones_below = np.concatenate([[0], np.cumsum(y)])
    zeros_above = (len(y) - y.sum()) - np.concatenate([[0], np.cumsum(1 - y)])
    cut = np.concatenate([[True], v[1:] > v[:-1], [True]])  # cuts between distinct values
    correct = (len(y) - (ones_below + zeros_above))[cut]
    best = max(correct.max(), (len(y) - correct).max())  # either side as class 1
    return float(best / len(y))


def knn_accuracy(y_true, features, n_neighbors: int = 10, n_folds: int = 5, seed: int = 0
                 ) -> float:
    """How well ``features`` ``(N, D)`` separate known classes ``y_true`` ``(N,)``: the
    accuracy of a k-nearest-neighbour classifier (features standardised inside each fold) on
    held-out folds of an ``n_folds``-fold cross-validation shuffled by ``seed``, averaged
    over the folds. Set it beside the majority class's share, what a rule that ignores the
    features scores."""
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = _labels(y_true, "y_true")
    x = _finite(features, "features", (1, 2))
    x = x.reshape(len(x), -1)
    if len(x) != len(labels):
        raise ValueError(f"features has {len(x)} rows but y_true has {len(labels)} labels")
    n_train = len(labels) - -(-len(labels) // int(n_folds))  # smallest training fold
    if int(n_folds) < 2 or int(n_neighbors) < 1 or n_train < 1:
        raise ValueError(f"need n_folds >= 2, n_neighbors >= 1 and more samples than folds, "
                         f"got {len(labels)} samples, {n_folds} folds")
    clf = make_pipeline(StandardScaler(), KNeighborsClassifier(min(int(n_neighbors), n_train)))
    folds = KFold(int(n_folds), shuffle=True, random_state=seed)
    return float(np.mean(cross_val_score(clf, x, labels, cv=folds)))


def binomial_margin(rate: float, n: int, n_se: float = 2.0) -> float:
    """``n_se`` binomial standard errors, ``n_se * sqrt(rate (1 - rate) / n)``, of a rate
    (an accuracy, a coverage) measured on ``n`` independent items: the smallest difference
    from ``rate`` that one measurement resolves."""
    if not 0 <= rate <= 1 or int(n) < 1 or not n_se > 0:
        raise ValueError(f"need a rate in [0, 1], n >= 1 and n_se > 0, got {rate}, {n}, {n_se}")
    return float(n_se * np.sqrt(rate * (1 - rate) / int(n)))


def coverage_verdict(coverage: float, n: int, level: float = 0.95, n_se: float = 2.0
                     ) -> tuple[str, float]:
    """Judge the measured coverage of ``level`` intervals on ``n`` held-out points.

    Within ``tolerance = n_se * sqrt(level (1 - level) / n)`` of ``level`` (``n_se``
    binomial standard errors of a calibrated model's coverage) it is ``"calibrated"``;
    above, ``"over-covering"`` (intervals too wide); below, ``"under-covering"`` (too
    narrow).

    Returns:
        ``(verdict, tolerance)``.
    """
    if not 0 < level < 1 or int(n) < 1 or not n_se > 0:
        raise ValueError(f"need 0 < level < 1, n >= 1 and n_se > 0, got {level}, {n}, {n_se}")
    if not 0 <= coverage <= 1:
        raise ValueError(f"coverage must be a fraction in [0, 1], got {coverage}")
    tol = binomial_margin(level, n, n_se)
    if abs(coverage - level) <= tol:
        return "calibrated", tol
    return ("over-covering" if coverage > level else "under-covering"), tol


def error_curve_auc(n_labelled, errors) -> np.ndarray:
    """Area under error-vs-labelled-points curves (trapezoid rule; units of the error times
    labelled points): one number per learning curve, smaller when the error falls sooner.

    Args:
        n_labelled: ``(S,)`` increasing numbers of labelled points, S >= 2.
        errors: ``(R, S)`` (or ``(S,)``) error after each step.

    Returns:
        ``(R,)`` (or 0-d) float64 areas.
    """
    n = _finite(n_labelled, "n_labelled", 1)
    e = _finite(errors, "errors", (1, 2))
    if len(n) < 2 or e.shape[-1] != len(n) or (np.diff(n) <= 0).any():
        raise ValueError(f"n_labelled must increase over S >= 2 steps and errors end in S; got "
                         f"{n.shape} and {e.shape}")
    return np.asarray(np.trapezoid(e, n, axis=-1), dtype=np.float64)
