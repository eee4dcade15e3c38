"""Steering a Si dopant through graphene with the beam: a greedy controller on a rate model,
the random-beam baseline, and the success rate over episodes.

The controller lives with the models because it acts on a (learned) rate model; it works the
same with the ground-truth :class:`~helpers.simulate.si_dopant.SiHopRates` (the upper bound).
Offsets are ``(x, y)`` angstrom as in :mod:`helpers.simulate.si_dopant`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..simulate.si_dopant import (
    SiHopRates,
    SteeringEpisode,
    hop_distances,
    local_offsets,
    neighbour_sites,
    site_position,
    sites_at_distance,
    steer_episode,
)

__all__ = ["GreedySteering", "RandomBeam", "SteeringSummary", "offset_grid", "steering_trials"]


def offset_grid(radius: float, spacing: float) -> np.ndarray:
    """``(M, 2)`` square-grid offsets ``(x, y)`` (angstrom) inside a disc of ``radius``."""
    if not (radius > 0 and spacing > 0):
        raise ValueError(f"radius and spacing must be positive angstrom, got {radius}, {spacing}")
    axis = np.arange(-radius, radius + spacing / 2, spacing)
    xx, yy = np.meshgrid(axis, axis)
    grid = np.column_stack([xx.ravel(), yy.ravel()])
    return grid[np.hypot(grid[:, 0], grid[:, 1]) <= radius + 1e-9]


class GreedySteering:
    """Park the beam where the rate model's hop rate toward the next site is largest.

    The next site is a neighbour one hop closer to the goal (of several, the one whose best
    rate is largest); the beam goes to the candidate offset that maximises the model's rate
    toward it. Because the rate function is the same at every site in the local frame, the
    best offset per neighbour is found once, on a grid, when the controller is built.

    Args:
        rates: a model with ``predict(offsets)`` returning an object with ``.rates`` (such
            as :class:`~helpers.models.rates.RateEnsemble`), or a callable
            ``offsets (M, 2) -> rates (M, 3)`` (such as the ground-truth ``SiHopRates``).
        max_offset: radius of the candidate disc, angstrom (keep it inside the region the
            model was trained on). spacing: candidate grid step, angstrom.
        max_hops: sites farther than this from the goal head straight toward it instead.
    """

    def __init__(self, rates, max_offset: float = 1.5, spacing: float = 0.05,
                 max_hops: int = 20):
        predict = getattr(rates, "predict", None)
        rate_fn: Callable = (lambda b: predict(b).rates) if predict is not None else rates
        if not callable(rate_fn):
            raise ValueError("rates must be a model with predict() or a callable "
                             "offsets (M, 2) -> rates (M, 3)")
        grid = offset_grid(max_offset, spacing)
        table = np.asarray(rate_fn(grid), dtype=np.float64)
        if table.shape != (len(grid), 3) or not np.isfinite(table).all():
            raise ValueError(f"the rate model must return finite (M, 3) rates, got {table.shape}")
        best = table.argmax(0)
        #: (3, 2) local-frame offset that maximises the rate toward each neighbour, angstrom
        self.best_offsets = grid[best]
        #: (3,) the model's rate there, per second
        self.best_rates = table[best, np.arange(3)]
        self.max_hops = int(max_hops)
        self._distances: dict = {}

    def next_neighbour(self, site: np.ndarray, goal: np.ndarray) -> int:
        """Index (local frame of ``site``) of the neighbour to hop to next."""
        key = tuple(int(v) for v in goal)
        if key not in self._distances:
            self._distances[key] = hop_distances(goal, self.max_hops)
        dist = self._distances[key]
        neighbours = neighbour_sites(site)
        here = dist.get(tuple(int(v) for v in site))
        if here is None:  # far away: the neighbour nearest the goal in space
            gap = np.linalg.norm(site_position(neighbours) - site_position(goal), axis=1)
            return int(np.argmin(gap))
        closer = [k for k in range(3)
                  if dist.get(tuple(int(v) for v in neighbours[k]), here + 1) < here]
        return max(closer, key=lambda k: self.best_rates[k])

    def __call__(self, site: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Lab-frame beam offset ``(2,)`` angstrom for the Si at ``site`` heading to ``goal``."""
        k = self.next_neighbour(site, goal)
        return local_offsets(self.best_offsets[k], site[2])[0]


class RandomBeam:
    """The baseline: the beam parked uniformly at random in a disc of ``max_offset`` A
    around the Si, whatever the goal (draws from its own generator)."""

    def __init__(self, max_offset: float = 1.5, seed: int = 0):
        if not max_offset > 0:
            raise ValueError(f"max_offset must be positive angstrom, got {max_offset}")
        self.max_offset = float(max_offset)
        self.rng = np.random.default_rng(seed)

    def __call__(self, site: np.ndarray, goal: np.ndarray) -> np.ndarray:
        r = self.max_offset * np.sqrt(self.rng.uniform())
        phi = self.rng.uniform(0.0, 2.0 * np.pi)
        return np.array([r * np.cos(phi), r * np.sin(phi)])


@dataclass
class SteeringSummary:
    """Episodes of one controller.

    Attributes:
        success_rate: fraction of episodes that reached the goal within the budget.
        median_time_s: median beam time of the successful episodes, s (NaN if none).
        mean_dwells: mean number of beam positions per episode.
        episodes: the :class:`SteeringEpisode` of each trial.
    """

    success_rate: float
    median_time_s: float
    mean_dwells: float
    episodes: list[SteeringEpisode]


def steering_trials(policy, n_episodes: int, hops: int = 5, budget_s: float = 20.0,
                    dwell_s: float = 0.5, rates: SiHopRates | None = None,
                    seed: int = 0) -> SteeringSummary:
    """Run ``policy`` from site ``(0, 0, 0)`` to ``n_episodes`` goals drawn uniformly among the
    sites exactly ``hops`` hops away, each within ``budget_s`` seconds of beam time, with the
    true ``rates`` deciding the hops. The same ``seed`` gives every controller the same goals
    and the same random numbers for the hops."""
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    start = np.zeros(3, dtype=np.int64)
    targets = sites_at_distance(start, hops)
    rng = np.random.default_rng(seed)
    goals = targets[rng.integers(len(targets), size=n_episodes)]
    episodes = [steer_episode(policy, start, goal, budget_s, dwell_s, rates,
                              rng=np.random.default_rng([seed, i]))
                for i, goal in enumerate(goals)]
    wins = [e.time_s for e in episodes if e.success]
    return SteeringSummary(
        success_rate=float(np.mean([e.success for e in episodes])),
        median_time_s=float(np.median(wins)) if wins else float("nan"),
        mean_dwells=float(np.mean([e.n_dwells for e in episodes])),
        episodes=episodes,
    )
