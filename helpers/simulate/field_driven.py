"""A ferroelectric lattice driven by a time-dependent in-plane field, and the field
trajectories an experimentalist would try.

The process to optimise is a field trajectory ``E(t) = (E0(t), E1(t))`` (reduced units,
component 0 along the lattice rows, 1 along the columns, as in :mod:`._lattice`) applied
uniformly to a Landau-Khalatnikov lattice that starts poled along ``+P0`` and holds pinned
random-field defects. After the trajectory the field is switched off and the lattice relaxes;
the figure of merit is the vorticity of that remanent polarisation, the mean magnitude of
its curl (:func:`curl_objective`). The *signed* curl summed over a periodic lattice is
identically zero (a discrete Stokes theorem: every difference appears once with each sign),
so the net curl cannot be the target; its mean magnitude counts vortices and flux-closure
walls of either sense.

Physics the objective inherits (``tests/test_simulate_field_driven.py`` checks each):

- a uniform field cannot break the lattice's translation symmetry, so without defects the
  polarisation stays uniform and the curl is exactly zero for every trajectory;
- a field well below the coercive field leaves the poled state nearly untouched (small
  curl), a field far above it drags the whole lattice coherently (uniform, small curl);
  domains, walls and vortices, hence curl, appear in between, where the defects decide
  locally whether and when a site follows the field;
- mirroring the lattice across the row axis (column ``j -> -j``, ``P1 -> -P1``) together
  with the field (``E1 -> -E1``, i.e. reversing the sense of a rotating field) mirrors the
  final state and flips the sign of the curl; exactly so without the bound-charge term,
  whose backward differences (:mod:`._lattice`) prefer one direction at the lattice scale.

:func:`relaxor_lattice` is the other kind of disorder: no random fields, a random local
transition temperature (``a1``) per site, and an unpoled start, so that without a field the
curl is exactly zero and all of it is the field's doing (its docstring says why the curl
then peaks at an intermediate field strength).

Trajectory families (:func:`trajectory_families`) are special cases of one five-parameter
form (:func:`trajectory_from_params`)::

    E(t) = A g(t) (cos(2 pi f t + phi), e sin(2 pi f t + phi)),   t in [0, 1)
    g(t) = exp(-(t - 1/2)^2 / (2 w^2))

with amplitude ``A``, frequency ``f`` (cycles per trajectory), ellipticity ``e`` (+1:
anticlockwise rotation as displayed, -1: clockwise, 0: linear along the rows), start phase
``phi`` and envelope width ``w`` (a fraction of the trajectory; large ``w`` is a constant
envelope). Rotating fields have ``|e| = 1``, linear sinusoids ``e = 0``, pulses ``f = 0``
(a field of fixed direction ``phi``, from a short kick to a hold over the whole trajectory),
and mixtures draw every parameter from the whole box (elliptical, enveloped oscillations that
blend the other families).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._common import check_float, check_int, check_seed
from ._lattice import LandauCoefficients, curl, landau_khalatnikov, uniaxial_coercive_field

__all__ = [
    "FAMILIES",
    "PARAM_BOUNDS",
    "PARAM_NAMES",
    "DrivenLattice",
    "DrivenResult",
    "TrajectorySet",
    "curl_objective",
    "driven_lattice",
    "relaxor_lattice",
    "run_trajectories",
    "trajectory_families",
    "trajectory_from_params",
]

PARAM_NAMES = ("amplitude", "frequency", "ellipticity", "phase", "width")
# the box of the raw parameters: amplitude (reduced field units), frequency (cycles per
# trajectory), ellipticity, start phase (radians), envelope width (fraction of the trajectory)
PARAM_BOUNDS = np.array([[0.0, 1.6], [0.0, 3.0], [-1.0, 1.0], [0.0, 2 * np.pi], [0.08, 0.8]])
FAMILIES = ("rotating", "sinusoid", "pulse", "mixture")


@dataclass
class DrivenLattice:
    """The lattice a trajectory drives: coefficients, defects, start state and time steps.

    Attributes:
        coefficients: :class:`LandauCoefficients` of the lattice.
        defects: ``(2, H, W)`` static random field of the defects, reduced field units.
        initial: ``(2, H, W)`` polarisation at ``t = 0`` (uniformly poled along ``+P0``).
        duration: model time the trajectory lasts.
        relax_time: model time of field-free relaxation after it.
        dt: Euler time step.
        coercive_field: intrinsic coercive field of the defect-free lattice along an axis,
            reduced units.
        params: the generator's arguments.
    """

    coefficients: LandauCoefficients
    defects: np.ndarray
    initial: np.ndarray
    duration: float
    relax_time: float
    dt: float
    coercive_field: float
    params: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Lattice sites per side."""
        return int(self.defects.shape[-1])

    def sample_time(self, n_times: int) -> float:
        """Model time each of a trajectory's ``n_times`` samples is held: a whole number of
        Euler steps (at least one) closest to ``duration / n_times``, so the drive lasts
        ``n_times`` times this (9.6 rather than 10 time units for 64 samples and dt 0.05)."""
        n_times = check_int(n_times, "n_times", 1)
        return max(1, int(round(self.duration / (n_times * self.dt)))) * self.dt


