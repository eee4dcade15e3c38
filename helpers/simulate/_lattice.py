"""The kinetic ferroelectric lattice: Landau-Khalatnikov dynamics of a 2-component polarisation.

A square lattice of sites ``(i, j)`` (row, column) carries ``P = (P0, P1)``; ``P0`` is the
component along the row axis (``i``, "x" of the reference formula) and ``P1`` along the
column axis (``j``, "y"). This pair is right-handed on screen, so :func:`curl` is positive for
an anticlockwise (as displayed) vortex. Arrays have shape ``(..., 2, H, W)``; leading axes are
independent lattices (e.g. one per temperature). Boundaries are periodic.

Free energy per site (reduced units)::

    F = a1 |P|^2 + a2 (P0^4 + P1^4) + a3 P0^2 P1^2 + a6 (P0^6 + P1^6)
        + (k / 2) |P - <P>_nn|^2-like gradient term + (lambda / 2) (div P)^2
        - (E + E_defect - alpha <P>) . P

Dynamics: ``dP/dt = -gamma dF/dP`` (explicit Euler, ``gamma = 1``) plus optional Langevin
noise. ``a1`` carries the temperature, ``a1 = a0 (T - T0)``; ``a3 > 2 a2`` favours the axes
(tetragonal), ``a3 < 2 a2`` the diagonals; ``a2 < 0`` with ``a6 > 0`` gives a first-order
transition (BaTiO3). ``lambda`` penalises bound charge, so walls prefer head-to-tail
(charge-neutral) orientations; ``alpha`` is a uniform depolarisation field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LandauCoefficients", "landau_khalatnikov", "curl", "uniaxial_coercive_field"]


@dataclass(frozen=True)
class LandauCoefficients:
    """Coefficients of the lattice free energy (reduced units; see the module docstring).

    Attributes:
        a1: quadratic coefficient (negative below the transition); a float, or an array
            broadcastable to ``P[..., 0, :, :]`` (e.g. ``(n, 1, 1)`` for ``n`` temperatures).
        a2: quartic coefficient of ``P0^4 + P1^4``.
        a3: coefficient of ``P0^2 P1^2`` (anisotropy).
        a6: sixth-order coefficient of ``P0^6 + P1^6``.
        coupling: nearest-neighbour coupling ``k`` (force ``k (P - mean of 4 neighbours)``).
        div_penalty: ``lambda`` of the bound-charge term ``(lambda / 2) (div P)^2``.
        depolarization: ``alpha``: a field ``-alpha * mean(P)`` over each lattice.
    """

    a1: float | np.ndarray = -1.0
    a2: float = 0.5
    a3: float = 1.5
    a6: float = 0.0
    coupling: float = 1.0
    div_penalty: float = 0.0
    depolarization: float = 0.0


def landau_force(P: np.ndarray, c: LandauCoefficients) -> np.ndarray:
    """``dF_Landau / dP`` of the local (on-site) terms, same shape as ``P`` (..., 2, H, W)."""
    p0, p1 = P[..., 0, :, :], P[..., 1, :, :]
    sq0, sq1 = p0 * p0, p1 * p1
    g0 = 2 * c.a1 * p0 + 4 * c.a2 * sq0 * p0 + 2 * c.a3 * p0 * sq1
    g1 = 2 * c.a1 * p1 + 4 * c.a2 * sq1 * p1 + 2 * c.a3 * p1 * sq0
    if c.a6:
        g0 = g0 + 6 * c.a6 * sq0 * sq0 * p0
        g1 = g1 + 6 * c.a6 * sq1 * sq1 * p1
    return np.stack([g0, g1], axis=-3)


def _gradient(P: np.ndarray, c: LandauCoefficients) -> np.ndarray:
    """Full ``dF/dP`` on a periodic lattice, without external fields."""
    g = landau_force(P, c)
    if c.coupling:
        nn = (np.roll(P, 1, -2) + np.roll(P, -1, -2) + np.roll(P, 1, -1) + np.roll(P, -1, -1))
        g += c.coupling * (P - 0.25 * nn)
    if c.div_penalty:
        p0, p1 = P[..., 0, :, :], P[..., 1, :, :]
        div = (p0 - np.roll(p0, 1, -2)) + (p1 - np.roll(p1, 1, -1))  # backward differences
        g[..., 0, :, :] += c.div_penalty * (div - np.roll(div, -1, -2))
        g[..., 1, :, :] += c.div_penalty * (div - np.roll(div, -1, -1))
    if c.depolarization:
        g += c.depolarization * P.mean(axis=(-2, -1), keepdims=True)
    return g


def landau_khalatnikov(P, n_steps: int, coefficients: LandauCoefficients | None = None,
                       field=None, defects=None, dt: float = 0.05, noise: float = 0.0,
                       rng=None, record_every: int = 0):
    """Integrate ``dP/dt = -dF/dP`` for ``n_steps`` explicit Euler steps of ``dt``.

    Args:
        P: ``(..., 2, H, W)`` initial polarisation (reduced units); not modified.
        n_steps: number of steps.
        coefficients: :class:`LandauCoefficients` (default: tetragonal, ``a1 = -1``).
        field: applied uniform field, reduced units: ``None``, a ``(2,)`` vector, an
            ``(n_steps, 2)`` array (one vector per step), or ``(n_steps, ..., 2, 1, 1)``.
        defects: ``(2, H, W)`` (or broadcastable) static random field of the defects.
        dt: time step (stable for ``dt * (2 |a1| + 12 a2 |P|^2 + 2 k) < 1``).
        noise: standard deviation of the Langevin kick per unit time (thermal noise).
        rng: ``numpy.random.Generator`` for the noise (required when ``noise > 0``).
        record_every: when > 0, also return the state after every ``record_every`` steps.

    Returns:
        The final ``P`` (float64), or ``(P, snapshots)`` with snapshots
        ``(n_steps // record_every, ..., 2, H, W)`` when ``record_every > 0``.
    """
    c = coefficients or LandauCoefficients()
    P = np.array(P, dtype=np.float64)
    if P.ndim < 3 or P.shape[-3] != 2:
        raise ValueError(f"P must have shape (..., 2, H, W), got {P.shape}")
    if not np.isfinite(P).all():
        raise ValueError("P holds NaN or inf; start from finite values")
    if noise > 0 and rng is None:
        raise ValueError("noise > 0 needs rng=np.random.default_rng(seed) for reproducibility")
    per_step = None
    if field is not None:
        field = np.asarray(field, dtype=np.float64)
        if field.ndim >= 2 and field.shape[0] == n_steps:
            per_step = field if field.ndim > 2 else field[:, :, None, None]
            const = 0.0
        elif field.shape == (2,):
            const = field[:, None, None]
        else:
            raise ValueError(f"field must be (2,), (n_steps, 2) or (n_steps, ..., 2, 1, 1); "
                             f"got {field.shape} for n_steps={n_steps}")
    else:
        const = 0.0
    static = const + (0.0 if defects is None else np.asarray(defects, dtype=np.float64))
    snaps = []
    kick = noise * np.sqrt(dt)
    for step in range(n_steps):
        force = static - _gradient(P, c)
        if per_step is not None:
            force = force + per_step[step]
        P += dt * force
        if kick:
            P += kick * rng.standard_normal(P.shape)
        if record_every and (step + 1) % record_every == 0:
            snaps.append(P.copy())
    if record_every:
        return P, np.stack(snaps) if snaps else np.zeros((0, *P.shape))
    return P


def uniaxial_coercive_field(a1: float, a2: float) -> float:
    """Intrinsic (homogeneous) coercive field of ``F = a1 P^2 + a2 P^4 - E P``.

    ``E_c = (4 / 3) |a1| sqrt(|a1| / (6 a2))`` at ``P = sqrt(|a1| / (6 a2))``, reduced units.
    """
    if a1 >= 0 or a2 <= 0:
        raise ValueError("a coercive field needs a1 < 0 (ferroelectric) and a2 > 0")
    return 4.0 / 3.0 * abs(a1) * np.sqrt(abs(a1) / (6.0 * a2))


def curl(P) -> np.ndarray:
    """Out-of-plane curl of a lattice polarisation field.

    ``curl[i, j] = 0.5 * ((P1[i+1, j] - P1[i-1, j]) - (P0[i, j+1] - P0[i, j-1]))`` with
    periodic neighbours, where ``P0`` is the component along the row axis ``i`` and ``P1``
    along the column axis ``j`` (the formula of the reference, with ``x = i``, ``y = j``).
    Positive for an anticlockwise vortex as displayed.

    Args:
        P: ``(..., 2, H, W)`` polarisation.

    Returns:
        ``(..., H, W)`` float64, units of P per lattice spacing.
    """
    P = np.asarray(P, dtype=np.float64)
    if P.ndim < 3 or P.shape[-3] != 2 or min(P.shape[-2:]) < 3:
        raise ValueError(f"P must have shape (..., 2, H, W) with H, W >= 3, got {P.shape}")
    if not np.isfinite(P).all():
        raise ValueError("P holds NaN or inf values; clean them before taking the curl")
    p0, p1 = P[..., 0, :, :], P[..., 1, :, :]
    return 0.5 * ((np.roll(p1, -1, -2) - np.roll(p1, 1, -2))
                  - (np.roll(p0, -1, -1) - np.roll(p0, 1, -1)))
