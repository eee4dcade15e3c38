"""A single Si dopant in graphene, hopping under a parked STEM beam: the ground truth of
notebook 14 (learning the hop rates and steering the atom).

Model (a stand-in for the rate function measured in the experiments that Google DeepMind's
``putting-dune`` simulator reproduces; the numbers here are ours and illustrative):

1. **Lattice.** A flat, defect-free honeycomb, C-C bond ``CC_BOND`` = 1.42 A. A site is
   ``(i, j, s)``: cell ``(i, j)`` and sublattice ``s``; its position is
   ``i a1 + j a2 + s n0`` with ``a1 = (1.23, 2.13)`` A and ``a2 = (-1.23, 2.13)`` A. Positions
   and beam offsets are ``(x, y)`` in angstrom, x to the right and y *up* as displayed, so
   angles ``atan2(y, x)`` run anticlockwise on screen (the suite's angle convention). The
   three bonds of a sublattice-0 site point at 30, 150 and 270 degrees (as in
   :mod:`helpers.simulate.graphene`), those of a sublattice-1 site at 210, 330 and 90
   degrees: the same directions turned by 180 degrees.
2. **Local frame.** Neighbour ``k`` (0, 1, 2) of a Si atom is the one along bond ``k`` of its
   sublattice. A beam offset (beam position minus Si position, lab frame) is expressed in
   the Si's *local frame* by turning it by 180 degrees on sublattice 1
   (:func:`local_offsets`), so that in the local frame neighbour ``k`` always lies at
   ``30 + 120 k`` degrees and one rate function serves every site.
3. **Hop rates** (:class:`SiHopRates`). With the beam parked at local offset ``b``, the Si
   exchanges with neighbour ``k`` at rate (per second)

   ``lambda_k(b) = floor + peak * exp(-(p - d)^2 / (2 w_along^2) - q^2 / (2 w_across^2))``,

   ``p = b . u_k`` and ``q = b . u_k_perp`` being the offset's components along and across
   the bond direction ``u_k``, and ``d`` = 0.85 A: each neighbour's rate peaks with the beam
   0.85 A from the Si *toward that neighbour*. Defaults: ``peak`` 2 /s, ``floor`` 0.02 /s,
   ``w_along`` 0.35 A, ``w_across`` 0.30 A.
4. **Hops.** Hops are a Poisson process: the waiting time is exponential with the total rate
   ``Lambda = sum_k lambda_k``, and the neighbour reached is ``k`` with probability
   ``lambda_k / Lambda``. A dwell of ``tau`` seconds ends early at the first hop (the HAADF
   signal of a probe next to the Si changes the moment the Si leaves, and the beam is then
   blanked), so each dwell gives *at most one* hop: no hop with probability
   ``exp(-Lambda tau)``, else a hop to ``k`` with probability
   ``(1 - exp(-Lambda tau)) lambda_k / Lambda``. The beam time spent is ``min(tau, t_hop)``.
5. **Observations** are symbolic, as the frames before and after a dwell would give them: the
   Si site before and after, the beam offset and the dwell time (:class:`SiTransitions`).
   The time of the hop inside the dwell is kept as ground truth only.

Everything is deterministic by ``seed``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ._common import check_float, check_int, check_seed
from .graphene import CC_BOND

__all__ = [
    "PEAK_OFFSET",
    "SiHopRates",
    "SiTransitions",
    "SteeringEpisode",
    "bond_directions",
    "hop_distance",
    "hop_distances",
    "local_offsets",
    "neighbour_index",
    "neighbour_sites",
    "sample_dwells",
    "si_transition_experiment",
    "site_position",
    "sites_at_distance",
    "steer_episode",
]

#: Distance from the Si, toward a neighbour, at which that neighbour's hop rate peaks, A.
PEAK_OFFSET = 0.85

_A1 = np.array([CC_BOND * np.sqrt(3.0) / 2.0, 1.5 * CC_BOND])  # (1.23, 2.13) A
_A2 = np.array([-CC_BOND * np.sqrt(3.0) / 2.0, 1.5 * CC_BOND])  # (-1.23, 2.13) A
#: cell steps (di, dj) to neighbour k, for a sublattice-0 site (row 0) and a sublattice-1 site
_CELL_STEP = np.array([[[0, 0], [-1, 1], [-1, 0]],
                       [[0, 0], [1, -1], [1, 0]]])


def bond_directions() -> np.ndarray:
    """``(3, 2)`` unit vectors ``(x, y)`` toward neighbours 0, 1, 2 in the local frame
    (30, 150 and 270 degrees, anticlockwise on screen)."""
    angles = np.deg2rad([30.0, 150.0, 270.0])
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _sites(sites, name: str = "sites") -> np.ndarray:
    """``sites`` as an ``(N, 3)`` int64 array of ``(i, j, s)`` with ``s`` in {0, 1}."""
    arr = np.asarray(sites)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integer (i, j, s) triples of shape (3,) or (N, 3), "
                         f"got {arr.dtype} array of shape {np.shape(sites)}")
    if not np.isin(arr[:, 2], (0, 1)).all():
        raise ValueError(f"{name}: the sublattice s (last entry) must be 0 or 1")
    return arr.astype(np.int64)


def _offsets(offsets, name: str = "offsets") -> np.ndarray:
    """``offsets`` as a finite ``(N, 2)`` float64 array (angstrom)."""
    arr = np.asarray(offsets, dtype=np.float64)
    if arr.ndim == 1 and arr.shape == (2,):
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2) [x, y] in angstrom, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or inf; pass finite beam offsets in angstrom")
    return arr


def site_position(sites) -> np.ndarray:
    """``(N, 2)`` positions ``(x, y)`` in angstrom of ``(N, 3)`` sites ``(i, j, s)``."""
    s = _sites(sites)
    n0 = CC_BOND * bond_directions()[0]
    return s[:, :1] * _A1 + s[:, 1:2] * _A2 + s[:, 2:] * n0


def neighbour_sites(site) -> np.ndarray:
    """``(3, 3)`` sites of neighbours 0, 1, 2 (local-frame order) of one site ``(i, j, s)``."""
    s = _sites(site, "site")
    if len(s) != 1:
        raise ValueError(f"site must be one (i, j, s) triple, got {len(s)}")
    i, j, sub = s[0]
    step = _CELL_STEP[sub]
    return np.column_stack([i + step[:, 0], j + step[:, 1], np.full(3, 1 - sub)])


def neighbour_index(before, after) -> np.ndarray:
    """Which neighbour (0, 1, 2; local frame of ``before``) each ``after`` site is, -1 where
    ``after == before`` (no hop). ``before``, ``after``: ``(N, 3)`` sites. Raises
    ``ValueError`` for a pair that is neither equal nor bonded (more than one hop)."""
    b, a = _sites(before, "before"), _sites(after, "after")
    if b.shape != a.shape:
        raise ValueError(f"before and after must have the same shape, got {b.shape}, {a.shape}")
    steps = _CELL_STEP[b[:, 2]]  # (N, 3, 2)
    match = ((b[:, None, :2] + steps) == a[:, None, :2]).all(-1) & (a[:, None, 2] != b[:, None, 2])
    same = (a == b).all(1)
    bad = ~same & ~match.any(1)
    if bad.any():
        raise ValueError(f"{int(bad.sum())} site pairs are neither equal nor bonded "
                         f"(first at row {int(np.argmax(bad))}); a dwell gives at most one hop")
    return np.where(same, -1, match.argmax(1)).astype(np.int64)


def local_offsets(offsets, sublattice) -> np.ndarray:
    """Beam offsets turned into the Si's local frame: unchanged on sublattice 0, turned by
    180 degrees on sublattice 1. The map is its own inverse (local -> lab the same way).

    Args:
        offsets: ``(N, 2)`` beam position minus Si position, ``(x, y)`` angstrom.
        sublattice: ``(N,)`` or scalar, 0 or 1, the Si's sublattice.
    """
    b = _offsets(offsets)
    s = np.broadcast_to(np.asarray(sublattice), (len(b),))
    if not np.isin(s, (0, 1)).all():
        raise ValueError("sublattice must be 0 or 1")
    return np.where(s[:, None] == 1, -b, b)


@dataclass(frozen=True)
class SiHopRates:
    """The ground-truth hop-rate function (module docstring, point 3).

    Call it with ``(N, 2)`` local-frame offsets (angstrom) to get ``(N, 3)`` rates per
    second toward neighbours 0, 1, 2.
    """

    peak: float = 2.0  # 1/s, rate at the peak, above the floor
    floor: float = 0.02  # 1/s, rate with the beam far away
    peak_offset: float = PEAK_OFFSET  # A, from the Si toward the neighbour
    width_along: float = 0.35  # A, Gaussian width along the bond
    width_across: float = 0.30  # A, across the bond

    def __post_init__(self):
        check_float(self.peak, "peak", 0.0, low_open=True, hint="a rate per second")
        check_float(self.floor, "floor", 0.0, low_open=True,
                    hint="a positive rate per second, so that every hop stays possible")
        check_float(self.peak_offset, "peak_offset", 0.0)
        check_float(self.width_along, "width_along", 0.0, low_open=True)
        check_float(self.width_across, "width_across", 0.0, low_open=True)

    def __call__(self, offsets) -> np.ndarray:
        b = _offsets(offsets)
        u = bond_directions()  # (3, 2)
        perp = u @ np.array([[0.0, 1.0], [-1.0, 0.0]])  # u turned by +90 degrees
        along = b @ u.T - self.peak_offset  # (N, 3)
        across = b @ perp.T
        g = np.exp(-0.5 * (along / self.width_along) ** 2
                   - 0.5 * (across / self.width_across) ** 2)
        return self.floor + self.peak * g


def sample_dwells(rates: np.ndarray, dwell_s, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Sample one dwell per row: the first hop, if any, before the dwell ends.

    Args:
        rates: ``(N, 3)`` hop rates per second toward each neighbour (positive).
        dwell_s: ``(N,)`` or scalar dwell times, seconds.
        rng: numpy generator (two draws per row: waiting time, then neighbour).

    Returns:
        ``neighbour`` ``(N,)`` int64 (-1 for no hop) and ``time_s`` ``(N,)`` float64, the beam
        time spent: the hop time where there was a hop, else the dwell.
    """
    lam = np.asarray(rates, dtype=np.float64)
    if lam.ndim != 2 or lam.shape[1] != 3 or not (np.isfinite(lam).all() and (lam > 0).all()):
        raise ValueError("rates must be an (N, 3) array of positive finite rates per second")
    tau = np.broadcast_to(np.asarray(dwell_s, dtype=np.float64), (len(lam),))
    if not (np.isfinite(tau).all() and (tau > 0).all()):
        raise ValueError("dwell_s must be positive and finite (seconds)")
    total = lam.sum(1)
    wait = rng.exponential(1.0, len(lam)) / total
    u = rng.uniform(0.0, 1.0, len(lam))
    choice = (u[:, None] * total[:, None] > np.cumsum(lam, 1)).sum(1)
    hopped = wait < tau
    return np.where(hopped, np.minimum(choice, 2), -1), np.where(hopped, wait, tau)


