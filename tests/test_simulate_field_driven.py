"""The field-driven ferroelectric lattice: the curl responds to the field as the physics says,
and the trajectory families are what they claim to be."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from helpers.simulate import (
    FAMILIES,
    PARAM_BOUNDS,
    curl,
    curl_objective,
    driven_lattice,
    relaxor_lattice,
    run_trajectories,
    trajectory_families,
    trajectory_from_params,
)


def _rotating(amplitude, sense=1.0, cycles=1.0):
    return trajectory_from_params([[amplitude, cycles, sense, 0.0, 0.8]])


def test_without_defects_a_uniform_field_creates_no_curl():
    # a uniform field cannot break translation symmetry: a defect-free lattice stays uniform
    lattice = driven_lattice(size=12, seed=0, defect_density=0.0)
    fields = trajectory_families(8, seed=3).fields
    result = run_trajectories(fields, lattice)
    np.testing.assert_allclose(curl_objective(result.polarization), 0.0, atol=1e-6)
    assert result.curl_history.max() < 1e-6


def test_signed_curl_sums_to_zero_on_the_periodic_lattice():
    lattice = driven_lattice(size=12, seed=1)
    P = run_trajectories(_rotating(0.5), lattice).polarization
    c = curl(P)
    assert np.abs(c).sum() > 1.0  # there is curl, of both signs
    assert abs(c.sum()) < 1e-9


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_curl_peaks_at_intermediate_rotating_field(seed):
    # below the switching field the poled state barely moves, far above it the lattice is
    # dragged round coherently; vortices form in between, where defects decide locally
    lattice = driven_lattice(size=16, seed=seed)
    fields = np.concatenate([_rotating(0.0), _rotating(0.5), 3.0 * _rotating(1.6)])
    none, middle, strong = curl_objective(run_trajectories(fields, lattice).polarization)
    assert middle > 1.3 * none
    assert middle > 1.5 * strong


def _roughness(y):
    """Summed |second difference| along a scan, in units of the scan's range."""
    return np.abs(np.diff(y, 2)).sum() / (y.max() - y.min())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_time_averaged_curl_is_smoother_than_the_remanent_curl_with_an_interior_peak(seed):
    # whether a domain has switched by the end of the run is a threshold event, so the
    # remanent curl jumps along an amplitude scan; the average over the run changes gradually
    lattice = driven_lattice(size=16, seed=seed)
    amps = np.linspace(0.0, 1.6, 33)
    result = run_trajectories(np.concatenate([_rotating(a) for a in amps]), lattice)
    averaged = result.integrated_curl
    np.testing.assert_allclose(averaged, result.curl_history.mean(1))
    assert _roughness(averaged) < 0.6 * _roughness(curl_objective(result.polarization))
    assert 2 <= averaged.argmax() <= 30  # neither no field nor the strongest
    assert averaged.max() > 1.2 * averaged[0]


def test_mirroring_lattice_and_field_mirrors_the_state_and_flips_the_curl():
    # mirror across the row axis: column j -> -j, P1 -> -P1; a rotating field turns the other
    # way. Exact without the bound-charge term, whose backward differences pick a direction.
    lattice = driven_lattice(size=12, seed=2)
    lattice = dataclasses.replace(lattice, coefficients=dataclasses.replace(
        lattice.coefficients, div_penalty=0.0))

    def mirror(a):  # (..., 2, H, W)
        m = np.flip(np.roll(a, -1, axis=-1), axis=-1).copy()  # j -> -j (mod W)
        m[..., 1, :, :] *= -1
        return m

    mirrored = dataclasses.replace(lattice, defects=mirror(lattice.defects),
                                   initial=mirror(lattice.initial))
    P = run_trajectories(_rotating(0.6, sense=1.0), lattice).polarization
    Pm = run_trajectories(_rotating(0.6, sense=-1.0), mirrored).polarization
    np.testing.assert_allclose(Pm, mirror(P), atol=1e-9)
    c, cm = curl(P[0]), curl(Pm[0])
    np.testing.assert_allclose(cm, -np.flip(np.roll(c, -1, axis=-1), axis=-1), atol=1e-9)


def test_same_seed_same_lattice_and_result():
    a, b = driven_lattice(size=8, seed=5), driven_lattice(size=8, seed=5)
    np.testing.assert_array_equal(a.defects, b.defects)
    fields = _rotating(0.7)
    np.testing.assert_array_equal(run_trajectories(fields, a).polarization,
                                  run_trajectories(fields, b).polarization)
    assert not np.array_equal(a.defects, driven_lattice(size=8, seed=6).defects)


def test_the_batch_size_changes_no_number():
    lattice = relaxor_lattice(size=8, seed=3)
    fields = trajectory_families(11, n_times=16, seed=2).fields
    one, many = (run_trajectories(fields, lattice, batch_size=b) for b in (1, 4))
    np.testing.assert_array_equal(one.polarization, many.polarization)
    np.testing.assert_array_equal(one.curl_history, many.curl_history)


