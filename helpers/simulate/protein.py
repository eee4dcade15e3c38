"""HS-AFM movie of protein nanorods aligning on a crystalline substrate.

Rods (spherocylinders, ``rod_length`` x ``rod_width`` nm, ``height`` nm tall) do overdamped
Brownian translation (faster along their axis than across) and rotation in a periodic box
larger than the scanned field. Each rod is a chain of beads with a soft repulsion, so rods do
not overlap. An aligning interaction switches on over the movie: a nematic coupling
``J sin(2 (theta_j - theta_i))`` between rods closer than ``1.5 rod_length`` plus an
epitaxial torque ``h sin(2 (theta_0 - theta_i))`` towards a substrate direction ``theta_0``
(as on mica); both ramp up linearly over the first ``ramp`` fraction of the movie, so the rods
pass from an isotropic to an aligned (nematic) state.

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
    """``(N * B, 2)`` bead positions for rods at ``pos`` (N, 2) with angles ``theta`` (N,)."""
    return (pos[:, None, :] + offsets[None, :, None] * _axis(theta)[:, None, :]).reshape(-1, 2)


def _wrap(d, box):
    return d - box * np.round(d / box)


def _place(n, box, length, width, offsets, rng):
    """Random sequential placement of non-overlapping rods in a periodic box."""
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
                mine = _beads(p[None], np.array([t]), offsets)
                theirs = _beads(pos[near], theta[near], offsets)
                d = _wrap(mine[:, None, :] - theirs[None], box)
                if np.min(np.linalg.norm(d, axis=-1)) < 1.05 * width:
                    continue
        pos = np.vstack([pos, p])
        theta = np.append(theta, t)
    return pos, theta


def _forces(pos, theta, box, width, offsets, stiffness):
    """Soft bead repulsion: force on each rod (N, 2) and torque (N,), anticlockwise > 0."""
    n, b = len(pos), len(offsets)
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
        lever = offsets[beads_idx % b][:, None] * _axis(theta[rod])
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


def _render(pos, theta, shape, pixel_size, length, width, height, origin):
    """Height map (nm) of rods; positions in nm, ``origin`` the nm position of pixel (0, 0)."""
    h, w = shape
    img = np.zeros(shape)
    rad = width / 2.0
    half = length / 2.0 - rad  # half length of the axis segment
    reach = int(np.ceil((length / 2.0 + 1.0) / pixel_size))
    px = (pos - origin) / pixel_size
    for (r0, c0), t in zip(px, theta):
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
                           line_noise: float = 0.05) -> ProteinMovie:
    """Simulate an HS-AFM movie of rods passing from disorder to alignment.

    Args:
        n_frames: number of frames ``T``.
        size: frame size, ``n`` or ``(H, W)`` pixels.
        seed: random seed; the same seed gives the same movie.
        pixel_size: nm per pixel.
        coverage: area fraction covered by rods.
        rod_length, rod_width, height: rod geometry, nm.
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

    Returns:
        :class:`ProteinMovie`.
    """
    n_frames = check_int(n_frames, "n_frames", 1)
    h, w = check_shape(size, "size", 32)
    seed = check_seed(seed)
    pixel_size = check_float(pixel_size, "pixel_size", 0.0, low_open=True, hint="nm per pixel")
    coverage = check_float(coverage, "coverage", 0.0, 0.45, low_open=True,
                           hint="area fraction; above 0.45 rods cannot be placed at random")
    rod_length = check_float(rod_length, "rod_length", 0.0, low_open=True, hint="nm")
    rod_width = check_float(rod_width, "rod_width", 0.0, rod_length, low_open=True,
                            hint="nm, at most rod_length")
    height = check_float(height, "height", 0.0, low_open=True, hint="nm")
    coupling = check_float(coupling, "coupling", 0.0)
    substrate_field = check_float(substrate_field, "substrate_field", 0.0)
    ramp = check_float(ramp, "ramp", 0.0, 1.0, low_open=True)
    step_nm = check_float(step_nm, "step_nm", 0.0)
    rotation_deg = check_float(rotation_deg, "rotation_deg", 0.0, 90.0)
    tip_radius = check_float(tip_radius, "tip_radius", 0.0, low_open=True, hint="nm")
    noise = check_float(noise, "noise", 0.0)
    line_noise = check_float(line_noise, "line_noise", 0.0)
    if min(h, w) * pixel_size < 2 * rod_length:
        raise ValueError(f"the field of view ({h * pixel_size:.0f} x {w * pixel_size:.0f} nm) "
                         f"must be at least twice rod_length ({rod_length} nm); enlarge size "
                         "or pixel_size")
    params = dict(n_frames=n_frames, size=(h, w), seed=seed, pixel_size=pixel_size,
                  coverage=coverage, rod_length=rod_length, rod_width=rod_width, height=height,
                  coupling=coupling, substrate_field=substrate_field, ramp=ramp,
                  step_nm=step_nm, rotation_deg=rotation_deg, tip_radius=tip_radius,
                  noise=noise, line_noise=line_noise)

    rng = np.random.default_rng(seed)
    margin = rod_length
    view = np.array([h, w], dtype=np.float64) * pixel_size
    box = view + 2 * margin
    rod_area = rod_width * (rod_length - rod_width) + np.pi * rod_width**2 / 4
    n_rods = max(1, int(round(coverage * box.prod() / rod_area)))
    n_beads = max(2, int(np.ceil(rod_length / (0.5 * rod_width))))
    offsets = np.linspace(-(rod_length - rod_width) / 2, (rod_length - rod_width) / 2, n_beads)
    pos, theta = _place(n_rods, box, rod_length, rod_width, offsets, rng)
    theta0 = float(rng.uniform(0, np.pi))

    n_sub = 10
    d_par = (step_nm**2) / (2.0 * n_sub)  # per sub-step: <dx^2> = 2 D
    d_perp = 0.5 * d_par
    d_rot = np.deg2rad(rotation_deg) ** 2 / (2.0 * n_sub)
    mobility = d_par  # force (nm per sub-step per unit stiffness) ~ D (Einstein)
    stiffness = 40.0
    ramp_frames = max(ramp * (n_frames - 1), 1e-9)

    tip = _tip_structure(tip_radius, pixel_size, height)
    frames = np.empty((n_frames, h, w), dtype=np.float32)
    out = {"centres": [], "orientations": [], "ids": []}
    order = np.zeros(n_frames)
    strength = np.zeros(n_frames)
    for t in range(n_frames):
        level = min(1.0, t / ramp_frames) if n_frames > 1 else 1.0
        strength[t] = coupling * level
        if t > 0:
            for _ in range(n_sub):
                force, torque = _forces(pos, theta, box, rod_width, offsets, stiffness)
                align = _align_torque(pos, theta, box, 1.5 * rod_length, coupling * level / n_sub,
                                      substrate_field * level / n_sub, theta0)
                ax = _axis(theta)
                f_par = np.sum(force * ax, axis=1)
                f_perp = force - f_par[:, None] * ax
                drift = mobility * (f_par[:, None] * ax + 0.5 * f_perp)
                perp = np.stack([ax[:, 1], -ax[:, 0]], axis=1)
                kick = (np.sqrt(2 * d_par) * rng.standard_normal(len(pos)))[:, None] * ax + (
                    np.sqrt(2 * d_perp) * rng.standard_normal(len(pos)))[:, None] * perp
                pos = np.mod(pos + np.clip(drift, -0.5, 0.5) + kick, box)
                rot_drift = np.clip(mobility * torque / (rod_length**2 / 12.0), -0.1, 0.1)
                theta = theta + rot_drift + align + np.sqrt(2 * d_rot) * rng.standard_normal(
                    len(pos))
        theta = np.mod(theta, np.pi)

        # image: the field of view is [margin, margin + view] of the periodic box
        rel = pos - margin
        shifts = [np.array([a, b]) for a in (-box[0], 0, box[0]) for b in (-box[1], 0, box[1])]
        imgs_pos = np.concatenate([rel + s for s in shifts])
        imgs_theta = np.tile(theta, len(shifts))
        near = np.all((imgs_pos > -rod_length) & (imgs_pos < view + rod_length), axis=1)
        surface = _render(imgs_pos[near], imgs_theta[near], (h, w), pixel_size, rod_length,
                          rod_width, height, origin=np.zeros(2))
        topo = ndimage.grey_dilation(surface, structure=tip, mode="nearest")
        topo += noise * rng.standard_normal((h, w))
        topo += line_noise * rng.standard_normal((h, 1))
        frames[t] = topo

        centre_px = rel / pixel_size
        inside = np.all((centre_px >= -0.5) & (centre_px < np.array([h, w]) - 0.5), axis=1)
        out["centres"].append(centre_px[inside])
        out["orientations"].append(theta[inside].copy())
        out["ids"].append(np.flatnonzero(inside).astype(np.int64))
        order[t] = nematic_order(theta[inside])

    return ProteinMovie(frames=frames, pixel_size=pixel_size, centres=out["centres"],
                        orientations=out["orientations"], ids=out["ids"], order=order,
                        coupling=strength, substrate_angle=theta0, params=params)