@dataclass
class SiTransitions:
    """Dwells of a simulated experiment, as the frames before and after each show them.

    Attributes:
        offsets: ``(N, 2)`` float64, beam position minus Si position in the lab frame,
            ``(x, y)`` angstrom.
        sites_before, sites_after: ``(N, 3)`` int64 Si sites ``(i, j, s)`` before and after.
        dwell_s: ``(N,)`` float64, the planned dwell time of each beam position, s.
        time_s: ``(N,)`` float64, beam time spent (the hop time when the Si hopped), s.
        hop_time_s: ``(N,)`` float64, ground truth: time of the hop in the dwell, NaN if none.
        rates: the ground-truth :class:`SiHopRates`.
        params: the generator's arguments.
    """

    offsets: np.ndarray
    sites_before: np.ndarray
    sites_after: np.ndarray
    dwell_s: np.ndarray
    time_s: np.ndarray
    hop_time_s: np.ndarray
    rates: SiHopRates
    params: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def local_offsets(self) -> np.ndarray:
        """``(N, 2)`` offsets in the Si's local frame (angstrom)."""
        return local_offsets(self.offsets, self.sites_before[:, 2])

    @property
    def neighbour(self) -> np.ndarray:
        """``(N,)`` int64: the neighbour reached (0, 1, 2, local frame), -1 for no hop."""
        return neighbour_index(self.sites_before, self.sites_after)

    @property
    def beam_time_s(self) -> float:
        """Total beam time of the experiment, seconds."""
        return float(self.time_s.sum())


