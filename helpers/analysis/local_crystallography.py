"""Local crystallography of atomic columns: an ideal lattice fitted from the columns
themselves, displacements from it, species from intensities, neighbour shells, the local
composition, a learned distortion mode and the regression of its amplitude on the local and
the global composition.

Positions are ``(row, col)`` pixels; a lattice is ``p = u @ B`` with ``B`` ``(2, 2)`` whose
rows are the lattice vectors ``a1``, ``a2`` (60 degrees apart) and ``u`` fractional
coordinates. Nothing here sees a simulator's truth.

- :func:`refine_centroids`, :func:`column_intensity`: sub-pixel centres and integrated
  intensities of columns;
- :func:`fit_ideal_lattice` (:class:`IdealLattice`): index every column on a triangular or
  honeycomb lattice and fit a smooth (polynomial) ideal lattice, which absorbs scan drift but
  not a displacement pattern that alternates from row to row;
- :func:`two_species`: a two-component Gaussian mixture of log intensities;
- :func:`shell_fractions`, :func:`complete_shells`, :func:`local_environments`: neighbour
  shells on the lattice;
- :func:`chain_distortion` (:class:`ChainDistortion`): PCA of the displacements of every atom
  and its six neighbours finds the distortion mode; each atom's amplitude is its own
  displacement along the mode, signed by the mode's row pattern;
- :func:`amplitude_regression` (:class:`AmplitudeRegression`): amplitude on local fraction
  (several shell radii, chosen by cross-validation) and global fraction, with standard
  errors clustered by image;
- :func:`weighted_fractions`, :func:`length_regression` (:class:`LengthRegression`): the
  local fraction as a continuous family of Gaussian-weighted fractions whose length is
  chosen by cross-validation (no step-shaped kernel forced on the data);
- :func:`order_parameter`: an image's mean amplitude against its noise floor from spatial
  blocks;
- :func:`distortion_test` (:class:`DistortionTest`): is there a distortion at all? A mean
  whose sign is fixed on other data (cross-fitting, unbiased under noise) and a block-wise
  power against a sign-flip null (also sees antiphase or multi-domain distortions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import real_array
from ..features import _points as point_rows
from ..features import inside_frame
from ..simulate.alloy_lattice import metal_shell_offsets

__all__ = [
    "IdealLattice",
    "fit_ideal_lattice",
    "find_columns",
    "refine_centroids",
    "refine_gaussian",
    "column_intensity",
    "two_species",
    "shell_fractions",
    "local_environments",
    "complete_shells",
    "weighted_fractions",
    "ChainDistortion",
    "chain_distortion",
    "AmplitudeRegression",
    "amplitude_regression",
    "LengthRegression",
    "length_regression",
    "order_parameter",
    "DistortionTest",
    "distortion_test",
]


def _points(points, name: str = "points", min_rows: int = 1) -> np.ndarray:
    """``(N, 2)`` finite (row, col) positions (the suite's point check), N >= ``min_rows``."""
    p = point_rows(points, name)
    if len(p) < min_rows:
        raise ValueError(f"{name} must be (N, 2) (row, col) with N >= {min_rows}, got shape "
                         f"{p.shape}; pass positions such as find_atoms(...)[:, :2]")
    return p[:, :2].astype(np.float64)


def _image(image) -> np.ndarray:
    img = np.asarray(real_array(image, "image"), dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"image must be one (H, W) frame, got shape {img.shape}")
    if not np.isfinite(img).all():
        raise ValueError("image holds NaN or inf; clean it (np.nan_to_num) first")
    return img


def _disc(radius: float) -> np.ndarray:
    r = int(np.ceil(radius))
    dr, dc = np.mgrid[-r:r + 1, -r:r + 1]
    keep = dr**2 + dc**2 <= radius**2
    return np.c_[dr[keep], dc[keep]].astype(np.float64)


def _check_radius(radius) -> float:
    if isinstance(radius, bool) or not np.isfinite(radius) or radius <= 0:
        raise ValueError(f"radius must be a positive number of pixels, got {radius!r}; about "
                         "the probe's standard deviation is usual")
    return float(radius)


def find_columns(image, sigma: float, min_distance: float, threshold: float = 6.0,
                 margin: float | None = None) -> np.ndarray:
    """Atomic columns as local maxima of the Gaussian-smoothed image.

    A global threshold cannot separate a heavy column from its light neighbours when the
    heavy column's tail is brighter than a light column's peak (Re beside S2); local maxima
    can. A maximum is kept when it is the largest value within ``min_distance`` pixels and
    rises above the background (the smoothed image's 10th percentile) by more than
    ``threshold`` times the median rise of the clearly visible maxima (those above a tenth of
    the brightest).

    Args:
        image: ``(H, W)`` frame.
        sigma: Gaussian smoothing, pixels (about the column's standard deviation).
        min_distance: pixels; below half the shortest column-to-column distance.
        threshold: minimum height in units of the smoothed image's noise (> 0).
        margin: maxima closer than this to the border are dropped, pixels (default
            ``3 * sigma``): a fit window cut by the edge biases the centre.

    Returns:
        ``(N, 2)`` float64 pixel positions (row, col) of the maxima, integer-valued; refine
        them with :func:`refine_centroids`.
    """
    from scipy import ndimage

    img = _image(image)
    if not threshold > 0:
        raise ValueError(f"threshold must be a positive multiple of the noise, got "
                         f"{threshold!r}; 6 is a safe start")
    if not min_distance >= 1:
        raise ValueError(f"min_distance must be >= 1 pixel, got {min_distance!r}")
    from scipy.spatial import cKDTree

    sm = ndimage.gaussian_filter(img, _check_radius(sigma))
    bg = float(np.percentile(sm, 10))
    # 3 x 3 maxima, then the lower of two maxima closer than min_distance is dropped (a disc
    # filter would also drop a faint column on the slope of a bright neighbour)
    peak = (sm == ndimage.maximum_filter(sm, size=3)) & (sm > bg)
    rows, cols = np.nonzero(peak)
    height = sm[rows, cols] - bg
    if height.size == 0:
        return np.zeros((0, 2))
    order = np.argsort(-height, kind="stable")
    rows, cols, height = rows[order], cols[order], height[order]
    tree = cKDTree(np.c_[rows, cols])
    alive = np.ones(len(rows), bool)
    for n in range(len(rows)):
        if alive[n]:
            close = tree.query_ball_point((rows[n], cols[n]), float(min_distance))
            alive[[c for c in close if c > n]] = False
    rows, cols, height = rows[alive], cols[alive], height[alive]
    noise = 1.4826 * np.median(np.abs(img - sm)) / (2.0 * np.sqrt(np.pi) * sigma)
    edge = 3.0 * sigma if margin is None else float(margin)
    keep = (height > threshold * noise) & inside_frame(np.c_[rows, cols], img.shape, edge)
    return np.c_[rows[keep], cols[keep]].astype(np.float64)


def refine_centroids(image, points, radius: float, n_iter: int = 3,
                     background: float | None = None) -> np.ndarray:
    """Sub-pixel column centres: the intensity-weighted centroid (above ``background``) of
    the disc of ``radius`` pixels around each point, iterated ``n_iter`` times (the disc
    follows the centroid). A symmetric peak's centroid is its centre, so the estimate is free
    of the pixel grid's pull.

    Args:
        image: ``(H, W)`` frame.
        points: ``(N, 2)`` starting centres, pixels.
        radius: disc radius, pixels (about the column's standard deviation).
        n_iter: iterations (>= 1).
        background: level subtracted first (default the image's 10th percentile).

    Returns:
        ``(N, 2)`` float64 refined centres.
    """
    from scipy import ndimage

    img = _image(image)
    p = _points(points).copy()
    radius = _check_radius(radius)
    bg = float(np.percentile(img, 10)) if background is None else float(background)
    disc = _disc(radius)
    for _ in range(max(int(n_iter), 1)):
        rr = p[:, :1] + disc[None, :, 0]
        cc = p[:, 1:] + disc[None, :, 1]
        val = ndimage.map_coordinates(img, [rr, cc], order=1, mode="nearest") - bg
        val = np.clip(val, 0.0, None)
        mass = val.sum(1)
        ok = mass > 0
        p[ok, 0] = (val[ok] * rr[ok]).sum(1) / mass[ok]
        p[ok, 1] = (val[ok] * cc[ok]).sum(1) / mass[ok]
    return p


def refine_gaussian(image, points, sigma: float, radius: float | None = None,
                    n_iter: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel column centres by a least-squares fit of ``b + A exp(-r^2 / (2 s^2))`` to the
    pixels within ``radius`` of each column (Levenberg-Marquardt, all columns at once).

    The fit uses every pixel's value, not only a centroid, so it is the more precise centre
    under shot noise, and a constant background does not pull it.

    Args:
        image: ``(H, W)`` frame.
        points: ``(N, 2)`` starting centres, pixels (within a pixel or so of the column).
        sigma: starting Gaussian width, pixels (fitted per column).
        radius: fitting window radius, pixels (default ``1.6 * sigma``).
        n_iter: iterations.

    Returns:
        ``centres`` ``(N, 2)`` and ``params`` ``(N, 3)`` ``(A, s, b)`` per column. A fit that
        moves a centre by more than ``radius`` keeps its starting point.
    """
    img = _image(image)
    p0 = _points(points)
    sigma = _check_radius(sigma)
    radius = 1.6 * sigma if radius is None else _check_radius(radius)
    disc = _disc(radius)
    base = np.round(p0)
    rr = np.clip(base[:, :1] + disc[None, :, 0], 0, img.shape[0] - 1)
    cc = np.clip(base[:, 1:] + disc[None, :, 1], 0, img.shape[1] - 1)
    val = img[rr.astype(int), cc.astype(int)]
    b = val.min(1)
    theta = np.c_[val.max(1) - b, p0, np.full(len(p0), sigma), b]  # A, r, c, s, b
    lam = np.full(len(p0), 1e-2)

    def model(t):
        dr, dc = rr - t[:, 1:2], cc - t[:, 2:3]
        s2 = t[:, 3:4] ** 2
        g = np.exp(-(dr**2 + dc**2) / (2 * s2))
        return t[:, :1] * g + t[:, 4:5], g, dr, dc

    m, g, dr, dc = model(theta)
    cost = ((val - m) ** 2).sum(1)
    for _ in range(int(n_iter)):
        A, s = theta[:, :1], theta[:, 3:4]
        J = np.stack([g, A * g * dr / s**2, A * g * dc / s**2,
                      A * g * (dr**2 + dc**2) / s**3, np.ones_like(g)], axis=2)
        JtJ = np.einsum("npi,npj->nij", J, J)
        Jtr = np.einsum("npi,np->ni", J, val - m)
        diag = np.einsum("nii->ni", JtJ)
        step = np.linalg.solve(JtJ + lam[:, None, None] * np.eye(5) * diag[:, :, None]
                               + 1e-9 * np.eye(5), Jtr[..., None])[..., 0]
        trial = theta + step
        trial[:, 3] = np.clip(np.abs(trial[:, 3]), 0.3 * sigma, 3.0 * sigma)
        mt, gt, drt, dct = model(trial)
        cost_t = ((val - mt) ** 2).sum(1)
        better = cost_t < cost
        theta[better], cost[better] = trial[better], cost_t[better]
        m[better], g[better], dr[better], dc[better] = mt[better], gt[better], drt[better], \
            dct[better]
        lam = np.where(better, lam * 0.3, lam * 10.0)
    centres = theta[:, 1:3].copy()
    lost = np.linalg.norm(centres - p0, axis=1) > radius
    centres[lost] = p0[lost]
    return centres, theta[:, [0, 3, 4]]


def column_intensity(image, points, radius: float, background: float | None = None
                     ) -> np.ndarray:
    """Integrated intensity above ``background`` in a disc of ``radius`` px around each point
    (bilinear sampling at sub-pixel centres); ``(N,)`` float64, image units times pixels."""
    from scipy import ndimage

    img = _image(image)
    p = _points(points)
    radius = _check_radius(radius)
    bg = float(np.percentile(img, 10)) if background is None else float(background)
    disc = _disc(radius)
    val = ndimage.map_coordinates(img, [p[:, :1] + disc[None, :, 0],
                                        p[:, 1:] + disc[None, :, 1]], order=1, mode="nearest")
    return (val - bg).sum(1)


# --------------------------------------------------------------------------------------------
# the ideal lattice
# --------------------------------------------------------------------------------------------
@dataclass
class IdealLattice:
    """Columns indexed on a fitted lattice (see :func:`fit_ideal_lattice`).

    Attributes:
        indices: ``(N, 2)`` int64 ``(i, j)`` cell of each column.
        sublattice: ``(N,)`` int8: 0 the sublattice of the seed column, 1 the other one of a
            honeycomb (offset ``offset``), -1 a column off the lattice (or a duplicate).
        ideal: ``(N, 2)`` float64 ideal positions, pixels (NaN off the lattice).
        displacement: ``(N, 2)`` observed minus ideal, pixels, in the image frame.
        corrected: ``(N, 2)`` the displacement with the drift undone: its fractional value
            through the local lattice (``delta_u``) times ``hexagonal``, pixels.
        basis: ``(2, 2)`` the mean (affine) lattice vectors (rows) in the image, pixels.
        hexagonal: ``(2, 2)`` the undrifted lattice: vectors of the mean length 60 degrees
            apart along the first fitted one (the frame of ``corrected``).
        offset: ``(2,)`` fractional offset of sublattice 1 (zeros for a triangular lattice).
        rms: root-mean-square length of ``displacement`` over the lattice columns, pixels.
    """

    indices: np.ndarray
    sublattice: np.ndarray
    ideal: np.ndarray
    displacement: np.ndarray
    corrected: np.ndarray
    basis: np.ndarray
    hexagonal: np.ndarray
    offset: np.ndarray
    rms: float

    @property
    def lattice_constant(self) -> float:
        """Mean length of the two lattice vectors, pixels."""
        return float(np.linalg.norm(self.basis, axis=1).mean())


def _monomials(u: np.ndarray, degree: int):
    """Monomials ``u0^p u1^q`` (p + q <= degree) and their derivatives in u0 and u1."""
    cols, d0, d1 = [], [], []
    for p in range(degree + 1):
        for q in range(degree + 1 - p):
            cols.append(u[:, 0] ** p * u[:, 1] ** q)
            d0.append(p * u[:, 0] ** max(p - 1, 0) * u[:, 1] ** q if p else 0 * u[:, 0])
            d1.append(q * u[:, 0] ** p * u[:, 1] ** max(q - 1, 0) if q else 0 * u[:, 0])
    return np.stack(cols, 1), np.stack(d0, 1), np.stack(d1, 1)


def _assign(p, origin, basis, offsets):
    """Nearest site of each candidate sublattice: (sublattice, integer index, distance px)."""
    frac = (p - origin) @ np.linalg.inv(basis)
    best = np.full(len(p), np.inf)
    sub = np.zeros(len(p), np.int8)
    idx = np.zeros((len(p), 2), np.int64)
    for s, c in enumerate(offsets):
        k = np.round(frac - c)
        dist = np.linalg.norm((frac - c - k) @ basis, axis=1)
        better = dist < best
        best[better], sub[better], idx[better] = dist[better], s, k[better].astype(np.int64)
    return sub, idx, best


def fit_ideal_lattice(points, honeycomb: bool = True, degree: int = 3,
                      tolerance: float = 0.2, reference=None,
                      modelled=None) -> IdealLattice:
    """Index columns on a triangular (or honeycomb) lattice and fit a smooth ideal lattice.

    1. The lattice constant from the nearest-neighbour distance (times sqrt(3) on a
       honeycomb), the orientation from the six-fold mean angle of the neighbour vectors of
       that length.
    2. Starting from the column nearest the centroid, an affine lattice (origin, two vectors
       and, on a honeycomb, the second sublattice's offset) is refitted by least squares on
       the columns within a radius that grows until it covers all of them, re-indexing every
       column each time (so a drifted lattice is followed, not extrapolated).
    3. Positions are fitted as polynomials of degree ``degree`` of the fractional
       coordinates, which absorb slow scan drift; a pattern alternating between neighbouring
       rows is left in the residuals.

    Args:
        points: ``(N, 2)`` column positions, pixels (N >= 12).
        honeycomb: two sublattices (MoS2 projected: metal and S2) or one.
        degree: polynomial degree of the ideal lattice (1: affine).
        tolerance: columns farther than this many lattice constants from their site are off
            the lattice (sublattice -1).
        reference: ``(N,)`` bool, the columns the polynomial is fitted to (default all on
            the lattice); e.g. only the metal columns, whose centres the light columns' tails
            do not pull.
        modelled: ``(N, 2)`` displacements already explained (pixels, image frame; NaN or
            0 where none), taken off the columns for the polynomial fit only. A distortion
            whose amplitude varies in space leaks into a polynomial fitted to the displaced
            columns (the fit sees it as noise of that size); fitting again with the
            distortion found in a first pass taken off removes the leak
            (:func:`chain_distortion` gives it).

    Returns:
        :class:`IdealLattice`.
    """
    from scipy.spatial import cKDTree

    p = _points(points, min_rows=12)
    if isinstance(degree, bool) or int(degree) != degree or not 1 <= degree <= 5:
        raise ValueError(f"degree must be an integer from 1 to 5, got {degree!r}")
    if not 0 < tolerance < 0.3:
        raise ValueError(f"tolerance must be in (0, 0.3) lattice constants, got {tolerance!r}")
    tree = cKDTree(p)
    d_nn = float(np.median(tree.query(p, k=2)[0][:, 1]))
    if d_nn <= 0:
        raise ValueError("points hold duplicates at zero distance; deduplicate them first")
    a0 = d_nn * np.sqrt(3.0) if honeycomb else d_nn
    pairs = tree.query_pairs(1.1 * a0, output_type="ndarray")
    v = p[pairs[:, 1]] - p[pairs[:, 0]]
    length = np.linalg.norm(v, axis=1)
    keep = np.abs(length - a0) < 0.1 * a0
    if keep.sum() < 6:
        raise ValueError("too few neighbour vectors of one lattice constant: are these the "
                         "columns of a triangular/honeycomb lattice (set honeycomb=...)?")
    phi = np.arctan2(-v[keep, 0], v[keep, 1])  # anticlockwise on screen
    theta = np.angle(np.mean(np.exp(6j * phi))) / 6.0
    a = float(np.median(length[keep]))
    basis = a * np.array([[-np.sin(theta), np.cos(theta)],
                          [-np.sin(theta + np.pi / 3), np.cos(theta + np.pi / 3)]])
    start = int(np.argmin(np.linalg.norm(p - p.mean(0), axis=1)))
    origin = p[start].copy()
    offsets = [np.zeros(2)]
    if honeycomb:
        sub, _, dist = _assign(p, origin, basis, [np.zeros(2), np.full(2, 1 / 3),
                                                  np.full(2, -1 / 3)])
        # decided near the seed, where the rough lattice cannot have drifted off
        near = (dist < tolerance * a) & (np.linalg.norm(p - origin, axis=1) < 4.0 * a)
        plus, minus = np.sum(near & (sub == 1)), np.sum(near & (sub == 2))
        offsets.append(np.full(2, 1 / 3 if plus >= minus else -1 / 3))
    offsets = np.array(offsets)
    reach = np.linalg.norm(p - origin, axis=1)
    radius = 4.0 * a
    while True:
        sub, idx, dist = _assign(p, origin, basis, offsets)
        use = (dist < tolerance * a) & (reach <= radius)
        u = idx + offsets[sub]
        X = np.c_[np.ones(use.sum()), u[use]]
        coef = np.linalg.lstsq(X, p[use], rcond=None)[0]
        origin, basis = coef[0], coef[1:3]
        if radius >= reach.max():
            break
        radius *= 1.6
    sub, idx, dist = _assign(p, origin, basis, offsets)
    u = idx + offsets[sub]
    scale = max(float(np.abs(u).max()), 1.0)
    on = dist < tolerance * a
    ref = np.ones(len(p), bool) if reference is None else np.asarray(reference, bool)
    if ref.shape != (len(p),):
        raise ValueError(f"reference must be (N,) booleans for N = {len(p)}, got {ref.shape}")
    known = np.zeros_like(p)
    if modelled is not None:
        known = np.asarray(real_array(modelled, "modelled"), dtype=np.float64)
        if known.shape != p.shape:
            raise ValueError(f"modelled must be (N, 2) like points, got {known.shape}")
        known = np.nan_to_num(known, nan=0.0, posinf=0.0, neginf=0.0)
    for _ in range(2):  # fit, then refit without the columns the fit puts off the lattice
        M, _, _ = _monomials(u / scale, int(degree))
        if (on & ref).sum() < M.shape[1] + 3:
            raise ValueError(f"only {(on & ref).sum()} reference columns on the lattice for "
                             f"{M.shape[1]} polynomial terms; lower degree or widen reference")
        coef = np.linalg.lstsq(M[on & ref], (p - known)[on & ref], rcond=None)[0]
        ideal = M @ coef
        on = np.linalg.norm(p - ideal, axis=1) < tolerance * a
    M, D0, D1 = _monomials(u / scale, int(degree))
    ideal = M @ coef
    jac = np.stack([D0 @ coef, D1 @ coef], axis=1) / scale  # (N, 2 [d/du0, d/du1], 2)
    disp = p - ideal
    # duplicates: keep the column nearest to each site
    key = np.c_[sub, idx]
    order = np.lexsort((np.linalg.norm(disp, axis=1), key[:, 2], key[:, 1], key[:, 0]))
    dup = np.zeros(len(p), bool)
    same = np.all(key[order][1:] == key[order][:-1], axis=1)
    dup[order[1:][same]] = True
    on &= ~dup
    sub = np.where(on, sub, -1).astype(np.int8)
    delta_u = np.einsum("nk,nkj->nj", disp, np.linalg.inv(jac))
    # the undrifted lattice: equal vectors 60 degrees apart, the fitted first one's direction
    a_mean = float(np.linalg.norm(basis, axis=1).mean())
    th = np.arctan2(-basis[0, 0], basis[0, 1])
    def cross(u, v):
        return u[0] * v[1] - u[1] * v[0]

    sign = 1.0 if cross(basis[0], basis[1]) * cross([-np.sin(th), np.cos(th)],
                                                    [-np.sin(th + np.pi / 3),
                                                     np.cos(th + np.pi / 3)]) > 0 else -1.0
    hexagonal = a_mean * np.array([[-np.sin(th), np.cos(th)],
                                   [-np.sin(th + sign * np.pi / 3), np.cos(th + sign * np.pi / 3)]])
    corrected = delta_u @ hexagonal
    ideal[~on] = np.nan
    disp[~on] = np.nan
    corrected[~on] = np.nan
    rms = float(np.sqrt(np.mean(np.sum(disp[on] ** 2, axis=1)))) if on.any() else float("nan")
    return IdealLattice(indices=idx, sublattice=sub, ideal=ideal, displacement=disp,
                        corrected=corrected, basis=basis, hexagonal=hexagonal,
                        offset=offsets[-1] if honeycomb
                        else np.zeros(2), rms=rms)


# --------------------------------------------------------------------------------------------
# species and neighbourhoods
# --------------------------------------------------------------------------------------------
def two_species(intensity, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split columns into a dim and a bright species with a two-component Gaussian mixture of
    their log intensities (Z contrast is multiplicative: log makes both peaks alike).

    Args:
        intensity: ``(N,)`` positive integrated intensities (N >= 10).
        seed: mixture initialisation.

    Returns:
        ``labels`` ``(N,)`` int8 (1 for the brighter component) and ``p_bright`` ``(N,)``.
    """
    from sklearn.mixture import GaussianMixture

    x = np.asarray(real_array(intensity, "intensity"), dtype=np.float64).ravel()
    if len(x) < 10 or not np.isfinite(x).all():
        raise ValueError(f"intensity must hold >= 10 finite values, got {len(x)}")
    if (x <= 0).any():
        raise ValueError("intensity must be positive (integrated counts above background); "
                         "subtract a lower background or drop columns off the sample")
    gm = GaussianMixture(2, n_init=3, random_state=seed).fit(np.log(x)[:, None])
    bright = int(np.argmax(gm.means_.ravel()))
    prob = gm.predict_proba(np.log(x)[:, None])[:, bright]
    return (prob >= 0.5).astype(np.int8), prob


def _lookup(indices, mask):
    idx = np.asarray(indices, dtype=np.int64)
    if idx.ndim != 2 or idx.shape[1] != 2:
        raise ValueError(f"indices must be (N, 2) integer lattice indices, got {idx.shape}")
    m = np.ones(len(idx), bool) if mask is None else np.asarray(mask, bool)
    if m.shape != (len(idx),):
        raise ValueError(f"mask must be (N,) booleans, got {m.shape} for {len(idx)} indices")
    table = {(int(i), int(j)): n for n, (i, j) in enumerate(idx) if m[n]}
    return idx, m, table


def shell_fractions(indices, is_b, n_shells: int = 2, mask=None,
                    include_self: bool = True) -> np.ndarray:
    """Fraction of B atoms among each site (optionally) and its neighbours in the first
    ``n_shells`` shells of a triangular lattice, counting only the sites present.

    Args:
        indices: ``(N, 2)`` int lattice indices of one image's sites (a1, a2 at 60 degrees).
        is_b: ``(N,)`` bool, the site holds species B (e.g. Re).
        n_shells: shells counted (1: 6 neighbours, 2: 12, 3: 18, 4: 30).
        mask: ``(N,)`` bool, which rows are sites (default all).
        include_self: count the site itself.

    Returns:
        ``(N,)`` float64 fractions (NaN for rows outside ``mask``).
    """
    idx, m, table = _lookup(indices, mask)
    b = np.asarray(is_b, bool)
    if b.shape != (len(idx),):
        raise ValueError(f"is_b must be (N,) booleans, got {b.shape} for {len(idx)} indices")
    offs = np.concatenate(metal_shell_offsets(n_shells))
    out = np.full(len(idx), np.nan)
    for n in np.flatnonzero(m):
        rows = [table.get((int(idx[n, 0] + di), int(idx[n, 1] + dj))) for di, dj in offs]
        rows = [r for r in rows if r is not None] + ([n] if include_self else [])
        out[n] = b[rows].mean() if rows else np.nan
    return out


def weighted_fractions(indices, is_b, lengths, mask=None,
                       include_self: bool = True) -> np.ndarray:
    """Distance-weighted fraction of B atoms around every site of a triangular lattice, for
    a family of lengths: ``f_i(l) = sum_j w_ij B_j / sum_j w_ij`` with Gaussian weights
    ``w_ij = exp(-(r_ij / l)^2)`` over the sites present (the site itself has weight 1;
    sites beyond ``2.5 l``, weight below 0.002, are left out).

    A continuous alternative to :func:`shell_fractions`: the length ``l`` can be chosen by
    cross-validation (:func:`length_regression`) instead of among a few whole shells.

    Args:
        indices: ``(N, 2)`` int lattice indices of one image's sites (a1, a2 at 60 degrees;
            ``r_ij^2 = di^2 + dj^2 + di dj`` in lattice constants).
        is_b: ``(N,)`` bool, the site holds species B (e.g. Re).
        lengths: one length or ``(L,)`` lengths ``l``, lattice constants (each > 0).
        mask: ``(N,)`` bool, which rows are sites (default all).
        include_self: count the site itself (weight 1); without it, the fraction of its
            neighbours (NaN where none is present).

    Returns:
        ``(N, L)`` float64 fractions (``(N,)`` for one length), NaN outside ``mask``.
    """
    from scipy import ndimage

    idx, m, _ = _lookup(indices, mask)
    b = np.asarray(is_b, bool)
    if b.shape != (len(idx),):
        raise ValueError(f"is_b must be (N,) booleans, got {b.shape} for {len(idx)} indices")
    ells = np.asarray(real_array(lengths, "lengths"), dtype=np.float64)
    scalar = ells.ndim == 0
    ells = ells.ravel()
    if ells.size == 0 or not np.isfinite(ells).all() or (ells <= 0).any():
        raise ValueError(f"lengths must be positive numbers of lattice constants, got "
                         f"{lengths!r}; e.g. np.geomspace(0.5, 3, 13)")
    out = np.full((len(idx), len(ells)), np.nan)
    if not m.any():
        return out[:, 0] if scalar else out
    lo = idx[m].min(0)
    shape = tuple(idx[m].max(0) - lo + 1)
    cell = tuple((idx[m] - lo).T)
    present = np.zeros(shape)
    present[cell] = 1.0
    bgrid = np.zeros(shape)
    bgrid[cell] = b[m]
    for c, ell in enumerate(ells):
        reach = int(np.ceil(2.5 * ell)) + 1
        di, dj = np.meshgrid(np.arange(-reach, reach + 1), np.arange(-reach, reach + 1),
                             indexing="ij")
        r2 = (di**2 + dj**2 + di * dj).astype(float)
        k = np.where(r2 <= (2.5 * ell) ** 2, np.exp(-r2 / ell**2), 0.0)
        k[reach, reach] = 1.0 if include_self else 0.0
        total = ndimage.correlate(bgrid, k, mode="constant", cval=0.0)
        count = ndimage.correlate(present, k, mode="constant", cval=0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[m, c] = np.where(count[cell] > 0, total[cell] / count[cell], np.nan)
    return out[:, 0] if scalar else out


def complete_shells(indices, n_shells: int = 2, mask=None) -> np.ndarray:
    """Which sites have every neighbour of their first ``n_shells`` shells present.

    At the edge of the field of view (or next to a lost column) a local fraction counts fewer
    sites and is noisier; a regression on it is then attenuated (errors in the variable), so
    fits of local fractions use only complete neighbourhoods.

    Args:
        indices: ``(N, 2)`` int lattice indices; mask: ``(N,)`` bool, which rows are sites.

    Returns:
        ``(N,)`` bool (False outside ``mask``).
    """
    idx, m, table = _lookup(indices, mask)
    offs = np.concatenate(metal_shell_offsets(n_shells))
    return np.array([bool(m[n]) and all((int(idx[n, 0] + di), int(idx[n, 1] + dj)) in table
                                        for di, dj in offs) for n in range(len(idx))],
                    dtype=bool)


def local_environments(indices, values, mask=None) -> tuple[np.ndarray, np.ndarray]:
    """Values of each site and its six nearest neighbours, in a fixed neighbour order.

    Args:
        indices: ``(N, 2)`` int lattice indices.
        values: ``(N, D)`` per-site values (e.g. displacements).
        mask: ``(N,)`` bool, which rows are sites.

    Returns:
        ``features`` ``(N, 7, D)`` (the site first, then the neighbours at the offsets of
        ``metal_shell_offsets(1)[0]``; zeros where absent) and ``complete`` ``(N,)`` bool
        (the site and all six neighbours present).
    """
    idx, m, table = _lookup(indices, mask)
    val = np.asarray(real_array(values, "values"), dtype=np.float64)
    if val.ndim != 2 or len(val) != len(idx):
        raise ValueError(f"values must be (N, D) with N = {len(idx)}, got {val.shape}")
    offs = metal_shell_offsets(1)[0]
    feats = np.zeros((len(idx), 7, val.shape[1]))
    complete = m.copy()
    for n in np.flatnonzero(m):
        feats[n, 0] = val[n]
        for k, (di, dj) in enumerate(offs, start=1):
            r = table.get((int(idx[n, 0] + di), int(idx[n, 1] + dj)))
            if r is None:
                complete[n] = False
            else:
                feats[n, k] = val[r]
    return feats, complete


@dataclass
class ChainDistortion:
    """The distortion mode of one image (see :func:`chain_distortion`).

    Attributes:
        mode: ``(7, 2)`` first principal component of the site-and-neighbours displacements
            (unit norm), signed so that the site moves along ``direction``.
        direction: ``(2,)`` unit vector of the site's displacement in the mode (row, col).
        chain_axis: 0, 1, 2: the chains run along ``a1``, ``a2`` or ``a2 - a1`` (the lattice
            vector most nearly perpendicular to ``direction``).
        explained: fraction of the displacement variance the mode explains.
        scores: ``(N,)`` PCA scores (NaN where the neighbourhood is incomplete).
        amplitude: ``(N,)`` per-atom signed amplitude, units of the displacements (NaN
            outside the mask).
        parity: ``(N,)`` +1 / -1, the row pattern ``(-1)^n`` times the global sign.
        model: ``(N, 2)`` the distortion as a displacement field: ``parity * a_bar *
            direction`` with ``a_bar`` the amplitude averaged over the atom and its
            neighbours (zeros outside the mask). A smooth error of the ideal lattice cancels
            in that average (its sign alternates with the row parity), so this is what to
            pass as ``modelled`` to :func:`fit_ideal_lattice` for a refit.
    """

    mode: np.ndarray
    direction: np.ndarray
    chain_axis: int
    explained: float
    scores: np.ndarray
    amplitude: np.ndarray
    parity: np.ndarray
    model: np.ndarray


def chain_distortion(indices, displacement, basis, mask=None) -> ChainDistortion:
    """Learn an image's distortion mode by PCA and read each atom's amplitude from it.

    The feature of a site is the displacement of the site and its six neighbours (14
    numbers, :func:`local_environments`); the first principal component over the sites with
    complete neighbourhoods is the dominant collective distortion. For paired metal rows it
    moves the site and its two same-row neighbours one way and the four neighbours of the
    adjacent rows the other. Its site block gives the direction ``e``; the lattice vector most
    nearly perpendicular to ``e`` is the chain direction, and the rows across it are numbered
    ``n``. The sign pattern ``s (-1)^n`` is fixed by the PCA scores (``s`` = the sign of
    ``sum scores (-1)^n``), and every atom's amplitude is ``s (-1)^n (d . e)``: its own
    displacement along the mode, so neighbours' noise does not blur it, and signed, so a
    vanishing distortion averages to zero rather than to the noise's magnitude.

    Args:
        indices: ``(N, 2)`` int lattice indices of one image's atoms (one sublattice).
        displacement: ``(N, 2)`` displacements from the ideal lattice (any length unit).
        basis: ``(2, 2)`` lattice vectors (rows) in the frame of ``displacement``.
        mask: ``(N,)`` bool, which rows to use.

    Returns:
        :class:`ChainDistortion`.
    """
    from sklearn.decomposition import PCA

    d = np.asarray(real_array(displacement, "displacement"), dtype=np.float64)
    B = np.asarray(real_array(basis, "basis"), dtype=np.float64)
    if B.shape != (2, 2):
        raise ValueError(f"basis must be (2, 2) lattice vectors as rows, got {B.shape}")
    m = np.isfinite(d).all(1) if mask is None else np.asarray(mask, bool) & np.isfinite(d).all(1)
    feats, complete = local_environments(indices, np.nan_to_num(d), m)
    if complete.sum() < 10:
        raise ValueError(f"only {complete.sum()} sites have all six neighbours; the mode needs "
                         ">= 10 (a larger field of view, or fewer columns dropped)")
    X = feats[complete].reshape(complete.sum(), -1)
    pca = PCA(2).fit(X)
    mode = pca.components_[0].reshape(7, 2)
    e = mode[0] / np.linalg.norm(mode[0])
    chains = np.stack([B[0], B[1], B[1] - B[0]])
    chain = int(np.argmin(np.abs(chains @ e) / np.linalg.norm(chains, axis=1)))
    idx = np.asarray(indices, dtype=np.int64)
    n = (idx[:, 1], idx[:, 0], idx[:, 0] + idx[:, 1])[chain]
    pattern = np.where(n % 2 == 0, 1.0, -1.0)
    scores = np.full(len(d), np.nan)
    scores[complete] = pca.transform(X)[:, 0]
    s = 1.0 if np.nansum(scores * pattern) >= 0 else -1.0
    parity = s * pattern
    amplitude = np.where(m, parity * (np.nan_to_num(d) @ e), np.nan)
    sign_mode = 1.0 if mode[0] @ e >= 0 else -1.0
    present = np.c_[np.nan_to_num(amplitude), m.astype(float)]
    near, _ = local_environments(indices, present, m)
    a_bar = np.where(m, near[:, :, 0].sum(1) / np.maximum(near[:, :, 1].sum(1), 1.0), 0.0)
    model = (parity * a_bar)[:, None] * e
    return ChainDistortion(mode=sign_mode * mode, direction=e, chain_axis=chain,
                           explained=float(pca.explained_variance_ratio_[0]), scores=scores,
                           amplitude=amplitude, parity=parity, model=model)


# --------------------------------------------------------------------------------------------
# regression and the order parameter
# --------------------------------------------------------------------------------------------
@dataclass
class AmplitudeRegression:
    """Amplitude ``= b0 + bL f_s + bG x`` fitted for each candidate local fraction ``f_s``.

    Attributes:
        coefficients: ``(S, 3)`` ``(b0, bL, bG)`` per candidate, units of the amplitude.
        std_errors: ``(S, 3)`` standard errors: clustered by ``groups`` (the image) when
            they were given, else those of ordinary least squares.
        ols_std_errors: ``(S, 3)`` ordinary least-squares standard errors (every atom taken
            as independent: too small when the atoms of an image share a term).
        dof: degrees of freedom of the intervals (images - 3 when clustered, else atoms - 3).
        cv_rmse: ``(S,)`` cross-validated root-mean-square error.
        r2: ``(S,)`` in-sample R^2.
        best: index of the candidate with the smallest ``cv_rmse``.
        local_share, global_share: fractions of the best fit's explained variance carried by
            ``bL f`` and by ``bG x`` (their covariance split evenly between them).
        labels: names of the candidates.
    """

    coefficients: np.ndarray
    std_errors: np.ndarray
    ols_std_errors: np.ndarray
    dof: int
    cv_rmse: np.ndarray
    r2: np.ndarray
    best: int
    local_share: float
    global_share: float
    labels: tuple

    @property
    def intercept(self) -> float:
        return float(self.coefficients[self.best, 0])

    @property
    def local_coefficient(self) -> float:
        return float(self.coefficients[self.best, 1])

    @property
    def global_coefficient(self) -> float:
        return float(self.coefficients[self.best, 2])

    def interval(self, term: int = 2, level: float = 0.95, candidate: int | None = None
                 ) -> tuple[float, float]:
        """Student-t interval of one coefficient (0: b0, 1: bL, 2: bG) of a candidate
        (default the chosen one), from ``std_errors`` with ``dof`` degrees of freedom."""
        from scipy import stats

        if term not in (0, 1, 2) or not 0 < level < 1:
            raise ValueError(f"term must be 0, 1 or 2 and level in (0, 1), got {term!r}, "
                             f"{level!r}")
        s = self.best if candidate is None else int(candidate)
        half = stats.t.ppf(0.5 + level / 2, self.dof) * self.std_errors[s, term]
        b = float(self.coefficients[s, term])
        return b - float(half), b + float(half)


def amplitude_regression(amplitude, local_fractions, global_fraction, labels=None,
                         n_folds: int = 5, seed: int = 0, groups=None) -> AmplitudeRegression:
    """Regress per-atom amplitudes on the local and the global composition.

    For every candidate local fraction (e.g. one per shell radius) an ordinary least-squares
    fit ``amplitude = b0 + bL f + bG x``; the candidate with the smallest ``n_folds``-fold
    cross-validated error is chosen (a wrong radius blurs ``f`` and loses predictive power).
    The local term is the chemical effect of the atom's neighbourhood; the global term the
    effect shared by every atom of an image, whatever its neighbours.

    Args:
        amplitude: ``(N,)`` per-atom amplitudes.
        local_fractions: ``(N, S)`` candidate local fractions (or ``(N,)`` for one).
        global_fraction: ``(N,)`` the global fraction of each atom's image; needs at least
            two distinct values.
        labels: ``S`` names of the candidates.
        n_folds: folds of the cross-validation (>= 2).
        seed: shuffling of the folds.
        groups: ``(N,)`` the image (cluster) of each atom. Atoms of one image share whatever
            makes that image differ besides its composition, so they are not independent
            evidence about ``bG``; with ``groups`` the standard errors are clustered by
            image (the sandwich ``(X'X)^-1 (sum_g X_g' r_g r_g' X_g) (X'X)^-1`` with each
            image's residuals ``r_g`` taken through ``(I - H_gg)^(-1/2)``, the bias-reduced
            "CR2" form that stays honest with few images); the intervals use ``G - 3``
            degrees of freedom, those of a fit of three coefficients to ``G`` image means
            (``bG`` rests on them). Needs at least four groups.

    Returns:
        :class:`AmplitudeRegression`.
    """
    from sklearn.model_selection import KFold

    y = np.asarray(real_array(amplitude, "amplitude"), dtype=np.float64).ravel()
    F = np.asarray(real_array(local_fractions, "local_fractions"), dtype=np.float64)
    F = F[:, None] if F.ndim == 1 else F
    x = np.asarray(real_array(global_fraction, "global_fraction"), dtype=np.float64).ravel()
    if F.ndim != 2 or len(F) != len(y) or len(x) != len(y):
        raise ValueError(f"amplitude (N,), local_fractions (N, S) and global_fraction (N,) "
                         f"must share N; got {y.shape}, {F.shape}, {x.shape}")
    if not (np.isfinite(y).all() and np.isfinite(F).all() and np.isfinite(x).all()):
        raise ValueError("amplitude, local_fractions and global_fraction must be finite; drop "
                         "atoms with NaN (incomplete neighbourhoods) first")
    _check_compositions(x)
    n_folds = int(n_folds)
    if n_folds < 2 or len(y) < 3 * n_folds:
        raise ValueError(f"need n_folds >= 2 and at least {3 * n_folds} atoms, got "
                         f"n_folds={n_folds}, {len(y)} atoms")
    g_ids, n_groups = _group_ids(groups, y.shape, 4)
    labels = tuple(labels) if labels is not None else tuple(f"f{s}" for s in range(F.shape[1]))
    if len(labels) != F.shape[1]:
        raise ValueError(f"{len(labels)} labels for {F.shape[1]} candidates")
    folds = list(KFold(n_folds, shuffle=True, random_state=seed).split(y))
    coefs, ses, ols_ses, cvs, r2s = [], [], [], [], []
    for s in range(F.shape[1]):
        X = np.c_[np.ones(len(y)), F[:, s], x]
        b, cov, ols_cov = _ols(X, y, g_ids, n_groups)
        res = y - X @ b
        ols_ses.append(np.sqrt(np.diag(ols_cov)))
        err = []
        for tr, te in folds:
            bt = np.linalg.lstsq(X[tr], y[tr], rcond=None)[0]
            err.append((y[te] - X[te] @ bt) ** 2)
        coefs.append(b)
        ses.append(np.sqrt(np.diag(cov)))
        cvs.append(float(np.sqrt(np.mean(np.concatenate(err)))))
        r2s.append(1.0 - float(res @ res) / float(np.sum((y - y.mean()) ** 2)))
    best = int(np.argmin(cvs))
    bl, bg = coefs[best][1], coefs[best][2]
    tl, tg = bl * F[:, best], bg * x
    v_l, v_g, c = np.var(tl), np.var(tg), np.cov(tl, tg, bias=True)[0, 1]
    total = v_l + v_g + 2 * c
    return AmplitudeRegression(
        coefficients=np.array(coefs), std_errors=np.array(ses),
        ols_std_errors=np.array(ols_ses),
        dof=int(n_groups - 3 if groups is not None else max(len(y) - 3, 1)),
        cv_rmse=np.array(cvs),
        r2=np.array(r2s), best=best, local_share=float((v_l + c) / total) if total else 0.0,
        global_share=float((v_g + c) / total) if total else 0.0, labels=labels)


def _check_compositions(x: np.ndarray) -> None:
    """The global term needs at least two distinct global fractions."""
    if len(np.unique(x)) < 2:
        raise ValueError("global_fraction takes one value: the global term needs images at "
                         "two or more compositions")


def _group_ids(groups, shape, minimum: int):
    """Image labels as ``(ids 0..G-1, G)``, or ``(None, 0)`` without groups; at least
    ``minimum`` images for clustered errors."""
    if groups is None:
        return None, 0
    g_lab = np.asarray(groups).ravel()
    if g_lab.shape != shape:
        raise ValueError(f"groups must be (N,) = {shape}, one image label per atom, got "
                         f"{g_lab.shape}")
    g_ids = np.unique(g_lab, return_inverse=True)[1]
    n_groups = int(g_ids.max()) + 1
    if n_groups < minimum:
        raise ValueError(f"clustered errors need >= {minimum} groups (images), got {n_groups}; "
                         "pass groups=None for ordinary least-squares errors")
    return g_ids, n_groups


def _ols(X, y, g_ids=None, n_groups=0):
    """Least squares ``y ~ X`` (``(N, P)``): coefficients, their covariance (clustered by
    ``g_ids`` with the CR2 correction when given, else ordinary) and the ordinary one."""
    b, *_ = np.linalg.lstsq(X, y, rcond=None)
    res = y - X @ b
    p = X.shape[1]
    bread = np.linalg.pinv(X.T @ X)
    ols_cov = bread * float(res @ res) / max(len(y) - p, 1)
    if g_ids is None:
        return b, ols_cov, ols_cov
    # per image, the residuals are first inflated by (I - H_gg)^(-1/2) (the bias-reduced
    # "CR2" sandwich): with few images a plain sandwich is too small
    score = np.zeros((n_groups, p))
    for gi in range(n_groups):
        rows = g_ids == gi
        Xg, rg = X[rows], res[rows]
        # H_gg = Xg bread Xg' has rank <= p: with Xg = Q R and R bread R' = W D W',
        # (I - H_gg)^(-1/2) = I + U ((1 - D)^(-1/2) - 1) U' with U = Q W
        q, r = np.linalg.qr(Xg)
        lam, w = np.linalg.eigh(r @ bread @ r.T)
        u = q @ w
        scale = 1.0 / np.sqrt(np.clip(1.0 - lam, 1e-8, None)) - 1.0
        score[gi] = Xg.T @ (rg + u @ (scale * (u.T @ rg)))
    return b, bread @ (score.T @ score) @ bread, ols_cov


@dataclass
class LengthRegression:
    """Amplitude ``= b0 + bS own + bN f_l + bG x`` with the length ``l`` of the neighbour
    fraction ``f_l`` chosen by cross-validation (see :func:`length_regression`).

    Attributes:
        coefficients: ``(4,)`` ``(b0, bS, bN, bG)``, units of the amplitude (``bS = 0`` and
            left out of the fit when no ``own`` was given).
        cov: ``(4, 4)`` their covariance, clustered by image when ``groups`` were given.
        ols_cov: ``(4, 4)`` the ordinary least-squares covariance (atoms independent).
        dof: degrees of freedom of the intervals (images - 4 when clustered, else atoms - 4).
        length: the chosen length ``l``, lattice constants.
        grid: ``(L,)`` the lengths searched first; grid_cv_rmse: ``(L,)`` their
            cross-validated root-mean-square errors.
        cv_rmse: the cross-validated error at ``length``.
        fraction: ``(N,)`` the neighbour fraction at ``length``.
        local_share, global_share: fractions of the explained variance carried by the local
            terms ``bS own + bN f`` and by ``bG x`` (their covariance split evenly).
    """

    coefficients: np.ndarray
    cov: np.ndarray
    ols_cov: np.ndarray
    dof: int
    length: float
    grid: np.ndarray
    grid_cv_rmse: np.ndarray
    cv_rmse: float
    fraction: np.ndarray
    local_share: float
    global_share: float

    @property
    def intercept(self) -> float:
        return float(self.coefficients[0])

    @property
    def local_coefficient(self) -> float:
        """``bS + bN``: the amplitude change when the atom and all its neighbours turn B."""
        return float(self.coefficients[1] + self.coefficients[2])

    @property
    def global_coefficient(self) -> float:
        return float(self.coefficients[3])

    def std_error(self, term: str = "global", clustered: bool = True) -> float:
        """Standard error of the ``"local"`` (``bS + bN``) or ``"global"`` coefficient."""
        if term not in ("local", "global"):
            raise ValueError(f"term must be 'local' or 'global', got {term!r}")
        c = self.cov if clustered else self.ols_cov
        v = np.array([0.0, 1.0, 1.0, 0.0]) if term == "local" else np.eye(4)[3]
        return float(np.sqrt(max(v @ c @ v, 0.0)))

    def interval(self, term: str = "global", level: float = 0.95) -> tuple[float, float]:
        """Student-t interval of the ``"local"`` or ``"global"`` coefficient from the
        clustered (or, without groups, ordinary) covariance with ``dof`` degrees of
        freedom."""
        from scipy import stats

        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level!r}")
        b = self.local_coefficient if term == "local" else self.global_coefficient
        half = float(stats.t.ppf(0.5 + level / 2, self.dof)) * self.std_error(term)
        return b - half, b + half


def length_regression(amplitude, fraction_of, global_fraction, own=None, lengths=None,
                      refine: bool = True, n_folds: int = 5, seed: int = 0,
                      groups=None) -> LengthRegression:
    """Amplitude on the atom's own species, a neighbour fraction whose length is chosen by
    cross-validation, and the global fraction.

    The local drive of an atom fades with distance in a way nobody knows in advance; a choice
    among a few whole neighbour shells forces a step-shaped kernel and biases both
    coefficients (the global term takes up what the local one misses). Here the neighbours
    enter through a continuous family ``f(l)`` (e.g. :func:`weighted_fractions` with
    ``include_self=False``) and the atom's own species through its own term, so the weight of
    the atom against its neighbourhood is fitted rather than fixed by the family's shape:
    ``amplitude = b0 + bS own + bN f(l) + bG x``. The local coefficient is ``bS + bN`` (all
    of the neighbourhood and the atom turned B). ``l`` minimises the ``n_folds``-fold
    cross-validated error, first on the grid ``lengths``, then (``refine``) by a bounded 1-D
    minimiser over ``log l`` between the grid neighbours of the best grid point; the folds
    are the same for every ``l``.

    Args:
        amplitude: ``(N,)`` per-atom amplitudes.
        fraction_of: callable ``l -> (N,)`` neighbour fractions at length ``l`` (finite).
        global_fraction: ``(N,)`` the global fraction of each atom's image (>= 2 values).
        own: ``(N,)`` 0/1 the atom itself is B (None: no own term, ``bS = 0``).
        lengths: ``(L,)`` increasing grid of lengths, lattice constants (>= 3 values > 0;
            default 13 values from 0.5 to 3 on a log scale).
        refine: refine the grid's best length by a 1-D minimiser.
        n_folds, seed: the cross-validation's folds and their shuffling.
        groups: ``(N,)`` image of each atom: standard errors clustered by image (CR2, as in
            :func:`amplitude_regression`); needs >= 5 images.

    Returns:
        :class:`LengthRegression`.
    """
    from scipy.optimize import minimize_scalar
    from sklearn.model_selection import KFold

    if not callable(fraction_of):
        raise TypeError("fraction_of must be a callable l -> (N,) neighbour fractions, e.g. "
                        "lambda l: weighted_fractions(indices, is_re, l, include_self=False)")
    y = np.asarray(real_array(amplitude, "amplitude"), dtype=np.float64).ravel()
    x = np.asarray(real_array(global_fraction, "global_fraction"), dtype=np.float64).ravel()
    o = np.zeros(len(y)) if own is None else np.asarray(
        real_array(own, "own"), dtype=np.float64).ravel()
    for name, v in (("amplitude", y), ("global_fraction", x), ("own", o)):
        if v.shape != y.shape:
            raise ValueError(f"{name} must be (N,) like amplitude {y.shape}, got {v.shape}; "
                             "all must be (N,) per atom")
        if not np.isfinite(v).all():
            raise ValueError(f"{name} must be finite; drop atoms with NaN first")
    _check_compositions(x)
    grid = np.geomspace(0.5, 3.0, 13) if lengths is None else np.asarray(
        real_array(lengths, "lengths"), dtype=np.float64).ravel()
    if grid.size < 3 or not np.isfinite(grid).all() or (grid <= 0).any() \
            or (np.diff(grid) <= 0).any():
        raise ValueError(f"lengths must be >= 3 increasing positive values, got {lengths!r}; "
                         "e.g. np.geomspace(0.5, 3, 13)")
    n_folds = int(n_folds)
    if n_folds < 2 or len(y) < 4 * n_folds:
        raise ValueError(f"need n_folds >= 2 and at least {4 * n_folds} atoms, got "
                         f"n_folds={n_folds}, {len(y)} atoms")
    g_ids, n_groups = _group_ids(groups, y.shape, 5)
    cols = [1, 2, 3] if own is not None else [2, 3]
    folds = list(KFold(n_folds, shuffle=True, random_state=seed).split(y))

    def design(ell):
        f = np.asarray(fraction_of(float(ell)), dtype=np.float64).ravel()
        if f.shape != y.shape or not np.isfinite(f).all():
            raise ValueError(f"fraction_of({ell:.3g}) must give {y.shape} finite fractions, "
                             f"got shape {f.shape}; keep only atoms with neighbours present")
        return np.c_[np.ones(len(y)), o, f, x][:, [0] + cols], f

    def cv(ell):
        X, _ = design(ell)
        err = [(y[te] - X[te] @ np.linalg.lstsq(X[tr], y[tr], rcond=None)[0]) ** 2
               for tr, te in folds]
        return float(np.sqrt(np.mean(np.concatenate(err))))

    grid_cv = np.array([cv(ell) for ell in grid])
    best = int(np.argmin(grid_cv))
    ell, cv_best = float(grid[best]), float(grid_cv[best])
    if refine:
        lo, hi = np.log(grid[max(best - 1, 0)]), np.log(grid[min(best + 1, len(grid) - 1)])
        res = minimize_scalar(lambda t: cv(np.exp(t)), bounds=(lo, hi), method="bounded",
                              options={"xatol": 0.01})
        if res.fun < cv_best:
            ell, cv_best = float(np.exp(res.x)), float(res.fun)
    X, f = design(ell)
    b_sub, cov_sub, ols_sub = _ols(X, y, g_ids, n_groups)
    keep = [0] + cols
    coefs = np.zeros(4)
    coefs[keep] = b_sub
    cov, ols_cov = np.zeros((4, 4)), np.zeros((4, 4))
    cov[np.ix_(keep, keep)], ols_cov[np.ix_(keep, keep)] = cov_sub, ols_sub
    tl, tg = coefs[1] * o + coefs[2] * f, coefs[3] * x
    v_l, v_g, c = np.var(tl), np.var(tg), np.cov(tl, tg, bias=True)[0, 1]
    total = v_l + v_g + 2 * c
    return LengthRegression(
        coefficients=coefs, cov=cov, ols_cov=ols_cov,
        dof=int(n_groups - len(keep) if groups is not None else max(len(y) - len(keep), 1)),
        length=ell, grid=grid, grid_cv_rmse=grid_cv, cv_rmse=cv_best, fraction=f,
        local_share=float((v_l + c) / total) if total else 0.0,
        global_share=float((v_g + c) / total) if total else 0.0)


def order_parameter(amplitude, positions, n_blocks: int = 4) -> tuple[float, float]:
    """An image's mean signed amplitude and its noise floor.

    The atoms are split into ``n_blocks x n_blocks`` spatial blocks (on their positions); the
    noise floor is the standard error of the mean from the scatter of the block means, which
    also counts noise correlated over short distances (scan noise, residual drift).

    Args:
        amplitude: ``(N,)`` signed per-atom amplitudes (NaN entries ignored).
        positions: ``(N, 2)`` positions, pixels.
        n_blocks: blocks per side (>= 2).

    Returns:
        ``(mean, standard_error)`` in the amplitude's units.
    """
    y = np.asarray(real_array(amplitude, "amplitude"), dtype=np.float64).ravel()
    p = np.asarray(real_array(positions, "positions"), dtype=np.float64)
    if p.shape != (len(y), 2):
        raise ValueError(f"positions must be (N, 2) for N = {len(y)}, got {p.shape}")
    n_blocks = int(n_blocks)
    if n_blocks < 2:
        raise ValueError(f"n_blocks must be >= 2, got {n_blocks}")
    ok = np.isfinite(y) & np.isfinite(p).all(1)
    if ok.sum() < 2 * n_blocks:
        raise ValueError(f"only {ok.sum()} finite amplitudes; need >= {2 * n_blocks}")
    y, p = y[ok], p[ok]
    edges = [np.quantile(p[:, k], np.linspace(0, 1, n_blocks + 1)[1:-1]) for k in range(2)]
    block = np.searchsorted(edges[0], p[:, 0]) * n_blocks + np.searchsorted(edges[1], p[:, 1])
    means = np.array([y[block == b].mean() for b in np.unique(block)])
    return float(y.mean()), float(means.std(ddof=1) / np.sqrt(len(means)))


@dataclass
class DistortionTest:
    """Two tests of "no chain distortion beyond the noise" (see :func:`distortion_test`).

    Attributes:
        amplitude: ``(N,)`` amplitudes signed by a fixed rule (NaN where not defined).
        mean, noise_floor: their mean and its standard error from the scatter of block means
            (:func:`order_parameter`), units of the displacements.
        mean_vs_noise: ``mean / noise_floor``, signed: its distribution is symmetric about 0
            for any noise whose sign is as likely as its opposite; a two-sided test.
        block_power: mean over blocks of the squared block-mean amplitude (units squared).
        block_power_null: ``(mean, sd)`` of ``block_power`` under random sign flips of the
            sub-blocks (what noise alone gives).
        block_power_vs_noise: ``(block_power - null mean) / null sd``: about 0 for noise,
            large for a distortion coherent over a block, whatever its sign.
    """

    amplitude: np.ndarray
    mean: float
    noise_floor: float
    mean_vs_noise: float
    block_power: float
    block_power_null: tuple
    block_power_vs_noise: float


def distortion_test(indices, displacement, basis, positions, n_blocks: int = 4,
                    n_flips: int = 400, seed: int = 0) -> DistortionTest:
    """Test one image for a chain distortion without the bias of a data-chosen sign.

    :func:`chain_distortion` signs the row pattern by the data it then scores, so wherever
    the learnt mode is the chain pattern (a distortion of zero mean, antiphase domains,
    noise with that structure) its mean amplitude is pushed above zero. Here the sign is
    fixed by a rule that does not look at the amplitudes: the direction ``e`` of the mode
    (a second-moment quantity, unchanged when every displacement changes sign) is turned to
    point down the image (``e_row > 0``, or ``e_col > 0`` when ``e_row = 0``), and rows with
    even index ``n`` count ``+1``. Changing the sign of every displacement then changes the
    sign of the statistic and nothing else, so for noise as likely to have either sign the
    statistic is centred at zero; a distortion of one domain gives it a size but an
    arbitrary sign (read ``|mean_vs_noise|``).

    The mean misses a distortion split into antiphase or differently oriented domains (the
    signs cancel). The second statistic does not: the squared mean amplitude of each of
    ``n_blocks x n_blocks`` blocks, averaged, against its distribution when each block's
    2 x 2 sub-blocks have their amplitudes multiplied by random signs (noise independent from
    sub-block to sub-block is unchanged by that; a distortion coherent over a block is
    broken up).

    Args:
        indices: ``(N, 2)`` int lattice indices of one image's atoms (one sublattice).
        displacement: ``(N, 2)`` displacements from the ideal lattice.
        basis: ``(2, 2)`` lattice vectors (rows) in the frame of ``displacement``.
        positions: ``(N, 2)`` positions (pixels), for the blocks.
        n_blocks: blocks per side (>= 2).
        n_flips: random sign flips for the block-power null (>= 20).
        seed: of the flips.

    Returns:
        :class:`DistortionTest`.
    """
    d = np.asarray(real_array(displacement, "displacement"), dtype=np.float64)
    p = np.asarray(real_array(positions, "positions"), dtype=np.float64)
    if d.ndim != 2 or d.shape[1] != 2 or p.shape != d.shape:
        raise ValueError(f"displacement and positions must both be (N, 2), got {d.shape} and "
                         f"{p.shape}")
    n_blocks, n_flips = int(n_blocks), int(n_flips)
    if n_blocks < 2 or n_flips < 20:
        raise ValueError(f"need n_blocks >= 2 and n_flips >= 20, got {n_blocks}, {n_flips}")
    ok = np.isfinite(d).all(1) & np.isfinite(p).all(1)
    cd = chain_distortion(indices, d, basis, mask=ok)
    e = cd.direction
    e = -e if e[0] < 0 or (e[0] == 0 and e[1] < 0) else e
    idx = np.asarray(indices, dtype=np.int64)
    n = (idx[:, 1], idx[:, 0], idx[:, 0] + idx[:, 1])[cd.chain_axis]
    amplitude = np.where(ok, np.where(n % 2 == 0, 1.0, -1.0) * (np.nan_to_num(d) @ e),
                         np.nan)
    mean, floor = order_parameter(amplitude, np.where(ok[:, None], p, 0.0), n_blocks)
    # block power and its sign-flip null, from per-sub-block sums
    m2 = 2 * n_blocks
    edges = [np.quantile(p[ok, k], np.linspace(0, 1, m2 + 1)[1:-1]) for k in range(2)]
    sub = np.searchsorted(edges[0], p[ok, 0]) * m2 + np.searchsorted(edges[1], p[ok, 1])
    sums = np.bincount(sub, amplitude[ok], minlength=m2 * m2)
    counts = np.bincount(sub, minlength=m2 * m2).astype(float)
    cells = np.arange(m2 * m2)
    block_of = (cells // m2 // 2) * n_blocks + (cells % m2) // 2
    n_in = np.bincount(block_of, counts, minlength=n_blocks**2)
    keep = n_in > 0

    def power(signs):
        means = np.bincount(block_of, sums * signs, minlength=n_blocks**2)[keep] / n_in[keep]
        return float(np.mean(means**2))

    rng = np.random.default_rng(seed)
    observed = power(np.ones(m2 * m2))
    null = np.array([power(rng.choice((-1.0, 1.0), m2 * m2)) for _ in range(n_flips)])
    null_mean, null_sd = float(null.mean()), float(null.std(ddof=1))
    return DistortionTest(
        amplitude=amplitude, mean=mean, noise_floor=floor, mean_vs_noise=mean / floor,
        block_power=observed, block_power_null=(null_mean, null_sd),
        block_power_vs_noise=(observed - null_mean) / null_sd if null_sd > 0 else 0.0)
