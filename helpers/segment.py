"""Segmentation: atom finding in per-class probability maps, particle finding.

- :func:`find_atoms` turns the probabilities of one frame (e.g. from
  :class:`helpers.models.UNet`) into ``(N, 3)`` ``[row, col, class]`` atom positions
  (sub-pixel blob centres of mass).
- :func:`find_particles` finds particles in a height image (AFM) by smoothing, thresholding
  and labelling.

Found positions are scored against ground truth by :func:`helpers.analysis.detection_scores`.

Coordinates are ``(row, col)`` in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import image_stack, real_array
from .features import inside_frame

__all__ = [
    "find_atoms",
    "find_particles",
    "Particles",
    "otsu_threshold",
]


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------
def _images(x, name: str = "images") -> tuple[np.ndarray, bool]:
    """``(N, H, W)`` float32 and whether a single ``(H, W)`` image was given; a channel axis
    of one, ``(N, 1, H, W)``, is dropped."""
    arr = np.asarray(x)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    arr, single = image_stack(arr, name)
    return arr.astype(np.float32, copy=False), single


# --------------------------------------------------------------------------------------------
# atoms
# --------------------------------------------------------------------------------------------
def find_atoms(probs, threshold: float = 0.5, margin: float = 2.0, min_area: int = 1,
               grow: float = 2.0):
    """Atom positions from the class probabilities of one frame.

    The atom probability ``1 - probs[0]`` (everything but background) is thresholded; each
    connected blob gives one atom at the probability-weighted centre of mass (sub-pixel) of the
    blob grown by ``grow`` pixels (so the soft edge counts too, without bias towards the pixel
    grid) and the class (1..C-1) with the largest summed probability there.

    Args:
        probs: ``(n_classes, H, W)`` probabilities of one frame (``UNet.predict(...)[t]``),
            or one ``(H, W)`` atom-probability map (every atom gets class 1).
        threshold: probability above which a pixel belongs to an atom, strictly between 0
            and 1 (0 would make the whole frame one blob, 1 would find nothing).
        margin: atoms whose centre lies closer than this many pixels to the border are dropped
            (their blobs are cut by the edge, so their centres are biased).
        min_area: blobs with fewer pixels are ignored (noise specks).
        grow: pixels added around each blob for the centre of mass (0: thresholded pixels
            only); keep it below half the distance between neighbouring atoms.

    Returns:
        ``(N, 3)`` float array ``[row, col, class]`` (class as in the masks).
    """
    from scipy import ndimage

    try:
        level = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a number in (0, 1), got {threshold!r}") from None
    if not 0.0 < level < 1.0:  # also refuses NaN
        raise ValueError(
            f"threshold must be a probability strictly between 0 and 1, got {threshold!r}; "
            "0.5 is the usual choice"
        )
    p = np.asarray(real_array(probs, "probs"), dtype=np.float64)
    if p.ndim == 2:
        p = np.stack([1.0 - p, p])
    if p.ndim != 3 or p.shape[0] < 2:
        raise ValueError(
            f"probs must be (n_classes, H, W) for one frame or an (H, W) map, got {p.shape}; "
            "for a movie pass probs[t]"
        )
    if not np.isfinite(p).all():
        raise ValueError("probs contain NaN or inf")
    fg = 1.0 - p[0]
    labels, n = ndimage.label(fg > level)
    if n == 0:
        return np.zeros((0, 3))
    index = np.arange(1, n + 1)
    area = ndimage.sum_labels(np.ones_like(fg), labels, index)
    # the centre of mass of the thresholded pixels alone is pulled towards the pixel grid:
    # weigh the probabilities over each blob grown by `grow` px (nearest blob wins)
    if grow > 0:
        dist, (ir, ic) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
        region = np.where(dist <= grow, labels[ir, ic], 0)
    else:
        region = labels
    com = np.asarray(ndimage.center_of_mass(fg, region, index), dtype=float).reshape(-1, 2)
    class_mass = np.stack([ndimage.sum_labels(p[k], region, index) for k in
                           range(1, p.shape[0])], axis=1)
    cls = 1 + class_mass.argmax(axis=1)
    height, width = fg.shape
    keep = (area >= min_area) & inside_frame(com, (height, width), margin)
    return np.column_stack([com[keep], cls[keep].astype(float)])


# --------------------------------------------------------------------------------------------
# particles (AFM height images)
# --------------------------------------------------------------------------------------------
def otsu_threshold(image, n_bins: int = 256) -> float:
    """Otsu's threshold: the level that maximises the between-class variance of a histogram."""
    values = np.asarray(image, dtype=float).ravel()
    hist, edges = np.histogram(values, bins=n_bins)
    centres = 0.5 * (edges[1:] + edges[:-1])
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = np.divide(m0, w0, out=np.zeros_like(m0), where=w0 > 0)
    mu1 = np.divide(m0[-1] - m0, w1, out=np.zeros_like(m0), where=w1 > 0)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[1:][np.argmax(between)])


def _substrate(h: np.ndarray, order: int, n_iter: int = 6) -> np.ndarray:
    """Polynomial surface of ``order`` fitted to the substrate pixels of ``h`` (H, W)."""
    if order < 0:
        raise ValueError(f"flatten must be a polynomial order >= 0, got {order}")
    rows, cols = np.indices(h.shape, dtype=float)
    y, x = rows.ravel() / h.shape[0] - 0.5, cols.ravel() / h.shape[1] - 0.5
    basis = np.column_stack([x**i * y**j for i in range(order + 1)
                             for j in range(order + 1 - i)])
    z = h.ravel()
    keep = np.ones(z.size, dtype=bool)
    for _ in range(n_iter):
        coef = np.linalg.lstsq(basis[keep], z[keep], rcond=None)[0]
        res = z - basis @ coef
        centre = np.median(res[keep])
        spread = 1.4826 * np.median(np.abs(res[keep] - centre)) + 1e-12
        keep = res < centre + 2.0 * spread
    return (basis @ coef).reshape(h.shape)