def _disc(rng: np.random.Generator, n: int, radius: float) -> np.ndarray:
    """``(n, 2)`` points uniform in a disc of ``radius`` around the origin."""
    r = radius * np.sqrt(rng.uniform(0.0, 1.0, n))
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    return np.column_stack([r * np.cos(phi), r * np.sin(phi)])


def si_transition_experiment(n_dwells: int = 3000, dwell_s: float = 0.5,
                             max_offset: float = 1.5, rates: SiHopRates | None = None,
                             seed: int = 0) -> SiTransitions:
    """A simulated data-collection experiment: the beam is parked ``n_dwells`` times, each
    time at a random offset (uniform in a disc of ``max_offset`` angstrom around the Si's
    current site) for ``dwell_s`` seconds or until the Si hops; the Si keeps its new site.

    The total beam time is ``result.beam_time_s`` (about ``n_dwells * dwell_s`` less the
    part of each dwell cut short by a hop).
    """
    n = check_int(n_dwells, "n_dwells", 1)
    tau = check_float(dwell_s, "dwell_s", 0.0, low_open=True, hint="seconds")
    radius = check_float(max_offset, "max_offset", 0.0, low_open=True, hint="angstrom")
    rng = np.random.default_rng(check_seed(seed))
    truth = SiHopRates() if rates is None else rates
    lab = _disc(rng, n, radius)
    # the sublattice flips at every hop, so the local frame is known only along the walk
    sites = np.zeros((n + 1, 3), dtype=np.int64)
    time_s, neighbour = np.empty(n), np.empty(n, dtype=np.int64)
    for t in range(n):
        local = local_offsets(lab[t], sites[t, 2])
        k, spent = sample_dwells(truth(local), tau, rng)
        neighbour[t], time_s[t] = k[0], spent[0]
        sites[t + 1] = sites[t] if k[0] < 0 else neighbour_sites(sites[t])[k[0]]
    return SiTransitions(
        offsets=lab, sites_before=sites[:-1].copy(), sites_after=sites[1:].copy(),
        dwell_s=np.full(n, tau), time_s=time_s,
        hop_time_s=np.where(neighbour >= 0, time_s, np.nan), rates=truth,
        params=dict(n_dwells=n, dwell_s=tau, max_offset=radius, seed=seed),
    )


