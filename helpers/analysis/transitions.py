"""Transitions from statistics: how a population of local descriptors changes with a control
variable (temperature, field, time), and where it changes.

The workflow of arXiv 2011.09513: describe every image of a series by statistics of its
patches (fractions of categorical classes, or histograms of continuous latents), unmix the
per-condition statistics into a few non-negative end members (NMF, e.g.
``helpers.features.decompose_patches(stats, 2, method="nmf")``), and read the transition off
the abundance of the end member that dominates on one side:

- :func:`class_fractions`: ``(G, K)`` fraction of each class in every group (condition);
- :func:`group_histograms`: ``(G, D * n_bins)`` normalised histograms of ``D`` continuous
  values in every group, on bins shared by all groups;
- :func:`locate_transition`: the control value where the abundance of the high-side end
  member crosses a level (default 0.5), from a step fit plus linear interpolation;
- :func:`transition_matrix`: how tracked objects change class from one frame to the next.
- :func:`class_changes`: the class changes along every trajectory, as events, after a
  :func:`majority_filter` against single-frame flicker.

Groups are integer indices ``0 .. G - 1`` (e.g. ``GridPatches.frame``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Transition", "class_changes", "class_fractions", "group_histograms",
           "locate_transition", "majority_filter", "transition_matrix"]


def _groups(groups, n: int, n_groups: int | None) -> tuple[np.ndarray, int]:
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups must be (N,) with N = {n} (one group per sample), got {g.shape}")
    if n == 0:
        raise ValueError("no samples: groups is empty")
    if not np.issubdtype(g.dtype, np.integer) or g.min() < 0:
        raise ValueError("groups must hold non-negative integers (e.g. GridPatches.frame)")
    size = int(g.max()) + 1 if n_groups is None else int(n_groups)
    if g.max() >= size:
        raise ValueError(f"groups holds index {int(g.max())} but n_groups is {size}")
    counts = np.bincount(g, minlength=size)
    if (counts == 0).any():
        raise ValueError(f"groups {np.flatnonzero(counts == 0).tolist()} hold no samples; "
                         "pass only the groups you have or drop empty conditions")
    return g, size


def class_fractions(labels, groups, n_classes: int | None = None,
                    n_groups: int | None = None) -> np.ndarray:
    """Fraction of samples of each class in every group.

    Args:
        labels: ``(N,)`` int class of each sample (e.g. ``Clustering.labels``).
        groups: ``(N,)`` int group (condition index) of each sample.
        n_classes, n_groups: sizes (default: max + 1).

    Returns:
        ``(G, K)`` float64, rows sum to 1.
    """
    lab = np.asarray(labels)
    if lab.ndim != 1 or not np.issubdtype(lab.dtype, np.integer) or (lab < 0).any():
        raise ValueError("labels must be a 1D array of non-negative integer classes")
    g, size = _groups(groups, len(lab), n_groups)
    k = int(lab.max()) + 1 if n_classes is None else int(n_classes)
    if lab.max() >= k:
        raise ValueError(f"labels holds class {int(lab.max())} but n_classes is {k}")
    counts = np.zeros((size, k))
    np.add.at(counts, (g, lab), 1.0)
    return counts / counts.sum(1, keepdims=True)


def group_histograms(values, groups, n_bins: int = 20, quantiles=(0.005, 0.995),
                     n_groups: int | None = None):
    """Normalised histograms of continuous values (latents) in every group.

    Each column of ``values`` gets ``n_bins`` bins spanning the ``quantiles`` of that column
    over all groups (so one outlier does not squeeze the histogram); values outside are
    counted in the end bins.

    Args:
        values: ``(N,)`` or ``(N, D)`` float, e.g. ``Encoding.z``.
        groups: ``(N,)`` int group of each sample.
        n_bins: bins per column.
        quantiles: lower and upper quantile that set each column's bin range.

    Returns:
        ``(hist, edges)``: ``hist`` ``(G, D * n_bins)`` float64, each column's block of
        ``n_bins`` summing to 1 in every group (non-negative: ready for NMF); ``edges``
        ``(D, n_bins + 1)``.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v.reshape(len(v), -1) if v.ndim == 1 else v
    if v.ndim != 2 or not np.isfinite(v).all():
        raise ValueError(f"values must be a finite (N,) or (N, D) array, got shape {v.shape}")
    if int(n_bins) < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    lo_q, hi_q = quantiles
    if not 0.0 <= lo_q < hi_q <= 1.0:
        raise ValueError(f"quantiles must satisfy 0 <= low < high <= 1, got {quantiles}")
    g, size = _groups(groups, len(v), n_groups)
    counts = np.bincount(g, minlength=size).astype(float)
    hists, edges = [], []
    for col in v.T:
        lo, hi = np.quantile(col, [lo_q, hi_q])
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        e = np.linspace(lo, hi, int(n_bins) + 1)
        idx = np.clip(np.searchsorted(e, col, side="right") - 1, 0, int(n_bins) - 1)
        h = np.zeros((size, int(n_bins)))
        np.add.at(h, (g, idx), 1.0)
        hists.append(h / counts[:, None])
        edges.append(e)
    return np.concatenate(hists, axis=1), np.stack(edges)