@dataclass
class Particles:
    """Particles found in one height image.

    Attributes:
        coords: ``(N, 2)`` float ``(row, col)`` centres (height-weighted centres of mass), px.
        area: ``(N,)`` int pixels per particle.
        orientation: ``(N,)`` float radians in ``[0, pi)``, direction of the long axis,
            anticlockwise as displayed (0 = along +col, pi/2 = towards the top), from the
            blob's second moments.
        elongation: ``(N,)`` ratio of long to short axis (1 for a disc).
        labels: ``(H, W)`` int, 0 background, ``k`` for the k-th particle (``coords[k - 1]``).
        threshold: the height threshold used.
    """

    coords: np.ndarray
    area: np.ndarray
    orientation: np.ndarray
    elongation: np.ndarray
    labels: np.ndarray
    threshold: float


def find_particles(image, threshold="otsu", sigma: float = 1.0, min_area: int = 5,
                   max_area: int | None = None, margin: float = 0.0,
                   flatten: int | None = None, core: float | None = None) -> Particles:
    """Find particles in an AFM height image by smoothing, thresholding and labelling.

    Args:
        image: ``(H, W)`` heights (any units).
        threshold: ``"otsu"`` (automatic) or a height in the image's units, applied after
            smoothing and background removal.
        core: if given (a fraction in (0, 1)), threshold instead at ``substrate + core *
            (top - substrate)``, where ``substrate`` is the median height below the Otsu
            level and ``top`` the 90th percentile above it. Only the particles' upper cores
            are kept, so particles that touch (merged by the tip at half height) stay apart;
            0.95 suits densely packed rods. Centres stay right, areas shrink to the cores.
        sigma: Gaussian smoothing in pixels before thresholding (0: none).
        min_area, max_area: keep blobs with this many pixels (specks and merged clusters out).
        margin: drop particles whose centre is closer than this to the border, px.
        flatten: if given, first subtract a polynomial background of this order (1: plane,
            2: bow) fitted to the substrate only (pixels more than 2 robust standard
            deviations above the fit are excluded, iteratively), the usual AFM levelling.

    Returns:
        :class:`Particles`.
    """
    from scipy import ndimage

    img, single = _images(image, "image")
    if not single:
        raise ValueError("find_particles takes one (H, W) frame; loop over a movie's frames")
    h = img[0].astype(np.float64)
    if flatten is not None:
        h = h - _substrate(h, int(flatten))
    if sigma and sigma > 0:
        h = ndimage.gaussian_filter(h, sigma)
    if isinstance(threshold, str):
        if threshold != "otsu":
            raise ValueError(f"threshold must be 'otsu' or a number, got {threshold!r}")
        level = otsu_threshold(h)
    else:
        level = float(threshold)
    if core is not None:
        if not 0 < core < 1:
            raise ValueError(f"core must be a fraction in (0, 1), got {core!r}")
        below, above = h[h <= level], h[h > level]
        if below.size and above.size:
            substrate, top = np.median(below), np.percentile(above, 90)
            level = float(substrate + core * (top - substrate))
    labels, n = ndimage.label(h > level)
    index = np.arange(1, n + 1)
    area = ndimage.sum_labels(np.ones_like(h), labels, index).astype(int)
    weight = np.clip(h - level, 0, None)
    com = np.asarray(ndimage.center_of_mass(weight, labels, index), dtype=float).reshape(-1, 2)
    height, width = h.shape
    keep = (area >= min_area) & inside_frame(com, (height, width), margin)
    if max_area is not None:
        keep &= area <= max_area
    # second moments of each blob (unweighted) for orientation and elongation
    rr, cc = np.indices(h.shape, dtype=float)
    mr = ndimage.mean(rr, labels, index)
    mc = ndimage.mean(cc, labels, index)
    rr_c = ndimage.mean(rr * rr, labels, index) - mr**2
    cc_c = ndimage.mean(cc * cc, labels, index) - mc**2
    rc_c = ndimage.mean(rr * cc, labels, index) - mr * mc
    rr_c, cc_c, rc_c = (np.atleast_1d(np.asarray(v, float)) for v in (rr_c, cc_c, rc_c))
    # long axis of the covariance; in display coordinates (x = col, y = -row)
    theta = 0.5 * np.arctan2(-2 * rc_c, cc_c - rr_c)
    spread = np.sqrt(((cc_c - rr_c) / 2) ** 2 + rc_c**2)
    big = (cc_c + rr_c) / 2 + spread
    small = np.maximum((cc_c + rr_c) / 2 - spread, 1e-12)
    elong = np.sqrt(big / small)
    theta = np.mod(theta, np.pi)
    # relabel the kept particles 1..N
    new = np.zeros(n + 1, dtype=np.int32)
    new[1:][keep] = np.arange(1, keep.sum() + 1)
    return Particles(
        coords=com[keep],
        area=area[keep],
        orientation=theta[keep] if n else np.zeros(0),
        elongation=elong[keep] if n else np.zeros(0),
        labels=new[labels],
        threshold=level,
    )
