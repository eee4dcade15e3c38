"""Statistics of atomic sites: coordination numbers, one von Mises component per group of
sites, and the Z-contrast of HAADF column intensities.

- :func:`coordination_numbers`: neighbours of each site within a cutoff (a simple, model-free
  descriptor of local order: 3 in perfect graphene, fewer at edges, holes and vacancies);
- :func:`bond_orientation`: the n-fold direction and order of the bonds of each site to its
  neighbours (a model-free orientation: the sublattice and grain of a graphene atom);
- :func:`von_mises_per_group`: a :class:`~helpers.analysis.circular.VonMisesMixture` with one
  component fitted to each group of angles (e.g. each grain x sublattice);
- :func:`zcontrast_ratio`: the intensity ratio of two atomic columns under the HAADF
  Z-contrast model ``I ~ sum_atoms Z ** n``;
- :func:`column_intensities`: background-subtracted intensity at each site of an image.
"""

from __future__ import annotations

import numpy as np

from .._checks import real_array
from ..features import _points as point_rows
from .circular import VonMisesMixture, circular_mean, wrap_angle

__all__ = ["bond_orientation", "coordination_numbers", "von_mises_per_group", "zcontrast_ratio",
           "column_intensities"]


def _points(points, name: str) -> np.ndarray:
    """``(N, 2)`` float64 (row, col) of finite ``(N, 2+)`` positions (the suite's point check)."""
    return point_rows(points, name)[:, :2]


# a candidate neighbour closer than this fraction of the cutoff is the point itself
_SAME_POSITION = 1e-9


def coordination_numbers(points, cutoff: float, others=None) -> np.ndarray:
    """Number of neighbours of each point within ``cutoff``.

    Args:
        points: ``(N, 2+)`` positions (the first two columns are used; any unit).
        cutoff: neighbour distance, same unit, > 0 (for graphene 1.2 bond lengths).
        others: optional ``(M, 2+)`` positions of the candidate neighbours (default: the
            points themselves). Either way a candidate at the point's own position (the
            point itself, when it is among the candidates) is not a neighbour, as in
            :func:`bond_orientation`.

    Returns:
        ``(N,)`` int64 counts.
    """
    from scipy.spatial import cKDTree

    p = _points(points, "points")
    if not (np.isfinite(cutoff) and cutoff > 0):
        raise ValueError(f"cutoff must be a positive distance, got {cutoff!r}")
    q = p if others is None else _points(others, "others")
    if len(p) == 0 or len(q) == 0:
        return np.zeros(len(p), dtype=np.int64)
    tree = cKDTree(q)
    within = tree.query_ball_point(p, cutoff, return_length=True)
    itself = tree.query_ball_point(p, _SAME_POSITION * cutoff, return_length=True)
    return np.asarray(within, dtype=np.int64) - np.asarray(itself, dtype=np.int64)


