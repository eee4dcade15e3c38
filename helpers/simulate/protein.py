"""HS-AFM movie of protein nanorods aligning on a crystalline substrate.

Rods (spherocylinders, ``rod_length`` x ``rod_width`` nm, ``height`` nm tall) do overdamped
Brownian translation (faster along their axis than across) and rotation in a periodic box
larger than the scanned field. Each rod is a chain of beads with a soft repulsion, so rods do
not overlap. An aligning interaction switches on over the movie: a nematic coupling
``J sin(2 (theta_j - theta_i))`` between rods closer than ``1.5 rod_length`` plus an
epitaxial torque ``h sin(2 (theta_0 - theta_i))`` towards a substrate direction ``theta_0``
(as on mica); both ramp up linearly over the first ``ramp`` fraction of the movie, so the rods
pass from an isotropic to an aligned (nematic) state.

Heterogeneous assemblies (``lengths=...``): every rod belongs to a shape class, a linear
assembly of one, two, three ... subunits with its own length (plus a fixed per-rod jitter), and
changes class by one subunit (gaining or losing one from the solution) with probability
``class_rate`` per frame, so shapes change along single-particle trajectories. A ``schedule``
of the aligning strength (knots spread evenly over the movie) replaces the ramp: ordering,
melting and re-ordering, with the Brownian rotation rising towards ``hot_rotation_deg`` where
the strength is low (a heating pulse), so the order parameter is not a monotonic function of
time.

Imaging: the height map (max over rods of a half-ellipse profile across each rod) is dilated
by a paraboloid tip of radius ``tip_radius`` (the AFM tip convolution: every pixel reports the
highest contact of the tip), then Gaussian noise and a random offset per scan line are added.

Orientations are radians, anticlockwise as displayed, modulo pi (a rod has 2-fold symmetry).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ._common import Series, check_float, check_int, check_seed, check_shape

__all__ = ["ProteinMovie", "protein_assembly_movie", "nematic_order"]


@dataclass
class ProteinMovie(Series):
    """A simulated HS-AFM movie of assembling rods with per-particle ground truth.

    Attributes:
        frames: ``(T, H, W)`` float32 height, nm.
        pixel_size: nm per pixel.
        centres: list of ``T`` arrays ``(N_t, 2)`` float64, ``(row, col)`` of every rod whose
            centre is in the frame, pixels.
        orientations: list of ``T`` arrays ``(N_t,)`` float64, long-axis angle in
            ``[0, pi)``, radians, anticlockwise as displayed.
        ids: list of ``T`` arrays ``(N_t,)`` int64 particle identities (the same rod keeps
            its id in every frame; rods enter and leave the field across its edges).
        order: ``(T,)`` nematic order parameter ``S = |mean exp(2 i theta)|`` of the rods in
            the frame (0 isotropic, 1 all parallel).
        coupling: ``(T,)`` aligning strength ``J`` at each frame (reduced units).
        substrate_angle: ``theta_0`` of the epitaxial torque, radians.
        params: the generator's arguments.
        shape_class: list of ``T`` arrays ``(N_t,)`` int64, shape class of every rod in the
            frame (index into ``params["lengths"]``; all 0 for identical rods).
        lengths: list of ``T`` arrays ``(N_t,)`` float64, length of every rod, nm (the true
            shape descriptor).
    """

    frames: np.ndarray
    pixel_size: float
    centres: list
    orientations: list
    ids: list
    order: np.ndarray
    coupling: np.ndarray
    substrate_angle: float
    params: dict = field(default_factory=dict)
    shape_class: list = field(default_factory=list)
    lengths: list = field(default_factory=list)


def nematic_order(theta) -> float:
    """``|mean exp(2 i theta)|`` of angles in radians (0 for none)."""
    theta = np.asarray(theta, dtype=np.float64)
    if theta.size == 0:
        return 0.0
    return float(np.abs(np.mean(np.exp(2j * theta))))


def _axis(theta):
    """Unit vector(s) along on-screen angle ``theta`` as ``(row, col)``."""
    return np.stack([-np.sin(theta), np.cos(theta)], axis=-1)


def _beads(pos, theta, offsets):
    """``(N * B, 2)`` bead positions for rods at ``pos`` (N, 2) with angles ``theta`` (N,);
    ``offsets`` ``(B,)`` nm along the axis, the same for every rod, or ``(N, B)`` per rod."""
    off = offsets[None, :, None] if offsets.ndim == 1 else offsets[:, :, None]
    return (pos[:, None, :] + off * _axis(theta)[:, None, :]).reshape(-1, 2)


def _wrap(d, box):
    return d - box * np.round(d / box)


def _place(n, box, length, width, offsets, rng):
    """Random sequential placement of non-overlapping rods in a periodic box (``offsets``
    ``(B,)`` for identical rods or ``(n, B)`` per rod, ``length`` the longest)."""
    pos = np.empty((0, 2))
    theta = np.empty(0)
    tries = 0
    while len(pos) < n:
        tries += 1
        if tries > 200 * n:
            raise ValueError(f"could not place {n} rods without overlap; lower the coverage")
        p = rng.uniform(0, 1, 2) * box
        t = rng.uniform(0, np.pi)
        if len(pos):
            near = np.linalg.norm(_wrap(pos - p, box), axis=1) < length + width
            if near.any():
                per_rod = offsets.ndim == 2
                mine = _beads(p[None], np.array([t]),
                              offsets[len(pos)][None] if per_rod else offsets)
                theirs = _beads(pos[near], theta[near],
                                offsets[:len(pos)][near] if per_rod else offsets)
                d = _wrap(mine[:, None, :] - theirs[None], box)
                if np.min(np.linalg.norm(d, axis=-1)) < 1.05 * width:
                    continue
        pos = np.vstack([pos, p])
        theta = np.append(theta, t)
    return pos, theta


def _forces(pos, theta, box, width, offsets, stiffness):
    """Soft bead repulsion: force on each rod (N, 2) and torque (N,), anticlockwise > 0."""
    n, b = len(pos), offsets.shape[-1]
    beads = np.mod(_beads(pos, theta, offsets), box)
    tree = cKDTree(beads, boxsize=box)
    pairs = tree.query_pairs(width, output_type="ndarray")
    force = np.zeros((n, 2))
    torque = np.zeros(n)
    if len(pairs) == 0:
        return force, torque
    i, j = pairs[:, 0], pairs[:, 1]
    ri, rj = i // b, j // b
    keep = ri != rj
    i, j, ri, rj = i[keep], j[keep], ri[keep], rj[keep]
    d = _wrap(beads[i] - beads[j], box)
    dist = np.maximum(np.linalg.norm(d, axis=1), 1e-9)
    f = (stiffness * (width - dist) / dist)[:, None] * d  # pushes bead i away from j
    np.add.at(force, ri, f)
    np.add.at(force, rj, -f)
    # torque = lever x force in on-screen coordinates (x = col, y = -row)
    for beads_idx, rod, sign in ((i, ri, 1.0), (j, rj, -1.0)):
        along = offsets[beads_idx % b] if offsets.ndim == 1 else offsets[rod, beads_idx % b]
        lever = along[:, None] * _axis(theta[rod])
        fx, fy = sign * f[:, 1], -sign * f[:, 0]
        lx, ly = lever[:, 1], -lever[:, 0]
        np.add.at(torque, rod, lx * fy - ly * fx)
    return force, torque


def _align_torque(pos, theta, box, radius, coupling, field, theta0):
    tree = cKDTree(np.mod(pos, box), boxsize=box)
    pairs = tree.query_pairs(radius, output_type="ndarray")
    torque = field * np.sin(2 * (theta0 - theta))
    if len(pairs) and coupling:
        i, j = pairs[:, 0], pairs[:, 1]
        s = coupling * np.sin(2 * (theta[j] - theta[i]))
        np.add.at(torque, i, s)
        np.add.at(torque, j, -s)
    return torque


def _class_rods(class_len, cls, jitter, width, unit):
    """Length (nm) of every rod, its class length ``class_len[cls]`` plus its fixed ``jitter``
    (at least ``1.05 width``), and ``(N, B)`` bead offsets along its axis (nm), the ``(B,)``
    ``unit`` offsets (from -0.5 to 0.5) stretched over its axis segment."""
    rod_len = np.maximum(class_len[cls] + jitter, 1.05 * width)
    return rod_len, unit[None, :] * (rod_len - width)[:, None]


def _render(pos, theta, shape, pixel_size, length, width, height, origin):
    """Height map (nm) of rods; positions in nm, ``origin`` the nm position of pixel (0, 0);
    ``length`` nm, one for all rods or ``(N,)`` per rod."""
    h, w = shape
    img = np.zeros(shape)
    rad = width / 2.0
    lengths = np.broadcast_to(np.asarray(length, dtype=np.float64), (len(pos),))
    px = (pos - origin) / pixel_size
    for (r0, c0), t, length_i in zip(px, theta, lengths):
        half = length_i / 2.0 - rad  # half length of the axis segment
        reach = int(np.ceil((length_i / 2.0 + 1.0) / pixel_size))
        rc, cc = int(round(r0)), int(round(c0))
        rs = slice(max(rc - reach, 0), min(rc + reach + 1, h))
        cs = slice(max(cc - reach, 0), min(cc + reach + 1, w))
        if rs.start >= rs.stop or cs.start >= cs.stop:
            continue
        rr, cc_ = np.mgrid[rs, cs]
        dy, dx = (rr - r0) * pixel_size, (cc_ - c0) * pixel_size
        ax = _axis(t)
        along = dy * ax[0] + dx * ax[1]
        across2 = dy**2 + dx**2 - along**2
        beyond = np.maximum(np.abs(along) - half, 0.0)
        d2 = np.maximum(across2, 0.0) + beyond**2
        prof = height * np.sqrt(np.clip(1.0 - d2 / rad**2, 0.0, None))
        img[rs, cs] = np.maximum(img[rs, cs], prof)
    return img


def _tip_structure(tip_radius, pixel_size, depth):
    r = int(np.ceil(np.sqrt(2 * tip_radius * depth) / pixel_size))
    y, x = np.mgrid[-r:r + 1, -r:r + 1] * pixel_size
    return -(x**2 + y**2) / (2 * tip_radius)


def protein_assembly_movie(n_frames: int = 30, size=256, seed: int = 0,
                           pixel_size: float = 0.5, coverage: float = 0.22,
                           rod_length: float = 12.0, rod_width: float = 3.5,
                           height: float = 2.5, coupling: float = 0.3,
                           substrate_field: float = 0.2, ramp: float = 0.7,
                           step_nm: float = 0.6, rotation_deg: float = 10.0,
                           tip_radius: float = 2.0, noise: float = 0.08,
                           line_noise: float = 0.05, lengths=None, class_rate: float = 0.0,
                           length_jitter: float = 0.0, schedule=None,
                           hot_rotation_deg: float | None = None) -> ProteinMovie:
    """Simulate an HS-AFM movie of rods passing from disorder to alignment.

    Args:
        n_frames: number of frames ``T``.
        size: frame size, ``n`` or ``(H, W)`` pixels.
        seed: random seed; the same seed gives the same movie.
        pixel_size: nm per pixel.
        coverage: area fraction covered by rods.
        rod_length, rod_width, height: rod geometry, nm (``rod_length`` is ignored when
            ``lengths`` is given).
        coupling: final nematic coupling ``J`` between neighbouring rods: the rotation (radians
            per frame) that one neighbour at 45 degrees imposes.
        substrate_field: final epitaxial torque ``h`` towards the substrate direction, in
            the same units.
        ramp: fraction of the movie over which ``J`` and ``h`` grow from 0 to their final
            values.
        step_nm: root-mean-square Brownian displacement of a free rod per frame, nm (along
            the axis; 0.7 x across). Keep it well below the rod spacing so particles can be
            linked across frames.
        rotation_deg: root-mean-square Brownian rotation per frame, degrees.
        tip_radius: radius of curvature of the paraboloid tip, nm.
        noise: Gaussian height noise, nm.
        line_noise: standard deviation of a random offset of each scan line, nm.
        lengths: ``None`` (all rods ``rod_length``) or the lengths (nm, increasing) of the
            shape classes, e.g. ``(8, 12, 16)`` for assemblies of one, two and three subunits;
            rods start in classes drawn uniformly.
        class_rate: probability per frame that a rod gains or loses one subunit (moves to a
            neighbouring class; at the ends of the list, to the only neighbour).
        length_jitter: standard deviation of a fixed per-rod deviation from its class length,
            nm (so the shape descriptor is continuous within a class).
        schedule: ``None`` (the linear ``ramp``) or the aligning strength, as a fraction of
            ``coupling`` and ``substrate_field`` in ``[0, 1]``, at ``K >= 2`` knots spread
            evenly from the first to the last frame, linearly interpolated between them.
        hot_rotation_deg: with ``schedule``, the Brownian rotation per frame (degrees) where
            the strength is 0; it falls linearly to ``rotation_deg`` at strength 1. ``None``:
            ``rotation_deg`` throughout.

    Returns:
        :class:`ProteinMovie`.
    """
    n_frames = check_int(n_frames, "n_frames", 1)
    h, w = check_shape(size, "size", 32)
    seed = check_seed(seed)
    pixel_size = check_float(pixel_size, "pixel_size", 0.0, low_open=True, hint="nm per pixel")
    coverage = check_float(coverage, "coverage", 0.0, 0.45, low_open=True,
                           hint="area fraction; above 0.45 rods cannot be placed at random")
    rod_width = check_float(rod_width, "rod_width", 0.0, low_open=True, hint="nm")
    if lengths is not None:
        class_len = np.asarray(lengths, dtype=np.float64)
        if class_len.ndim != 1 or len(class_len) < 1 or not np.all(np.isfinite(class_len)):
            raise ValueError("lengths must be a 1D sequence of finite class lengths in nm, "
                             f"e.g. (8, 12, 16); got {lengths!r}")
        if np.any(np.diff(class_len) <= 0) or class_len[0] <= rod_width:
            raise ValueError(f"lengths must increase and exceed rod_width ({rod_width} nm); "
                             f"got {class_len.tolist()}")
        rod_length = float(class_len.max())
    rod_length = check_float(rod_length, "rod_length", 0.0, low_open=True, hint="nm")
    if rod_width > rod_length:
        raise ValueError(f"rod_width must be at most the rod length ({rod_length} nm), got "
                         f"{rod_width}; use thinner rods or longer ones")
    height = check_float(height, "height", 0.0, low_open=True, hint="nm")
    coupling = check_float(coupling, "coupling", 0.0)
    substrate_field = check_float(substrate_field, "substrate_field", 0.0)
    ramp = check_float(ramp, "ramp", 0.0, 1.0, low_open=True)
    step_nm = check_float(step_nm, "step_nm", 0.0)
    rotation_deg = check_float(rotation_deg, "rotation_deg", 0.0, 90.0)
    tip_radius = check_float(tip_radius, "tip_radius", 0.0, low_open=True, hint="nm")
    noise = check_float(noise, "noise", 0.0)
    line_noise = check_float(line_noise, "line_noise", 0.0)
    class_rate = check_float(class_rate, "class_rate", 0.0, 1.0,
                             hint="probability per frame")
    length_jitter = check_float(length_jitter, "length_jitter", 0.0, hint="nm")
    if (class_rate > 0 or length_jitter > 0) and lengths is None:
        raise ValueError("class_rate and length_jitter need shape classes: pass lengths, "
                         "e.g. lengths=(8, 12, 16)")
    if schedule is not None:
        knots = np.asarray(schedule, dtype=np.float64)
        if knots.ndim != 1 or len(knots) < 2 or not np.all((knots >= 0) & (knots <= 1)):
            raise ValueError("schedule must be a 1D sequence of at least 2 strengths in [0, 1] "
                             f"(fractions of the final coupling), got {schedule!r}")
    if hot_rotation_deg is not None:
        if schedule is None:
            raise ValueError("hot_rotation_deg needs a schedule (the strength it follows); "
                             "pass schedule=... or leave hot_rotation_deg=None")
        hot_rotation_deg = check_float(hot_rotation_deg, "hot_rotation_deg", 0.0, 90.0)
    if min(h, w) * pixel_size < 2 * rod_length:
        raise ValueError(f"the field of view ({h * pixel_size:.0f} x {w * pixel_size:.0f} nm) "
                         f"must be at least twice rod_length ({rod_length} nm); enlarge size "
                         "or pixel_size")
    params = dict(n_frames=n_frames, size=(h, w), seed=seed, pixel_size=pixel_size,
                  coverage=coverage, rod_length=rod_length, rod_width=rod_width, height=height,
                  coupling=coupling, substrate_field=substrate_field, ramp=ramp,
                  step_nm=step_nm, rotation_deg=rotation_deg, tip_radius=tip_radius,
                  noise=noise, line_noise=line_noise)
    if lengths is not None:
        params.update(lengths=tuple(class_len.tolist()), class_rate=class_rate,
                      length_jitter=length_jitter)
    if schedule is not None:
        params.update(schedule=tuple(knots.tolist()), hot_rotation_deg=hot_rotation_deg)

    rng = np.random.default_rng(seed)
    margin = rod_length
    view = np.array([h, w], dtype=np.float64) * pixel_size
    box = view + 2 * margin
    n_beads = max(2, int(np.ceil(rod_length / (0.5 * rod_width))))
    unit = np.linspace(-0.5, 0.5, n_beads)
    if lengths is None:
        rod_area = rod_width * (rod_length - rod_width) + np.pi * rod_width**2 / 4
        n_rods = max(1, int(round(coverage * box.prod() / rod_area)))
        offsets = np.linspace(-(rod_length - rod_width) / 2, (rod_length - rod_width) / 2,
                              n_beads)
        cls = np.zeros(n_rods, dtype=np.int64)
        rod_len = np.full(n_rods, rod_length)
    else:
        mean_area = rod_width * (class_len.mean() - rod_width) + np.pi * rod_width**2 / 4
        n_rods = max(1, int(round(coverage * box.prod() / mean_area)))
        cls = rng.integers(0, len(class_len), n_rods)
        jitter = np.clip(length_jitter * rng.standard_normal(n_rods), -1.5 * length_jitter,
                         1.5 * length_jitter)
        rod_len, offsets = _class_rods(class_len, cls, jitter, rod_width, unit)
    pos, theta = _place(n_rods, box, rod_length, rod_width, offsets, rng)
    theta0 = float(rng.uniform(0, np.pi))

    n_sub = 10
    d_par = (step_nm**2) / (2.0 * n_sub)  # per sub-step: <dx^2> = 2 D
    d_perp = 0.5 * d_par
    d_rot = np.deg2rad(rotation_deg) ** 2 / (2.0 * n_sub)
    mobility = d_par  # force (nm per sub-step per unit stiffness) ~ D (Einstein)
    stiffness = 40.0
    ramp_frames = max(ramp * (n_frames - 1), 1e-9)
    radius = 1.5 * (rod_length if lengths is None else float(class_len.mean()))
    if schedule is not None:
        levels = np.interp(np.arange(n_frames), np.linspace(0, max(n_frames - 1, 1), len(knots)),
                           knots)

    tip = _tip_structure(tip_radius, pixel_size, height)
    frames = np.empty((n_frames, h, w), dtype=np.float32)
    out = {"centres": [], "orientations": [], "ids": [], "shape_class": [], "lengths": []}
    order = np.zeros(n_frames)
    strength = np.zeros(n_frames)
    for t in range(n_frames):
        if schedule is not None:
            level = float(levels[t])
        else:
            level = min(1.0, t / ramp_frames) if n_frames > 1 else 1.0
        strength[t] = coupling * level
        if t > 0 and lengths is not None and class_rate > 0:
            # gain or lose one subunit: a class step of +-1 (the only one at the ends)
            change = rng.random(n_rods) < class_rate
            step = np.where(rng.random(n_rods) < 0.5, -1, 1)
            step[cls == 0] = 1
            step[cls == len(class_len) - 1] = -1
            cls = np.where(change, np.clip(cls + step, 0, len(class_len) - 1), cls)
            rod_len, offsets = _class_rods(class_len, cls, jitter, rod_width, unit)
        if t > 0:
            drag = rod_len**2 / 12.0  # rotational drag of each rod ~ length^2
            d_rot_t = d_rot
            if hot_rotation_deg is not None:
                rot = hot_rotation_deg + (rotation_deg - hot_rotation_deg) * level
                d_rot_t = np.deg2rad(rot) ** 2 / (2.0 * n_sub)
            for _ in range(n_sub):
                force, torque = _forces(pos, theta, box, rod_width, offsets, stiffness)
                align = _align_torque(pos, theta, box, radius, coupling * level / n_sub,
                                      substrate_field * level / n_sub, theta0)
                ax = _axis(theta)
                f_par = np.sum(force * ax, axis=1)
                f_perp = force - f_par[:, None] * ax
                drift = mobility * (f_par[:, None] * ax + 0.5 * f_perp)
                perp = np.stack([ax[:, 1], -ax[:, 0]], axis=1)
                kick = (np.sqrt(2 * d_par) * rng.standard_normal(len(pos)))[:, None] * ax + (
                    np.sqrt(2 * d_perp) * rng.standard_normal(len(pos)))[:, None] * perp
                pos = np.mod(pos + np.clip(drift, -0.5, 0.5) + kick, box)
                rot_drift = np.clip(mobility * torque / drag, -0.1, 0.1)
                theta = theta + rot_drift + align + np.sqrt(2 * d_rot_t) * rng.standard_normal(
                    len(pos))
        theta = np.mod(theta, np.pi)

        # image: the field of view is [margin, margin + view] of the periodic box
        rel = pos - margin
        shifts = [np.array([a, b]) for a in (-box[0], 0, box[0]) for b in (-box[1], 0, box[1])]
        imgs_pos = np.concatenate([rel + s for s in shifts])
        imgs_theta = np.tile(theta, len(shifts))
        near = np.all((imgs_pos > -rod_length) & (imgs_pos < view + rod_length), axis=1)
        surface = _render(imgs_pos[near], imgs_theta[near], (h, w), pixel_size,
                          np.tile(rod_len, len(shifts))[near], rod_width, height,
                          origin=np.zeros(2))
        topo = ndimage.grey_dilation(surface, structure=tip, mode="nearest")
        topo += noise * rng.standard_normal((h, w))
        topo += line_noise * rng.standard_normal((h, 1))
        frames[t] = topo

        centre_px = rel / pixel_size
        inside = np.all((centre_px >= -0.5) & (centre_px < np.array([h, w]) - 0.5), axis=1)
        out["centres"].append(centre_px[inside])
        out["orientations"].append(theta[inside].copy())
        out["ids"].append(np.flatnonzero(inside).astype(np.int64))
        out["shape_class"].append(cls[inside].copy())
        out["lengths"].append(rod_len[inside].copy())
        order[t] = nematic_order(theta[inside])

    return ProteinMovie(frames=frames, pixel_size=pixel_size, centres=out["centres"],
                        orientations=out["orientations"], ids=out["ids"], order=order,
                        coupling=strength, substrate_angle=theta0, params=params,
                        shape_class=out["shape_class"], lengths=out["lengths"])