def hop_distances(site, max_hops: int) -> dict[tuple[int, int, int], int]:
    """Hop distance of every site within ``max_hops`` hops of ``site``, as a dict
    ``{(i, j, s): hops}`` (breadth-first search on the honeycomb)."""
    check_int(max_hops, "max_hops", 0)
    start = tuple(int(v) for v in _sites(site, "site")[0])
    steps = [[tuple(int(v) for v in step) for step in table] for table in _CELL_STEP]
    dist = {start: 0}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        if dist[here] == max_hops:
            continue
        i, j, sub = here
        for di, dj in steps[sub]:
            key = (i + di, j + dj, 1 - sub)
            if key not in dist:
                dist[key] = dist[here] + 1
                queue.append(key)
    return dist


def hop_distance(a, b, max_hops: int = 64) -> int:
    """Number of hops between sites ``a`` and ``b`` on the honeycomb (ValueError beyond
    ``max_hops``)."""
    target = tuple(int(v) for v in _sites(b, "b")[0])
    dist = hop_distances(a, max_hops)
    if target not in dist:
        raise ValueError(f"{target} is more than max_hops={max_hops} hops away; raise max_hops")
    return dist[target]


def sites_at_distance(site, hops: int) -> np.ndarray:
    """``(M, 3)`` every site exactly ``hops`` hops from ``site``, sorted."""
    check_int(hops, "hops", 0)
    dist = hop_distances(site, hops)
    return np.array(sorted(k for k, d in dist.items() if d == hops), dtype=np.int64)


@dataclass
class SteeringEpisode:
    """One attempt to move the Si from ``start`` to ``goal`` within a beam-time budget.

    Attributes:
        success: the Si reached ``goal`` within ``budget_s``.
        goal: ``(3,)`` the target site.
        time_s: beam time used (to the goal, or the whole budget), seconds.
        n_dwells: beam positions used.
        path: ``(n_dwells + 1, 3)`` the Si's site after each dwell (the start first).
        offsets: ``(n_dwells, 2)`` lab-frame beam offsets chosen by the policy, angstrom.
    """

    success: bool
    goal: np.ndarray
    time_s: float
    n_dwells: int
    path: np.ndarray
    offsets: np.ndarray


def steer_episode(policy: Callable[[np.ndarray, np.ndarray], np.ndarray], start, goal,
                  budget_s: float, dwell_s: float = 0.5, rates: SiHopRates | None = None,
                  rng: np.random.Generator | None = None) -> SteeringEpisode:
    """Run a beam policy until the Si reaches ``goal`` or the beam-time budget is spent.

    ``policy(site, goal)`` gets the current site and the goal (each ``(3,)`` int64) and returns
    the lab-frame beam offset ``(x, y)`` in angstrom for the next dwell; the simulator then
    samples that dwell with the true ``rates`` (the last dwell is cut to the budget left).
    """
    budget = check_float(budget_s, "budget_s", 0.0, low_open=True, hint="seconds")
    tau = check_float(dwell_s, "dwell_s", 0.0, low_open=True, hint="seconds")
    truth = SiHopRates() if rates is None else rates
    rng = np.random.default_rng(0) if rng is None else rng
    site, target = _sites(start, "start")[0], _sites(goal, "goal")[0]
    path, chosen, used = [site], [], 0.0
    while used < budget and not np.array_equal(site, target):
        offset = _offsets(policy(site.copy(), target.copy()), "the policy's offset")[0]
        k, spent = sample_dwells(truth(local_offsets(offset, site[2])),
                                 min(tau, budget - used), rng)
        used += float(spent[0])
        if k[0] >= 0:
            site = neighbour_sites(site)[k[0]]
        chosen.append(offset)
        path.append(site)
    return SteeringEpisode(
        success=bool(np.array_equal(site, target)), goal=target, time_s=used, n_dwells=len(chosen),
        path=np.array(path, dtype=np.int64), offsets=np.array(chosen).reshape(-1, 2),
    )
