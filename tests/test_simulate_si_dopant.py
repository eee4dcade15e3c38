"""The Si-in-graphene hop simulator: lattice geometry, the documented rate function, and hop
statistics that match it."""

import numpy as np
import pytest

from helpers.simulate import (
    PEAK_OFFSET,
    SiHopRates,
    bond_directions,
    neighbour_sites,
    si_transition_experiment,
    site_position,
    sites_at_distance,
)
from helpers.simulate.si_dopant import (
    hop_distance,
    local_offsets,
    neighbour_index,
    sample_dwells,
    steer_episode,
)


@pytest.mark.parametrize("site", [(0, 0, 0), (0, 0, 1), (3, -2, 0), (-1, 4, 1)])
def test_neighbours_are_bonded_along_the_local_frame(site):
    nbs = neighbour_sites(site)
    step = site_position(nbs) - site_position(site)
    assert np.allclose(np.linalg.norm(step, axis=1), 1.42)
    # neighbour k lies along bond k of the local frame: turned by 180 degrees on sublattice 1
    expected = 1.42 * local_offsets(bond_directions(), np.full(3, site[2]))
    assert np.allclose(step, expected)
    assert (neighbour_index(np.tile(site, (3, 1)), nbs) == [0, 1, 2]).all()
    for nb in nbs:  # the way back is a bond of the neighbour
        assert any((back == site).all() for back in neighbour_sites(nb))


def test_hop_distances_on_the_honeycomb():
    origin = (0, 0, 0)
    for n in range(1, 6):  # the honeycomb has 3n sites at n hops
        ring = sites_at_distance(origin, n)
        assert len(ring) == 3 * n
        assert all(hop_distance(origin, s) == n for s in ring[:4])
    assert hop_distance((0, 0, 0), (2, 1, 1)) == hop_distance((2, 1, 1), (0, 0, 0))


def test_each_rate_peaks_0_85_angstrom_toward_its_neighbour():
    rates = SiHopRates()
    axis = np.arange(-1.5, 1.5001, 0.01)
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    lam = rates(grid)
    for k, u in enumerate(bond_directions()):
        assert np.allclose(grid[lam[:, k].argmax()], PEAK_OFFSET * u, atol=0.011)
        assert np.isclose(lam[:, k].max(), rates.peak + rates.floor, rtol=1e-3)
    assert np.allclose(rates(np.array([[5.0, 5.0]])), rates.floor)
    # three-fold symmetry: turning the offset by 120 degrees turns the neighbours
    turn = np.array([[np.cos(2 * np.pi / 3), -np.sin(2 * np.pi / 3)],
                     [np.sin(2 * np.pi / 3), np.cos(2 * np.pi / 3)]])
    assert np.allclose(rates(grid @ turn.T), np.roll(lam, 1, axis=1))


@pytest.mark.parametrize("offset", [(0.0, 0.0), (0.74, 0.42), (-0.3, -0.6)])
def test_hop_frequencies_match_the_rates(offset):
    """Waiting time exponential in the total rate, neighbour in proportion to its rate."""
    rates = SiHopRates()
    lam = rates(np.array([offset]))[0]
    n, tau = 40_000, 0.5
    k, spent = sample_dwells(np.tile(lam, (n, 1)), tau, np.random.default_rng(1))
    total = lam.sum()
    p_hop = 1 - np.exp(-total * tau)
    p = np.append(1 - p_hop, p_hop * lam / total)  # no hop, then neighbours 0, 1, 2
    counts = np.bincount(k + 1, minlength=4)
    sd = np.sqrt(n * p * (1 - p))
    assert np.all(np.abs(counts - n * p) < 5 * sd + 1), (counts, n * p)
    # the hop times follow the exponential truncated at the dwell
    hopped = spent[k >= 0]
    mean = 1 / total - tau * np.exp(-total * tau) / p_hop
    assert abs(hopped.mean() - mean) < 5 * hopped.std() / np.sqrt(len(hopped))
    assert np.all(spent[k < 0] == tau)


def test_experiment_outcomes_are_calibrated_against_the_truth():
    exp = si_transition_experiment(6000, dwell_s=0.5, seed=3)
    assert len(exp) == 6000 and exp.offsets.shape == (6000, 2)
    assert np.all(np.hypot(*exp.offsets.T) <= 1.5)
    k = exp.neighbour
    # the walk is consistent: each dwell starts where the previous one ended
    assert (exp.sites_before[1:] == exp.sites_after[:-1]).all()
    assert np.array_equal(np.isnan(exp.hop_time_s), k < 0)
    lam = exp.rates(exp.local_offsets)
    p_hop = 1 - np.exp(-lam.sum(1) * exp.dwell_s)
    # binned by predicted hop probability, observed hop fractions follow the prediction
    bins = np.digitize(p_hop, [0.1, 0.3, 0.6])
    for b in range(4):
        sel = bins == b
        expected, observed = p_hop[sel].mean(), (k[sel] >= 0).mean()
        assert abs(observed - expected) < 5 * np.sqrt(expected * (1 - expected) / sel.sum())
    # among the hops, neighbour j is reached in proportion to its share of the total rate
    hopped = k >= 0
    share = lam[hopped] / lam[hopped].sum(1, keepdims=True)
    for j in range(3):
        for lo, hi in ((0.0, 0.2), (0.2, 0.8), (0.8, 1.0)):
            sel = (share[:, j] >= lo) & (share[:, j] < hi)
            expected, observed = share[sel, j].mean(), (k[hopped][sel] == j).mean()
            sd = np.sqrt(max(expected * (1 - expected), 0.01) / sel.sum())
            assert abs(observed - expected) < 5 * sd, (j, lo, hi, observed, expected)
    assert np.isclose(exp.beam_time_s, exp.time_s.sum()) and exp.beam_time_s < 6000 * 0.5


def test_same_seed_same_experiment():
    a, b = si_transition_experiment(200, seed=7), si_transition_experiment(200, seed=7)
    c = si_transition_experiment(200, seed=8)
    assert np.array_equal(a.offsets, b.offsets) and np.array_equal(a.sites_after, b.sites_after)
    assert not np.array_equal(a.offsets, c.offsets)


def test_episode_stops_at_the_budget_and_at_the_goal():
    start, goal = np.zeros(3, dtype=np.int64), neighbour_sites((0, 0, 0))[2]
    far = steer_episode(lambda site, goal: np.array([9.0, 9.0]), start, goal, budget_s=3.0,
                        dwell_s=0.5, rng=np.random.default_rng(0))
    assert np.isclose(far.time_s, 3.0) or far.success
    aimed = steer_episode(lambda site, goal: PEAK_OFFSET * bond_directions()[2], start, goal,
                          budget_s=50.0, dwell_s=0.5, rng=np.random.default_rng(0))
    assert aimed.success and (aimed.path[-1] == goal).all() and aimed.time_s < 50.0


@pytest.mark.parametrize("call, match", [
    (lambda: si_transition_experiment(0), "n_dwells"),
    (lambda: si_transition_experiment(10, dwell_s=-1.0), "dwell_s"),
    (lambda: SiHopRates(floor=0.0), "floor"),
    (lambda: SiHopRates()(np.zeros((4, 3))), r"\(N, 2\)"),
    (lambda: neighbour_sites((0, 0, 2)), "sublattice"),
    (lambda: neighbour_index([[0, 0, 0]], [[5, 5, 1]]), "neither equal nor bonded"),
    (lambda: local_offsets([[np.nan, 0.0]], 0), "NaN"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