@dataclass
class Transition:
    """Where a population changes along a control variable.

    Attributes:
        estimate: the control value of the transition (units of ``control``).
        abundance: ``(G,)`` fraction of the high-side end member at each control value
            (sorted by control), in [0, 1].
        control: ``(G,)`` the control values, sorted.
        component: index of the high-side end member (the one dominating at the largest
            control value).
        bracket: ``(low, high)`` the two consecutive control values the estimate lies between.
    """

    estimate: float
    abundance: np.ndarray
    control: np.ndarray
    component: int
    bracket: tuple


def locate_transition(control, weights, level: float = 0.5) -> Transition:
    """The control value where the high-side end member takes over.

    ``weights`` ``(G, k)`` are non-negative end-member weights per condition (NMF of
    per-condition statistics, or class fractions). They are normalised per row into
    abundances; the end member with the largest abundance at the largest control value is
    the high-side phase, and its abundance ``a`` rises across the transition.

    The transition is found as a step: the split between two consecutive control values that
    best separates ``a < level`` (below) from ``a >= level`` (above), fewest misplaced
    conditions first and then the largest jump in ``a``; inside that interval the estimate
    is where the straight line between the two abundances crosses ``level``. A noisy
    abundance therefore cannot put the transition at a spurious early crossing.

    Args:
        control: ``(G,)`` control values (temperatures in kelvin, fields, times), distinct.
        weights: ``(G, k)`` non-negative, or ``(G,)`` an abundance already in [0, 1].
        level: abundance that defines the transition.

    Returns:
        :class:`Transition`.
    """
    c = np.asarray(control, dtype=np.float64).reshape(-1)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        w = np.column_stack([1.0 - w, w])
    if w.ndim != 2 or len(w) != len(c):
        raise ValueError(f"weights must be (G, k) or (G,) with G = {len(c)}, got {w.shape}")
    if len(c) < 2 or not (np.isfinite(c).all() and np.isfinite(w).all()):
        raise ValueError("need at least two conditions with finite control values and weights")
    if (w < 0).any():
        raise ValueError("weights must be non-negative (NMF weights, fractions)")
    if len(np.unique(c)) != len(c):
        raise ValueError("control values must be distinct")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    order = np.argsort(c)
    c, w = c[order], w[order]
    total = w.sum(1, keepdims=True)
    ab = np.divide(w, total, out=np.full_like(w, 1.0 / w.shape[1]), where=total > 0)
    comp = int(np.argmax(ab[-1]))
    a = ab[:, comp]
    high = a >= level
    # misplaced conditions for a split after index i: high ones at or below i, low ones after
    wrong = np.cumsum(high)[:-1] + (np.cumsum((~high)[::-1])[::-1])[1:]
    jump = np.diff(a)
    best = np.lexsort((-jump, wrong))[0]
    a0, a1 = a[best], a[best + 1]
    c0, c1 = c[best], c[best + 1]
    frac = (level - a0) / (a1 - a0) if a1 != a0 else 0.5
    estimate = float(c0 + np.clip(frac, 0.0, 1.0) * (c1 - c0))
    return Transition(estimate=estimate, abundance=a, control=c, component=comp,
                      bracket=(float(c0), float(c1)))


