"""Physics of the kinetic ferroelectric lattice and of the three data sets built on it."""

import numpy as np
import pytest
from scipy import ndimage

from helpers.simulate import (
    LandauCoefficients,
    curl,
    domain_walls,
    ferroelectric_switching,
    hysteresis_map,
    landau_khalatnikov,
    temperature_series,
    uniaxial_coercive_field,
    wall_orientation,
)

# ----------------------------------------------------------------------------- curl


def test_curl_of_uniform_field_is_zero():
    P = np.zeros((2, 16, 16))
    P[0], P[1] = 0.3, -0.7
    assert np.allclose(curl(P), 0.0)


def test_curl_of_vortex_is_positive_anticlockwise():
    r, c = np.mgrid[-8:8, -8:8].astype(float)
    # anticlockwise as displayed: right of the centre the arrow points up (-row)
    P = np.stack([-c, r]) / (np.hypot(r, c) + 1.0)
    k = curl(P)
    assert k[8, 8] > 0.5
    assert curl(-P)[8, 8] < -0.5
    assert np.allclose(curl(np.stack([P, -P])), np.stack([k, -k]))  # batch axes


def test_curl_rejects_bad_shapes():
    with pytest.raises(ValueError, match="2, H, W"):
        curl(np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match="NaN"):
        curl(np.full((2, 8, 8), np.nan))


# ----------------------------------------------------------------------------- lattice core


def test_uniform_lattice_relaxes_to_landau_minimum():
    c = LandauCoefficients(a1=-1.0, a2=0.5, a3=1.5, coupling=1.0)
    P = np.zeros((2, 8, 8))
    P[0] = 0.2
    P = landau_khalatnikov(P, 600, c, dt=0.05)
    assert np.allclose(P[0], np.sqrt(1.0 / (2 * 0.5)), atol=1e-3)  # sqrt(-a1 / 2 a2)
    assert np.allclose(P[1], 0.0)


def test_uniform_lattice_switches_at_the_coercive_field():
    c = LandauCoefficients(a1=-1.0, a2=0.5, a3=1.5, coupling=1.0)
    P = np.zeros((2, 8, 8))
    P[0] = -1.0
    n = 8000
    ramp = np.linspace(0.0, 1.2, n)
    field = np.stack([ramp, np.zeros(n)], axis=1)
    _, snaps = landau_khalatnikov(P, n, c, field=field, dt=0.05, record_every=20)
    switched = snaps[:, 0].mean(axis=(1, 2)) > 0
    e_switch = ramp[19::20][np.argmax(switched)]
    e_c = uniaxial_coercive_field(-1.0, 0.5)
    assert abs(e_c - 0.7698) < 1e-3
    assert e_c < e_switch < 1.1 * e_c


def test_landau_khalatnikov_rejects_bad_input():
    with pytest.raises(ValueError, match="2, H, W"):
        landau_khalatnikov(np.zeros((8, 8)), 1)
    with pytest.raises(ValueError, match="rng"):
        landau_khalatnikov(np.zeros((2, 8, 8)), 1, noise=0.1)


# ----------------------------------------------------------------------------- walls


def test_wall_orientation_of_straight_walls():
    r, c = np.mgrid[0:40, 0:40]
    for indicator, expected in [
        ((c > 20).astype(float), np.pi / 2),  # vertical wall on screen
        ((r > 20).astype(float), 0.0),  # horizontal wall
        ((r + c > 40).astype(float), np.pi / 4),  # lower-left to upper-right
    ]:
        walls = domain_walls(indicator.astype(int), width=3)
        walls[:6], walls[-6:], walls[:, :6], walls[:, -6:] = False, False, False, False
        angle = wall_orientation(indicator, walls)
        assert walls.sum() > 20
        err = np.angle(np.exp(2j * (angle[walls] - expected))) / 2
        assert np.all(np.abs(err) < np.deg2rad(5))
        assert np.isnan(angle[~walls]).all()


# ----------------------------------------------------------------------------- temperature


@pytest.fixture(scope="module")
def series():
    # the sharp limit (no spread of the local Tc, no fluctuations): order vanishes at Tc
    return temperature_series(n_temperatures=8, size=24, relax_steps=600, seed=1,
                              tc_spread=0.0, fluctuation=0.0)


