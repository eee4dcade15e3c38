"""HAADF-STEM frames of graphene with Si dopants in three- and four-fold coordination.

A Si atom in graphene sits either on a carbon site (three C neighbours, a triangle, the Si-C
bond longer than C-C) or in a divacancy (two carbon atoms missing, Si at their midpoint with
four C neighbours 1.88 A away, a near-square rectangle of 2.84 x 2.46 A). Both are the same
atom, so their Z-contrast is the same: the centre of the image of either is equally bright,
and only the arrangement of the neighbours (three at 120 degrees against four, and the two
missing atoms) tells them apart.

Each frame is a fresh honeycomb (C-C 1.42 A) turned by its own angle, uniform over the full
circle, and shifted by a random fraction of a cell, so dopants sit anywhere with respect to the
pixel grid and at any orientation. ``n_si`` dopants per frame are placed on random sites at
least ``min_separation`` apart; each is four-fold with probability ``fourfold_fraction``
(drawn independently: the classes keep their natural, unequal ratio). Every atom is displaced
by a small random amount (``position_noise``), then imaged as in
:func:`helpers.simulate.graphene_movie`: a Gaussian probe image of peak
``dose * (Z / 6) ** Z_EXPONENT`` counts, a weak background, Poisson counting noise and
Gaussian read noise.

Coordinates are ``(row, col)`` in pixels; angles in radians, anticlockwise on screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from ._common import Series, check_float, check_int, check_seed, check_shape
from .graphene import CC_BOND, _haadf_frame

__all__ = ["SiDefectFrames", "graphene_si_defects", "SI_C_BOND_3FOLD", "SI_C_BOND_4FOLD"]

#: Projected Si-C distance of a three-fold (substitutional) Si, angstrom.
SI_C_BOND_3FOLD = 1.70
#: Si-C distance of a four-fold Si in a divacancy, angstrom (the geometry of the vacancy pair).
SI_C_BOND_4FOLD = float(np.hypot(CC_BOND, 0.5 * np.sqrt(3.0) * CC_BOND))


@dataclass
class SiDefectFrames(Series):
    """Frames of doped graphene and their ground truth.

    Attributes:
        frames: ``(T, H, W)`` float32 detector counts.
        pixel_size: angstrom per pixel.
        atoms: list of ``T`` arrays ``(N_t, 3)``: ``[row, col, species]`` of every atom in the
            field of view (pixels; species 0 = C, 1 = Si).
        dopants: list of ``T`` arrays ``(M_t, 3)``: ``[row, col, coordination]`` of every Si
            dopant in the field of view (coordination 3 or 4).
        lattice_angle: ``(T,)`` rotation of each frame's honeycomb, radians.
        params: the arguments of the call.
    """

    frames: np.ndarray
    pixel_size: float
    atoms: list
    dopants: list
    lattice_angle: np.ndarray
    params: dict = field(default_factory=dict)


def _honeycomb_sites(theta: float, extent: np.ndarray, rng) -> np.ndarray:
    """Honeycomb atom positions (angstrom, ``(row, col)``) covering ``[0, extent)``, the
    lattice turned by ``theta`` (anticlockwise on screen) and shifted by a random fraction of
    a cell."""
    a = CC_BOND * np.sqrt(3.0)
    # in-plane (x right, y up) primitive vectors and the two-atom basis
    cell = np.array([[a, 0.0], [0.5 * a, 0.5 * np.sqrt(3.0) * a]])
    basis = np.array([[0.0, 0.0], (cell[0] + cell[1]) / 3.0])
    c, s = np.cos(theta), np.sin(theta)
    turn = np.array([[c, -s], [s, c]])
    cell, basis = cell @ turn.T, basis @ turn.T
    n = int(np.ceil(np.hypot(*extent) / (0.5 * a))) + 2
    ij = np.stack(np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1)), -1).reshape(-1, 2)
    xy = (ij @ cell)[:, None, :] + basis[None] + rng.uniform(0, 1, 2) @ cell
    xy = xy.reshape(-1, 2) + 0.5 * extent[::-1]  # centred on the field
    rc = np.column_stack([extent[0] - xy[:, 1], xy[:, 0]])  # screen up = decreasing row
    keep = np.all((rc > -3.0) & (rc < extent + 3.0), axis=1)
    return rc[keep]


def _place_dopants(pos: np.ndarray, extent: np.ndarray, n_si: int, min_separation: float,
                   fourfold: float, rng) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Turn ``n_si`` random sites (inside the field, ``min_separation`` apart) into Si.

    Returns the new positions, species and the index of each dopant in them, and the
    coordination of each dopant; the four-fold ones remove a site and one of its neighbours
    and take their midpoint."""
    tree = cKDTree(pos)
    inside = np.flatnonzero(np.all((pos > 2.0) & (pos < extent - 2.0), axis=1))
    chosen: list[int] = []
    for i in rng.permutation(inside):
        if len(chosen) == n_si:
            break
        if all(np.hypot(*(pos[i] - pos[j])) >= min_separation for j in chosen):
            chosen.append(int(i))
    coordination = np.where(rng.uniform(size=len(chosen)) < fourfold, 4, 3)
    pos = pos.copy()
    removed = np.zeros(len(pos), bool)
    for i, k in zip(chosen, coordination):
        near = [j for j in tree.query_ball_point(pos[i], 1.2 * CC_BOND) if j != i]
        if k == 4:
            j = near[rng.integers(len(near))]
            pos[i] = 0.5 * (pos[i] + pos[j])
            removed[j] = True
        else:  # push the three neighbours out to the longer Si-C bond
            for j in near:
                d = pos[j] - pos[i]
                pos[j] = pos[i] + d * (SI_C_BOND_3FOLD / np.hypot(*d))
    species = np.zeros(len(pos), np.int64)
    species[chosen] = 1
    keep = ~removed
    index = np.cumsum(keep) - 1
    return pos[keep], species[keep], index[chosen], coordination