def test_families_have_their_defining_shapes():
    ts = trajectory_families(200, n_times=64, seed=0)
    assert ts.fields.shape == (200, 64, 2) and len(ts) == 200
    assert np.bincount(ts.family, minlength=4).tolist() == [50] * 4
    low, high = PARAM_BOUNDS[:, 0], PARAM_BOUNDS[:, 1]
    assert ((ts.params >= low) & (ts.params <= high)).all()
    f = ts.fields
    rot = ts.family == FAMILIES.index("rotating")
    # a rotating field turns at constant angular rate with |E| following the envelope
    mag = np.hypot(f[rot, :, 0], f[rot, :, 1])
    t = (np.arange(64) + 0.5) / 64
    env = ts.params[rot, :1] * np.exp(-0.5 * ((t - 0.5) / ts.params[rot, 4:5]) ** 2)
    np.testing.assert_allclose(mag, env, atol=1e-12)
    # its sense: e = +1 turns anticlockwise as displayed (E0 along rows, pointing down)
    cross = f[rot, :-1, 0] * f[rot, 1:, 1] - f[rot, :-1, 1] * f[rot, 1:, 0]
    assert (np.sign(cross.sum(1)) == ts.params[rot, 2]).all()
    sin = ts.family == FAMILIES.index("sinusoid")
    assert np.abs(f[sin, :, 1]).max() == 0.0  # linear, along the rows
    pulse = ts.family == FAMILIES.index("pulse")
    direction = np.arctan2(f[pulse, :, 1], f[pulse, :, 0])  # fixed direction = the phase
    spread = np.abs(np.angle(np.exp(1j * (direction - ts.params[pulse, 3:4]))))
    assert spread.max() < 1e-9
    # pulses range from short kicks to holds over most of the trajectory
    assert ts.params[pulse, 4].min() < 0.2 and ts.params[pulse, 4].max() > 0.6


@pytest.mark.parametrize("fields, word", [
    (np.zeros((3, 1, 2)), "shape"),
    (np.zeros((3, 8, 3)), "shape"),
    (np.full((1, 8, 2), np.nan), "NaN"),
    (np.full((1, 8, 2), 9.0), "unstable"),
])
def test_bad_trajectories_are_named(fields, word):
    with pytest.raises(ValueError, match=word):
        run_trajectories(fields, driven_lattice(size=8))


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="amplitude"):
        trajectory_from_params([[3.0, 1.0, 0.0, 0.0, 0.5]])
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        trajectory_from_params(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="size"):
        driven_lattice(size=2)
    with pytest.raises(ValueError, match="defect_density"):
        driven_lattice(defect_density=1.5)


def _constant(amplitudes, angle=0.3):
    """``(N, 64, 2)`` constant fields of the given strengths along ``angle`` (radians)."""
    a = np.asarray(amplitudes, dtype=np.float64)[:, None, None]
    return np.broadcast_to(a * [np.cos(angle), np.sin(angle)], (len(a), 64, 2)).copy()


def test_relaxor_lattice_has_no_curl_without_field_or_without_disorder():
    lattice = relaxor_lattice(size=12, seed=0)
    assert np.abs(lattice.initial).max() == 0.0 and np.abs(lattice.defects).max() == 0.0
    idle = run_trajectories(np.zeros((1, 64, 2)), lattice)
    assert idle.curl_history.max() == 0.0 and np.abs(idle.polarization).max() == 0.0
    uniform = relaxor_lattice(size=12, seed=0, a1_spread=0.0)
    result = run_trajectories(trajectory_families(8, seed=3).fields, uniform)
    assert result.curl_history.max() < 1e-9
    # the disorder is what turns a field into curl
    assert run_trajectories(_constant([0.6]), lattice).integrated_curl[0] > 0.02


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_relaxor_curl_peaks_at_an_intermediate_field(seed):
    # a weak field induces little polarisation, a strong one saturates every site alike
    lattice = relaxor_lattice(size=16, seed=seed)
    weak, middle, strong = run_trajectories(_constant([0.005, 1.2, 4.9]),
                                            lattice).integrated_curl
    assert middle > 3 * weak
    assert middle > 1.1 * strong


def test_relaxor_lattice_is_reproducible_and_checks_its_arguments():
    a, b = relaxor_lattice(size=8, seed=5), relaxor_lattice(size=8, seed=5)
    np.testing.assert_array_equal(a.coefficients.a1, b.coefficients.a1)
    assert not np.array_equal(a.coefficients.a1, relaxor_lattice(size=8, seed=6).coefficients.a1)
    assert np.isclose(a.coefficients.a1.mean(), 0.5, atol=0.2)
    with pytest.raises(ValueError, match="a1_spread"):
        relaxor_lattice(a1_spread=-0.1)
    with pytest.raises(ValueError, match="size"):
        relaxor_lattice(size=2)


def test_sample_time_is_a_whole_number_of_euler_steps():
    lattice = relaxor_lattice(size=8, seed=0)  # duration 10, dt 0.05
    assert lattice.sample_time(64) == pytest.approx(0.15)  # 3 steps, not 10 / 64
    assert lattice.sample_time(1000) == pytest.approx(lattice.dt)  # at least one step
    with pytest.raises(ValueError, match="n_times"):
        lattice.sample_time(0)