def test_order_finite_below_tc_and_vanishing_above(series):
    below, above = series.temperatures < series.tc, series.temperatures > series.tc
    assert below.sum() >= 3 and above.sum() >= 3
    assert np.all(series.mean_abs_p[below] > 0.5)
    assert np.all(series.mean_abs_p[above] < 0.05)
    assert np.all(np.diff(series.mean_abs_p[below]) < 0)  # order shrinks on heating
    assert np.array_equal(series.ordered, below)


def test_temperature_series_images_and_walls(series):
    n, h, w = series.images.shape
    assert (h, w) == (24 * series.upsample, 24 * series.upsample)
    below = series.ordered
    assert series.walls[~below].sum() == 0
    assert np.all(series.walls[below].mean(axis=(1, 2)) > 0.02)
    assert np.all(series.domains[~below] == -1)
    # four tetragonal variants, each along an axis
    P = series.polarization[0]
    interior = ~domain_walls(series.domains[0], width=3)
    along_axis = np.minimum(np.abs(P[0]), np.abs(P[1])) / np.hypot(P[0], P[1])
    assert interior.sum() > 100
    assert np.median(along_axis[interior]) < 0.05
    assert len(np.unique(series.domains[0])) == 4
    spread = series.images.std(axis=(1, 2))
    assert spread[below].min() > 3 * spread[~below].max()


# ----------------------------------------------------------------------------- switching


@pytest.fixture(scope="module")
def switching():
    return ferroelectric_switching(n_frames=8, size=32, seed=2)


def test_switched_fraction_rises_under_bias(switching):
    total = switching.switched_total
    assert total[0] < 0.1 and total[-1] > 0.8
    assert np.all(np.diff(total) >= -0.01)
    assert np.all(np.diff(switching.field) > 0)
    assert np.all(switching.field < switching.coercive_field)  # nucleation at defects only
    assert np.allclose(switching.switched_fraction.mean(axis=(1, 2)), total, atol=1e-6)


def test_pfm_phase_and_amplitude_follow_the_domains(switching):
    t = int(np.argmin(np.abs(switching.switched_total - 0.5)))
    phase, amp = switching.phase[t], switching.amplitude[t]
    sw, walls = switching.switched[t], switching.walls[t]
    inside_up = sw & ~ndimage.binary_dilation(walls, iterations=3)
    inside_down = ~sw & ~ndimage.binary_dilation(walls, iterations=3)
    assert np.median(np.abs(phase[inside_up])) < 0.3
    assert np.median(np.abs(phase[inside_down] - np.pi)) < 0.3
    assert amp[walls].mean() < 0.8 * amp[inside_up | inside_down].mean()
    angle = switching.wall_angle[t]
    assert np.isfinite(angle[walls]).all() and np.isnan(angle[~walls]).all()
    assert np.all((angle[walls] >= 0) & (angle[walls] < np.pi))


# ----------------------------------------------------------------------------- hysteresis


@pytest.fixture(scope="module")
def loops_map():
    return hysteresis_map(size=28, seed=0)


def test_loops_are_closed_with_positive_area(loops_map):
    L = loops_map.loops.reshape(-1, loops_map.loops.shape[-1]).astype(np.float64)
    v = loops_map.voltage
    span = L.max(1) - L.min(1)
    assert np.median(np.abs(L[:, 0] - L[:, -1]) / span) < 0.1
    signed = 0.5 * np.sum(v * np.roll(L, -1, 1) - np.roll(v, -1) * L, axis=1)
    assert np.mean(signed > 0) > 0.95  # anticlockwise in the (V, response) plane


def test_loops_switch_near_the_coercive_field(loops_map):
    far = ~ndimage.binary_dilation(loops_map.walls, iterations=2)
    v_c = loops_map.coercive_field / loops_map.field_per_volt
    up, down = (loops_map.domains == 0) & far, (loops_map.domains == 1) & far
    assert up.sum() > 5 and down.sum() > 5
    # inside c+ domains the tip switches down, inside c- domains up, near the intrinsic
    # coercive voltage (the local tip field and the frozen surroundings shift it a little)
    v_switch = np.concatenate([-loops_map.coercive_voltages[up][:, 0],
                               loops_map.coercive_voltages[down][:, 1]])
    assert 0.6 * v_c < np.nanmedian(v_switch) < 1.4 * v_c


