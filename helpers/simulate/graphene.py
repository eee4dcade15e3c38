"""HAADF-STEM movie of Si-doped polycrystalline graphene damaged by the electron beam.

The sample is built in angstrom, then imaged frame by frame:

1. **Structure.** ``n_grains`` honeycomb grains (C-C bond 1.42 A, lattice constant 2.46 A) fill
   the Voronoi cells of random seeds, each rotated by its own angle; atoms closer than
   1.25 A across a boundary are removed and the boundary atoms relaxed into a disordered seam.
   A fraction of the crystalline sites is substituted by Si; a few small holes seed the damage.
2. **Beam dynamics between frames** (stochastic, in sub-steps of one "exposure unit"):
   knock-on sputtering, much likelier for under-coordinated (edge) atoms and for C bonded to
   Si, so holes grow and vacancies form next to Si; Si hops by exchanging its site with a
   bonded C; crystalline atoms next to disorder, edges or Si turn amorphous (a rare
   spontaneous event elsewhere); amorphous atoms keep moving. Amorphous atoms are displaced
   and relaxed with springs to the 1.42 A bond length and a hard core, so the amorphous network
   keeps roughly the C-C spacing but loses the bond angles.
3. **Imaging.** Z-contrast: every atom is a Gaussian probe image (FWHM ``probe_fwhm``) of
   peak ``dose * (Z / 6) ** 1.7`` counts (Si about 4.2 x C), plus a weak background; Poisson
   counting noise, Gaussian read noise, sample drift between frames and scan jitter (a random
   shift of each scan line).

Pixel size: the default 0.25 A/px puts the C-C bond at 5.7 px, the second neighbours
(2.46 A) at 9.8 px and the third (2.84 A) at 11.4 px, so the 24 x 24 px patch of the original
workflow, centred on an atom, holds its first, second and third neighbours; the 1 A probe
spans 4 px, and a Si/C atom is a well-sampled blob of a few pixels radius.

Sublattice convention: in a grain rotated by ``theta`` (radians, anticlockwise on screen) the
three bonds of a sublattice-0 atom point at ``theta + 30, 150, 270`` degrees, those of a
sublattice-1 atom at ``theta + 90, 210, 330`` degrees (60 degrees apart modulo 120).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from ._common import (
    check_float,
    check_int,
    check_seed,
    check_shape,
    disc_labels,
    gaussian_splat,
)

__all__ = ["GrapheneMovie", "graphene_movie", "graphene_local_order", "CC_BOND", "Z_EXPONENT"]

#: Carbon-carbon bond length of graphene, angstrom.
CC_BOND = 1.42
#: Exponent of the HAADF Z-contrast, intensity ~ Z ** Z_EXPONENT.
Z_EXPONENT = 1.7
_LATTICE = CC_BOND * np.sqrt(3.0)  # 2.46 A
_Z = np.array([6.0, 14.0])  # C, Si
_BOND_CUT = 1.75  # A, bonded neighbours (second neighbours are at 2.46 A)
_HARD_CORE = 1.25  # A, closest approach allowed between two atoms


@dataclass
class GrapheneMovie:
    """A simulated HAADF-STEM movie with per-atom ground truth.

    Attributes:
        frames: ``(T, H, W)`` float32, detected counts per pixel (HAADF intensity).
        pixel_size: angstrom per pixel.
        atoms: list of ``T`` arrays ``(N_t, 3)`` float64, ``[row_px, col_px, species]`` of
            every atom whose centre is in the frame (pixel ``k`` spans ``[k - 0.5, k + 0.5)``,
            so ``np.round`` of a position is a valid index); species 0 = C, 1 = Si.
        masks: ``(T, H, W)`` int64 segmentation target, 0 background, 1 C, 2 Si (a disc of
            ``mask_radius`` angstrom around each atom).
        sublattice: list of ``T`` arrays ``(N_t,)`` int8: 0 or 1 for the honeycomb sublattice
            (see the module docstring for the bond directions), -1 for amorphous or grain
            boundary atoms.
        local_order: list of ``T`` arrays ``(N_t,)`` float64 in ``[0, 1]``, 1 for an atom in
            perfect crystal (see :func:`graphene_local_order`).
        grain: list of ``T`` arrays ``(N_t,)`` int16, the grain each atom was born in.
        atom_ids: list of ``T`` arrays ``(N_t,)`` int64, identity of each atom across frames.
        grain_angles: ``(G,)`` rotation of each grain's lattice, radians, anticlockwise on
            screen (the lattice vector ``a1`` points at this angle).
        disordered_fraction: ``(T,)`` fraction of the frame's atoms with sublattice -1.
        crystallinity: ``(T,)`` mean ``local_order`` of the frame's atoms.
        hole_fraction: ``(T,)`` fraction of the frame area farther than 1.8 A from any atom
            (0 for intact graphene, whose hexagon centres are 1.42 A from their atoms).
        n_atoms, n_si: ``(T,)`` int, atoms and Si atoms in the frame.
        drift: ``(T, 2)`` float64, ``(row, col)`` displacement of the sample in the frame
            relative to frame 0, pixels (included in ``atoms``).
        jitter: ``(T, H)`` float64, scan-line shift of every row along the columns, pixels
            (in ``frames`` only, not in ``atoms`` or ``masks``).
        params: the generator's arguments.
    """

    frames: np.ndarray
    pixel_size: float
    atoms: list
    masks: np.ndarray
    sublattice: list
    local_order: list
    grain: list
    atom_ids: list
    grain_angles: np.ndarray
    disordered_fraction: np.ndarray
    crystallinity: np.ndarray
    hole_fraction: np.ndarray
    n_atoms: np.ndarray
    n_si: np.ndarray
    drift: np.ndarray
    jitter: np.ndarray
    params: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)


# --------------------------------------------------------------------------- structure


def _honeycomb(theta: float, extent: tuple[float, float], rng) -> tuple[np.ndarray, np.ndarray]:
    """Honeycomb sites rotated by ``theta`` covering ``[0, H] x [0, W]`` angstrom.

    Returns ``(pos (N, 2) [row, col] A, sublattice (N,) int8)``.
    """
    def vec(angle):  # on-screen direction -> (row, col)
        return np.array([-np.sin(angle), np.cos(angle)])

    a1, a2 = _LATTICE * vec(theta), _LATTICE * vec(theta + np.pi / 3)
    basis = np.stack([np.zeros(2), (a1 + a2) / 3.0])
    origin = rng.uniform(0, 1, 2) @ np.stack([a1, a2])
    corners = np.array([[0, 0], [0, extent[1]], [extent[0], 0], [extent[0], extent[1]]])
    lat = np.linalg.solve(np.stack([a1, a2]).T, (corners - origin).T).T
    lo, hi = np.floor(lat.min(0)) - 2, np.ceil(lat.max(0)) + 2
    n, m = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1), indexing="ij")
    cells = origin + n.reshape(-1, 1) * a1 + m.reshape(-1, 1) * a2
    pos = (cells[:, None, :] + basis[None]).reshape(-1, 2)
    sub = np.tile(np.array([0, 1], dtype=np.int8), len(cells))
    keep = (pos[:, 0] >= 0) & (pos[:, 0] < extent[0]) & (pos[:, 1] >= 0) & (pos[:, 1] < extent[1])
    return pos[keep], sub[keep]


def _pairs(pos: np.ndarray, cutoff: float) -> np.ndarray:
    if len(pos) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    return cKDTree(pos).query_pairs(cutoff, output_type="ndarray")


def _relax(pos: np.ndarray, movable: np.ndarray, n_iter: int = 12) -> np.ndarray:
    """Move the ``movable`` atoms so bonded pairs approach 1.42 A and none overlap.

    Springs act on pairs closer than ``_BOND_CUT``; a stiffer hard-core push acts below
    ``_HARD_CORE``. Immobile atoms stay put. Returns the new positions (a copy).
    """
    pos = pos.copy()
    if not movable.any():
        return pos
    for _ in range(n_iter):
        pairs = _pairs(pos, _BOND_CUT)
        if len(pairs) == 0:
            break
        i, j = pairs[:, 0], pairs[:, 1]
        d = pos[j] - pos[i]
        dist = np.maximum(np.linalg.norm(d, axis=1), 1e-6)
        stretch = dist - CC_BOND
        stretch = np.where(dist < _HARD_CORE, 3.0 * stretch, stretch)
        f = 0.35 * (stretch / dist)[:, None] * d  # pulls i towards j when stretched
        force = np.zeros_like(pos)
        np.add.at(force, i, f)
        np.add.at(force, j, -f)
        step = np.clip(force, -0.25, 0.25)
        pos[movable] += step[movable]
    return pos


def _remove_overlaps(pos: np.ndarray, rng=None) -> np.ndarray:
    """Boolean keep-mask removing one atom of every pair closer than the hard core: with
    ``rng`` a random one of each pair (pairs in random order), without it the later one."""
    keep = np.ones(len(pos), dtype=bool)
    pairs = _pairs(pos, _HARD_CORE)
    if rng is not None:
        pairs = pairs[rng.permutation(len(pairs))]
    for i, j in pairs:
        if keep[i] and keep[j]:
            keep[max(i, j) if rng is None else (i if rng.random() < 0.5 else j)] = False
    return keep


class _Sample:
    """Atoms of the sample (angstrom, sample frame) and their labels, mutated by the beam."""

    def __init__(self, pos, species, sub, grain):
        self.pos = pos
        self.species = species
        self.sub = sub
        self.grain = grain
        self.ids = np.arange(len(pos), dtype=np.int64)
        self.seam = sub < 0  # the grain boundary atoms (healing leaves them)
        self.next_id = len(pos)
        self.mark_sites()

    def mark_sites(self):
        """Record the crystalline sites as they are now: healing restores them."""
        crystal = self.sub >= 0
        self.sites = (self.pos[crystal].copy(), self.sub[crystal].copy(),
                      self.grain[crystal].copy())

    def select(self, keep):
        for name in ("pos", "species", "sub", "grain", "ids", "seam"):
            setattr(self, name, getattr(self, name)[keep])

    def add(self, pos, sub, grain):
        """Append carbon atoms at ``pos`` (angstrom), crystalline on ``sub``, in ``grain``."""
        n = len(pos)
        self.pos = np.concatenate([self.pos, pos])
        self.species = np.concatenate([self.species, np.zeros(n, dtype=self.species.dtype)])
        self.sub = np.concatenate([self.sub, sub.astype(self.sub.dtype)])
        self.grain = np.concatenate([self.grain, grain.astype(self.grain.dtype)])
        self.ids = np.concatenate([self.ids, self.next_id + np.arange(n, dtype=np.int64)])
        self.seam = np.concatenate([self.seam, np.zeros(n, dtype=bool)])
        self.next_id += n


def _build_sample(extent, n_grains, misorientation, si_fraction, n_holes, hole_radius, view,
                  rng) -> tuple[_Sample, np.ndarray]:
    theta0 = rng.uniform(0, np.pi / 3)
    signs = rng.choice([-1.0, 1.0], size=n_grains)
    steps = rng.uniform(0.7, 1.0, size=n_grains) * misorientation * signs
    angles = theta0 + np.concatenate([[0.0], np.cumsum(steps[1:])])
    angles = np.mod(angles, np.pi / 3)  # the honeycomb lattice repeats every 60 degrees

    # grain seeds spread over the field of view so every grain is seen
    (r0, c0), (vh, vw) = view
    seeds = np.empty((n_grains, 2))
    for g in range(n_grains):
        for _ in range(200):
            s = np.array([r0 + rng.uniform(0.15, 0.85) * vh, c0 + rng.uniform(0.15, 0.85) * vw])
            if g == 0 or np.min(np.linalg.norm(seeds[:g] - s, axis=1)) > 0.35 * min(vh, vw):
                break
        seeds[g] = s

    pos_all, sub_all, grain_all, seam_all = [], [], [], []
    for g in range(n_grains):
        pos, sub = _honeycomb(angles[g], extent, rng)
        d2 = ((pos[:, None, :] - seeds[None]) ** 2).sum(-1)
        own = d2[:, g]
        others = np.delete(np.arange(n_grains), g)
        mine = np.all(own[:, None] <= d2[:, others], axis=1) if len(others) else np.ones(
            len(pos), dtype=bool)
        if len(others):
            sep = np.linalg.norm(seeds[others] - seeds[g], axis=1)
            to_boundary = np.min((d2[:, others] - own[:, None]) / (2.0 * sep[None]), axis=1)
        else:
            to_boundary = np.full(len(pos), np.inf)
        # each grain reaches 0.6 A past the bisector; the overlap is then thinned out
        mine = mine | (to_boundary > -0.6)
        pos_all.append(pos[mine])
        sub_all.append(sub[mine])
        grain_all.append(np.full(mine.sum(), g, dtype=np.int16))
        seam_all.append(np.abs(to_boundary[mine]) < 1.6)
    pos = np.concatenate(pos_all)
    sub = np.concatenate(sub_all)
    grain = np.concatenate(grain_all)
    seam = np.concatenate(seam_all)

    keep = _remove_overlaps(pos, rng)
    pos, sub, grain, seam = pos[keep], sub[keep], grain[keep], seam[keep]
    sub[seam] = -1
    pos = _relax(pos + seam[:, None] * rng.normal(0, 0.15, pos.shape), seam)
    keep = _remove_overlaps(pos, rng)
    pos, sub, grain = pos[keep], sub[keep], grain[keep]

    species = np.zeros(len(pos), dtype=np.int8)
    crystal = np.flatnonzero(sub >= 0)
    n_si = int(round(si_fraction * len(crystal)))
    species[rng.choice(crystal, size=min(n_si, len(crystal)), replace=False)] = 1

    sample = _Sample(pos, species, sub, grain)
    # small holes inside the field of view seed the damage
    for _ in range(n_holes):
        centre = np.array([r0 + rng.uniform(0.1, 0.9) * vh, c0 + rng.uniform(0.1, 0.9) * vw])
        sample.select(np.linalg.norm(sample.pos - centre, axis=1) > hole_radius)
    sample.mark_sites()  # the seeded holes are not healed
    return sample, angles


# --------------------------------------------------------------------------- dynamics


def _beam_step(s: _Sample, rates: dict, scale: float, rng) -> None:
    """One exposure unit (probabilities multiplied by ``scale`` <= 1) of beam damage."""
    n = len(s.pos)
    if n < 3:
        return
    pairs = _pairs(s.pos, _BOND_CUT)
    i, j = pairs[:, 0], pairs[:, 1]
    z = np.bincount(i, minlength=n) + np.bincount(j, minlength=n)
    is_si = s.species == 1
    near_si = np.zeros(n, dtype=bool)
    near_si[i[is_si[j]]] = True
    near_si[j[is_si[i]]] = True
    disordered = s.sub < 0
    near_dis = np.zeros(n, dtype=bool)
    near_dis[i[disordered[j]]] = True
    near_dis[j[disordered[i]]] = True

    # knock-on sputtering: edges and C bonded to Si go first; Si itself is heavier and stays
    undercoord = np.clip(3 - z, 0, 3)
    p_eject = rates["sputter"] * (1.0 + rates["edge_boost"] * undercoord**2)
    p_eject *= np.where(near_si & ~is_si, rates["si_boost"], 1.0)
    p_eject *= np.where(is_si, 0.2, 1.0)
    eject = rng.random(n) < np.minimum(scale * p_eject, 0.95)

    # Si hops: exchange with a bonded carbon
    for k in np.flatnonzero(is_si & ~eject):
        if rng.random() < scale * rates["si_hop"]:
            partners = np.concatenate([j[i == k], i[j == k]])
            partners = partners[(s.species[partners] == 0) & ~eject[partners]]
            if len(partners):
                p = rng.choice(partners)
                s.species[k], s.species[p] = 0, 1

    # amorphisation: fronts at disorder, edges and Si; rare spontaneous nucleation elsewhere
    crystal = s.sub >= 0
    p_amorph = np.where(near_dis | (z < 3), rates["amorph_front"], rates["amorph_nucleate"])
    p_amorph = np.where(near_si, np.maximum(p_amorph, rates["amorph_si"]), p_amorph)
    convert = crystal & ~eject & (rng.random(n) < scale * p_amorph)
    s.sub[convert] = -1

    keep = ~eject
    s.select(keep)
    convert = convert[keep]
    moving = s.sub < 0
    kick = np.where(convert[:, None], 0.45, 0.12) * rng.normal(size=s.pos.shape)
    s.pos = _relax(s.pos + moving[:, None] * kick, moving)
    s.select(_remove_overlaps(s.pos, rng))


def _heal_step(s: _Sample, rate: float, rng) -> None:
    """One sweep of local healing (beam-driven repair and adatom capture), in place.

    A crystalline site of the pristine sample that holds no crystalline atom (none within the
    hard core) but has ``n`` crystalline atoms within bonding distance is restored with
    probability ``rate * min(n, 2) / 2`` (a site on a zigzag edge, ``n = 1``, at half the
    rate of one in a vacancy or on an armchair edge): the nearest amorphous atom within the
    hard core of the site moves onto it and takes its sublattice and grain, or, if there is
    none, a carbon adatom fills it. A surplus amorphous atom (not of the grain boundary) with
    three or more crystalline atoms within bonding distance (left in a hexagon of the
    restored lattice) desorbs with probability ``rate``. The amorphous atoms are then relaxed
    out of the way (any still overlapping is removed). Disorder and holes thus shrink from
    their crystalline edges inwards, about one atomic layer per sweep: the reverse of the
    amorphisation fronts.
    """
    crystal = s.sub >= 0
    if len(s.pos) < 3 or rate <= 0 or not crystal.any():
        return
    site_pos, site_sub, site_grain = s.sites
    tree_c = cKDTree(s.pos[crystal])
    free = tree_c.query(site_pos, k=1)[0] > _HARD_CORE
    idx = np.flatnonzero(free)
    n_cry = np.array([len(x) for x in tree_c.query_ball_point(site_pos[idx], _BOND_CUT)],
                     dtype=np.int64).reshape(-1)
    idx = idx[rng.random(len(idx)) < rate * np.minimum(n_cry, 2) / 2.0]
    idx = idx[_remove_overlaps(site_pos[idx])]
    if len(idx) == 0:
        return
    amorph = np.flatnonzero(~crystal & ~s.seam)  # the grain boundary stays
    new = np.ones(len(idx), dtype=bool)
    if len(amorph):
        d, near = cKDTree(s.pos[amorph]).query(site_pos[idx], k=1)
        taken = set()
        for m in np.argsort(d, kind="stable"):
            k = amorph[near[m]]
            if d[m] <= _HARD_CORE and k not in taken:
                taken.add(k)
                new[m] = False
                s.pos[k] = site_pos[idx[m]]
                s.sub[k] = site_sub[idx[m]]
                s.grain[k] = site_grain[idx[m]]
    s.add(site_pos[idx[new]], site_sub[idx[new]], site_grain[idx[new]])
    crystal = s.sub >= 0
    surplus = np.flatnonzero(~crystal & ~s.seam)
    if len(surplus) and crystal.any():
        n_cry = np.array([len(x) for x in cKDTree(s.pos[crystal]).query_ball_point(
            s.pos[surplus], _BOND_CUT)], dtype=np.int64).reshape(-1)
        gone = surplus[(n_cry >= 3) & (rng.random(len(surplus)) < rate)]
        s.select(~np.isin(np.arange(len(s.pos)), gone))
    s.pos = _relax(s.pos, s.sub < 0)
    s.select(_remove_overlaps(s.pos, rng))


# --------------------------------------------------------------------------- imaging


def _haadf_frame(shape, rc, species, dose, sigma_px, background, read_noise, rng,
                 col_shift=None) -> np.ndarray:
    """``(H, W)`` float64 detector counts of atoms at ``rc`` ``(N, 2)`` (pixels) of
    ``species`` ``(N,)`` (0 C, 1 Si): Gaussian probe images (``sigma_px`` pixels) of peak
    ``dose * (Z / 6) ** Z_EXPONENT`` counts, a background of ``background * dose``, Poisson
    counting noise and Gaussian read noise (``read_noise`` counts); ``col_shift`` ``(H,)``:
    scan-line jitter, pixels."""
    amps = dose * (_Z[species] / 6.0) ** Z_EXPONENT
    clean = gaussian_splat(shape, rc[:, 0], rc[:, 1], amps, sigma_px, col_shift=col_shift)
    clean += background * dose
    return rng.poisson(clean).astype(np.float64) + rng.normal(0, read_noise, clean.shape)


# --------------------------------------------------------------------------- ground truth


def graphene_local_order(pos, radius: float = 2.65) -> np.ndarray:
    """Per-atom crystallinity of a graphene-like network, in ``[0, 1]``.

    For each atom, ``q = |sum_k w_k exp(3 i phi_k)| / 3`` over its bonds (angles ``phi_k``,
    weights ``w_k = exp(-((d_k - 1.42) / 0.12)^2)``) is 1 for three bonds of 1.42 A at 120
    degrees and drops with missing, stretched or bent bonds. The local order is the mean ``q``
    of the atom and its neighbours within ``radius`` (first and second shells, the 24 px
    patch scale), times ``min(1, n / 9)``, where ``n`` counts those neighbours (9 in the
    perfect lattice), so atoms at holes and edges score low.

    Args:
        pos: ``(N, 2)`` positions, angstrom (any consistent frame).
        radius: neighbourhood radius, angstrom.

    Returns:
        ``(N,)`` float64 in ``[0, 1]``.
    """
    pos = np.asarray(pos, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 2:
        raise ValueError(f"pos must have shape (N, 2) in angstrom, got {pos.shape}")
    n = len(pos)
    if n == 0:
        return np.zeros(0)
    pairs = _pairs(pos, 1.9)
    i, j = pairs[:, 0], pairs[:, 1]
    d = pos[j] - pos[i]
    dist = np.linalg.norm(d, axis=1)
    w = np.exp(-(((dist - CC_BOND) / 0.12) ** 2))
    phase = np.exp(3j * np.arctan2(-d[:, 0], d[:, 1]))
    psi = np.zeros(n, dtype=complex)
    np.add.at(psi, i, w * phase)
    np.add.at(psi, j, -w * phase)  # the reversed bond: exp(3i(phi + pi)) = -exp(3i phi)
    q = np.minimum(np.abs(psi) / 3.0, 1.0)
    shell = _pairs(pos, radius)
    total = q.copy()
    count = np.zeros(n)
    np.add.at(total, shell[:, 0], q[shell[:, 1]])
    np.add.at(total, shell[:, 1], q[shell[:, 0]])
    np.add.at(count, shell[:, 0], 1)
    np.add.at(count, shell[:, 1], 1)
    return np.clip(total / (count + 1) * np.minimum(1.0, count / 9.0), 0.0, 1.0)


def _hole_fraction(rows, cols, shape, pixel_size) -> float:
    from scipy import ndimage

    occupied = np.zeros(shape, dtype=bool)
    r = np.clip(np.round(rows).astype(int), 0, shape[0] - 1)
    c = np.clip(np.round(cols).astype(int), 0, shape[1] - 1)
    occupied[r, c] = True
    if not occupied.any():
        return 1.0
    dist = ndimage.distance_transform_edt(~occupied) * pixel_size
    return float(np.mean(dist > 1.8))


# --------------------------------------------------------------------------- generator


def graphene_movie(n_frames: int = 20, size=256, pixel_size: float = 0.25, seed: int = 0,
                   dose: float = 60.0, read_noise: float = 2.0, probe_fwhm: float = 1.0,
                   n_grains: int = 2, misorientation: float = np.deg2rad(18.0),
                   si_fraction: float = 0.012, n_holes: int = 2, exposure: float = 30.0,
                   drift: float = 0.3, jitter: float = 0.04, mask_radius: float = 0.5,
                   background: float = 0.03, dose_profile=None,
                   healing: float = 0.0) -> GrapheneMovie:
    """Simulate a HAADF-STEM movie of Si-doped graphene degrading under the beam.

    Args:
        n_frames: number of frames ``T``.
        size: frame size, ``n`` or ``(H, W)`` pixels.
        pixel_size: angstrom per pixel (default 0.25: a 24 px patch holds an atom's first,
            second and third neighbours; see the module docstring). At most 0.6.
        seed: random seed; the same seed gives the same movie.
        dose: expected peak counts of an isolated C atom (a Si atom peaks at about 4.2 x);
            sets the Poisson noise.
        read_noise: standard deviation of the Gaussian detector noise, counts.
        probe_fwhm: full width at half maximum of the probe image of an atom, angstrom.
        n_grains: number of grains, each with its own lattice rotation.
        misorientation: typical rotation between successive grains, radians (each step is
            0.7-1 times this, random sign); keep it below pi/6 so the two sublattices of
            different grains stay distinguishable by angle.
        si_fraction: fraction of crystalline sites substituted by Si.
        n_holes: number of small holes (radius 2.5 A) present at the start.
        exposure: total beam damage over the movie, in exposure units. Per unit: sputtering
            probability 3e-4 for a 3-coordinated atom, times ``1 + 40 (3 - z)^2`` for an
            atom with ``z`` bonds and times 15 for C bonded to Si (Si itself 0.2 x);
            probability 0.35 that a Si exchanges with a bonded C; probability 0.06 that a
            crystalline atom next to disorder or an edge turns amorphous (0.03 next to Si,
            4e-4 elsewhere). The exposure is spread evenly over the ``T - 1`` frame
            intervals, so a short and a long movie of the same exposure end in a
            statistically equal state (default: the disordered fraction of a 256 px field
            grows from about 0.05 to 0.3).
        drift: sample drift, angstrom per frame (a fixed random direction plus a small random
            walk).
        jitter: scan jitter, standard deviation of the per-row shift, angstrom.
        mask_radius: radius of each atom's disc in ``masks``, angstrom (0.5 A = 2 px).
        background: background counts per pixel, as a fraction of ``dose``.
        dose_profile: ``None`` (default: the exposure spread evenly), ``"burst"`` (a dose
            burst: relative dose ``exp(-((t + 0.5 - 0.4 (T - 1)) / (T / 8))^2)`` in interval
            ``t``, so the damage peaks at 40 % of the movie and the beam is nearly off at
            both ends), or ``(T - 1,)`` non-negative relative beam doses of the frame
            intervals; interval ``t`` receives ``exposure * dose_profile[t] /
            sum(dose_profile)`` exposure units (0: the beam is blanked, only healing acts).
        healing: expected healing per frame interval, in sweeps (default 0: no healing;
            at most 20): ``ceil(healing)`` sweeps, in each of which an amorphous atom next to
            crystal returns to its lattice site, and an empty lattice site at the crystal's
            edge is refilled by a carbon adatom, with probability
            ``healing / ceil(healing)`` (see ``_heal_step``); each sweep heals about one
            atomic layer of the disordered regions' edges. With a dose that rises and falls,
            the frame-mean order falls and recovers.

    Returns:
        :class:`GrapheneMovie`.
    """
    n_frames = check_int(n_frames, "n_frames", 1)
    h, w = check_shape(size, "size", 32)
    pixel_size = check_float(pixel_size, "pixel_size", 0.0, 0.6, low_open=True,
                             hint="angstrom per pixel; atoms 1.42 A apart need <= 0.6 A/px")
    seed = check_seed(seed)
    dose = check_float(dose, "dose", 0.0, low_open=True, hint="peak counts of a C atom")
    read_noise = check_float(read_noise, "read_noise", 0.0)
    probe_fwhm = check_float(probe_fwhm, "probe_fwhm", 0.0, 5.0, low_open=True)
    n_grains = check_int(n_grains, "n_grains", 1)
    misorientation = check_float(misorientation, "misorientation", 0.0, np.pi / 6,
                                 hint="radians, at most pi/6")
    si_fraction = check_float(si_fraction, "si_fraction", 0.0, 0.2)
    n_holes = check_int(n_holes, "n_holes", 0)
    exposure = check_float(exposure, "exposure", 0.0)
    drift = check_float(drift, "drift", 0.0, 5.0, hint="angstrom per frame")
    jitter = check_float(jitter, "jitter", 0.0, 1.0, hint="angstrom")
    mask_radius = check_float(mask_radius, "mask_radius", 0.0, 1.0, low_open=True,
                              hint="angstrom")
    background = check_float(background, "background", 0.0)
    healing = check_float(healing, "healing", 0.0, 20.0,
                          hint="healing sweeps per frame interval")
    if isinstance(dose_profile, str) and dose_profile == "burst":
        mid = np.arange(max(n_frames - 1, 0)) + 0.5
        dose_profile = np.exp(-(((mid - 0.4 * (n_frames - 1)) / (n_frames / 8.0)) ** 2))
    elif isinstance(dose_profile, str):
        raise ValueError(f"dose_profile must be None, 'burst' or an array of relative doses, "
                         f"got {dose_profile!r}")
    if dose_profile is not None:
        dose_profile = np.asarray(dose_profile, dtype=np.float64)
        if (dose_profile.shape != (max(n_frames - 1, 0),) or not np.isfinite(dose_profile).all()
                or (dose_profile < 0).any() or (n_frames > 1 and dose_profile.sum() <= 0)):
            raise ValueError(f"dose_profile must be None or {max(n_frames - 1, 0)} finite, "
                             f"non-negative relative doses (one per frame interval, not all "
                             f"0), got shape {dose_profile.shape}; pass None for an even dose")
    params = dict(n_frames=n_frames, size=(h, w), pixel_size=pixel_size, seed=seed, dose=dose,
                  read_noise=read_noise, probe_fwhm=probe_fwhm, n_grains=n_grains,
                  misorientation=misorientation, si_fraction=si_fraction, n_holes=n_holes,
                  exposure=exposure, drift=drift, jitter=jitter, mask_radius=mask_radius,
                  background=background)
    if dose_profile is not None or healing > 0:  # recorded only when used: old params unchanged
        params.update(dose_profile=None if dose_profile is None else dose_profile.tolist(),
                      healing=healing)

    rng = np.random.default_rng(seed)
    view_a = np.array([h, w], dtype=np.float64) * pixel_size
    # sample drift (angstrom), then a sample big enough to stay under the scan
    direction = rng.uniform(0, 2 * np.pi)
    steps = drift * np.array([np.sin(direction), np.cos(direction)]) + rng.normal(
        0, 0.2 * drift + 1e-12, (max(n_frames - 1, 0), 2))
    drift_a = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    margin = 4.0 + np.abs(drift_a).max(0)
    extent = tuple(view_a + 2 * margin)
    sample, angles = _build_sample(extent, n_grains, misorientation, si_fraction, n_holes, 2.5,
                                   (margin, view_a), rng)

    rates = dict(sputter=3e-4, edge_boost=40.0, si_boost=15.0, si_hop=0.35, amorph_front=0.06,
                 amorph_nucleate=4e-4, amorph_si=0.03)
    # exposure units of each frame interval (an even dose unless a profile is given)
    if dose_profile is not None and n_frames > 1:
        interval_exposure = exposure * dose_profile / dose_profile.sum()
    else:
        interval_exposure = np.full(max(n_frames - 1, 0), exposure / max(n_frames - 1, 1))

    sigma_px = probe_fwhm / pixel_size / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    out = {k: [] for k in ("atoms", "sublattice", "local_order", "grain", "atom_ids")}
    frames = np.empty((n_frames, h, w), dtype=np.float32)
    masks = np.empty((n_frames, h, w), dtype=np.int64)
    jitters = np.empty((n_frames, h))
    summary = np.zeros((n_frames, 5))
    for t in range(n_frames):
        if t > 0:  # the interval's exposure in sub-steps of at most one unit
            e_t = interval_exposure[t - 1]
            n_t = int(np.ceil(e_t)) if e_t > 0 else 0
            for _ in range(n_t):
                _beam_step(sample, rates, e_t / n_t, rng)
        if t > 0 and healing > 0:
            n_sweeps = int(np.ceil(healing))
            for _ in range(n_sweeps):
                _heal_step(sample, healing / n_sweeps, rng)
        order = graphene_local_order(sample.pos)
        origin = margin - drift_a[t]  # the sample moves by +drift in the image
        rc = (sample.pos - origin) / pixel_size  # image pixels, (row, col)
        jit = rng.normal(0, jitter / pixel_size, h) if jitter > 0 else np.zeros(h)
        frames[t] = _haadf_frame((h, w), rc, sample.species, dose, sigma_px, background,
                                 read_noise, rng, col_shift=jit)
        jitters[t] = jit

        # pixel k covers [k - 0.5, k + 0.5): keep atoms whose rounded position is a pixel
        inside = ((rc[:, 0] >= -0.5) & (rc[:, 0] < h - 0.5)
                  & (rc[:, 1] >= -0.5) & (rc[:, 1] < w - 0.5))
        sp = sample.species[inside]
        out["atoms"].append(np.column_stack([rc[inside], sp.astype(np.float64)]))
        out["sublattice"].append(sample.sub[inside].copy())
        out["local_order"].append(order[inside])
        out["grain"].append(sample.grain[inside].copy())
        out["atom_ids"].append(sample.ids[inside].copy())
        near = (rc[:, 0] > -3) & (rc[:, 0] < h + 3) & (rc[:, 1] > -3) & (rc[:, 1] < w + 3)
        lab_near = sample.species[near].astype(np.int64) + 1
        draw = np.argsort(lab_near, kind="stable")  # Si discs drawn last, on top
        masks[t] = disc_labels((h, w), rc[near, 0][draw], rc[near, 1][draw], lab_near[draw],
                               mask_radius / pixel_size)
        n_in = int(inside.sum())
        summary[t] = [
            np.mean(sample.sub[inside] < 0) if n_in else 0.0,
            order[inside].mean() if n_in else 0.0,
            _hole_fraction(rc[inside, 0], rc[inside, 1], (h, w), pixel_size),
            n_in,
            int((sp == 1).sum()),
        ]

    return GrapheneMovie(
        frames=frames, pixel_size=pixel_size, atoms=out["atoms"], masks=masks,
        sublattice=out["sublattice"], local_order=out["local_order"], grain=out["grain"],
        atom_ids=out["atom_ids"], grain_angles=np.asarray(angles, dtype=np.float64),
        disordered_fraction=summary[:, 0], crystallinity=summary[:, 1],
        hole_fraction=summary[:, 2], n_atoms=summary[:, 3].astype(np.int64),
        n_si=summary[:, 4].astype(np.int64), drift=drift_a / pixel_size, jitter=jitters,
        params=params,
    )
