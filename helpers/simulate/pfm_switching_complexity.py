"""Dynamic-PFM switching in which the domain complexity varies independently of switching.

:func:`switching_complexity_sequence` switches a film under a rising bias through a map of
local coercive fields (a Preisach-like picture of disorder-controlled switching: a pixel
switches once the bias exceeds its local coercive field, so domains nucleate at the weakest
sites and grow as the bias rises). The coercive-field map mixes two disorder components
whose weights vary across the frame:

- smooth, long-range disorder: where it dominates, domains are large and their walls
  smooth (one gently curved wall across a window);
- short-range disorder (pinning): where it dominates, domains are small, fragmented and
  their walls tortuous.

The local **complexity** ``c`` in ``[0, 1]``, a smooth random field over the frame, sets the
weight ``pinning * c`` of the short-range part. The mixture keeps unit variance for every
``c``, so the distribution of the coercive field, and therefore the switched fraction at a
given bias, do not depend on the complexity: the complexity is not a function of the
switched fraction. A third smooth field, made exactly uncorrelated with the complexity,
offsets the coercive field region by region, so the local switched fraction varies across
the frame too.
Images are pixels directly (no lattice), imaged with a Gaussian tip and complex measurement
noise as in :func:`helpers.simulate.ferroelectric_switching`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, special

from ._common import Series, check_float, check_int, check_seed
from .ferroelectric import _blur, _smooth_noise, domain_walls, wall_orientation

__all__ = ["ComplexitySwitching", "switching_complexity_sequence"]


@dataclass
class ComplexitySwitching(Series):
    """A dynamic-PFM switching sequence with independent complexity, and its ground truth.

    Image arrays are ``(T, H, W)``; maps of the static landscape are ``(H, W)``.

    Attributes:
        amplitude: ``(T, H, W)`` float32 PFM amplitude (arbitrary units, about 1 in a
            domain, dark at walls), tip-blurred and noisy.
        phase: ``(T, H, W)`` float32 PFM phase, radians in ``[-pi/2, 3pi/2)``: about 0 where
            switched, about pi where as poled.
        field: ``(T,)`` applied bias at each frame, in units of the mean coercive field.
        walls: ``(T, H, W)`` bool true domain walls (pixels within about 1 px of a boundary
            of ``switched``).
        wall_angle: ``(T, H, W)`` float32 true wall orientation, radians in ``[0, pi)``,
            anticlockwise as displayed; NaN off the walls.
        switched: ``(T, H, W)`` bool switched pixels.
        switched_fraction: ``(T, H, W)`` float32 local switched fraction, the mean of
            ``switched`` over a ``switch_window`` px square centred on each pixel.
        switched_total: ``(T,)`` switched fraction of the whole frame.
        params: the generator's arguments.
        complexity: ``(H, W)`` float32 true local complexity in ``[0, 1]`` (uniformly
            distributed over the frame): the weight of short-range disorder (pinning) in
            the coercive field is ``pinning`` times it.
        complexity_local: ``(H, W)`` float32 ``complexity`` averaged over the same
            ``switch_window`` px square as ``switched_fraction``.
        coercive: ``(H, W)`` float32 local coercive field, units of the mean coercive
            field (a pixel has switched once ``field`` exceeds it).
        landscape: ``(H, W)`` float32 the smooth regional offset of the coercive field
            (standardised; uncorrelated with ``complexity`` over the pixels).
    """

    amplitude: np.ndarray
    phase: np.ndarray
    field: np.ndarray
    walls: np.ndarray
    wall_angle: np.ndarray
    switched: np.ndarray
    switched_fraction: np.ndarray
    switched_total: np.ndarray
    complexity: np.ndarray
    complexity_local: np.ndarray
    coercive: np.ndarray
    landscape: np.ndarray
    params: dict = field(default_factory=dict)  # the generator's arguments

    _length_of = "amplitude"  # len() counts the frames


def _off(g: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``g`` with its projection on ``c`` removed, restandardised: zero mean, unit variance
    and exactly zero correlation with ``c`` over the pixels."""
    c = c - c.mean()
    g = g - (g * c).mean() / (c * c).mean() * c
    return (g - g.mean()) / (g.std() + 1e-12)