def graphene_si_defects(n_frames: int = 8, size=192, pixel_size: float = 0.25, seed: int = 0,
                        n_si: int = 12, fourfold_fraction: float = 0.4,
                        min_separation: float = 9.0, dose: float = 60.0,
                        read_noise: float = 2.0, probe_fwhm: float = 1.0,
                        position_noise: float = 0.05, background: float = 0.03
                        ) -> SiDefectFrames:
    """Simulate HAADF-STEM frames of graphene with three- and four-fold Si dopants.

    Args:
        n_frames: number of frames ``T`` (independent samples, each its own lattice angle).
        size: frame size, ``n`` or ``(H, W)`` pixels (at least 32).
        pixel_size: angstrom per pixel (at most 0.6).
        seed: random seed; the same seed gives the same frames.
        n_si: dopants placed per frame (fewer if the field has no room for them at
            ``min_separation``).
        fourfold_fraction: probability that a dopant is four-fold (in a divacancy), drawn
            independently for each dopant, in [0, 1].
        min_separation: closest distance between two dopants, angstrom (keep it above twice
            the patch half-width so that no patch holds two dopants).
        dose: expected peak counts of an isolated C atom (Si about 4.2 x).
        read_noise: standard deviation of the Gaussian detector noise, counts.
        probe_fwhm: full width at half maximum of the probe image of an atom, angstrom.
        position_noise: standard deviation of the random displacement of every atom, angstrom.
        background: background counts per pixel, as a fraction of ``dose``.

    Returns:
        :class:`SiDefectFrames`.
    """
    seed = check_seed(seed)
    n_si = check_int(n_si, "n_si", 0)
    fourfold_fraction = check_float(fourfold_fraction, "fourfold_fraction", 0.0, 1.0,
                                    hint="a probability")
    min_separation = check_float(min_separation, "min_separation", 0.0, hint="angstrom")
    n_frames = check_int(n_frames, "n_frames", 1)
    h, w = check_shape(size, "size", 32)
    pixel_size = check_float(pixel_size, "pixel_size", 0.0, 0.6, low_open=True,
                             hint="angstrom per pixel; atoms 1.42 A apart need <= 0.6 A/px")
    dose = check_float(dose, "dose", 0.0, low_open=True, hint="peak counts of a C atom")
    read_noise = check_float(read_noise, "read_noise", 0.0)
    probe_fwhm = check_float(probe_fwhm, "probe_fwhm", 0.0, 5.0, low_open=True)
    position_noise = check_float(position_noise, "position_noise", 0.0, 0.5, hint="angstrom")
    background = check_float(background, "background", 0.0)
    params = dict(n_frames=n_frames, size=(h, w), pixel_size=pixel_size, seed=seed, n_si=n_si,
                  fourfold_fraction=fourfold_fraction, min_separation=min_separation,
                  dose=dose, read_noise=read_noise, probe_fwhm=probe_fwhm,
                  position_noise=position_noise, background=background)

    rng = np.random.default_rng(seed)
    extent = np.array([h, w], dtype=np.float64) * pixel_size
    sigma_px = probe_fwhm / pixel_size / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    frames = np.empty((n_frames, h, w), np.float32)
    atoms, dopants, angles = [], [], rng.uniform(0, 2 * np.pi, n_frames)
    for t in range(n_frames):
        sites = _honeycomb_sites(angles[t], extent, rng)
        pos, species, si_index, coordination = _place_dopants(
            sites, extent, n_si, min_separation, fourfold_fraction, rng)
        pos = pos + rng.normal(0.0, position_noise, pos.shape)
        rc = pos / pixel_size
        frames[t] = _haadf_frame((h, w), rc, species, dose, sigma_px, background, read_noise,
                                 rng)
        inside = np.all((rc >= -0.5) & (rc < np.array([h, w]) - 0.5), axis=1)
        atoms.append(np.column_stack([rc[inside], species[inside].astype(np.float64)]))
        si_rc = rc[si_index]
        seen = np.all((si_rc >= -0.5) & (si_rc < np.array([h, w]) - 0.5), axis=1)
        dopants.append(np.column_stack([si_rc[seen], coordination[seen].astype(np.float64)]))
    return SiDefectFrames(frames=frames, pixel_size=pixel_size, atoms=atoms, dopants=dopants,
                          lattice_angle=angles, params=params)
