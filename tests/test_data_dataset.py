"""helpers.data.load: original files load as a Dataset, with the simulator's names where the
arrays correspond (files are built locally; nothing is downloaded)."""

from __future__ import annotations

import io
import json
import pickle
import warnings

import numpy as np
import pytest
from support import npy_bytes, sha

import helpers.data as data
import helpers.simulate as simulate


@pytest.fixture
def suite(suite_manifest_path):
    def write(datasets: dict):
        suite_manifest_path.write_text(json.dumps({"version": 1, "datasets": datasets}))

    return write


def entry(key, name, payload, fmt="npy"):
    # a URL nobody serves: the files are put in the cache, never downloaded
    return {"key": key, "name": name, "url": "http://127.0.0.1:9/never", "sha256": sha(payload),
            "size": None, "format": fmt, "shape": None}


def put(dataset_name: str, files: dict[str, bytes]) -> None:
    folder = data.cache_dir() / dataset_name
    folder.mkdir(parents=True, exist_ok=True)
    for name, payload in files.items():
        (folder / name).write_bytes(payload)


def graphene_files(swap: bool = False):
    """A 2-frame stand-in of the paper's three files: frames (T, H, W, 1), network output
    (T, H, W, 3) with channels [C, Si, background], and a pickled {frame: (N, 3)} dict of
    [row, col, class 0 = C / 1 = Si] (written as (col, row) when ``swap``)."""
    rng = np.random.default_rng(0)
    t, h, w = 2, 24, 32
    frames = rng.random((t, h, w, 1)).astype(np.float32)
    decoded = np.zeros((t, h, w, 3), np.float32)
    decoded[..., 2] = 1.0  # background everywhere ...
    coords = {}
    for k in range(t):
        rc = np.column_stack([rng.integers(2, h - 2, 6), rng.integers(2, w - 2, 6)]).astype(float)
        cls = np.array([0, 0, 0, 0, 1, 0], float)
        decoded[k, rc[:, 0].astype(int), rc[:, 1].astype(int)] = [0.8, 0.1, 0.1]  # ... but atoms
        coords[float(k)] = np.column_stack([rc[:, ::-1] if swap else rc, cls])
    buf = io.BytesIO()
    np.save(buf, np.array(coords, dtype=object), allow_pickle=True)
    return frames, decoded, coords, {"f.npy": npy_bytes(frames), "d.npy": npy_bytes(decoded),
                                     "c.npy": buf.getvalue()}


def use_graphene_files(suite, swap=False):
    frames, decoded, coords, payloads = graphene_files(swap)
    suite({"graphene_si_movie": {
        "description": "test movie", "paper": "none",
        "files": [entry("frames", "f.npy", payloads["f.npy"]),
                  entry("decoded", "d.npy", payloads["d.npy"]),
                  entry("coords", "c.npy", payloads["c.npy"], fmt="npy-pickle")]}})
    put("graphene_si_movie", payloads)
    return frames, decoded, coords


def test_graphene_original_has_the_simulator_names_and_conventions(suite):
    frames, decoded, coords = use_graphene_files(suite)
    ds = data.load("graphene_si_movie", source="original")
    assert isinstance(ds, data.Dataset) and ds.source == "original"
    np.testing.assert_array_equal(ds.frames, frames[..., 0])
    assert ds.frames.dtype == np.float32 and ds.pixel_size is None
    # channels [C, Si, background] -> classes [background, C, Si] on axis 1
    assert ds.probabilities.shape == (2, 3, 24, 32)
    np.testing.assert_array_equal(ds.probabilities[:, 0], decoded[..., 2])
    np.testing.assert_array_equal(ds.probabilities[:, 2], decoded[..., 1])
    # atoms as GrapheneMovie.atoms: per frame (N, 3) [row, col, species], species 0 = C, 1 = Si
    assert len(ds.atoms) == 2
    for k in range(2):
        np.testing.assert_array_equal(ds.atoms[k], coords[float(k)])
    sim = simulate.graphene_movie(n_frames=1, size=64, seed=0)
    assert set(np.unique(sim.atoms[0][:, 2])) <= {0.0, 1.0}  # the same species code
    check = ds.meta["atom_probability"]
    assert check["as_given"] == pytest.approx(0.9) and check["swapped"] < 0.5
    assert ds.meta["files"]["coords"].endswith("c.npy")


def test_graphene_coordinates_given_as_col_row_are_swapped_with_a_warning(suite):
    _, _, coords = use_graphene_files(suite, swap=True)
    with pytest.warns(UserWarning, match=r"\(col, row\)"):
        ds = data.load("graphene_si_movie", source="original")
    np.testing.assert_array_equal(ds.atoms[1][:, :2], coords[1.0][:, 1::-1])


def test_hysteresis_original_reads_as_the_simulator_names(suite):
    rng = np.random.default_rng(1)
    loops = rng.normal(size=(5, 6, 8)).astype(np.float32)
    volts = np.linspace(-1, 1, 8)
    second, first = io.BytesIO(), io.BytesIO()
    np.savez(second, loops=loops, voltages=volts)
    np.savez(first, other=np.arange(3))
    payloads = {"s.npz": second.getvalue(), "f.npz": first.getvalue()}
    suite({"hysteresis_loops": {"description": "test loop map", "paper": "none", "files": [
        entry("second_dataset", "s.npz", payloads["s.npz"], fmt="npz"),
        entry("first_dataset", "f.npz", payloads["f.npz"], fmt="npz")]}})
    put("hysteresis_loops", payloads)
    ds = data.load("hysteresis_loops", source="original")
    sim = simulate.hysteresis_map(size=12, n_voltages=8, seed=0)
    for name in ("loops", "voltage", "image"):  # what notebook 05 reads from either source
        assert getattr(ds, name).ndim == getattr(sim, name).ndim
    np.testing.assert_array_equal(ds.loops, loops)
    np.testing.assert_array_equal(ds.image, loops[..., 0])
    assert ds.voltage.dtype == np.float64
    np.testing.assert_array_equal(ds["first_dataset/other"], np.arange(3))


def test_default_naming_lookup_and_errors(suite):
    image = np.arange(12.0).reshape(3, 4)
    payload = npy_bytes(image)
    suite({"plain": {"description": "a test image", "paper": "p",
                     "files": [entry("image", "i.npy", payload)]}})
    put("plain", {"i.npy": payload})
    ds = data.load("plain", source="original")
    np.testing.assert_array_equal(ds.image, image)
    assert ds["image"] is ds.image and "image" in ds and ds.keys() == ["image"]
    assert ds.description == "a test image" and ds.meta["paper"] == "p"
    with pytest.raises(AttributeError, match=r"no 'frames'; its arrays are \['image'\]"):
        ds.frames  # noqa: B018
    with pytest.raises(KeyError, match="its arrays are"):
        ds["frames"]
    copy = pickle.loads(pickle.dumps(ds))  # a frozen dataclass: copies without recursion
    np.testing.assert_array_equal(copy.image, image)
    assert "Dataset('plain', original; image: (3, 4) float64)" == repr(ds)


def test_simulated_loads_stay_the_generator_dataclass():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = data.load("pfm_switching", smoke=True)
    b = simulate.ferroelectric_switching(**{**data.describe("pfm_switching")["simulate"]["params"],
                                            **data.describe("pfm_switching")["simulate"]
                                            ["smoke_params"]})
    assert type(a) is type(b)
    np.testing.assert_array_equal(a.amplitude, b.amplitude)
