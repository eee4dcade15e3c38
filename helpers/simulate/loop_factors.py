"""A domain image and a hysteresis loop at every site, each loop set by several local factors.

Where :func:`~helpers.simulate.hysteresis_map` runs the lattice dynamics under the tip (so the
loop depends on the local configuration in ways that are hard to name), this generator writes
each loop from a phenomenological switching model whose parameters are set by named local
factors, each with its own effect on the loop, so that how many of them a model captures can be
scored against ground truth:

============================  ===========================================================
factor (``factors[name]``)    effect on the loop
============================  ===========================================================
``wall_distance`` (sites)     coercive voltage: lowered near a wall (wall-assisted
                              nucleation), ``Vc = Vc0 (1 - 0.7 exp(-d / 2))``
``wall_curvature`` (1/site)   imprint: the loop shifts by ``curvature_shift * kappa``
                              volts (signed: negative where the site's domain bulges)
``domain_size`` (sites)       amplitude: ``A = 1 - 0.8 exp(-chord / 10)`` (``chord``: the
                              mean row and column chord of the domain through the site)
``pinning_density``           switching width (branch slope): ``w = w0 (1 + 6 rho)``
============================  ===========================================================

plus the polarity of the site (c+ or c-), which sets only the first leg of the loop (the
state before the first switching), and a hidden smooth imprint field that no image shows. The
pinning defects are imaged as dark points, so all four factors are visible in the image, each
to its own degree (the domain size only where the domain is smaller than the patch).

The domain pattern is the sign of a smooth random field whose correlation length itself
varies smoothly over the map, so the local domain size varies independently of the other
draws; the pinning defects are drawn from an independent smooth density field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ._common import check_float, check_int, check_seed
from .ferroelectric import _coercive, _smooth_noise, domain_walls, triangle_voltage

__all__ = ["LOOP_FACTOR_NAMES", "LoopFactorMap", "loop_factor_map"]

LOOP_FACTOR_NAMES = ("wall_distance", "wall_curvature", "domain_size", "pinning_density")


@dataclass
class LoopFactorMap:
    """A domain image, a loop at every site and the local factors that set each loop.

    Attributes:
        image: ``(H, W)`` float32 piezoresponse image (about +1 in c+ domains, -1 in c-,
            dark points at pinning defects, tip-blurred walls), noisy; arbitrary units.
        loops: ``(H, W, L)`` float32 piezoresponse loop at every site, noisy.
        voltage: ``(L,)`` float64 tip voltage of each loop point, volts
            (0 -> +V_max -> -V_max -> 0).
        first_leg: ``(L,)`` bool, the points of the first leg (0 -> +V_max), the only part
            of the loop that depends on the as-imaged polarity.
        domains: ``(H, W)`` int true variant: 0 c+, 1 c-.
        walls: ``(H, W)`` bool true domain walls (sites whose 3x3 neighbourhood holds both).
        defects: ``(H, W)`` bool true pinning-defect sites.
        factors: name -> ``(H, W)`` float64 true local factor (``LOOP_FACTOR_NAMES``; units
            in the module's table).
        loop_params: name -> ``(H, W)`` float64 true loop parameters: ``coercive`` (V, the
            half-width of the loop), ``shift`` (V, imprint incl. the hidden field),
            ``amplitude`` (a.u.), ``width`` (V, of the switching branches).
        hidden_imprint: ``(H, W)`` float64 the part of ``shift`` no image shows, volts.
        coercive_voltages: ``(H, W, 2)`` float32 measured down- and up-switching voltages
            (where the branches of the closed cycle, the loop with its first leg replaced by
            the steady one, cross its mid-level), volts.
        params: the generator's arguments.
    """

    image: np.ndarray
    loops: np.ndarray
    voltage: np.ndarray
    first_leg: np.ndarray
    domains: np.ndarray
    walls: np.ndarray
    defects: np.ndarray
    factors: dict
    loop_params: dict
    hidden_imprint: np.ndarray
    coercive_voltages: np.ndarray
    params: dict = field(default_factory=dict)


def _tiled(a: np.ndarray) -> np.ndarray:
    """``(H, W)`` -> ``(3H, 3W)`` periodic copies, so distances and labels wrap around."""
    return np.tile(a, (3, 3))


def _centre(a: np.ndarray, shape) -> np.ndarray:
    h, w = shape
    return a[h:2 * h, w:2 * w]


def _wall_distance_and_nearest(up: np.ndarray):
    """Distance (sites) from every site to the nearest wall (half a site beyond the nearest
    site of the other polarity), and that site's (row, col) index, periodic."""
    shape = up.shape
    t = _tiled(up)
    d_up, i_up = ndimage.distance_transform_edt(t, return_indices=True)  # to nearest c-
    d_dn, i_dn = ndimage.distance_transform_edt(~t, return_indices=True)  # to nearest c+
    d = np.where(t, d_up, d_dn)
    idx = np.where(t[None], i_up, i_dn)
    rows = np.mod(_centre(idx[0], shape), shape[0])
    cols = np.mod(_centre(idx[1], shape), shape[1])
    return _centre(d, shape) - 0.5, rows, cols


def _level_curvature(phi: np.ndarray) -> np.ndarray:
    """Curvature ``div(grad phi / |grad phi|)`` of the level lines of a periodic field."""
    gy = 0.5 * (np.roll(phi, -1, 0) - np.roll(phi, 1, 0))
    gx = 0.5 * (np.roll(phi, -1, 1) - np.roll(phi, 1, 1))
    norm = np.hypot(gx, gy) + 1e-9
    nx, ny = gx / norm, gy / norm
    return (0.5 * (np.roll(nx, -1, 1) - np.roll(nx, 1, 1))
            + 0.5 * (np.roll(ny, -1, 0) - np.roll(ny, 1, 0)))


def _chord_length(up: np.ndarray) -> np.ndarray:
    """Local domain size: the mean of the horizontal and vertical chord lengths (sites) of
    the domain through each site, periodic, each capped at the map's side."""
    shape = up.shape
    out = np.zeros(shape)
    for structure in (np.array([[0, 0, 0], [1, 1, 1], [0, 0, 0]]),
                      np.array([[0, 1, 0], [0, 1, 0], [0, 1, 0]])):
        for mask in (up, ~up):
            lab, _ = ndimage.label(_tiled(mask), structure=structure)
            counts = np.bincount(lab.ravel())
            runs = np.minimum(counts[_centre(lab, shape)], shape[0])
            out += np.where(mask, 0.5 * runs, 0.0)
    return out


def _branches(v, amplitude, coercive, shift, width):
    """Descending (upper) and ascending (lower) switching branches at voltages ``v``."""
    upper = amplitude * np.tanh((v - shift + coercive) / width)
    lower = amplitude * np.tanh((v - shift - coercive) / width)
    return upper, lower


def loop_factor_map(size: int = 60, n_voltages: int = 64, seed: int = 0, v_max: float = 10.0,
                    domain_size: float = 3.0, coercive: float = 3.5,
                    curvature_shift: float = 3.0, width: float = 0.3,
                    defect_density: float = 0.12, hidden_imprint: float = 0.15,
                    noise: float = 0.03, image_noise: float = 0.05) -> LoopFactorMap:
    """A c+/c- domain image with a switching loop at every site set by four local factors.

    Loop model (per site, all factors as in the module's table): the ascending branch
    ``A tanh((V - s - Vc) / w)``, the descending one ``A tanh((V - s + Vc) / w)``; the first
    leg (0 -> +V_max) follows the descending branch at c+ sites (already up) and the ascending
    one at c- sites; the rest of the cycle is the same for both polarities.

    Args:
        size: sites per side (image and loop map are ``size x size``; >= 12).
        n_voltages: points per loop ``L`` (>= 8, a multiple of 4 keeps the legs equal).
        seed: random seed.
        v_max: amplitude of the triangular voltage cycle, volts.
        domain_size: mean correlation length of the domain pattern, sites (the local value
            varies from about 0.6 to 1.6 times this over the map).
        coercive: coercive voltage ``Vc0`` far from walls, volts.
        curvature_shift: imprint per unit wall curvature, volts * site.
        width: switching width ``w0`` without pinning, volts.
        defect_density: mean fraction of sites that are pinning defects.
        hidden_imprint: standard deviation of the hidden smooth imprint, volts.
        noise: standard deviation of the loop measurement noise.
        image_noise: standard deviation of the image noise.

    Returns:
        :class:`LoopFactorMap`.
    """
    size = check_int(size, "size", 12, "sites per side; 8x8 patches need room")
    n_voltages, seed = check_int(n_voltages, "n_voltages", 8), check_seed(seed)
    positive = {"v_max": v_max, "coercive": coercive, "width": width}  # volts, > 0
    v_max, coercive, width = (check_float(value, name, 0.0, low_open=True, hint="volts")
                              for name, value in positive.items())
    non_negative = {"curvature_shift": curvature_shift, "hidden_imprint": hidden_imprint,
                    "noise": noise, "image_noise": image_noise}
    curvature_shift, hidden_imprint, noise, image_noise = (
        check_float(value, name, 0.0) for name, value in non_negative.items())
    domain_size = check_float(domain_size, "domain_size", 0.5, hint="sites")
    defect_density = check_float(defect_density, "defect_density", 0.0, 0.5)
    # the largest switching voltage (coercive + imprint) plus two of the widest branch
    # widths must stay below v_max, so that every loop saturates and the first leg erases
    # the as-imaged state
    reach = coercive + 0.5 * curvature_shift + 3 * hidden_imprint + 2 * 7 * width
    if reach >= v_max:
        raise ValueError(
            f"v_max = {v_max} V does not saturate the loops (coercive + curvature_shift / 2 + "
            f"3 hidden_imprint + 14 width = {reach:.2f} V): raise v_max or lower those "
            "parameters")
    params = dict(size=size, n_voltages=n_voltages, seed=seed, v_max=v_max,
                  domain_size=domain_size, coercive=coercive, curvature_shift=curvature_shift,
                  width=width, defect_density=defect_density, hidden_imprint=hidden_imprint,
                  noise=noise, image_noise=image_noise)

    rng = np.random.default_rng(seed)
    shape = (size, size)
    # domains: a fine and a coarse pattern mixed by a smooth weight -> local size varies
    fine = _smooth_noise(rng, shape, 0.6 * domain_size)
    coarse = _smooth_noise(rng, shape, 1.6 * domain_size)
    mix = 1.0 / (1.0 + np.exp(-3.0 * _smooth_noise(rng, shape, 0.2 * size)))
    up = (mix * fine + (1 - mix) * coarse) > 0
    # pinning defects from an independent smooth density field
    density = defect_density * 2.0 / (1.0 + np.exp(-1.5 * _smooth_noise(rng, shape, 0.12 * size)))
    defects = rng.random(shape) < density
    imprint_field = hidden_imprint * _smooth_noise(rng, shape, 0.3 * size)

    sign = np.where(up, 1.0, -1.0)
    dist, near_r, near_c = _wall_distance_and_nearest(up)
    phi = ndimage.gaussian_filter(sign, 1.5, mode="wrap")
    # curvature of the nearest wall, seen from the site: negative where its domain bulges
    curvature = np.clip(sign * _level_curvature(phi)[near_r, near_c], -0.5, 0.5)
    chord = _chord_length(up)
    pin = ndimage.gaussian_filter(defects.astype(np.float64), 1.0, mode="wrap")
    pin = pin / max(float(pin.max()), 1e-12)

    vc = coercive * (1.0 - 0.7 * np.exp(-dist / 2.0))
    shift = curvature_shift * curvature + imprint_field
    amp = 1.0 - 0.8 * np.exp(-chord / 10.0)
    w = width * (1.0 + 6.0 * pin)

    voltage = triangle_voltage(n_voltages, v_max)
    first_leg = np.arange(n_voltages) < np.argmax(voltage)  # 0 -> +V_max, before the turn
    first_leg[np.argmax(voltage)] = True
    rising = np.diff(np.append(voltage, voltage[0])) > 0  # the branch each point lies on
    v = voltage[None, None, :]
    upper, lower = _branches(v, amp[..., None], vc[..., None], shift[..., None], w[..., None])
    meas_noise = noise * rng.standard_normal(upper.shape)
    steady = np.where(rising[None, None, :], lower, upper) + meas_noise  # a closed cycle
    # first leg: c+ sites are already up (upper branch), c- sites switch on the lower one
    loops = steady.copy()
    loops[..., first_leg] = (np.where(up[..., None], upper, lower) + meas_noise)[..., first_leg]

    blurred = ndimage.gaussian_filter(sign, 0.6, mode="wrap")
    image = blurred * np.where(defects, 0.35, 1.0) + image_noise * rng.standard_normal(shape)
    domains = np.where(up, 0, 1)
    coercive_v = _coercive(steady.reshape(-1, n_voltages), voltage).reshape(size, size, 2)
    return LoopFactorMap(
        image=image.astype(np.float32), loops=loops.astype(np.float32), voltage=voltage,
        first_leg=first_leg, domains=domains, walls=domain_walls(domains, width=3),
        defects=defects,
        factors={"wall_distance": dist, "wall_curvature": curvature,
                 "domain_size": chord, "pinning_density": pin},
        loop_params={"coercive": vc, "shift": shift, "amplitude": amp, "width": w},
        hidden_imprint=imprint_field, coercive_voltages=coercive_v.astype(np.float32),
        params=params,
    )
