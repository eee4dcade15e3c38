"""Ferroelectric domain images with two independent factors at two length scales (SI-VAE test).

A toy vertical-PFM image (signed piezoresponse, amplitude x cos(phase), arbitrary units) that
is the sum of two independently drawn structures with their own length scales:

- **fine (about 8 px): polar nanoregions.** The film is cut into Voronoi cells of mean spacing
  ``cell_size`` px (placed at random, not on a grid); each cell carries its own polarisation
  offset, drawn uniformly in ``[-fine_amplitude, fine_amplitude]``. The truth per pixel is the
  offset of the cell the pixel lies in (``fine``). Neighbouring cells are independent, so the
  offsets average towards zero over windows much larger than a cell.
- **coarse (about 48 px): ferroelastic variant fraction.** A mosaic of two variants, A and B,
  that shift the response by ``-variant_contrast`` and ``+variant_contrast``: a random field
  of correlation length ``variant_length`` px thresholded against a slowly varying probability
  of B (``0.5 +- fraction_spread``, correlation length ``fraction_length`` px). The area
  fraction of B in a 48 px window varies from place to place; a single small window sees
  mostly one variant and says little about that fraction.

The two structures come from independent random streams (``numpy.random.SeedSequence.spawn``):
no factor is a function of the other or of the position on a grid. The image is blurred by
the tip (Gaussian, ``tip_sigma`` px) and carries Gaussian measurement noise ``noise``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, special
from scipy.spatial import cKDTree

from ._common import Series, check_float, check_int, check_seed, check_shape
from .ferroelectric import _blur, _smooth_noise

__all__ = ["TwoScaleDomains", "two_scale_domains"]


@dataclass
class TwoScaleDomains(Series):
    """What :func:`two_scale_domains` returns (``n`` frames of ``H x W`` px).

    Attributes:
        frames: ``(n, H, W)`` float32 signed vertical PFM signal (a.u.).
        fine: ``(n, H, W)`` float32 true nanoregion polarisation offset at each pixel (a.u.;
            the fine factor).
        variant: ``(n, H, W)`` bool, True where the ferroelastic variant is B (the coarse
            factor is its area fraction over a window).
        fraction_b: ``(n, H, W)`` float32 designed probability of variant B (0-1); the
            realised fraction in a window scatters around its window mean.
        regions: ``(n, H, W)`` int32 nanoregion label, unique within each frame.
        params: the generator's arguments.
    """

    frames: np.ndarray
    fine: np.ndarray
    variant: np.ndarray
    fraction_b: np.ndarray
    regions: np.ndarray
    params: dict = field(default_factory=dict)


def _nanoregions(rng, shape, cell_size: float, amplitude: float):
    """Voronoi nanoregions on a torus: per-pixel offset (uniform in +-amplitude) and label."""
    h, w = shape
    n_cells = max(2, int(round(h * w / cell_size**2)))
    seeds = rng.uniform(0, 1, (n_cells, 2)) * (h, w)
    offsets = rng.uniform(-amplitude, amplitude, n_cells)
    rr, cc = np.mgrid[0:h, 0:w]
    tree = cKDTree(seeds, boxsize=(h, w))  # periodic: the frame tiles without seams
    _, label = tree.query(np.stack([rr.ravel(), cc.ravel()], axis=1).astype(np.float64))
    label = label.reshape(h, w)
    return offsets[label], label


def two_scale_domains(n_frames: int = 12, size=256, *, cell_size: float = 8.0,
                      fine_amplitude: float = 1.0, compensation_length: float = 8.0,
                      variant_length: float = 4.0,
                      fraction_length: float = 48.0, fraction_spread: float = 0.2,
                      variant_contrast: float = 0.2, tip_sigma: float = 0.7,
                      noise: float = 0.1, seed: int = 0) -> TwoScaleDomains:
    """Simulate frames whose fine nanoregion offset and coarse variant fraction are independent.

    Args:
        n_frames: number of independent frames (each a new film area).
        size: frame side ``n`` or ``(H, W)`` in pixels (>= 32).
        cell_size: mean nanoregion spacing in px (>= 2).
        fine_amplitude: nanoregion offsets are uniform in ``[-fine_amplitude, fine_amplitude]``
            (a.u., >= 0).
        compensation_length: the offsets minus their Gaussian average over this many px
            (local compensation by the depolarising field), so they sum to about zero over a
            few regions and vanish from large windows; 0 keeps the raw offsets.
        variant_length: correlation length (px) of the field thresholded into the variant map.
        fraction_length: correlation length (px) of the probability of variant B.
        fraction_spread: standard deviation of that probability around 0.5 (0-0.45).
        variant_contrast: signal shift of variant B (+) and A (-), a.u. (>= 0).
        tip_sigma: Gaussian tip blur in px (0: none).
        noise: standard deviation of the additive measurement noise, a.u.
        seed: random seed; nanoregions, variants and noise use independent child streams.

    Returns:
        :class:`TwoScaleDomains`.

    Raises:
        ValueError: an argument out of range (the message names it and the allowed range).
    """
    n = check_int(n_frames, "n_frames", 1, "number of frames")
    shape = check_shape(size, "size", 32)
    cell = check_float(cell_size, "cell_size", 2.0, hint="px")
    amp = check_float(fine_amplitude, "fine_amplitude", 0.0, hint="a.u.")
    comp = check_float(compensation_length, "compensation_length", 0.0, hint="px; 0: none")
    v_len = check_float(variant_length, "variant_length", 0.5, hint="px")
    f_len = check_float(fraction_length, "fraction_length", 0.5, hint="px")
    spread = check_float(fraction_spread, "fraction_spread", 0.0, 0.45)
    contrast = check_float(variant_contrast, "variant_contrast", 0.0, hint="a.u.")
    tip = check_float(tip_sigma, "tip_sigma", 0.0, hint="px")
    sigma_n = check_float(noise, "noise", 0.0, hint="a.u.")
    seed = check_seed(seed)
    fine_ss, variant_ss, noise_ss = np.random.SeedSequence(seed).spawn(3)
    rng_f = np.random.default_rng(fine_ss)
    rng_v = np.random.default_rng(variant_ss)
    rng_n = np.random.default_rng(noise_ss)

    out = {k: [] for k in ("frames", "fine", "variant", "fraction_b", "regions")}
    for _ in range(n):
        raw, label = _nanoregions(rng_f, shape, cell, amp)
        # local compensation (depolarising field): the offsets sum to zero over a few regions
        fine = raw - ndimage.gaussian_filter(raw, comp, mode="wrap") if comp > 0 else raw
        prob_b = np.clip(0.5 + spread * _smooth_noise(rng_v, shape, f_len), 0.02, 0.98)
        # a uniform marginal for the thresholded field, so P(variant B) = prob_b at every pixel
        u = special.ndtr(_smooth_noise(rng_v, shape, v_len))
        var_b = u < prob_b
        img = fine + contrast * np.where(var_b, 1.0, -1.0)
        img = _blur(img, tip)
        img = img + sigma_n * rng_n.standard_normal(shape)
        out["frames"].append(img.astype(np.float32))
        out["fine"].append(fine.astype(np.float32))
        out["variant"].append(var_b)
        out["fraction_b"].append(prob_b.astype(np.float32))
        out["regions"].append(label.astype(np.int32))
    params = dict(n_frames=n, size=shape, cell_size=cell, fine_amplitude=amp,
                  compensation_length=comp,
                  variant_length=v_len, fraction_length=f_len, fraction_spread=spread,
                  variant_contrast=contrast, tip_sigma=tip, noise=sigma_n, seed=seed)
    return TwoScaleDomains(**{k: np.stack(v) for k, v in out.items()}, params=params)