def test_loops_depend_on_the_local_domains(loops_map):
    L, dom = loops_map.loops, loops_map.domains
    # up (c+) domains respond above down (c-) domains over the loop; in-plane (a) domains
    # have no remanent vertical response but the widest loops
    assert L[dom == 0].mean() > L[dom == 1].mean() + 0.5
    span = L.max(-1) - L.min(-1)
    assert span[dom >= 2].mean() > span[dom <= 1].mean()
    assert np.allclose(loops_map.image, loops_map.polarization[0], atol=0.3)
    assert loops_map.walls.mean() > 0.05


# ----------------------------------------------------------------------------- seeds, args


@pytest.mark.parametrize("make", [
    lambda s: temperature_series(n_temperatures=3, size=12, relax_steps=50, seed=s).images,
    lambda s: ferroelectric_switching(n_frames=2, size=12, seed=s).amplitude,
    lambda s: hysteresis_map(size=12, n_voltages=16, seed=s).loops,
])
def test_deterministic_by_seed(make):
    assert np.array_equal(make(4), make(4))
    assert not np.array_equal(make(4), make(5))


@pytest.mark.parametrize("call, word", [
    (lambda: temperature_series(n_temperatures=1), "n_temperatures"),
    (lambda: temperature_series(t_min=400, t_max=300), "t_max"),
    (lambda: temperature_series(coarsening=-0.5), "coarsening"),
    (lambda: temperature_series(coarsening_range=0.0), "coarsening_range"),
    (lambda: ferroelectric_switching(size=4), "size"),
    (lambda: ferroelectric_switching(duration=0), "duration"),
    (lambda: hysteresis_map(seed=-2), "seed"),
    (lambda: hysteresis_map(v_max=0), "v_max"),
])
def test_bad_arguments(call, word):
    with pytest.raises(ValueError, match=word):
        call()


def test_previews_draw(series, switching, loops_map):
    import matplotlib.pyplot as plt

    from helpers.plot import (
        plot_preview_hysteresis,
        plot_preview_switching,
        plot_preview_temperature_series,
    )

    for fig in (plot_preview_temperature_series(series), plot_preview_switching(switching),
                plot_preview_hysteresis(loops_map)):
        assert all(ax.get_xlabel() for ax in fig.axes if ax.get_images() or ax.get_lines())
        plt.close(fig)
    with pytest.raises(ValueError, match="inside"):
        plot_preview_hysteresis(loops_map, sites=[(100, 0)])


# ----------------------------------------------------------------------------- temperature: diffuse


def test_tc_is_drawn_per_seed_off_the_grid_and_its_midpoints():
    tcs = []
    for seed in range(12):
        s = temperature_series(n_temperatures=19, size=8, relax_steps=2, seed=seed)
        step = s.temperatures[1] - s.temperatures[0]
        frac = (s.tc - s.temperatures[0]) / step % 1.0
        # at least a tenth of a step from a grid point (0 or 1) and from a midpoint (0.5)
        assert min(frac, 1 - frac, abs(frac - 0.5)) >= 0.099, (seed, s.tc)
        assert s.temperatures[0] + 0.35 * (s.temperatures[-1] - s.temperatures[0]) < s.tc
        assert s.tc < s.temperatures[0] + 0.65 * (s.temperatures[-1] - s.temperatures[0])
        assert s.params["tc"] == s.tc
        tcs.append(s.tc)
    assert len(set(np.round(tcs, 3))) == len(tcs)  # a fixed Tc cannot be guessed
    fixed = temperature_series(n_temperatures=3, size=8, relax_steps=2, tc=390.5)
    assert fixed.tc == 390.5


@pytest.fixture(scope="module")
def diffuse():
    return temperature_series(size=32, seed=2)


