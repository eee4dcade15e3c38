"""Scores that compare learned latents with simulator ground truth: circular correlation of
angles (modulo an object's symmetry), angle errors, and label accuracy after Hungarian
matching of unsupervised clusters."""

from __future__ import annotations

import numpy as np

__all__ = ["circular_correlation", "angle_error", "angle_leak", "hungarian_accuracy",
           "confusion_matrix"]


def _angles(a, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds non-finite angles")
    return a


def circular_correlation(a, b, symmetry: int = 1, groups=None) -> float:
    """Fisher-Lee circular correlation of two angle samples (radians), ``(N,)`` each.

    Signed and independent of a constant offset: +1 when ``b = a + c`` (same sense of
    rotation), -1 when ``b = -a + c``, ~0 when unrelated. Unlike the Jammalamadaka-SenGupta
    coefficient it stays well defined for angles spread uniformly over the full circle.
    ``symmetry=n`` compares the angles modulo ``2 pi / n`` (an n-fold symmetric object).
    ``groups`` ``(N,)`` (e.g. discovered classes, each with its own canonical orientation):
    a separate constant offset is removed from each group before pooling.
    """
    a = _angles(a, "a") * symmetry
    b = _angles(b, "b") * symmetry
    if a.shape != b.shape or a.size < 3:
        raise ValueError(f"need two angle arrays of equal length >= 3, got {a.shape}, {b.shape}")
    if groups is not None:
        groups = np.asarray(groups).reshape(-1)
        if groups.shape != a.shape:
            raise ValueError(f"groups has shape {groups.shape}, angles {a.shape}")
        a = a.copy()
        for g in np.unique(groups):
            sel = groups == g
            a[sel] -= np.angle(np.mean(np.exp(1j * (a[sel] - b[sel]))))
    sa, ca, sb, cb = np.sin(a), np.cos(a), np.sin(b), np.cos(b)
    # sum_{i,j} sin(a_i - a_j) sin(b_i - b_j), expanded to O(N)
    num = (sa @ sb) * (ca @ cb) - (sa @ cb) * (ca @ sb)
    da = (sa @ sa) * (ca @ ca) - (sa @ ca) ** 2
    db = (sb @ sb) * (cb @ cb) - (sb @ cb) ** 2
    if da <= 0 or db <= 0:
        return 0.0
    return float(num / np.sqrt(da * db))


def angle_error(a, b, symmetry: int = 1) -> np.ndarray:
    """Per-sample error of ``a`` against ``b`` after removing the best constant offset,
    wrapped to ``(-pi/n, pi/n]`` for an n-fold symmetric object; radians, ``(N,)``."""
    a = _angles(a, "a") * symmetry
    b = _angles(b, "b") * symmetry
    offset = np.angle(np.mean(np.exp(1j * (a - b))))
    d = np.angle(np.exp(1j * (a - b - offset)))
    return d / symmetry


def angle_leak(z, angle, symmetry=(1, 2), n_neighbors: int = 15, seed: int = 0) -> float:
    """How much of the angle a set of latents encodes: the circular correlation between the
    true ``angle`` ``(N,)`` and the angle predicted from ``z`` ``(N, D)`` by k-nearest-
    neighbour regression of ``(cos n t, sin n t)`` (5-fold cross-validated), the highest over
    the symmetries ``n`` in ``symmetry`` (default 1 and 2: a plain VAE often encodes an
    elongated object's axis, i.e. the angle modulo pi). ~1 for latents that encode the
    rotation, ~0 for rotation-invariant ones."""
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.preprocessing import StandardScaler

    z = np.asarray(z, dtype=np.float64).reshape(len(z), -1)
    angle = _angles(angle, "angle")
    if len(z) != len(angle):
        raise ValueError(f"z has {len(z)} rows but angle has {len(angle)}")
    zs = StandardScaler().fit_transform(z)
    folds = KFold(5, shuffle=True, random_state=seed)
    best = -1.0
    for n in np.atleast_1d(symmetry):
        t = angle * int(n)
        target = np.c_[np.cos(t), np.sin(t)]
        pred = cross_val_predict(KNeighborsRegressor(n_neighbors), zs, target, cv=folds)
        best = max(best, circular_correlation(np.arctan2(pred[:, 1], pred[:, 0]), t))
    return best


def confusion_matrix(labels, clusters, n_classes: int | None = None) -> np.ndarray:
    """Counts ``(n_labels, n_clusters)``: row = true label, column = cluster index."""
    labels = np.asarray(labels).astype(int).reshape(-1)
    clusters = np.asarray(clusters).astype(int).reshape(-1)
    if labels.shape != clusters.shape:
        raise ValueError(f"labels {labels.shape} and clusters {clusters.shape} differ in length")
    n = n_classes or int(max(labels.max(), clusters.max()) + 1)
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (labels, clusters), 1)
    return m


def hungarian_accuracy(labels, clusters, n_classes: int | None = None) -> float:
    """Fraction of samples whose cluster maps to their label under the best one-to-one
    matching of clusters to labels (Hungarian algorithm)."""
    from scipy.optimize import linear_sum_assignment

    m = confusion_matrix(labels, clusters, n_classes)
    rows, cols = linear_sum_assignment(-m)
    return float(m[rows, cols].sum() / m.sum())
