"""The switching sequence whose domain complexity is drawn independently of the switching."""

import numpy as np
import pytest

from helpers import data
from helpers.simulate import switching_complexity_sequence


@pytest.fixture(scope="module")
def seq():
    return switching_complexity_sequence(n_frames=8, size=128, seed=3)


def test_shapes_types_and_truth(seq):
    t, h, w = 8, 128, 128
    assert len(seq) == t
    for name in ("amplitude", "phase", "switched_fraction", "wall_angle"):
        assert getattr(seq, name).shape == (t, h, w) and getattr(seq, name).dtype == np.float32
    assert seq.switched.dtype == bool and seq.walls.dtype == bool
    assert seq.complexity.shape == (h, w) and seq.complexity_local.shape == (h, w)
    assert 0.0 <= seq.complexity.min() and seq.complexity.max() <= 1.0
    assert np.all(np.isnan(seq.wall_angle[~seq.walls]))
    assert np.all((seq.phase >= -np.pi / 2) & (seq.phase < 3 * np.pi / 2))


def test_same_seed_same_data_other_seed_other_data():
    a = switching_complexity_sequence(n_frames=3, size=64, seed=1)
    b = switching_complexity_sequence(n_frames=3, size=64, seed=1)
    c = switching_complexity_sequence(n_frames=3, size=64, seed=2)
    assert np.array_equal(a.amplitude, b.amplitude) and np.array_equal(a.switched, b.switched)
    assert not np.array_equal(a.complexity, c.complexity)


def test_the_bias_drives_the_switching_and_domains_only_grow(seq):
    assert np.all(np.diff(seq.field) > 0)
    assert seq.switched_total[0] < 0.1 and seq.switched_total[-1] > 0.9
    # nested frames: a switched pixel stays switched
    assert np.all(seq.switched[1:] >= seq.switched[:-1])
    # the phase reads the switched state: about 0 switched, about pi as poled
    resp = seq.amplitude * np.cos(seq.phase)
    assert np.corrcoef(resp.ravel(), seq.switched.ravel())[0, 1] > 0.8


def test_complexity_is_independent_of_the_switching():
    s = switching_complexity_sequence(n_frames=10, size=256, seed=0)
    gc = s.complexity.ravel()
    # the regional landscape is projected off the complexity: exactly uncorrelated
    assert abs(np.corrcoef(gc, s.landscape.ravel())[0, 1]) < 1e-6
    # the coercive-field distribution, hence the switching pace, is the same at low and high
    # complexity: the switched fractions of the two halves agree frame by frame
    low, high = s.complexity < 0.5, s.complexity >= 0.5
    f_low = s.switched[:, low].mean(axis=1)
    f_high = s.switched[:, high].mean(axis=1)
    assert np.max(np.abs(f_low - f_high)) < 0.12
    frac = s.switched_fraction[:, ::8, ::8].ravel()
    c = np.broadcast_to(s.complexity_local[::8, ::8], s.switched_fraction[:, ::8, ::8].shape)
    assert abs(np.corrcoef(c.ravel(), frac)[0, 1]) < 0.1


def test_complexity_makes_walls_tortuous():
    s = switching_complexity_sequence(n_frames=10, size=256, seed=0)
    k = int(np.argmin(np.abs(s.switched_total - 0.5)))
    low, high = s.complexity < 0.25, s.complexity > 0.75
    # at the same switched fraction, high-complexity regions hold far more wall per area
    assert s.walls[k][high].mean() > 2.0 * s.walls[k][low].mean()
    # with no pinning the complexity changes nothing: the walls are equally dense
    flat = switching_complexity_sequence(n_frames=10, size=256, seed=0, pinning=0.0)
    ratio = flat.walls[k][high].mean() / flat.walls[k][low].mean()
    assert 0.5 < ratio < 2.0


def test_bad_arguments_name_the_fix():
    with pytest.raises(ValueError, match="field_end"):
        switching_complexity_sequence(field_start=1.0, field_end=0.9)
    with pytest.raises(ValueError, match="switch_window"):
        switching_complexity_sequence(size=64, switch_window=80)
    with pytest.raises(ValueError, match="pinning"):
        switching_complexity_sequence(pinning=1.5)
    with pytest.raises(ValueError, match="size"):
        switching_complexity_sequence(size=16)


def test_manifest_entry_loads_the_generator():
    d = data.load("pfm_switching_complexity", smoke=True)
    params = data.describe("pfm_switching_complexity")["simulate"]
    direct = switching_complexity_sequence(**{**params["params"], **params["smoke_params"]})
    assert np.array_equal(d.amplitude, direct.amplitude)