def bond_orientation(points, cutoff: float, others=None, symmetry: int = 3
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The ``symmetry``-fold direction and order of the bonds of each point to its neighbours.

    With ``phi_j`` the direction of the bond to each neighbour within ``cutoff``
    (``arctan2(d_row, d_col)``, radians), ``psi = sum_j exp(i s phi_j) / s`` (``s`` =
    ``symmetry``, the coordination of the ideal site: 3 in graphene). Its direction
    ``arg(psi) / s`` is the orientation of the site modulo ``2 pi / s`` (the two graphene
    sublattices lie ``pi / 3`` apart, a grain turned by ``delta`` moves both by ``delta``);
    its size ``|psi|`` is 1 for ``s`` neighbours at ``2 pi / s`` and smaller for missing or
    bent bonds (the bond-orientational order parameter); more than ``s`` neighbours within
    the cutoff can push it above 1 (at most ``n / s`` for ``n`` neighbours).

    Args:
        points: ``(N, 2+)`` positions (row, col; any unit).
        cutoff: neighbour distance, same unit, > 0 (for graphene 1.2 bond lengths).
        others: optional ``(M, 2+)`` candidate neighbours (default: the points themselves); a
            neighbour at the point's own position (the point itself) is skipped.
        symmetry: ``s``, the rotational order of the ideal site, >= 1.

    Returns:
        ``(angle, order)``: ``(N,)`` float64 each; ``angle`` in ``[0, 2 pi / s)``, NaN for a
        point without neighbours, and ``order`` = ``|psi|`` (0 without neighbours).
    """
    from scipy.spatial import cKDTree

    p = _points(points, "points")
    if not (np.isfinite(cutoff) and cutoff > 0):
        raise ValueError(f"cutoff must be a positive distance, got {cutoff!r}")
    if int(symmetry) != symmetry or symmetry < 1:
        raise ValueError(f"symmetry must be a positive integer, got {symmetry!r}")
    s = int(symmetry)
    q = p if others is None else _points(others, "others")
    psi = np.zeros(len(p), dtype=complex)
    if len(p) and len(q):
        near = cKDTree(q).query_ball_point(p, cutoff)
        i = np.repeat(np.arange(len(p)), [len(n) for n in near])
        j = np.fromiter((k for n in near for k in n), dtype=np.int64, count=len(i))
        d = q[j] - p[i]
        bond = np.hypot(d[:, 0], d[:, 1]) > _SAME_POSITION * cutoff  # not the point itself
        np.add.at(psi, i[bond], np.exp(1j * s * np.arctan2(d[bond, 0], d[bond, 1])) / s)
    order = np.abs(psi)
    angle = np.where(order > 0, np.mod(np.angle(psi) / s, 2 * np.pi / s), np.nan)
    return angle, order


def von_mises_per_group(angles, groups) -> VonMisesMixture:
    """One von Mises component per group of angles, weighted by the group's share.

    Each component sits at the circular mean of its group's angles; its concentration is
    robust, ``kappa = 1 / s^2`` (the narrow-peak limit of the von Mises) with ``s`` = 1.4826
    times the median absolute angular deviation from that mean, so a minority of stray angles
    in a group (disordered atoms with random angles) does not widen its peak. The mixture
    draws each group's peak with its own width and position.

    Args:
        angles: ``(N,)`` radians on the full circle (for an n-fold angle pass ``n * angle``).
        groups: ``(N,)`` integer group labels (e.g. grain x sublattice); each group becomes
            one component, in the order of ``np.unique(groups)``.

    Returns:
        :class:`~helpers.analysis.circular.VonMisesMixture` whose responsibilities are the
        hard group memberships ``(N, K)``.
    """
    a = np.asarray(real_array(angles, "angles"), dtype=np.float64)
    g = np.asarray(groups)
    if a.ndim != 1 or g.shape != a.shape:
        raise ValueError(f"angles and groups must be (N,) arrays of the same length, got "
                         f"{a.shape} and {g.shape}")
    labels = np.unique(g)
    if len(labels) == 0:
        raise ValueError("no angles given: pass at least one angle per group")
    means, kappas = [], []
    for k in labels:
        x = a[g == k]
        mu = float(circular_mean(x))
        s = 1.4826 * np.median(np.abs(wrap_angle(x - mu)))
        means.append(mu)
        kappas.append(float(np.clip(1.0 / max(s, 1e-3) ** 2, 1e-3, 1e6)))
    resp = (g[:, None] == labels[None]).astype(np.float64)
    return VonMisesMixture(means=np.array(means), concentrations=np.array(kappas),
                           weights=resp.mean(0), responsibilities=resp)


def zcontrast_ratio(z_column, z_reference, exponent: float) -> float:
    """HAADF intensity of a column relative to a reference column, ``sum Z^n / sum Z_ref^n``.

    Args:
        z_column: atomic numbers of the atoms in the column (e.g. ``[34, 16]`` for SeS).
        z_reference: atomic numbers of the reference column (e.g. ``[16, 16]`` for S2).
        exponent: ``n`` of the Z-contrast, about 1.6-2 for HAADF.

    Returns:
        The ratio, dimensionless.
    """
    zc = np.asarray(real_array(z_column, "z_column"), dtype=np.float64).ravel()
    zr = np.asarray(real_array(z_reference, "z_reference"), dtype=np.float64).ravel()
    if len(zc) == 0 or len(zr) == 0 or (zc <= 0).any() or (zr <= 0).any():
        raise ValueError("z_column and z_reference must list positive atomic numbers")
    if not (np.isfinite(exponent) and exponent > 0):
        raise ValueError(f"exponent must be positive (about 1.6-2 for HAADF), got {exponent!r}")
    return float(np.sum(zc**exponent) / np.sum(zr**exponent))


def column_intensities(image, sites, radius: int = 1, background_size: int = 15,
                       background_percentile: float = 5.0) -> np.ndarray:
    """Background-subtracted intensity of the image at each site.

    The background is a low percentile of the image in a ``background_size`` square around
    each pixel (the empty hexagon centres of a 2-D crystal, when the square spans a unit
    cell or more); the intensity of a site is the mean of ``image - background`` over the
    ``(2 radius + 1)^2`` pixels centred on its rounded position. A background that slopes by
    ``s`` counts per pixel biases the intensities by up to ``s * background_size / 2``.
    (:func:`~helpers.analysis.local_crystallography.column_intensity` instead sums a disc at
    sub-pixel centres above one background for the whole image: use this one where the
    background varies across the image.)

    Args:
        image: ``(H, W)`` intensities (counts).
        sites: ``(N, 2+)`` ``(row, col)`` pixel positions.
        radius: half side of the averaging square, pixels (>= 0).
        background_size: side of the background window, pixels (>= 3).
        background_percentile: percentile of the background window, in ``[0, 50]``.

    Returns:
        ``(N,)`` float64 intensities above the local background (counts); sites whose square
        crosses the border are NaN.
    """
    from scipy import ndimage

    img = np.asarray(real_array(image, "image"), dtype=np.float64)
    if img.ndim != 2 or not np.isfinite(img).all():
        raise ValueError(f"image must be a finite (H, W) array, got shape {img.shape}")
    p = _points(sites, "sites")
    if int(radius) < 0 or int(background_size) < 3 or not 0 <= background_percentile <= 50:
        raise ValueError("need radius >= 0, background_size >= 3 and background_percentile "
                         f"in [0, 50], got {radius}, {background_size}, {background_percentile}")
    r = int(radius)
    background = ndimage.percentile_filter(img, background_percentile, size=int(background_size))
    excess = ndimage.uniform_filter(img - background, size=2 * r + 1)
    rc = np.rint(p).astype(np.int64)
    ok = ((rc[:, 0] >= r) & (rc[:, 0] < img.shape[0] - r)
          & (rc[:, 1] >= r) & (rc[:, 1] < img.shape[1] - r))
    out = np.full(len(p), np.nan)
    out[ok] = excess[rc[ok, 0], rc[ok, 1]]
    return out
