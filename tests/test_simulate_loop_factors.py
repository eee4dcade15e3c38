"""The loop simulator with several local factors: shapes, determinism, each factor's own effect
on the loop, independence of the draws, and the first leg as the only polarity-dependent part."""

import numpy as np
import pytest

from helpers.analysis import r2_score
from helpers.simulate import LOOP_FACTOR_NAMES, loop_factor_map
from helpers.simulate.loop_factors import _branches, _chord_length, _wall_distance_and_nearest


@pytest.fixture(scope="module")
def sim():
    return loop_factor_map(size=48, seed=3)


def test_shapes_and_ground_truth(sim):
    n = sim.params["size"]
    assert sim.image.shape == (n, n) and sim.loops.shape == (n, n, 64)
    assert sim.voltage.shape == (64,) and sim.first_leg.shape == (64,)
    assert set(sim.factors) == set(LOOP_FACTOR_NAMES) and len(LOOP_FACTOR_NAMES) > 2
    for f in (*sim.factors.values(), *sim.loop_params.values()):
        assert f.shape == (n, n) and np.isfinite(f).all()
    assert set(np.unique(sim.domains)) == {0, 1}
    assert sim.walls.any() and not sim.walls.all()


def test_same_seed_same_data_and_other_seed_differs():
    a, b, c = (loop_factor_map(size=24, seed=s) for s in (5, 5, 6))
    assert np.array_equal(a.loops, b.loops) and np.array_equal(a.image, b.image)
    assert not np.allclose(a.loops, c.loops)


def test_first_leg_is_the_only_polarity_dependent_part(sim):
    # c+ sites start up, c- sites down at 0 V; after the first leg both follow the same cycle
    up = sim.domains == 0
    start = sim.loops[..., 0]
    assert start[up].mean() > 0.5 and start[~up].mean() < -0.5
    model = sim.loop_params
    v = sim.voltage[None, None, :]
    upper, lower = _branches(v, model["amplitude"][..., None], model["coercive"][..., None],
                             model["shift"][..., None], model["width"][..., None])
    rising = np.diff(np.append(sim.voltage, sim.voltage[0])) > 0
    rest = np.where(rising[None, None, :], lower, upper)[..., ~sim.first_leg]
    noise = sim.params["noise"]
    assert np.abs(sim.loops[..., ~sim.first_leg] - rest).max() < 6 * noise
    assert sim.first_leg[:5].all() and not sim.first_leg[-5:].any()


def test_each_factor_has_its_own_effect():
    # one factor changed at a time (the others held), through the public loop model
    base = loop_factor_map(size=32, seed=1)
    lp = base.loop_params
    near = base.factors["wall_distance"] < 1
    assert lp["coercive"][near].mean() < lp["coercive"][~near].mean() - 0.5
    small = base.factors["domain_size"] < np.quantile(base.factors["domain_size"], 0.2)
    assert lp["amplitude"][small].mean() < lp["amplitude"][~small].mean() - 0.05
    pinned = base.factors["pinning_density"] > 0.3
    assert lp["width"][pinned].mean() > lp["width"][~pinned].mean() + 0.2
    expected_shift = base.params["curvature_shift"] * base.factors["wall_curvature"]
    assert r2_score(lp["shift"].ravel(), expected_shift.ravel()) > 0.8
    # exactly: each loop parameter is its documented function of its own factor
    f, prm = base.factors, base.params
    np.testing.assert_allclose(
        lp["coercive"], prm["coercive"] * (1 - 0.7 * np.exp(-f["wall_distance"] / 2)))
    np.testing.assert_allclose(lp["amplitude"], 1 - 0.8 * np.exp(-f["domain_size"] / 10))
    np.testing.assert_allclose(lp["width"], prm["width"] * (1 + 6 * f["pinning_density"]))
    np.testing.assert_allclose(lp["shift"], expected_shift + base.hidden_imprint)
    # the measured coercive voltages follow the model's: half-width and centre of each loop
    vc = base.coercive_voltages
    ok = np.isfinite(vc).all(-1)
    half = 0.5 * (vc[..., 1] - vc[..., 0])
    assert np.corrcoef(half[ok], lp["coercive"][ok])[0, 1] > 0.9


def test_factors_vary_independently(sim):
    f = np.stack([v.ravel() for v in sim.factors.values()])
    corr = np.corrcoef(f)
    off = np.abs(corr[~np.eye(len(f), dtype=bool)])
    assert off.max() < 0.7, corr.round(2)
    # the geometric factors share the domain pattern (a site far from walls sits in a large
    # domain), but the pinning density is drawn from its own field: nearly uncorrelated
    assert np.abs(corr[-1, :-1]).max() < 0.2, corr.round(2)


def test_wall_distance_and_chords_on_a_stripe():
    up = np.zeros((12, 12), dtype=bool)
    up[:, 3:7] = True  # a c+ stripe four sites wide, periodic
    dist, rows, cols = _wall_distance_and_nearest(up)
    assert dist[0, 3] == pytest.approx(0.5) and dist[0, 4] == pytest.approx(1.5)
    assert dist[0, 9] == pytest.approx(2.5)  # the c- stripe is 8 wide: centre 2.5 from a wall
    assert not up[rows[0, 4], cols[0, 4]]  # the nearest site of the other polarity
    chord = _chord_length(up)
    assert chord[0, 4] == pytest.approx(0.5 * (4 + 12))
    assert chord[0, 0] == pytest.approx(0.5 * (8 + 12))


def test_bad_arguments_name_the_fix():
    with pytest.raises(ValueError, match="v_max"):
        loop_factor_map(size=16, v_max=4.0)
    with pytest.raises(ValueError, match="size"):
        loop_factor_map(size=4)
    with pytest.raises(ValueError, match="seed"):
        loop_factor_map(size=16, seed=-1)

