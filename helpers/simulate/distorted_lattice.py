"""A centred square lattice whose centre atom may sit off centre: the toy model of a Bayesian
definition of symmetry, and an atomic image whose local distortion varies in space.

The structure (a projected perovskite-like cell): heavy "A" atoms on the corners of a square
lattice of constant ``a`` and a lighter "B" atom in every cell. In the **symmetric** structure
(plane group p4mm) B sits exactly at the cell centre; in the **distorted** one it is displaced
by a vector ``d`` of length ``delta`` (the symmetry drops to a mirror, pm, for ``d`` along a
lattice axis). Whether a structure "is" symmetric is then a question about evidence: with
positions measured with noise ``sigma``, a small ``delta`` cannot be told from zero
(``helpers.analysis.symmetry`` computes the evidence).

- :func:`toy_lattices`: many small lattices at once, atom positions observed with Gaussian
  noise, the nuisance parameters (origin, lattice constant) drawn per data set; the lattice
  constant is the unit of length.
- :func:`distorted_lattice_image`: a HAADF-like image of one large lattice, turned by a random
  angle, whose displacement field ``delta(r)`` has a symmetric domain, a distorted domain split
  into two polarisation variants, and a linear gradient between symmetric and distorted. The
  domain boundaries run at random angles, not along lattice rows, and every B atom gets the
  field's value at its own position (continuous, not on a grid of levels), which is its
  ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._common import Series, check_float, check_int, check_seed, check_shape, gaussian_splat

__all__ = [
    "ToyLattices",
    "toy_lattices",
    "toy_lattice_sites",
    "DistortedLatticeImage",
    "distorted_lattice_image",
    "REGION_NAMES",
]

#: names of the ground-truth regions of :func:`distorted_lattice_image`, by label
REGION_NAMES = ("symmetric", "gradient", "distorted")


def toy_lattice_sites(n_cells) -> tuple[np.ndarray, np.ndarray]:
    """Fractional coordinates and sublattice of the atoms of an ``n_rows x n_cols`` cell patch.

    Args:
        n_cells: ``n`` (an ``n x n`` patch) or ``(n_rows, n_cols)``, cells per side (>= 1).

    Returns:
        ``fractional`` ``(n_atoms, 2)`` float64 ``(x, y)`` in lattice constants: the corner A
        atoms ``(i, j)`` for ``i = 0..n_cols``, ``j = 0..n_rows``, then the B atoms at the cell
        centres ``(i + 1/2, j + 1/2)``; ``sublattice`` ``(n_atoms,)`` int8, 0 for A, 1 for B.
    """
    if isinstance(n_cells, (tuple, list)):
        if len(n_cells) != 2:
            raise ValueError(f"n_cells must be n or (n_rows, n_cols), got {n_cells!r}")
        rows, cols = (check_int(v, "n_cells", 1) for v in n_cells)
    else:
        rows = cols = check_int(n_cells, "n_cells", 1, "cells per side of the lattice patch")
    ca, ra = np.meshgrid(np.arange(cols + 1.0), np.arange(rows + 1.0))
    cb, rb = np.meshgrid(np.arange(cols) + 0.5, np.arange(rows) + 0.5)
    fractional = np.concatenate([np.c_[ca.ravel(), ra.ravel()], np.c_[cb.ravel(), rb.ravel()]])
    sublattice = np.r_[np.zeros(ca.size, np.int8), np.ones(cb.size, np.int8)]
    return fractional, sublattice


@dataclass
class ToyLattices(Series):
    """``B`` toy data sets: noisy atom positions of one centred square lattice patch each.

    Lengths are in units of the nominal lattice constant; positions are ``(x, y)``.

    Attributes:
        observed: ``(B, n_atoms, 2)`` float64, measured positions (truth plus noise).
        fractional: ``(n_atoms, 2)`` float64, the atoms' ideal fractional coordinates (known
            structure: which atom is which; see :func:`toy_lattice_sites`).
        sublattice: ``(n_atoms,)`` int8, 0 for the corner A atoms, 1 for the centred B atoms.
        displacement: ``(B, 2)`` float64, the true B displacement ``d`` (zero: symmetric).
        origin: ``(B, 2)`` float64, true position of the A atom at fractional ``(0, 0)``.
        lattice_constant: ``(B,)`` float64, true lattice constant.
        sigma: standard deviation of the position noise, per coordinate.
        n_cells: ``(n_rows, n_cols)``; ``n_rows * n_cols`` B atoms carry the distortion.
    """

    observed: np.ndarray
    fractional: np.ndarray
    sublattice: np.ndarray
    displacement: np.ndarray
    origin: np.ndarray
    lattice_constant: np.ndarray
    sigma: float
    n_cells: tuple[int, int]
    _length_of = "observed"

    @property
    def delta(self) -> np.ndarray:
        """``(B,)`` true distortion ``|d|``."""
        return np.hypot(self.displacement[:, 0], self.displacement[:, 1])

    @property
    def n_distorted_atoms(self) -> int:
        """Number of B atoms (the ``N`` of the ``sigma / sqrt(N)`` scaling)."""
        return int(self.n_cells[0] * self.n_cells[1])


def toy_lattices(displacement, sigma: float, n_cells=4, origin_sd: float = 1.0,
                 lattice_sd: float = 0.05, seed: int = 0) -> ToyLattices:
    """Simulate ``B`` noisy observations of a centred square lattice patch.

    Each data set ``b`` draws its own origin ``o ~ N(0, origin_sd^2 I)`` and lattice constant
    ``a ~ N(1, lattice_sd^2)``; atom ``k`` (fractional ``f_k``, sublattice ``s_k``) is then
    observed at ``o + a f_k + s_k d_b + e``, ``e ~ N(0, sigma^2 I)`` independently per atom
    and coordinate.

    Args:
        displacement: ``(B, 2)`` (or one ``(2,)``) B-atom displacements ``d`` in lattice
            constants; a row of zeros is the symmetric structure.
        sigma: position noise (lattice constants), > 0.
        n_cells: cells per side, ``n`` or ``(n_rows, n_cols)``.
        origin_sd, lattice_sd: spreads of the nuisance parameters (>= 0).
        seed: random seed.

    Returns:
        :class:`ToyLattices`.
    """
    d = np.asarray(displacement, dtype=np.float64)
    if d.ndim == 1:
        d = d[None]
    if d.ndim != 2 or d.shape[1] != 2 or len(d) == 0:
        raise ValueError(f"displacement must be (B, 2) or (2,) (dx, dy), got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("displacement holds NaN or inf")
    sigma = check_float(sigma, "sigma", 0.0, low_open=True, hint="position noise, > 0")
    origin_sd = check_float(origin_sd, "origin_sd", 0.0)
    lattice_sd = check_float(lattice_sd, "lattice_sd", 0.0)
    rng = np.random.default_rng(check_seed(seed))
    fractional, sublattice = toy_lattice_sites(n_cells)
    n_rows = int(round(fractional[sublattice == 0, 1].max()))
    n_cols = int(round(fractional[sublattice == 0, 0].max()))
    b = len(d)
    origin = origin_sd * rng.standard_normal((b, 2))
    a = 1.0 + lattice_sd * rng.standard_normal(b)
    truth = (origin[:, None, :] + a[:, None, None] * fractional[None]
             + sublattice[None, :, None] * d[:, None, :])
    observed = truth + sigma * rng.standard_normal(truth.shape)
    return ToyLattices(observed=observed, fractional=fractional, sublattice=sublattice,
                       displacement=d.copy(), origin=origin, lattice_constant=a, sigma=sigma,
                       n_cells=(n_rows, n_cols))


# --------------------------------------------------------------------------------------------
# the atomic image
# --------------------------------------------------------------------------------------------
@dataclass
class DistortedLatticeImage(Series):
    """A simulated HAADF-like image of a centred square lattice with a spatially varying
    off-centre displacement of the B atoms, and its ground truth.

    Coordinates are ``(row, col)`` in pixels; angles in radians, anticlockwise on screen.

    Attributes:
        image: ``(H, W)`` float32 intensity (A peaks about 1, B about ``b_intensity``, plus
            Gaussian noise).
        positions: ``(n, 2)`` float64 true atom centres of every atom whose centre is in the
            image.
        sublattice: ``(n,)`` int8, 0 for A (corner, bright), 1 for B (centred, dim).
        delta: ``(n,)`` float64, the true local distortion ``|d|`` in pixels at each atom (for
            A atoms the field's value at their site; only B atoms move).
        direction: ``(n,)`` float64, direction of ``d`` (radians, anticlockwise on screen); 0
            where ``delta`` is 0.
        region: ``(n,)`` int8: 0 symmetric domain, 1 gradient, 2 distorted domain
            (:data:`REGION_NAMES`).
        delta_map: ``(H, W)`` float64, the displacement field ``delta(r)`` in pixels.
        lattice_constant: pixels.
        lattice_angle: rotation of the lattice (radians).
        max_delta: the displacement in the distorted domain, pixels.
        params: the generator's arguments.
    """

    image: np.ndarray
    positions: np.ndarray
    sublattice: np.ndarray
    delta: np.ndarray
    direction: np.ndarray
    region: np.ndarray
    delta_map: np.ndarray
    lattice_constant: float
    lattice_angle: float
    max_delta: float
    params: dict = field(default_factory=dict)
    _length_of = "positions"


@dataclass
class _Walls:
    """Geometry of the displacement field (see :func:`_draw_walls`)."""

    anchor: np.ndarray  # (2,) a point of the symmetric/distorted wall, (row, col) pixels
    normal: np.ndarray  # (2,) its unit normal, pointing into the distorted domain
    anchor2: np.ndarray  # (2,) a point of the wall between the two polarisation variants
    normal2: np.ndarray  # (2,) its unit normal
    width: float  # width of the ramp, pixels
    max_delta: float  # displacement in the distorted domain, pixels

    def __call__(self, points) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Field magnitude ``(n,)`` pixels, variant ``(n,)`` (0 or 1) and region ``(n,)`` at
        ``points`` ``(n, 2)`` (row, col)."""
        u = (points - self.anchor) @ self.normal  # signed distance to the wall, pixels
        ramp = np.clip(u / self.width + 0.5, 0.0, 1.0)
        region = np.where(ramp <= 0.0, 0, np.where(ramp >= 1.0, 2, 1)).astype(np.int8)
        variant = ((points - self.anchor2) @ self.normal2 > 0).astype(np.int64)
        return self.max_delta * ramp, variant, region


def _draw_walls(shape, rng, width, max_delta) -> _Walls:
    """A wall at a random angle through a point near the image centre splits the image into
    the symmetric domain and the distorted one, with a linear ramp of ``width`` pixels centred
    on it. A second wall, at an angle 30 to 150 degrees from the first, through a point on the
    distorted side, splits the distorted domain into two polarisation variants (displacement
    along the lattice's first or second axis)."""
    h, w = shape
    psi = rng.uniform(0.0, 2.0 * np.pi)
    normal = np.array([np.sin(psi), np.cos(psi)])
    anchor = np.array([h, w]) / 2.0 + rng.uniform(-0.1, 0.1, 2) * np.array([h, w])
    psi2 = psi + rng.uniform(np.pi / 6, 5 * np.pi / 6)
    anchor2 = anchor + normal * (width / 2 + 0.25 * min(h, w))
    return _Walls(anchor, normal, anchor2, np.array([np.sin(psi2), np.cos(psi2)]), width,
                  max_delta)


def distorted_lattice_image(size=256, lattice_constant: float = 10.0,
                            max_distortion: float = 0.12, gradient_width: float = 6.0,
                            jitter: float = 0.08, a_width: float = 1.6,
                            b_width: float = 1.4, b_intensity: float = 0.55,
                            noise: float = 0.12, seed: int = 0) -> DistortedLatticeImage:
    """Simulate a HAADF-like image of a centred square lattice with symmetric and distorted
    domains and a gradient between them.

    The lattice (A atoms on the corners, B atoms at the cell centres) is turned by a random
    angle and shifted by a random sub-cell offset. Each B atom is displaced by
    ``delta(r) * e_k``, ``e_k`` the lattice's first (variant 0) or second (variant 1) axis,
    with ``delta(r)`` from a symmetric domain (0), a linear ramp ``gradient_width`` cells wide
    and a distorted domain (``max_distortion * lattice_constant``), see ``_draw_walls``.
    Every atom also moves by a small random ``jitter`` (thermal motion, pixels, per
    coordinate). Atoms are Gaussians (standard deviations ``a_width`` and
    ``b_width`` pixels; peaks 1 and ``b_intensity``, each times ``1 + 0.05 N(0, 1)``), plus
    Gaussian noise of standard deviation ``noise``.

    Args:
        size: image side ``n`` or ``(H, W)``, pixels (>= 64).
        lattice_constant: pixels (>= 6).
        max_distortion: displacement in the distorted domain, in lattice constants (0 to 0.3).
        gradient_width: width of the ramp, in lattice constants (> 0).
        jitter: random displacement of every atom, pixels (>= 0).
        a_width, b_width: Gaussian widths of the A and B atoms, pixels (> 0).
        b_intensity: B peak relative to A (> 0).
        noise: standard deviation of the additive noise (>= 0).
        seed: random seed.

    Returns:
        :class:`DistortedLatticeImage`.
    """
    params = dict(size=size, lattice_constant=lattice_constant, max_distortion=max_distortion,
                  gradient_width=gradient_width, jitter=jitter, a_width=a_width,
                  b_width=b_width, b_intensity=b_intensity, noise=noise, seed=seed)
    h, w = check_shape(size, "size", minimum=64)
    a = check_float(lattice_constant, "lattice_constant", 6.0,
                    hint="pixels per lattice constant; below 6 the atoms overlap")
    max_distortion = check_float(max_distortion, "max_distortion", 0.0, 0.3,
                                 hint="in lattice constants; 0.3 would bring B next to A")
    width = a * check_float(gradient_width, "gradient_width", 0.0, low_open=True)
    jitter = check_float(jitter, "jitter", 0.0)
    a_width = check_float(a_width, "a_width", 0.0, low_open=True)
    b_width = check_float(b_width, "b_width", 0.0, low_open=True)
    b_intensity = check_float(b_intensity, "b_intensity", 0.0, low_open=True)
    noise = check_float(noise, "noise", 0.0)
    # independent streams for the lattice (angle, offset, jitter, noise) and the domain walls
    rng, rng_walls = (np.random.default_rng(s)
                      for s in np.random.SeedSequence(check_seed(seed)).spawn(2))

    theta = rng.uniform(0.0, np.pi / 2)  # the square lattice repeats every 90 degrees
    shift = rng.uniform(0.0, 1.0, 2)
    # lattice axes in (row, col): axis 1 at angle theta anticlockwise on screen
    e1 = np.array([-np.sin(theta), np.cos(theta)])
    e2 = np.array([-np.cos(theta), -np.sin(theta)])  # e1 turned by +90 degrees on screen
    reach = int(np.ceil(np.hypot(h, w) / a)) + 2
    i, j = np.meshgrid(np.arange(-reach, reach + 1.0), np.arange(-reach, reach + 1.0))
    frac = np.c_[i.ravel(), j.ravel()] + shift
    centre = np.array([h, w]) / 2.0
    corners = centre + a * (frac[:, :1] * e1 + frac[:, 1:] * e2)
    centres = corners + a * 0.5 * (e1 + e2)
    max_delta = max_distortion * a
    walls = _draw_walls((h, w), rng_walls, width, max_delta)
    d_a, _, reg_a = walls(corners)
    d_b, var_b, reg_b = walls(centres)
    axes = np.stack([e1, e2])
    moved = centres + d_b[:, None] * axes[var_b]
    pos = np.concatenate([corners, moved]) + jitter * rng.standard_normal((2 * len(frac), 2))
    sub = np.r_[np.zeros(len(frac), np.int8), np.ones(len(frac), np.int8)]
    delta = np.r_[d_a, d_b]
    angle_of_axis = np.array([theta, theta + np.pi / 2])
    direction = np.r_[np.zeros(len(frac)), np.where(d_b > 0, angle_of_axis[var_b], 0.0)]
    region = np.r_[reg_a, reg_b]
    amps = np.where(sub == 0, 1.0, b_intensity) * (1.0 + 0.05 * rng.standard_normal(len(sub)))
    img = np.zeros((h, w))
    for s, width_s in ((0, a_width), (1, b_width)):
        m = sub == s
        img += gaussian_splat((h, w), pos[m, 0], pos[m, 1], amps[m], width_s)
    img += noise * rng.standard_normal((h, w))
    inside = (pos[:, 0] >= -0.5) & (pos[:, 0] < h - 0.5) & (pos[:, 1] >= -0.5) & (
        pos[:, 1] < w - 0.5)
    rr, cc = np.meshgrid(np.arange(h, dtype=float), np.arange(w, dtype=float), indexing="ij")
    field_map = walls(np.c_[rr.ravel(), cc.ravel()])[0]
    return DistortedLatticeImage(
        image=img.astype(np.float32), positions=pos[inside], sublattice=sub[inside],
        delta=delta[inside], direction=np.mod(direction[inside], 2 * np.pi),
        region=region[inside], delta_map=field_map.reshape(h, w), lattice_constant=a,
        lattice_angle=float(theta), max_delta=float(max_delta), params=params)