def driven_lattice(size: int = 20, seed: int = 0, defect_density: float = 0.1,
                   defect_strength: float = 1.5, duration: float = 10.0,
                   relax_time: float = 2.0, dt: float = 0.05) -> DrivenLattice:
    """A square Landau-Khalatnikov lattice with pinned random-field defects, poled along +P0.

    Coefficients (reduced units): ``a1 = -1``, ``a2 = 0.5``, ``a3 = 1.2`` (a weak preference
    for the axes, so the polarisation can turn through the diagonals), nearest-neighbour
    coupling 1 and a bound-charge penalty ``lambda = 0.5`` (walls prefer head-to-tail,
    flux-closure arrangements). A fraction ``defect_density`` of the sites carries a fixed
    random field of strength ``defect_strength`` in a uniformly random in-plane direction.

    Args:
        size: sites per side (periodic boundaries).
        seed: draws the defects (the start state is uniform).
        defect_density: fraction of defect sites, in ``[0, 1]``.
        defect_strength: magnitude of a defect's field, reduced units (>= 0).
        duration: model time the field trajectory lasts (> 0).
        relax_time: field-free model time after it (>= 0).
        dt: Euler step (the explicit scheme is stable for fields up to about 2 with 0.05).

    Returns:
        :class:`DrivenLattice`.
    """
    size = check_int(size, "size", 4, "lattice sites per side")
    seed = check_seed(seed)
    defect_density = check_float(defect_density, "defect_density", 0.0, 1.0)
    defect_strength = check_float(defect_strength, "defect_strength", 0.0)
    duration = check_float(duration, "duration", 0.0, low_open=True, hint="model time")
    relax_time = check_float(relax_time, "relax_time", 0.0, hint="model time")
    dt = check_float(dt, "dt", 0.0, 0.1, low_open=True, hint="Euler step; 0.05 is stable")
    params = dict(size=size, seed=seed, defect_density=defect_density,
                  defect_strength=defect_strength, duration=duration,
                  relax_time=relax_time, dt=dt)
    rng = np.random.default_rng(seed)
    coeffs = LandauCoefficients(a1=-1.0, a2=0.5, a3=1.2, coupling=1.0, div_penalty=0.5)
    has = rng.random((size, size)) < defect_density
    angle = rng.uniform(0.0, 2 * np.pi, (size, size))
    defects = np.where(has, defect_strength, 0.0) * np.stack([np.cos(angle), np.sin(angle)])
    p_axis = np.sqrt(1.0 / (2 * 0.5))  # |P| of the axial minimum of a1 p^2 + a2 p^4
    initial = np.zeros((2, size, size))
    initial[0] = p_axis
    return DrivenLattice(coefficients=coeffs, defects=defects, initial=initial,
                         duration=duration, relax_time=relax_time, dt=dt,
                         coercive_field=uniaxial_coercive_field(coeffs.a1, coeffs.a2),
                         params=params)


