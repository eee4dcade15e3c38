"""Ferroelectric domain data from the kinetic lattice model (see :mod:`._lattice`).

Three experiments on the Landau-Khalatnikov lattice, each returning images plus the true
polarisation and domain walls:

- :func:`ferroelectric_switching`: dynamic PFM while domains nucleate at defects and grow
  under a bias field (Kolmogorov-Avrami-Ishibashi switching);
- :func:`hysteresis_map`: a domain image and a local (tip-field) hysteresis loop at every
  site, shaped by the surrounding domains and by hidden defects;
- :func:`temperature_series`: BaTiO3-like tetragonal domains across a first-order transition.

Lattice sites are upsampled to image pixels by an integer ``upsample`` (site ``(i, j)`` is
centred on pixel ``(i * u + (u - 1) / 2, j * u + (u - 1) / 2)``). Component 0 of ``P`` lies
along the row axis (it is the out-of-plane component PFM measures in the first two
experiments), component 1 along the column axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ._common import Series, check_float, check_int, check_seed, upsample
from ._lattice import LandauCoefficients, landau_force, landau_khalatnikov, uniaxial_coercive_field

__all__ = [
    "SwitchingSequence",
    "HysteresisMap",
    "TemperatureSeries",
    "ferroelectric_switching",
    "hysteresis_map",
    "temperature_series",
    "domain_walls",
    "wall_orientation",
    "triangle_voltage",
]


# --------------------------------------------------------------------------- shared helpers


def _smooth_noise(rng, shape, length: float) -> np.ndarray:
    """Periodic Gaussian random field of unit standard deviation and correlation ``length``."""
    z = ndimage.gaussian_filter(rng.standard_normal(shape), length, mode="wrap")
    return (z - z.mean()) / (z.std() + 1e-12)


def domain_walls(labels, width: int = 3) -> np.ndarray:
    """Pixels within a band around every boundary of an integer label image.

    Args:
        labels: ``(..., H, W)`` int domain labels (negative values are treated as "no
            domain" and never produce walls).
        width: the band is ``width`` pixels wide (a pixel is a wall pixel when the labels in
            the ``width x width`` window centred on it differ).

    Returns:
        ``(..., H, W)`` bool.
    """
    labels = np.asarray(labels)
    size = (1,) * (labels.ndim - 2) + (width, width)
    hi = ndimage.maximum_filter(labels, size=size, mode="wrap")
    lo = ndimage.minimum_filter(labels, size=size, mode="wrap")
    return (hi != lo) & (lo >= 0)


def wall_orientation(indicator, walls, sigma: float = 1.5) -> np.ndarray:
    """Orientation of the walls (the direction along the wall), radians in ``[0, pi)``.

    The wall normal is the gradient of the Gaussian-smoothed ``indicator`` (e.g. the sign of
    the polarisation); the wall direction is the normal turned by 90 degrees. Angles are
    anticlockwise as displayed (row axis pointing down), modulo pi.

    Args:
        indicator: ``(..., H, W)`` float image that changes across the walls.
        walls: ``(..., H, W)`` bool wall mask.
        sigma: smoothing, pixels.

    Returns:
        ``(..., H, W)`` float32, NaN off the walls.
    """
    ind = np.asarray(indicator, dtype=np.float64)
    sig = (0,) * (ind.ndim - 2) + (sigma, sigma)
    gr = ndimage.gaussian_filter(ind, sig, order=(0,) * (ind.ndim - 2) + (1, 0), mode="wrap")
    gc = ndimage.gaussian_filter(ind, sig, order=(0,) * (ind.ndim - 2) + (0, 1), mode="wrap")
    normal = np.arctan2(-gr, gc)  # on-screen angle of the gradient (y up)
    angle = np.mod(normal + np.pi / 2, np.pi)
    return np.where(walls, angle, np.nan).astype(np.float32)


def _tip_kernel(sigma: float) -> np.ndarray:
    r = int(np.ceil(3 * sigma))
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    k = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return k / k.sum()


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return img
    sig = (0,) * (img.ndim - 2) + (sigma, sigma)
    return ndimage.gaussian_filter(img, sig, mode="wrap")


def _labels_tetragonal(P: np.ndarray, threshold: float) -> np.ndarray:
    """Variant of each site: 0 (+P0), 1 (-P0), 2 (+P1), 3 (-P1); -1 where |P| < threshold."""
    p0, p1 = P[..., 0, :, :], P[..., 1, :, :]
    along0 = np.abs(p0) >= np.abs(p1)
    lab = np.where(along0, np.where(p0 >= 0, 0, 1), np.where(p1 >= 0, 2, 3))
    return np.where(np.hypot(p0, p1) < threshold, -1, lab)


def _repeat(a: np.ndarray, u: int) -> np.ndarray:
    return np.repeat(np.repeat(a, u, axis=-2), u, axis=-1)


# --------------------------------------------------------------------------- switching


@dataclass
class SwitchingSequence(Series):
    """A dynamic-PFM switching sequence with its ground truth.

    Image arrays are ``(T, H, W)`` with ``H = upsample * lattice rows``.

    Attributes:
        amplitude: ``(T, H, W)`` float32 PFM amplitude (arbitrary units, about 1 in a
            domain, dark at walls), tip-blurred and noisy.
        phase: ``(T, H, W)`` float32 PFM phase, radians in ``[-pi/2, 3pi/2)``: about 0 for
            ``P0 > 0`` (switched), about pi for ``P0 < 0`` (as poled).
        field: ``(T,)`` applied field at each frame, reduced units (the intrinsic coercive
            field is ``coercive_field``).
        time: ``(T,)`` model time of each frame.
        polarization: ``(T, 2, h, w)`` float32 true lattice polarisation.
        walls: ``(T, H, W)`` bool true domain-wall mask: pixels within about
            ``upsample / 2`` px of the boundary of ``switched``.
        wall_angle: ``(T, H, W)`` float32 true wall orientation, radians in ``[0, pi)``,
            anticlockwise as displayed; NaN off the walls.
        switched: ``(T, H, W)`` bool, switched pixels (``P0 > 0``, ``P0`` interpolated
            from the sites by cubic splines).
        switched_fraction: ``(T, H, W)`` float32 local switched fraction, the mean of
            ``switched`` over a ``switch_window`` px square centred on each pixel.
        switched_total: ``(T,)`` switched fraction of the whole frame.
        defects: ``(2, h, w)`` the static defect field (random-field nucleation centres plus
            smooth disorder), reduced units.
        coercive_field: intrinsic coercive field of the defect-free lattice, reduced units.
        upsample: pixels per lattice site.
        params: the generator's arguments.
    """

    _length_of = "amplitude"

    amplitude: np.ndarray
    phase: np.ndarray
    field: np.ndarray
    time: np.ndarray
    polarization: np.ndarray
    walls: np.ndarray
    wall_angle: np.ndarray
    switched: np.ndarray
    switched_fraction: np.ndarray
    switched_total: np.ndarray
    defects: np.ndarray
    coercive_field: float
    upsample: int
    params: dict = field(default_factory=dict)


def _lattice_args(size, upsample_factor, seed) -> tuple[int, int, int]:
    """Checked lattice side (sites, >= 8), pixels per site and seed of a lattice simulation."""
    return (check_int(size, "size", 8, "lattice sites per side"),
            check_int(upsample_factor, "upsample_factor", 1), check_seed(seed))


def ferroelectric_switching(n_frames: int = 20, size: int = 64, upsample_factor: int = 4,
                            seed: int = 0, field_start: float = 0.40, field_end: float = 0.50,
                            duration: float = 45.0, nucleation_density: float = 0.012,
                            disorder: float = 0.12, thermal_noise: float = 0.1,
                            tip_sigma: float = 1.5, noise: float = 0.08,
                            switch_window: int = 24) -> SwitchingSequence:
    """Domains nucleating and growing under bias, imaged by PFM frame by frame.

    The lattice (tetragonal, ``a1 = -1``, ``a2 = 0.5``, coupling 3: walls about 2 sites wide
    and free to move) starts uniformly poled with ``P0 = -1``. A uniform field along ``+P0``
    ramps from ``field_start`` to ``field_end`` (below the intrinsic coercive field 0.77), so
    the film switches only by nucleation at random-field defects (strength 0.2-0.8 along
    ``+P0``) and growth of the domains, roughened by a smooth disorder field, with Langevin
    noise making nucleation stochastic. The frames are evenly spaced over ``duration``
    (model time), so a short (smoke) sequence covers the same switching as a long one.
    PFM: the piezoresponse ``P0`` is upsampled, convolved
    with a Gaussian tip, and measured with complex Gaussian noise; amplitude and phase are
    the modulus and argument of the result.

    Args:
        n_frames: number of frames ``T``.
        size: lattice sites per side ``h = w``.
        upsample_factor: pixels per site (images are ``size * upsample_factor`` px).
        seed: random seed.
        field_start, field_end: applied field at time 0 and at the last frame, reduced
            units (a linear ramp).
        duration: model time of the last frame (with the defaults, about 15 % of the film
            has switched at 40 % of the duration and nearly all by the end).
        nucleation_density: fraction of sites that are nucleation defects.
        disorder: standard deviation of the smooth random field along ``P0``.
        thermal_noise: Langevin noise of the lattice dynamics.
        tip_sigma: standard deviation of the tip's Gaussian resolution, pixels.
        noise: standard deviation of the PFM measurement noise (per quadrature), in units of
            the single-domain response.
        switch_window: side of the square over which ``switched_fraction`` averages, pixels.

    Returns:
        :class:`SwitchingSequence`.
    """
    n_frames = check_int(n_frames, "n_frames", 1)
    size, u, seed = _lattice_args(size, upsample_factor, seed)
    field_start = check_float(field_start, "field_start", -2.0, 2.0)
    field_end = check_float(field_end, "field_end", -2.0, 2.0)
    duration = check_float(duration, "duration", 0.0, low_open=True, hint="model time")
    nucleation_density = check_float(nucleation_density, "nucleation_density", 0.0, 1.0)
    disorder = check_float(disorder, "disorder", 0.0)
    thermal_noise = check_float(thermal_noise, "thermal_noise", 0.0)
    tip_sigma = check_float(tip_sigma, "tip_sigma", 0.0)
    noise = check_float(noise, "noise", 0.0)
    switch_window = check_int(switch_window, "switch_window", 1)
    params = dict(n_frames=n_frames, size=size, upsample_factor=u, seed=seed,
                  field_start=field_start, field_end=field_end, duration=duration,
                  nucleation_density=nucleation_density, disorder=disorder,
                  thermal_noise=thermal_noise, tip_sigma=tip_sigma, noise=noise,
                  switch_window=switch_window)

    rng = np.random.default_rng(seed)
    coeffs = LandauCoefficients(a1=-1.0, a2=0.5, a3=1.5, coupling=3.0)
    shape = (size, size)
    defects = np.zeros((2, *shape))
    nuclei = rng.random(shape) < nucleation_density
    defects[0, nuclei] = rng.uniform(0.2, 0.8, nuclei.sum())
    defects[0] += disorder * _smooth_noise(rng, shape, 2.5)

    dt = 0.05
    times = duration * (np.arange(n_frames) + 1) / n_frames
    n_steps = np.round(times / dt).astype(int)
    ramp = field_start + (field_end - field_start) * np.arange(1, n_steps[-1] + 1) / n_steps[-1]
    P = np.zeros((2, *shape))
    P[0] = -1.0
    snaps = np.empty((n_frames, 2, *shape))
    done = 0
    for t in range(n_frames):
        k = n_steps[t] - done
        if k > 0:
            vec = np.stack([ramp[done:n_steps[t]], np.zeros(k)], axis=1)
            P = landau_khalatnikov(P, k, coeffs, field=vec, defects=defects, dt=dt,
                                   noise=thermal_noise, rng=rng)
        done = n_steps[t]
        snaps[t] = P
    fields = ramp[n_steps - 1]

    response = _blur(upsample(snaps[:, 0], u), tip_sigma)  # (T, H, W), piezoresponse ~ P0
    meas = response + noise * rng.standard_normal(response.shape)
    quad = noise * rng.standard_normal(response.shape)
    amplitude = np.hypot(meas, quad)
    phase = np.mod(np.arctan2(quad, meas) + np.pi / 2, 2 * np.pi) - np.pi / 2

    p0_px = upsample(snaps[:, 0], u)  # smooth (cubic) P0 at pixel resolution
    switched = p0_px > 0
    walls = domain_walls(switched.astype(np.int64), width=u + 1)
    angle = wall_orientation(p0_px, walls, sigma=max(1.0, u / 2))
    frac = ndimage.uniform_filter(switched.astype(np.float64), size=(1, switch_window,
                                  switch_window), mode="wrap")
    return SwitchingSequence(
        amplitude=amplitude.astype(np.float32), phase=phase.astype(np.float32),
        field=fields, time=n_steps * dt,
        polarization=snaps.astype(np.float32), walls=walls, wall_angle=angle,
        switched=switched, switched_fraction=frac.astype(np.float32),
        switched_total=switched.mean(axis=(1, 2)), defects=defects,
        coercive_field=uniaxial_coercive_field(coeffs.a1, coeffs.a2), upsample=u,
        params=params,
    )


# --------------------------------------------------------------------------- hysteresis


@dataclass
class HysteresisMap:
    """A domain image with a local hysteresis loop at every site, and the ground truth.

    Attributes:
        image: ``(H, W)`` float32 piezoresponse image at the first voltage step (0 V):
            about +1 in c+ domains, -1 in c-, 0 in in-plane (a) domains; noisy.
        loops: ``(H, W, L)`` float32 piezoresponse loop at every site (arbitrary units,
            the tip-weighted ``P0`` under the tip), noisy.
        voltage: ``(L,)`` float64 tip voltage of each loop point, volts
            (0 -> +V_max -> -V_max -> 0).
        polarization: ``(2, H, W)`` float32 true domain configuration.
        domains: ``(H, W)`` int true variant: 0 c+ (+P0), 1 c- (-P0), 2 a+ (+P1), 3 a- (-P1).
        walls: ``(H, W)`` bool true domain walls (sites whose 3x3 neighbourhood holds
            two variants).
        imprint: ``(H, W)`` float64 hidden smooth defect bias field along ``P0`` (reduced
            units); it shifts the loops by about ``-imprint / field_per_volt`` volts.
        defects: ``(H, W)`` float64 hidden point-defect random field along ``P0``.
        coercive_voltages: ``(H, W, 2)`` float32 measured switching voltages of each loop
            (down-switching, up-switching), volts: where the descending and ascending
            branches cross the loop's mid-level (NaN if a branch never crosses).
        coercive_field: intrinsic coercive field of the bulk lattice, reduced units.
        field_per_volt: tip field at the tip centre per volt, reduced units.
        params: the generator's arguments.
    """

    image: np.ndarray
    loops: np.ndarray
    voltage: np.ndarray
    polarization: np.ndarray
    domains: np.ndarray
    walls: np.ndarray
    imprint: np.ndarray
    defects: np.ndarray
    coercive_voltages: np.ndarray
    coercive_field: float
    field_per_volt: float
    params: dict = field(default_factory=dict)


def triangle_voltage(n_points: int, v_max: float) -> np.ndarray:
    """One bipolar triangle cycle 0 -> +v_max -> -v_max -> 0 of ``n_points``, volts."""
    s = np.arange(n_points) / n_points
    tri = np.where(s < 0.25, 4 * s, np.where(s < 0.75, 2 - 4 * s, 4 * s - 4))
    return v_max * tri


def _windows(a: np.ndarray, half: int) -> np.ndarray:
    """``(C, H, W)`` -> ``(H * W, C, m, m)`` periodic windows of side ``m = 2 half + 1``."""
    pad = np.pad(a, ((0, 0), (half, half), (half, half)), mode="wrap")
    win = np.lib.stride_tricks.sliding_window_view(pad, (2 * half + 1, 2 * half + 1),
                                                   axis=(1, 2))
    c, h, w, m, _ = win.shape
    return np.ascontiguousarray(win.transpose(1, 2, 0, 3, 4).reshape(h * w, c, m, m))


def _local_loops(P, bias, voltage, coeffs, tip_sigma, field_per_volt, radius, steps_per_point,
                 dt, n_cycles):
    """Loops of every site under a tip field, with the surroundings frozen.

    The tip at site ``s`` applies ``V * field_per_volt * g(r)`` along ``P0`` (``g`` a Gaussian
    of ``tip_sigma`` sites, 1 at the centre) to the ``(2 radius + 1)^2`` sites around it,
    which evolve by Landau-Khalatnikov dynamics while a one-site ring around them stays in the
    initial configuration. Returns ``(H * W, L)`` tip-weighted ``P0``.
    """
    half = radius + 1
    win = _windows(P, half).astype(np.float64)  # (N, 2, m, m)
    bwin = _windows(bias[None], half)[:, 0]  # (N, m, m)
    m = 2 * half + 1
    y, x = np.mgrid[-half:half + 1, -half:half + 1]
    g = np.exp(-(x**2 + y**2) / (2 * tip_sigma**2))
    inner = (slice(None), slice(None), slice(1, m - 1), slice(1, m - 1))
    g_in = g[1:-1, 1:-1]
    weight = g_in / g_in.sum()
    loops = np.empty((len(win), len(voltage)))
    for cycle in range(n_cycles):
        for k, v in enumerate(voltage):
            drive = bwin[:, 1:-1, 1:-1] + v * field_per_volt * g_in
            for _ in range(steps_per_point):
                nn = 0.25 * (win[:, :, :-2, 1:-1] + win[:, :, 2:, 1:-1]
                             + win[:, :, 1:-1, :-2] + win[:, :, 1:-1, 2:])
                core = win[inner]
                grad = landau_force(core, coeffs) + coeffs.coupling * (core - nn)
                grad[:, 0] -= drive
                win[inner] = core - dt * grad
            if cycle == n_cycles - 1:
                loops[:, k] = np.einsum("nij,ij->n", win[:, 0, 1:-1, 1:-1], weight)
    return loops


def _coercive(loops, voltage):
    """Voltages where the descending and ascending branches cross each loop's mid-level."""
    n, L = loops.shape
    mid = 0.5 * (loops.max(1) + loops.min(1))
    out = np.full((n, 2), np.nan)
    dv = np.diff(np.append(voltage, voltage[0]))
    nxt = np.roll(loops, -1, axis=1)
    v0, v1 = voltage, np.append(voltage[1:], voltage[0])
    for col, sign in ((0, -1), (1, 1)):  # 0: falling voltage, response going down
        branch = (np.sign(dv) == sign)[None]
        cross = branch & ((loops - mid[:, None]) * (nxt - mid[:, None]) <= 0) & (
            np.sign(nxt - loops) == sign)
        has = cross.any(1)
        k = np.argmax(cross, axis=1)
        rows = np.arange(n)
        a, b = loops[rows, k], nxt[rows, k]
        frac = np.where(np.abs(b - a) > 1e-12, (mid - a) / (b - a + 1e-300), 0.5)
        vc = v0[k] + frac * (v1[k] - v0[k])
        out[has, col] = vc[has]
    return out


def hysteresis_map(size: int = 60, n_voltages: int = 64, seed: int = 0, v_max: float = 10.0,
                   field_per_volt: float = 0.15, domain_size: float = 4.0,
                   in_plane_fraction: float = 0.25, imprint: float = 0.05,
                   defect_density: float = 0.05, defect_strength: float = 0.15,
                   tip_sigma: float = 1.0, noise: float = 0.02, image_noise: float = 0.05,
                   steps_per_cycle: int = 384) -> HysteresisMap:
    """A piezoresponse domain image and a switching-spectroscopy loop at every site.

    Domains: a tetragonal lattice (``a1 = -1``, ``a2 = 0.5``, ``a3 = 1.5``, coupling 2)
    relaxed from a smooth random start of correlation ``domain_size`` sites, in which about
    ``in_plane_fraction`` of the area holds in-plane (a) domains and the rest up/down (c)
    domains. Loops: as in switching spectroscopy PFM the tip field is local, so at every site
    the ``5 x 5`` sites under the tip evolve under ``V * field_per_volt * g(r)`` while their
    surroundings stay as imaged; two voltage cycles are run and the second recorded. The loop
    therefore depends on the local domain configuration (c+ / c- / a domains, walls: full,
    shifted, asymmetric or pinched loops by back-switching), plus hidden defects: a smooth
    imprint field (shifts loops) and point defects (random fields).

    Args:
        size: sites per side (the image and the loop map are ``size x size``).
        n_voltages: points per loop ``L``.
        seed: random seed.
        v_max: amplitude of the triangular voltage cycle, volts.
        field_per_volt: tip field at the tip centre per volt, reduced units (default: the
            maximum tip field is about 2 x the intrinsic coercive field 0.77).
        domain_size: correlation length of the initial domain pattern, sites.
        in_plane_fraction: approximate area fraction of in-plane domains.
        imprint: standard deviation of the smooth hidden bias field, reduced units.
        defect_density: fraction of sites holding a point defect.
        defect_strength: standard deviation of the point-defect field, reduced units.
        tip_sigma: width of the tip field, sites.
        noise: standard deviation of the loop measurement noise.
        image_noise: standard deviation of the image noise.
        steps_per_cycle: dynamics steps (dt = 0.1) per voltage cycle, shared evenly by the
            ``n_voltages`` points (so the sweep rate does not depend on ``n_voltages``).

    Returns:
        :class:`HysteresisMap`.
    """
    size = check_int(size, "size", 12, "sites per side; 8x8 patches need room")
    n_voltages = check_int(n_voltages, "n_voltages", 8)
    seed = check_seed(seed)
    v_max = check_float(v_max, "v_max", 0.0, low_open=True, hint="volts")
    field_per_volt = check_float(field_per_volt, "field_per_volt", 0.0, low_open=True)
    domain_size = check_float(domain_size, "domain_size", 0.5)
    in_plane_fraction = check_float(in_plane_fraction, "in_plane_fraction", 0.0, 1.0)
    imprint = check_float(imprint, "imprint", 0.0)
    defect_density = check_float(defect_density, "defect_density", 0.0, 1.0)
    defect_strength = check_float(defect_strength, "defect_strength", 0.0)
    tip_sigma = check_float(tip_sigma, "tip_sigma", 0.0, low_open=True, hint="sites")
    noise = check_float(noise, "noise", 0.0)
    image_noise = check_float(image_noise, "image_noise", 0.0)
    steps_per_cycle = check_int(steps_per_cycle, "steps_per_cycle", 8)
    params = dict(size=size, n_voltages=n_voltages, seed=seed, v_max=v_max,
                  field_per_volt=field_per_volt, domain_size=domain_size,
                  in_plane_fraction=in_plane_fraction, imprint=imprint,
                  defect_density=defect_density, defect_strength=defect_strength,
                  tip_sigma=tip_sigma, noise=noise, image_noise=image_noise,
                  steps_per_cycle=steps_per_cycle)

    rng = np.random.default_rng(seed)
    shape = (size, size)
    coeffs = LandauCoefficients(a1=-1.0, a2=0.5, a3=1.5, coupling=2.0)
    # initial pattern: c+/c- from the sign of one smooth field, a-domains where another is high
    zc = _smooth_noise(rng, shape, domain_size)
    za = _smooth_noise(rng, shape, domain_size)
    za_sign = _smooth_noise(rng, shape, domain_size)
    in_plane = za > np.quantile(za, 1 - in_plane_fraction) if in_plane_fraction > 0 else (
        np.zeros(shape, dtype=bool))
    P = np.zeros((2, *shape))
    P[0] = np.where(in_plane, 0.0, np.sign(zc))
    P[1] = np.where(in_plane, np.sign(za_sign), 0.0)
    P += 0.05 * rng.standard_normal(P.shape)
    P = landau_khalatnikov(P, 300, coeffs, dt=0.05)

    bias = imprint * _smooth_noise(rng, shape, 0.3 * size)
    point = np.zeros(shape)
    has = rng.random(shape) < defect_density
    point[has] = defect_strength * rng.standard_normal(has.sum())
    voltage = triangle_voltage(n_voltages, v_max)
    loops = _local_loops(P, bias + point, voltage, coeffs, tip_sigma, field_per_volt,
                         radius=2,
                         steps_per_point=max(1, round(steps_per_cycle / n_voltages)), dt=0.1,
                         n_cycles=2)
    loops += noise * rng.standard_normal(loops.shape)
    coercive = _coercive(loops, voltage)

    image = P[0] + image_noise * rng.standard_normal(shape)
    domains = _labels_tetragonal(P, 0.0)
    walls = domain_walls(domains, width=3)
    return HysteresisMap(
        image=image.astype(np.float32), loops=loops.reshape(size, size, -1).astype(np.float32),
        voltage=voltage, polarization=P.astype(np.float32), domains=domains, walls=walls,
        imprint=bias, defects=point,
        coercive_voltages=coercive.reshape(size, size, 2).astype(np.float32),
        coercive_field=uniaxial_coercive_field(coeffs.a1, coeffs.a2),
        field_per_volt=field_per_volt, params=params,
    )


# --------------------------------------------------------------------------- temperature


@dataclass
class TemperatureSeries(Series):
    """Domain images of one region heated through a diffuse first-order transition.

    Attributes:
        images: ``(n_T, H, W)`` float32 projected polarisation ``P . d`` (detector direction
            ``d`` at ``projection_angle`` from the row axis, so the four tetragonal variants
            appear at four distinct levels, about +-0.95 and +-0.32 of |P|), upsampled,
            blurred and noisy; arbitrary units. A scalar image: a rotation of the image does
            not turn one variant into another (their grey levels differ).
        temperatures: ``(n_T,)`` float64, kelvin.
        tc: the true transition temperature, kelvin: the median of ``local_tc`` (half of
            the region is polar at ``tc``).
        local_tc: ``(h, w)`` float64 transition temperature of every lattice site, kelvin.
        polarization: ``(n_T, 2, h, w)`` float32 true lattice polarisation.
        domains: ``(n_T, h, w)`` int true variant (0 +P0, 1 -P0, 2 +P1, 3 -P1; -1 where
            the lattice is paraelectric, ``|P|`` below half its value at Tc).
        walls: ``(n_T, H, W)`` bool true walls between polar variants at image resolution
            (polar-paraelectric boundaries are not walls).
        wall_density: ``(n_T,)`` fraction of the image's pixels on a wall.
        polar_fraction: ``(n_T,)`` fraction of the sites that are polar (``domains >= 0``).
        domain_size: ``(n_T,)`` correlation length of the domain pattern each temperature
            started from, sites (shrinks towards Tc, with independent scatter).
        variant_fractions: ``(n_T, 4)`` fraction of the polar sites in each variant.
        mean_abs_p: ``(n_T,)`` mean |P| of the lattice, reduced units.
        ordered: ``(n_T,)`` bool, ``temperatures < tc``.
        projection_angle: angle of ``d`` from the row axis, radians.
        upsample: pixels per site.
        params: the generator's arguments (``tc`` as drawn).
    """

    _length_of = "images"

    images: np.ndarray
    temperatures: np.ndarray
    tc: float
    local_tc: np.ndarray
    projection_angle: float
    polarization: np.ndarray
    domains: np.ndarray
    walls: np.ndarray
    wall_density: np.ndarray
    polar_fraction: np.ndarray
    domain_size: np.ndarray
    variant_fractions: np.ndarray
    mean_abs_p: np.ndarray
    ordered: np.ndarray
    upsample: int
    params: dict = field(default_factory=dict)


def _axis_polarization(a1, a2: float, a6: float) -> np.ndarray:
    """|P| of the axial minimum of ``a1 p^2 + a2 p^4 + a6 p^6`` (0 where none exists)."""
    a1 = np.asarray(a1, dtype=np.float64)
    disc = 4 * a2**2 - 12 * a6 * a1
    x = (-2 * a2 + np.sqrt(np.maximum(disc, 0.0))) / (6 * a6)
    return np.sqrt(np.where((disc > 0) & (x > 0), x, 0.0))


def _draw_tc(rng, temps: np.ndarray) -> float:
    """A transition temperature in the middle fifth of the range, off the grid: 10-40 % or
    60-90 % of the way through one grid step (never on a grid point or a midpoint)."""
    n = len(temps)
    lo = max(0, int(np.floor(0.4 * (n - 1))))
    hi = max(lo + 1, int(np.ceil(0.6 * (n - 1))))
    k = int(rng.integers(lo, min(hi, n - 1)))
    frac = rng.uniform(0.1, 0.4) + (0.5 if rng.random() < 0.5 else 0.0)
    return float(temps[k] + frac * (temps[k + 1] - temps[k]))


def _variant_pattern(rng, shape, length: float, bias: np.ndarray) -> np.ndarray:
    """``(h, w)`` variant 0-3 of a four-variant pattern of correlation ``length`` sites; the
    ``(2,)`` ``bias`` favours the variants it points to (0 +P0, 1 +P1, 2 -P0, 3 -P1)."""
    z0 = _smooth_noise(rng, shape, length) + bias[0]
    z1 = _smooth_noise(rng, shape, length) + bias[1]
    return np.mod(np.round(np.arctan2(z1, z0) / (np.pi / 2)), 4)


def temperature_series(n_temperatures: int = 19, size: int = 64, upsample_factor: int = 4,
                       seed: int = 0, t_min: float = 298.0, t_max: float = 478.0,
                       tc: float | None = None, tc_spread: float = 8.0,
                       tc_length: float = 6.0, domain_size: float = 4.0,
                       coarsening: float = 0.5, coarsening_range: float = 25.0,
                       domain_scatter: float = 0.4, variant_bias: float = 0.4,
                       fluctuation: float = 0.2, fluctuation_range: float = 6.0,
                       relax_steps: int = 300, defect_density: float = 0.03,
                       defect_strength: float = 0.1, blur: float = 1.0,
                       noise: float = 0.05) -> TemperatureSeries:
    """BaTiO3-like tetragonal domains of one region heated through a diffuse transition.

    Landau coefficients (reduced units) with a first-order transition, as in BaTiO3:
    ``a1 = 0.0175 (T - Tc_local) + 0.25``, ``a2 = -1``, ``a6 = 1`` (the ordered and the
    paraelectric states have equal free energy at the local Tc, where |P| jumps from 0.71
    to 0), ``a3 = 3`` (four 90-degree variants along the axes) and coupling 2. The local Tc
    varies over the region (strain and composition): ``Tc_local = tc + tc_spread * g``,
    ``g`` a smooth field of correlation ``tc_length`` sites with median 0, so the polar area
    shrinks over about ``+-2 tc_spread`` around ``tc`` and half the region is polar at ``tc``.

    Every temperature starts from the basin of its stable phase and relaxes for
    ``relax_steps`` (quasi-static, no thermal hysteresis): polar sites from a four-variant
    pattern, paraelectric sites from small noise. The morphology changes with temperature and
    between temperatures: the pattern's correlation length is
    ``domain_size * (1 + coarsening * exp(-(tc - T) / coarsening_range))`` (domains coarsen
    towards Tc, so the wall density falls) times an independent log-normal factor of spread
    ``domain_scatter`` per temperature (so the morphology is not a function of temperature:
    with the defaults the scatter dominates, and the size's rank correlation with T below Tc
    averages about 0.2 over seeds, from about -0.3 to 0.7 in one series), and a random bias
    of size up to ``variant_bias`` per temperature changes the variant fractions.
    Above its local Tc a site shows a frozen snapshot of polar fluctuations (correlation one
    site, amplitude ``fluctuation * 0.71 * exp(-(T - Tc_local) / fluctuation_range)``).

    Args:
        n_temperatures: number of temperatures, evenly spaced from ``t_min`` to ``t_max``.
        size: lattice sites per side.
        upsample_factor: pixels per site.
        seed: random seed.
        t_min, t_max: temperature range, kelvin.
        tc: transition temperature, kelvin; ``None`` (default) draws it from the seed in the
            middle fifth of the range, 10-40 % or 60-90 % of the way through a grid step.
        tc_spread: standard deviation of the local Tc, kelvin (0: a sharp transition).
        tc_length: correlation length of the local Tc, sites.
        domain_size: correlation length of the domain pattern far below Tc, sites.
        coarsening: relative growth of that length at Tc (0: no trend with temperature).
        coarsening_range: how far below Tc the growth reaches (its decay length), kelvin.
        domain_scatter: standard deviation of the log of the per-temperature size factor.
        variant_bias: largest per-temperature bias of the variant pattern (0: equal odds).
        fluctuation: amplitude of the polar fluctuations at the local Tc, in units of the
            jump 0.71 (0: none).
        fluctuation_range: decay of the fluctuations above the local Tc, kelvin.
        relax_steps: dynamics steps (dt = 0.03) per temperature.
        defect_density, defect_strength: fraction of sites with a random field and its
            standard deviation (reduced units).
        blur: Gaussian blur of the images, pixels.
        noise: standard deviation of the image noise, in units of the low-temperature |P|.

    Returns:
        :class:`TemperatureSeries`.
    """
    n_temperatures = check_int(n_temperatures, "n_temperatures", 2)
    size, u, seed = _lattice_args(size, upsample_factor, seed)
    t_min = check_float(t_min, "t_min", 0.0, low_open=True, hint="kelvin")
    t_max = check_float(t_max, "t_max", t_min, low_open=True, hint="kelvin, above t_min")
    if tc is not None:
        tc = check_float(tc, "tc", 0.0, low_open=True, hint="kelvin, or None to draw it")
    tc_spread = check_float(tc_spread, "tc_spread", 0.0, hint="kelvin")
    tc_length = check_float(tc_length, "tc_length", 0.5, hint="sites")
    domain_size = check_float(domain_size, "domain_size", 0.5, hint="sites")
    coarsening = check_float(coarsening, "coarsening", 0.0)
    coarsening_range = check_float(coarsening_range, "coarsening_range", 0.0, low_open=True,
                                   hint="kelvin")
    domain_scatter = check_float(domain_scatter, "domain_scatter", 0.0, 2.0)
    variant_bias = check_float(variant_bias, "variant_bias", 0.0, 3.0)
    fluctuation = check_float(fluctuation, "fluctuation", 0.0, 1.0)
    fluctuation_range = check_float(fluctuation_range, "fluctuation_range", 0.0,
                                    low_open=True, hint="kelvin")
    relax_steps = check_int(relax_steps, "relax_steps", 1)
    defect_density = check_float(defect_density, "defect_density", 0.0, 1.0)
    defect_strength = check_float(defect_strength, "defect_strength", 0.0)
    blur = check_float(blur, "blur", 0.0)
    noise = check_float(noise, "noise", 0.0)

    rng = np.random.default_rng(seed)
    temps = np.linspace(t_min, t_max, n_temperatures)
    if tc is None:
        tc = _draw_tc(rng, temps)
    params = dict(n_temperatures=n_temperatures, size=size, upsample_factor=u, seed=seed,
                  t_min=t_min, t_max=t_max, tc=tc, tc_spread=tc_spread, tc_length=tc_length,
                  domain_size=domain_size, coarsening=coarsening,
                  coarsening_range=coarsening_range, domain_scatter=domain_scatter,
                  variant_bias=variant_bias, fluctuation=fluctuation,
                  fluctuation_range=fluctuation_range, relax_steps=relax_steps,
                  defect_density=defect_density, defect_strength=defect_strength, blur=blur,
                  noise=noise)
    shape = (size, size)
    g = _smooth_noise(rng, shape, tc_length)
    local_tc = tc + tc_spread * (g - np.median(g))
    a2, a6, p_jump = -1.0, 1.0, float(np.sqrt(0.5))

    def landau_a1(temperature, t_c):
        """a1 at ``temperature`` for a transition at ``t_c``: both phases equal there."""
        return 0.0175 * (temperature - t_c) + a2**2 / (4 * a6)

    a1 = landau_a1(temps[:, None, None], local_tc)  # (n_T, h, w)
    polar = temps[:, None, None] < local_tc

    sizes = domain_size * (1 + coarsening * np.exp(-np.maximum(tc - temps, 0.0)
                                                    / coarsening_range))
    sizes = np.maximum(sizes * np.exp(domain_scatter * rng.standard_normal(n_temperatures)),
                       0.5)
    bias_size = variant_bias * np.sqrt(rng.random(n_temperatures))
    bias_angle = rng.uniform(0, 2 * np.pi, n_temperatures)
    biases = bias_size[:, None] * np.stack([np.cos(bias_angle), np.sin(bias_angle)], axis=1)
    variant = np.stack([_variant_pattern(rng, shape, sizes[k], biases[k])
                        for k in range(n_temperatures)])
    P = np.stack([np.cos(variant * np.pi / 2), np.sin(variant * np.pi / 2)], axis=1)
    p_start = np.where(polar, _axis_polarization(a1, a2, a6), 0.05)  # |P| of the start
    P = P * p_start[:, None] + 0.02 * rng.standard_normal(P.shape)
    defects = np.zeros((2, *shape))
    has = rng.random(shape) < defect_density
    defects[:, has] = defect_strength * rng.standard_normal((2, has.sum()))
    coeffs = LandauCoefficients(a1=a1, a2=a2, a3=3.0, a6=a6, coupling=2.0)
    P = landau_khalatnikov(P, relax_steps, coeffs, defects=defects, dt=0.03)
    # frozen snapshot of polar fluctuations above the local Tc (short-range, decaying)
    above = np.maximum(temps[:, None, None] - local_tc, 0.0)
    amp = np.where(polar, 0.0, fluctuation * p_jump * np.exp(-above / fluctuation_range))
    fl = np.stack([np.stack([_smooth_noise(rng, shape, 1.0) for _ in range(2)])
                   for _ in range(n_temperatures)])
    P = P + amp[:, None] * fl

    angle = float(np.arctan(1.0 / 3.0))  # levels cos, sin: 0.95 and 0.32, evenly spread
    proj = P[:, 0] * np.cos(angle) + P[:, 1] * np.sin(angle)
    images = _blur(upsample(proj, u), blur)
    scale = float(_axis_polarization(landau_a1(t_min, tc), a2, a6)) or 1.0
    images = images + noise * scale * rng.standard_normal(images.shape)

    mag = np.hypot(P[:, 0], P[:, 1])
    domains = np.where(mag >= 0.5 * p_jump, _labels_tetragonal(P, 0.0), -1)
    walls = domain_walls(_repeat(domains, u), width=u + 1)
    counts = np.stack([(domains == v).sum(axis=(1, 2)) for v in range(4)], axis=1)
    fractions = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    return TemperatureSeries(
        images=images.astype(np.float32), temperatures=temps, tc=float(tc), local_tc=local_tc,
        polarization=P.astype(np.float32), domains=domains, walls=walls,
        wall_density=walls.mean(axis=(1, 2)), polar_fraction=(domains >= 0).mean(axis=(1, 2)),
        domain_size=sizes, variant_fractions=fractions, mean_abs_p=mag.mean(axis=(1, 2)),
        ordered=temps < tc, projection_angle=angle, upsample=u, params=params,
    )