def switching_complexity_sequence(
        n_frames: int = 20, size: int = 256, seed: int = 0, field_start: float = 0.6,
        field_end: float = 1.4, coercive_spread: float = 0.2, domain_length: float = 40.0,
        pinning_length: float = 0.5, pinning: float = 1.0, complexity_length: float = 80.0,
        landscape_weight: float = 0.6, landscape_length: float = 48.0,
        tip_sigma: float = 1.5, noise: float = 0.08,
        switch_window: int = 32) -> ComplexitySwitching:
    """Domains switching under a rising bias, with a complexity drawn independently.

    Coercive-field map: with ``G_L`` a smooth Gaussian random field of correlation
    ``domain_length`` px, ``G_s`` a short-range one of correlation ``pinning_length`` px
    (both of unit variance) and the complexity map ``c`` (a smooth field of correlation
    ``complexity_length`` px mapped through the normal CDF onto ``[0, 1]``),

    ``phi = sqrt(1 - w_s^2) G_L + w_s G_s`` with ``w_s = pinning * c`` (unit variance for
    every ``c``),

    ``E_c = 1 + coercive_spread * (phi + w B) / sqrt(1 + w^2)``,

    where ``B`` is the regional landscape (correlation ``landscape_length`` px) and
    ``w = landscape_weight``; ``B`` and ``G_L`` are projected off ``c`` (exactly
    uncorrelated with it over the pixels), so no region's switching pace follows its
    complexity by chance. A pixel has switched at frame ``t`` when the bias
    ``E_t >= E_c``; the bias ramps linearly from ``field_start`` to ``field_end``, so domains
    only grow and the frames are nested. PFM: the piezoresponse (+1 switched, -1 as poled)
    is blurred by a Gaussian tip of ``tip_sigma`` px and measured with complex Gaussian
    noise of standard deviation ``noise`` per quadrature; amplitude and phase are the
    modulus and argument.

    Args:
        n_frames: number of frames ``T`` (>= 2).
        size: image side ``H = W``, pixels (>= 32).
        seed: random seed.
        field_start, field_end: bias of the first and the last frame, units of the mean
            coercive field (the defaults switch about 2 % and 98 % of the film).
        coercive_spread: standard deviation of the coercive field, same units.
        domain_length: correlation length of the long-range disorder, px.
        pinning_length: correlation length of the short-range disorder, px.
        pinning: weight of the short-range disorder where ``c = 1``, in ``[0, 1]`` (1, the
            default: the most complex regions switch through pinning alone).
        complexity_length: correlation length of the complexity map, px (the default, well
            above the 32 px windows of the PFM notebook, makes the complexity a property of a
            whole window rather than of a part of it).
        landscape_weight: weight ``w`` of the regional landscape.
        landscape_length: correlation length of the regional landscape, px.
        tip_sigma: standard deviation of the tip's Gaussian resolution, px.
        noise: measurement noise per quadrature, in units of the single-domain response.
        switch_window: side of the square over which ``switched_fraction`` and
            ``complexity_local`` average, px.

    Returns:
        :class:`ComplexitySwitching`.
    """
    n_frames = check_int(n_frames, "n_frames", 2)
    size = check_int(size, "size", 32, "image side in pixels")
    seed = check_seed(seed)
    field_start = check_float(field_start, "field_start", 0.0, hint="units of the coercive field")
    field_end = check_float(field_end, "field_end", field_start, low_open=True,
                            hint="a rising bias: above field_start")
    coercive_spread = check_float(coercive_spread, "coercive_spread", 0.0, low_open=True)
    domain_length = check_float(domain_length, "domain_length", 0.5, hint="pixels")
    pinning_length = check_float(pinning_length, "pinning_length", 0.5, hint="pixels")
    pinning = check_float(pinning, "pinning", 0.0, 1.0)
    complexity_length = check_float(complexity_length, "complexity_length", 0.5, hint="px")
    landscape_weight = check_float(landscape_weight, "landscape_weight", 0.0)
    landscape_length = check_float(landscape_length, "landscape_length", 0.5, hint="px")
    tip_sigma = check_float(tip_sigma, "tip_sigma", 0.0)
    noise = check_float(noise, "noise", 0.0)
    switch_window = check_int(switch_window, "switch_window", 1)
    if switch_window > size:
        raise ValueError(f"switch_window ({switch_window} px) must not exceed size ({size} px)")
    params = dict(n_frames=n_frames, size=size, seed=seed, field_start=field_start,
                  field_end=field_end, coercive_spread=coercive_spread,
                  domain_length=domain_length, pinning_length=pinning_length, pinning=pinning,
                  complexity_length=complexity_length, landscape_weight=landscape_weight,
                  landscape_length=landscape_length, tip_sigma=tip_sigma, noise=noise,
                  switch_window=switch_window)

    rng = np.random.default_rng(seed)
    shape = (size, size)
    gc = _smooth_noise(rng, shape, complexity_length)
    complexity = special.ndtr(gc)  # uniform on [0, 1]
    landscape = _off(_smooth_noise(rng, shape, landscape_length), complexity)
    weight = pinning * complexity  # of the short-range part; unit variance for every c
    smooth = _off(_smooth_noise(rng, shape, domain_length), complexity)
    phi = (np.sqrt(1.0 - weight**2) * smooth
           + weight * _smooth_noise(rng, shape, pinning_length))
    coercive = 1.0 + coercive_spread * (phi + landscape_weight * landscape) / np.sqrt(
        1.0 + landscape_weight**2)

    bias = np.linspace(field_start, field_end, n_frames)
    switched = coercive[None] <= bias[:, None, None]  # (T, H, W)

    response = _blur(np.where(switched, 1.0, -1.0), tip_sigma)
    signal = response + noise * (rng.standard_normal(response.shape)
                                 + 1j * rng.standard_normal(response.shape))
    amplitude = np.abs(signal)
    phase = np.mod(np.angle(signal) + np.pi / 2, 2 * np.pi) - np.pi / 2

    walls = domain_walls(switched.astype(np.int64), width=3)
    angle = wall_orientation(switched.astype(np.float64), walls, sigma=1.5)
    box = (1, switch_window, switch_window)
    frac = ndimage.uniform_filter(switched.astype(np.float64), size=box, mode="wrap")
    c_local = ndimage.uniform_filter(complexity, size=switch_window, mode="wrap")
    return ComplexitySwitching(
        amplitude=amplitude.astype(np.float32), phase=phase.astype(np.float32), field=bias,
        walls=walls, wall_angle=angle, switched=switched,
        switched_fraction=frac.astype(np.float32), switched_total=switched.mean(axis=(1, 2)),
        complexity=complexity.astype(np.float32), complexity_local=c_local.astype(np.float32),
        coercive=coercive.astype(np.float32), landscape=landscape.astype(np.float32),
        params=params,
    )