def relaxor_lattice(size: int = 20, seed: int = 0, a1_mean: float = 0.5,
                    a1_spread: float = 0.3, duration: float = 10.0, relax_time: float = 2.0,
                    dt: float = 0.05) -> DrivenLattice:
    """A lattice with a random local transition temperature (relaxor-like), starting unpoled.

    The disorder is in the quadratic Landau coefficient: ``a1`` of each site is drawn
    independently from ``N(a1_mean, a1_spread^2)`` (``a1 = a0 (T - T_c)``, so each site has
    its own Curie temperature); the other coefficients, the coupling and the bound-charge
    penalty are those of :func:`driven_lattice`, and there are no random-field defects. The
    lattice starts at ``P = 0``, a fixed point without field, so the field's effect is the
    whole of the curl: no field, no curl, exactly. A uniform field polarises every site, the
    soft ones (small or negative ``a1``) more than the stiff ones; that contrast makes the
    curl. A vanishing field makes none, a small one already lets the locally ferroelectric
    sites (``a1 < 0``) polarise along it, and a strong one saturates every site towards the
    same ``P``, so the curl peaks at an intermediate field strength (a broad peak), not at
    the edge of the field range.

    Args:
        size: sites per side (periodic boundaries).
        seed: draws the ``a1`` map.
        a1_mean, a1_spread: mean and standard deviation of ``a1`` (reduced units; negative
            sites are locally ferroelectric). ``a1_spread = 0`` is a uniform lattice.
        duration, relax_time, dt: as for :func:`driven_lattice`.

    Returns:
        :class:`DrivenLattice` with zero ``defects`` and ``initial``, and ``coercive_field``
        of a site at ``a1 = -a1_spread`` (as far below ``a1 = 0`` as one standard deviation
        of the disorder; it ignores ``a1_mean``), a field scale for the locally ferroelectric
        sites.
    """
    size = check_int(size, "size", 4, "lattice sites per side")
    seed = check_seed(seed)
    a1_mean = check_float(a1_mean, "a1_mean", -5.0, 5.0, hint="reduced units")
    a1_spread = check_float(a1_spread, "a1_spread", 0.0, 5.0, hint="reduced units")
    duration = check_float(duration, "duration", 0.0, low_open=True, hint="model time")
    relax_time = check_float(relax_time, "relax_time", 0.0, hint="model time")
    dt = check_float(dt, "dt", 0.0, 0.1, low_open=True, hint="Euler step; 0.05 is stable")
    params = dict(size=size, seed=seed, a1_mean=a1_mean, a1_spread=a1_spread,
                  duration=duration, relax_time=relax_time, dt=dt)
    a1 = a1_mean + a1_spread * np.random.default_rng(seed).standard_normal((size, size))
    coeffs = LandauCoefficients(a1=a1, a2=0.5, a3=1.2, coupling=1.0, div_penalty=0.5)
    scale = uniaxial_coercive_field(-a1_spread, 0.5) if a1_spread > 0 else 0.0
    return DrivenLattice(coefficients=coeffs, defects=np.zeros((2, size, size)),
                         initial=np.zeros((2, size, size)), duration=duration,
                         relax_time=relax_time, dt=dt, coercive_field=float(scale),
                         params=params)