def test_diffuse_transition_is_half_polar_at_tc(diffuse):
    from helpers.analysis.sigmoid_transition import fit_sigmoid_transition

    s = diffuse
    assert np.isclose(np.median(s.local_tc), s.tc)
    partial = (s.polar_fraction > 0.05) & (s.polar_fraction < 0.95)
    assert partial.sum() >= 2  # the polar area shrinks over several temperatures
    assert s.polar_fraction[0] > 0.99 and s.polar_fraction[-1] < 0.01
    fit = fit_sigmoid_transition(s.temperatures, s.polar_fraction)
    assert abs(fit.estimate - s.tc) < 2.5
    assert np.all(s.walls[s.polar_fraction == 0].sum(axis=(1, 2)) == 0)


def test_morphology_changes_below_tc_and_not_monotonically(diffuse):
    s = diffuse
    polar = s.polar_fraction > 0.99
    assert polar.sum() >= 6
    wd = s.wall_density[polar]
    assert wd.std() / wd.mean() > 0.1  # domain size varies between temperatures
    steps = np.sign(np.diff(wd))
    assert (steps > 0).any() and (steps < 0).any()  # not a monotonic function of T
    # smaller domains, more walls
    assert np.corrcoef(np.log(s.domain_size[polar]), wd)[0, 1] < -0.5
    assert s.variant_fractions[polar].std(axis=0).max() > 0.03
    assert np.allclose(s.variant_fractions[polar].sum(1), 1.0)


def test_domains_coarsen_towards_tc_beside_their_scatter():
    from scipy.stats import spearmanr

    # the size is drawn before the relaxation: a tiny, barely relaxed lattice shows it
    rhos = []
    for seed in range(12):
        s = temperature_series(size=8, relax_steps=2, seed=seed)
        below = s.temperatures < s.tc
        rhos.append(spearmanr(s.temperatures[below], s.domain_size[below])[0])
    # larger towards Tc on average over seeds, but not a function of temperature alone
    assert np.mean(rhos) > 0.1 and max(rhos) < 0.95, rhos
    flat = temperature_series(size=8, relax_steps=2, seed=0, domain_scatter=0.0)
    below = flat.temperatures < flat.tc
    assert np.all(np.diff(flat.domain_size[below]) > 0)  # the trend alone: monotonic
    none = temperature_series(size=8, relax_steps=2, seed=0, domain_scatter=0.0,
                              coarsening=0.0)
    assert np.allclose(none.domain_size, none.params["domain_size"])


def test_polar_fluctuations_decay_above_the_local_tc():
    kw = dict(n_temperatures=19, size=24, relax_steps=100, seed=3)
    calm = temperature_series(fluctuation=0.0, **kw)
    fluct = temperature_series(fluctuation=0.3, **kw)
    above = calm.temperatures > calm.local_tc.max()
    assert above.sum() >= 3
    extra = fluct.mean_abs_p[above] - calm.mean_abs_p[above]
    assert extra[0] > 0.02  # polar nanoregions just above the highest local Tc
    assert extra[-1] < 0.2 * extra[0]  # and none far above it


def test_temperature_series_rejects_bad_diffuse_arguments():
    with pytest.raises(ValueError, match="tc_spread"):
        temperature_series(tc_spread=-1.0)
    with pytest.raises(ValueError, match="fluctuation"):
        temperature_series(fluctuation=2.0)
    with pytest.raises(ValueError, match="tc must be"):
        temperature_series(tc=-5.0)


def test_sharp_limit_has_one_local_tc_and_all_or_nothing_polar(series):
    """No spread of the local Tc: every site switches at Tc, so the polar fraction is the
    ordered flag up to a few sites near Tc, and the derived summaries match the maps."""
    assert np.all(series.local_tc == series.tc)
    np.testing.assert_allclose(series.polar_fraction, series.ordered.astype(float), atol=0.01)
    np.testing.assert_array_equal(series.polar_fraction, (series.domains >= 0).mean(axis=(1, 2)))
    np.testing.assert_array_equal(series.wall_density, series.walls.mean(axis=(1, 2)))
    for k in np.flatnonzero(series.ordered):
        counts = np.bincount(series.domains[k][series.domains[k] >= 0], minlength=4)
        np.testing.assert_allclose(series.variant_fractions[k], counts / counts.sum())