def transition_matrix(ids, labels, n_classes: int | None = None, normalize: bool = True):
    """Class changes between consecutive frames along trajectories.

    Args:
        ids: list of ``T`` arrays ``(N_t,)`` of trajectory ids (``Tracks.ids``).
        labels: list of ``T`` arrays ``(N_t,)`` of integer classes of the same objects.
        n_classes: number of classes (default: max label + 1).
        normalize: rows sum to one (transition probabilities) instead of counts.

    Returns:
        ``(n_classes, n_classes)`` array, entry ``[a, b]`` for class ``a`` at ``t`` and ``b`` at
        ``t + 1`` on the same trajectory (rows without any transition are all zero).
    """
    if len(ids) != len(labels):
        raise ValueError(f"ids has {len(ids)} frames but labels has {len(labels)}")
    all_labels = [np.asarray(lab, dtype=int) for lab in labels]
    if n_classes is None:
        n_classes = 1 + max((int(lab.max()) for lab in all_labels if lab.size), default=0)
    counts = np.zeros((n_classes, n_classes))
    for t in range(len(ids) - 1):
        prev = dict(zip(np.asarray(ids[t]).tolist(), all_labels[t].tolist()))
        for k, b in zip(np.asarray(ids[t + 1]).tolist(), all_labels[t + 1].tolist()):
            if k in prev:
                counts[prev[k], b] += 1
    if normalize:
        rows = counts.sum(1, keepdims=True)
        counts = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    return counts


def majority_filter(labels, width: int = 3) -> np.ndarray:
    """Running majority of integer labels along one sequence, against single-sample flicker.

    Each label is replaced by the most frequent label in the ``width`` samples centred on it
    (fewer at the ends); a tie keeps the sample's own label. ``width=1`` changes nothing;
    ``width=3`` removes a class seen for a single sample between two equal ones.

    Args:
        labels: ``(L,)`` integer labels in sequence order.
        width: odd window length, samples.

    Returns:
        ``(L,)`` int64 filtered labels.
    """
    lab = np.asarray(labels)
    if lab.ndim != 1 or (lab.size and not np.issubdtype(lab.dtype, np.integer)):
        raise ValueError("labels must be a 1D array of integer classes")
    if not isinstance(width, (int, np.integer)) or width < 1 or width % 2 == 0:
        raise ValueError(f"width must be an odd positive integer (1, 3, 5...), got {width!r}")
    lab = lab.astype(np.int64)
    half = int(width) // 2
    out = lab.copy()
    for i in range(len(lab)):
        window = lab[max(i - half, 0):i + half + 1]
        values, counts = np.unique(window, return_counts=True)
        best = counts.max()
        if counts[values == lab[i]][0] < best:
            out[i] = values[np.argmax(counts)]
    return out


def class_changes(track, frame, labels, width: int = 3) -> np.ndarray:
    """Class changes along trajectories: one event per change between consecutive
    observations of the same trajectory, after a :func:`majority_filter` of each trajectory's
    labels.

    Args:
        track: ``(N,)`` int trajectory id of every sample (e.g. ``Tracks.ids`` flattened).
        frame: ``(N,)`` int frame of every sample (one sample per trajectory and frame).
        labels: ``(N,)`` int class of every sample.
        width: window of the majority filter, samples (odd; 1 = none).

    Returns:
        ``(E, 4)`` int64 events ``[track, frame, class_before, class_after]``, ``frame`` the
        first frame seen in the new class, sorted by track then frame.
    """
    tr, fr, lab = (np.asarray(a) for a in (track, frame, labels))
    if not (tr.ndim == fr.ndim == lab.ndim == 1 and len(tr) == len(fr) == len(lab)):
        raise ValueError(f"track, frame and labels must be 1D of one length, got shapes "
                         f"{tr.shape}, {fr.shape}, {lab.shape}")
    for name, a in (("track", tr), ("frame", fr), ("labels", lab)):
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} must hold integers, got dtype {a.dtype}")
    order = np.lexsort((fr, tr))
    tr, fr, lab = tr[order], fr[order], lab[order]
    if np.any((np.diff(tr) == 0) & (np.diff(fr) == 0)):
        raise ValueError("a trajectory has two samples in one frame; pass one sample per "
                         "trajectory and frame")
    events = []
    for k in np.unique(tr):
        sel = tr == k
        smooth = majority_filter(lab[sel], width)
        change = np.flatnonzero(np.diff(smooth) != 0) + 1
        f = fr[sel]
        events.extend((int(k), int(f[i]), int(smooth[i - 1]), int(smooth[i])) for i in change)
    return np.array(events, dtype=np.int64).reshape(-1, 4)
