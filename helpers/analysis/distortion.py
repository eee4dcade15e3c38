"""Scan distortions of a STEM stack measured from atomic trajectories (notebook 09).

- :func:`locate_atoms`: column positions in every frame (difference-of-Gaussians peak map,
  :func:`helpers.segment.find_atoms`);
- :func:`full_trajectories`: the columns tracked through every frame
  (:func:`helpers.features.track`) as one ``(N, T, 2)`` array;
- :func:`trajectory_pca`: PCA of the displacement trajectories (atoms x 2T): scree, component
  maps, component time series;
- the baselines: :func:`rigid_shifts` (per-frame phase cross-correlation, scikit-image) and
  :func:`row_polynomial` (per frame, a polynomial along the fast-scan axis fitted to the
  columns in a band of scan lines);
- single images: :func:`fit_lattice` (a Bravais lattice fitted to positions, the residual
  displacements) and :func:`row_profile` (the residuals averaged per band of scan lines: the
  within-frame estimate of line jitter);
- :func:`warp_frame`: a frame resampled with a displacement field removed.

Positions are ``(row, col)``; the unit is stated per function (pixels for positions found in
images, pm where a ``pixel_size`` converts them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import image_stack, real_array
from ..features import track
from ..segment import find_atoms

__all__ = [
    "Lattice",
    "TrajectoryPCA",
    "fit_lattice",
    "full_trajectories",
    "locate_atoms",
    "rigid_shifts",
    "row_polynomial",
    "row_profile",
    "trajectory_pca",
    "warp_frame",
]


def _positions(x, name: str, ndim: int, last: int = 2) -> np.ndarray:
    arr = np.asarray(real_array(x, name), dtype=np.float64)
    if arr.ndim != ndim or arr.shape[-1] != last:
        raise ValueError(f"{name} must have {ndim} dimensions ending in {last}, got shape "
                         f"{arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or inf; drop those positions first")
    return arr


# --------------------------------------------------------------------------------------------
# atoms and trajectories
# --------------------------------------------------------------------------------------------
def locate_atoms(frames, sigma: float = 1.0, threshold: float = 0.2, margin: float = 4.0
                 ) -> list[np.ndarray]:
    """Atomic columns in every frame, at sub-pixel precision.

    Each frame is smoothed by a Gaussian of ``sigma`` px minus one of ``2.5 sigma`` px (a
    difference of Gaussians, which removes the background), scaled by its 99.5th percentile
    and passed to :func:`helpers.segment.find_atoms` as a probability map (the centre of mass of
    each blob).

    Args:
        frames: ``(T, H, W)`` or ``(H, W)`` images (counts).
        sigma: smoothing in pixels (about the column width).
        threshold: fraction of the bright columns' peak above which a pixel belongs to a column.
        margin: columns closer than this many pixels to the border are dropped.

    Returns:
        list of ``T`` arrays ``(N_t, 2)`` ``(row, col)`` in pixels.
    """
    from scipy import ndimage

    stack, _ = image_stack(frames, "frames")
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number of pixels, got {sigma!r}")
    out = []
    for frame in stack.astype(np.float64):
        dog = ndimage.gaussian_filter(frame, sigma) - ndimage.gaussian_filter(frame, 2.5 * sigma)
        scale = np.percentile(dog, 99.5)
        if not scale > 0:
            raise ValueError("a frame has no bright columns (its filtered peak is <= 0); check "
                             "the frames are counts of an atomic lattice")
        out.append(find_atoms(np.clip(dog / scale, 0, 1), threshold=threshold,
                              margin=margin)[:, :2])
    return out


def full_trajectories(coords_per_frame, max_displacement: float, pixel_size: float = 1.0
                      ) -> np.ndarray:
    """Columns linked through all frames, as one array.

    Links the positions with :func:`helpers.features.track` (no gap closing) and keeps the
    trajectories seen in every frame.

    Args:
        coords_per_frame: list of ``T`` arrays ``(N_t, 2)`` in pixels.
        max_displacement: largest move between consecutive frames, pixels.
        pixel_size: multiplies the positions (pm per pixel for positions in pm).

    Returns:
        ``(N, T, 2)`` positions (pixels times ``pixel_size``), ordered by their first-frame row.
    """
    if len(coords_per_frame) < 2:
        raise ValueError("need at least 2 frames to link columns into trajectories")
    tracks = track(coords_per_frame, max_displacement, max_gap=0)
    n_t = len(coords_per_frame)
    full = [tr[:, 1:] for tr in tracks.trajectories if len(tr) == n_t]
    if not full:
        raise ValueError("no column was linked through every frame; raise max_displacement "
                         "or check the detection")
    pos = np.stack(full) * float(pixel_size)
    return pos[np.argsort(pos[:, 0, 0], kind="stable")]


@dataclass
class TrajectoryPCA:
    """PCA of displacement trajectories.

    Attributes:
        explained: ``(K,)`` fraction of the total squared displacement per component.
        scores: ``(K, N)`` the per-atom amplitude of each component (input unit): its map.
        series: ``(K, T, 2)`` unit-norm time series of each component along (row, col); the
            model is ``displacements[i, t, a] = sum_k scores[k, i] * series[k, t, a]``.
    """

    explained: np.ndarray
    scores: np.ndarray
    series: np.ndarray


def trajectory_pca(displacements, n_components: int = 6) -> TrajectoryPCA:
    """PCA of ``(N, T, 2)`` displacement trajectories, one sample per atom (atoms x 2T).

    The matrix is *not* centred over atoms: a drift moves every atom alike, and centring would
    remove it. Signs are fixed without ground truth: each component's mean score is >= 0.

    Args:
        displacements: ``(N, T, 2)`` (e.g. positions minus each atom's time mean).
        n_components: components kept (at most ``min(N, 2T)``).

    Returns:
        :class:`TrajectoryPCA`.
    """
    d = _positions(displacements, "displacements", 3)
    n, t_n, _ = d.shape
    k = int(n_components)
    if not 1 <= k <= min(n, 2 * t_n):
        raise ValueError(f"n_components must be between 1 and min(N, 2T) = {min(n, 2 * t_n)}, "
                         f"got {n_components!r}")
    mat = d.transpose(0, 2, 1).reshape(n, 2 * t_n)  # [row series | col series] per atom
    u, s, vt = np.linalg.svd(mat, full_matrices=False)
    total = float((s**2).sum())
    if not total > 0:
        raise ValueError("displacements are all zero; nothing to decompose")
    scores = (u[:, :k] * s[:k]).T
    series = vt[:k].reshape(k, 2, t_n).transpose(0, 2, 1)
    flip = np.where(scores.mean(1) < 0, -1.0, 1.0)
    return TrajectoryPCA(explained=s[:k] ** 2 / total, scores=scores * flip[:, None],
                         series=series * flip[:, None, None])


# --------------------------------------------------------------------------------------------
# baselines
# --------------------------------------------------------------------------------------------
def rigid_shifts(frames, max_shift: float = 4.0) -> np.ndarray:
    """Rigid per-frame alignment by cross-correlation of consecutive frames.

    Plain cross-correlation (no phase normalisation: the phase-only correlation whitens the
    shot noise and fails on noisy frames), computed by FFT as in
    ``skimage.registration.phase_cross_correlation(..., normalization=None)``, but with the
    peak searched only within ``max_shift`` pixels of zero: a lattice repeats itself, and over
    the whole frame a neighbouring lattice translation can win (a jump of a whole column
    spacing). The peak is refined to sub-pixel precision by a parabola through it and its two
    neighbours along each axis. Consecutive frames are registered and the steps summed; each
    frame is tapered by a Hann window so that the frame edges do not dominate.

    Args:
        frames: ``(T, H, W)`` images.
        max_shift: largest move between consecutive frames, pixels (the same bound as the
            tracking; keep it below half the column spacing).

    Returns:
        ``(T, 2)`` apparent displacement of every frame's content relative to the mean of all
        frames, pixels ``(row, col)``.
    """
    stack, _ = image_stack(frames, "frames")
    if len(stack) < 2:
        raise ValueError("rigid_shifts needs at least 2 frames")
    h, w = stack.shape[1:]
    if not (np.isfinite(max_shift) and 1 <= max_shift < min(h, w) / 2):
        raise ValueError(f"max_shift must be between 1 pixel and half the frame, got "
                         f"{max_shift!r}")
    taper = np.outer(np.hanning(h), np.hanning(w))
    spectra = [np.fft.fft2((f - f.mean()) * taper) for f in stack.astype(np.float64)]
    lag_r = np.fft.fftfreq(h, 1.0 / h)[:, None]  # integer lags in FFT order
    lag_c = np.fft.fftfreq(w, 1.0 / w)[None, :]
    window = lag_r**2 + lag_c**2 <= float(max_shift) ** 2
    disp = np.zeros((len(stack), 2))
    for t in range(1, len(stack)):
        # cc[s] = sum_x prev(x) cur(x - s): peaks where cur shifted by s matches prev
        cc = np.fft.ifft2(spectra[t - 1] * np.conj(spectra[t])).real
        peak = np.unravel_index(np.argmax(np.where(window, cc, -np.inf)), cc.shape)
        shift = np.empty(2)
        for axis, n in enumerate((h, w)):
            lo, hi = list(peak), list(peak)
            lo[axis], hi[axis] = (peak[axis] - 1) % n, (peak[axis] + 1) % n
            a, b, c = cc[tuple(lo)], cc[peak], cc[tuple(hi)]
            curv = a - 2 * b + c
            frac = 0.5 * (a - c) / curv if curv < 0 else 0.0
            shift[axis] = (lag_r.ravel() if axis == 0 else lag_c.ravel())[peak[axis]] + frac
        disp[t] = disp[t - 1] - shift  # cur matches prev shifted by -shift: content moved
    return disp - disp.mean(0)


def row_polynomial(points, values, query, band: float, degree: int = 2) -> np.ndarray:
    """Per-row polynomial baseline for one frame: the displacement at each query point is a
    polynomial in the fast-scan coordinate (column) fitted to the points in a band of scan
    lines around it.

    For each query, the points with ``|row - row_q| <= band / 2`` are used (at least
    ``degree + 2`` of them: the nearest in row are added if the band holds fewer), and a
    least-squares polynomial of ``degree`` in the column is evaluated at the query's column,
    clipped to the columns those points span (a band holds few columns, and a polynomial
    extrapolated beyond them diverges).

    Args:
        points: ``(n, 2)`` ``(row, col)`` of the measured columns (pixels).
        values: ``(n, D)`` their displacements (any unit).
        query: ``(m, 2)`` where to predict (pixels).
        band: height of the band of scan lines, pixels.
        degree: polynomial degree along the fast-scan axis.

    Returns:
        ``(m, D)`` predicted displacements.
    """
    p = _positions(points, "points", 2)
    q = _positions(query, "query", 2)
    v = np.asarray(real_array(values, "values"), dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    if len(v) != len(p):
        raise ValueError(f"values has {len(v)} rows but points has {len(p)}; pass one "
                         "displacement per point")
    deg = int(degree)
    if deg < 0 or len(p) < deg + 2:
        raise ValueError(f"degree must be >= 0 and there must be >= degree + 2 = {deg + 2} "
                         f"points, got degree {degree!r} and {len(p)} points")
    if not band > 0:
        raise ValueError(f"band must be a positive number of scan lines, got {band!r}")
    scale = max(float(np.ptp(p[:, 1])), 1.0)
    out = np.empty((len(q), v.shape[1]))
    for j, (r, c) in enumerate(q):
        dist = np.abs(p[:, 0] - r)
        use = dist <= band / 2
        if use.sum() < deg + 2:
            use = np.zeros(len(p), bool)
            use[np.argsort(dist, kind="stable")[:deg + 2]] = True
        c = np.clip(c, p[use, 1].min(), p[use, 1].max())
        x = (p[use, 1] - c) / scale  # centred on the query: the value is the constant term
        design = np.vander(x, deg + 1, increasing=True)
        coef, *_ = np.linalg.lstsq(design, v[use], rcond=None)
        out[j] = coef[0]
    return out


# --------------------------------------------------------------------------------------------
# single images: the lattice and the within-frame line jitter
# --------------------------------------------------------------------------------------------
@dataclass
class Lattice:
    """A Bravais lattice fitted to positions.

    Attributes:
        origin: ``(2,)`` position of lattice site (0, 0).
        vectors: ``(2, 2)`` the two lattice vectors (rows), same unit as the positions.
        indices: ``(N, 2)`` int, the lattice index of every position.
        residuals: ``(N, 2)`` position minus its fitted (affine) site.
    """

    origin: np.ndarray
    vectors: np.ndarray
    indices: np.ndarray
    residuals: np.ndarray


def fit_lattice(points) -> Lattice:
    """Fit a Bravais lattice ``origin + indices @ vectors`` to ``(N, 2)`` positions.

    The two lattice vectors start from the nearest-neighbour vectors (the two most common
    directions, folded onto a half plane), each position gets the nearest integer index, and
    origin and vectors are then refined by least squares (an affine fit), twice. Positions of
    a lattice with a basis (several columns per cell) must be reduced to one sublattice first.

    Returns:
        :class:`Lattice`; the residuals are what the lattice does not explain (distortion,
        strain, noise).
    """
    from scipy.spatial import cKDTree

    p = _positions(points, "points", 2)
    if len(p) < 12:
        raise ValueError(f"fit_lattice needs at least 12 positions, got {len(p)}")
    dist, nn = cKDTree(p).query(p, k=7)
    d0 = np.median(dist[:, 1])
    vec = (p[nn[:, 1:]] - p[:, None]).reshape(-1, 2)[(dist[:, 1:] < 1.3 * d0).ravel()]
    vec = np.where((np.arctan2(vec[:, 0], vec[:, 1]) < 0)[:, None], -vec, vec)
    ang = np.mod(np.arctan2(vec[:, 0], vec[:, 1]), np.pi)
    hist, edges = np.histogram(ang, bins=36, range=(0, np.pi))
    centres = edges[:-1] + np.pi / 72

    def apart(a, b):  # angle between two directions (modulo pi)
        d = np.mod(np.abs(a - b), np.pi)
        return np.minimum(d, np.pi - d)

    first = centres[np.argmax(hist)]
    others = np.where(apart(centres, first) > np.pi / 6, hist, 0)
    if others.max() == 0:
        raise ValueError("found only one direction of neighbours; the positions do not form "
                         "a 2D lattice")
    second = centres[np.argmax(others)]
    v1 = np.median(vec[apart(ang, first) < np.pi / 18], axis=0)
    v2 = np.median(vec[apart(ang, second) < np.pi / 18], axis=0)
    vectors = np.stack([v1, v2])
    origin = p[np.argmin(((p - p.mean(0)) ** 2).sum(1))]
    for _ in range(3):
        idx = np.round(np.linalg.solve(vectors.T, (p - origin).T).T).astype(int)
        design = np.column_stack([np.ones(len(p)), idx])
        coef, *_ = np.linalg.lstsq(design, p, rcond=None)
        origin, vectors = coef[0], coef[1:]
    return Lattice(origin=origin, vectors=vectors, indices=idx, residuals=p - design @ coef)


def row_profile(rows, values, edges) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` (N, D) in bands of scan lines ``edges`` (B + 1,) by their ``rows``
    (N,): the within-frame line-jitter estimate when ``values`` are lattice residuals.

    Returns:
        ``(B, D)`` band means (NaN for empty bands) and ``(B,)`` the number of points per band.
    """
    r = np.asarray(real_array(rows, "rows"), dtype=np.float64).ravel()
    v = np.asarray(real_array(values, "values"), dtype=np.float64)
    v = v[:, None] if v.ndim == 1 else v
    e = np.asarray(real_array(edges, "edges"), dtype=np.float64).ravel()
    if len(v) != len(r):
        raise ValueError(f"values has {len(v)} rows but rows has {len(r)}")
    if len(e) < 2 or np.any(np.diff(e) <= 0):
        raise ValueError("edges must be >= 2 increasing band boundaries (scan lines)")
    band = np.digitize(r, e) - 1
    ok = (band >= 0) & (band < len(e) - 1)
    count = np.bincount(band[ok], minlength=len(e) - 1)
    sums = np.stack([np.bincount(band[ok], weights=v[ok, d], minlength=len(e) - 1)
                     for d in range(v.shape[1])], 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / count[:, None], count


def warp_frame(frame, displacement) -> np.ndarray:
    """Resample ``frame`` (H, W) with the apparent displacement ``displacement`` (H, W, 2),
    pixels, removed: output pixel ``q`` takes the input at ``q + displacement(q)`` (linear
    interpolation; first order in the displacement's gradient)."""
    from scipy import ndimage

    f = np.asarray(real_array(frame, "frame"), dtype=np.float64)
    d = np.asarray(real_array(displacement, "displacement"), dtype=np.float64)
    if f.ndim != 2 or d.shape != f.shape + (2,):
        raise ValueError(f"frame must be (H, W) and displacement (H, W, 2); got {f.shape} and "
                         f"{d.shape}")
    rr, cc = np.meshgrid(np.arange(f.shape[0]), np.arange(f.shape[1]), indexing="ij")
    return ndimage.map_coordinates(f, [rr + d[..., 0], cc + d[..., 1]], order=1,
                                   mode="nearest")