def _check_trajectories(fields) -> np.ndarray:
    arr = np.asarray(fields, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[-1] == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[-1] != 2 or arr.shape[1] < 2:
        raise ValueError(f"field trajectories must have shape (N, T, 2) with T >= 2 time "
                         f"points (or (T, 2) for one), got {np.shape(fields)}")
    if not np.isfinite(arr).all():
        raise ValueError("field trajectories hold NaN or inf; clean them before driving the "
                         "lattice")
    if np.abs(arr).max() > 5.0:
        raise ValueError(f"field trajectories reach |E| = {np.abs(arr).max():.3g}, beyond 5 "
                         "reduced units where the explicit scheme is unstable; scale them down")
    return arr


@dataclass
class DrivenResult:
    """What driving the lattice with ``N`` trajectories produced.

    Attributes:
        polarization: ``(N, 2, H, W)`` float64 remanent polarisation (after the relaxation).
        curl_history: ``(N, K)`` mean magnitude of the curl at ``K`` evenly spaced times over
            the trajectory and the relaxation (every ``record_every`` Euler steps), units of
            P per lattice spacing.
        times: ``(K,)`` model time of each entry of ``curl_history``.
    """

    polarization: np.ndarray
    curl_history: np.ndarray
    times: np.ndarray

    @property
    def integrated_curl(self) -> np.ndarray:
        """``(N,)`` time average of the mean curl magnitude over the whole run."""
        return self.curl_history.mean(axis=1)


def run_trajectories(fields, lattice: DrivenLattice, batch_size: int = 48,
                     record_every: int = 10) -> DrivenResult:
    """Drive the lattice with each field trajectory; the remanent state and the curl history.

    Each of the ``T`` samples of a trajectory is held for ``duration / (T dt)`` Euler steps
    (rounded, at least one), then the field is switched off for ``relax_time``. Trajectories
    are integrated together, ``batch_size`` at a time (each an independent copy of the
    lattice): a batch shares the Python loop over time steps, and a moderate one keeps its
    arrays in the CPU cache (48 runs 20 x 20 lattices about 2.5 times faster than 256 on
    this suite's CI machine; the batch changes no number).

    Args:
        fields: ``(N, T, 2)`` (or ``(T, 2)``) field samples, reduced units, evenly spaced over
            the trajectory's ``duration``.
        lattice: :class:`DrivenLattice` from :func:`driven_lattice`.
        batch_size: trajectories integrated at once.
        record_every: Euler steps between entries of the curl history.

    Returns:
        :class:`DrivenResult`.
    """
    arr = _check_trajectories(fields)
    batch_size = check_int(batch_size, "batch_size", 1)
    record_every = check_int(record_every, "record_every", 1)
    n, t = arr.shape[:2]
    hold = round(lattice.sample_time(t) / lattice.dt)
    relax = int(round(lattice.relax_time / lattice.dt))
    total = t * hold + relax
    coeffs, defects, dt = lattice.coefficients, lattice.defects, lattice.dt
    out = np.empty((n, 2, lattice.size, lattice.size))
    history = np.empty((n, total // record_every))
    for start in range(0, n, batch_size):
        part = arr[start:start + batch_size]  # (B, T, 2)
        fld = np.zeros((total, len(part), 2, 1, 1))
        fld[:t * hold] = np.repeat(part.transpose(1, 0, 2), hold, axis=0)[..., None, None]
        P = np.broadcast_to(lattice.initial, (len(part), *lattice.initial.shape))
        P, snaps = landau_khalatnikov(P, total, coeffs, field=fld, defects=defects, dt=dt,
                                      record_every=record_every)
        out[start:start + len(part)] = P
        history[start:start + len(part)] = np.abs(curl(snaps)).mean(axis=(-2, -1)).T
    times = dt * record_every * (np.arange(history.shape[1]) + 1)
    return DrivenResult(polarization=out, curl_history=history, times=times)


def curl_objective(P) -> np.ndarray:
    """The figure of merit: mean magnitude of the curl of each polarisation field.

    Args:
        P: ``(N, 2, H, W)`` (or ``(2, H, W)``) polarisation.

    Returns:
        ``(N,)`` (or a 0-d array) float64, units of P per lattice spacing.
    """
    return np.abs(curl(P)).mean(axis=(-2, -1))


def _check_params(params) -> np.ndarray:
    arr = np.asarray(params, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != len(PARAM_NAMES):
        raise ValueError(f"params must have shape (N, {len(PARAM_NAMES)}) with columns "
                         f"{PARAM_NAMES}, got {np.shape(params)}")
    if not np.isfinite(arr).all():
        raise ValueError("params hold NaN or inf")
    low, high = PARAM_BOUNDS[:, 0], PARAM_BOUNDS[:, 1]
    bad = (arr < low - 1e-9) | (arr > high + 1e-9)
    if bad.any():
        col = int(np.argwhere(bad)[0, 1])
        raise ValueError(f"params column {col} ({PARAM_NAMES[col]}) leaves its range "
                         f"[{low[col]:g}, {high[col]:g}]; clip it to PARAM_BOUNDS")
    return arr


def trajectory_from_params(params, n_times: int = 64) -> np.ndarray:
    """Field trajectories of the five-parameter form (module docstring).

    Args:
        params: ``(N, 5)`` (or ``(5,)``) rows of ``PARAM_NAMES`` within ``PARAM_BOUNDS``;
            or a torch tensor ``(..., 5)`` (not range-checked), for a differentiable
            trajectory inside an optimiser.
        n_times: samples per trajectory, at ``t = (k + 1/2) / n_times``.

    Returns:
        ``(N, n_times, 2)`` float64 field, reduced units (``(..., n_times, 2)`` tensor for a
        tensor).
    """
    n_times = check_int(n_times, "n_times", 2)
    if type(params).__module__.startswith("torch"):  # a tensor: differentiable, any batch
        import torch
        if params.shape[-1] != len(PARAM_NAMES):
            raise ValueError(f"params must have {len(PARAM_NAMES)} columns {PARAM_NAMES} in "
                             f"their last axis, got shape {tuple(params.shape)}")
        p, xp = params.unsqueeze(-2), torch
        t = torch.as_tensor((np.arange(n_times) + 0.5) / n_times, dtype=params.dtype,
                            device=params.device)
    else:
        p, xp = _check_params(params)[:, None], np
        t = (np.arange(n_times) + 0.5) / n_times
    amp, freq, ell, phase, width = (p[..., k] for k in range(5))
    env = amp * xp.exp(-0.5 * ((t - 0.5) / width) ** 2)
    arg = 2 * np.pi * freq * t + phase
    return xp.stack([env * xp.cos(arg), env * ell * xp.sin(arg)], axis=-1)


@dataclass
class TrajectorySet:
    """Field trajectories drawn from the expert families, with their parameters.

    Attributes:
        fields: ``(N, T, 2)`` float64 field samples, reduced units.
        params: ``(N, 5)`` their parameters (columns ``PARAM_NAMES``).
        family: ``(N,)`` int index into ``FAMILIES``.
    """

    fields: np.ndarray
    params: np.ndarray
    family: np.ndarray

    def __len__(self) -> int:
        return len(self.fields)


def trajectory_families(n: int, n_times: int = 64, seed: int = 0) -> TrajectorySet:
    """``n`` trajectories, a quarter from each family (rotating, sinusoid, pulse, mixture).

    Rotating: ``e = +-1`` (sense at random), ``f`` in [0.5, 3], ``w`` in [0.3, 0.8];
    sinusoid: ``e = 0``, ``f`` in [0.5, 3], ``w`` in [0.3, 0.8]; pulse: ``f = 0``, ``w`` in
    [0.08, 0.8] (short kicks to long holds), direction ``phi`` at random (``e = 1``);
    mixture: every parameter uniform on its range. Amplitudes are uniform on [0, 1.6] and
    phases on [0, 2 pi) in every family.

    Returns:
        :class:`TrajectorySet` in random order.
    """
    n = check_int(n, "n", 1)
    rng = np.random.default_rng(check_seed(seed))
    fam = rng.permutation(np.arange(n) % len(FAMILIES))
    low, high = PARAM_BOUNDS[:, 0], PARAM_BOUNDS[:, 1]
    p = low + (high - low) * rng.random((n, 5))
    rot, sin, pulse = fam == 0, fam == 1, fam == 2
    p[rot, 2] = rng.choice([-1.0, 1.0], rot.sum())
    p[sin, 2] = 0.0
    slow = rot | sin
    p[slow, 1] = rng.uniform(0.5, 3.0, slow.sum())
    p[slow, 4] = rng.uniform(0.3, 0.8, slow.sum())
    p[pulse, 1] = 0.0
    p[pulse, 2] = 1.0
    p[pulse, 4] = rng.uniform(0.08, 0.8, pulse.sum())
    return TrajectorySet(fields=trajectory_from_params(p, n_times), params=p, family=fam)
