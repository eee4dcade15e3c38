"""The data layer: manifest schema, checksums, offline behaviour, atomic cache writes,
cache hits without network, the safe unpickler, package-sourced files. Never downloads."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import pickle
import zipfile
from pathlib import Path

import jsonschema
import numpy as np
import pytest

import helpers.data as data
import helpers.simulate as simulate
from helpers.data import catalog, download, read

ROOT = Path(__file__).resolve().parent.parent
REAL_PACKAGE_DOWNLOAD = download._download_from_package


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A private cache and manifest; every download path is blocked unless a test allows it."""
    monkeypatch.setenv("MICROSCOPY_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MICROSCOPY_OFFLINE", raising=False)

    def no_network(spec, tmp, **kw):
        raise AssertionError(f"test tried to download {spec['name']}")

    monkeypatch.setattr(download, "_download_remote", no_network)
    monkeypatch.setattr(download, "_download_from_package", no_network)
    manifest_path = tmp_path / "manifest.json"

    def write_manifest(datasets: dict) -> None:
        manifest_path.write_text(json.dumps({"version": 1, "datasets": datasets}))

    monkeypatch.setattr(catalog, "MANIFEST_PATH", manifest_path)
    return write_manifest


def file_entry(name="a.npy", sha256=None, fmt="npy", **extra):
    return {"key": "arr", "name": name, "gdrive_id": "X" * 25, "sha256": sha256, "size": None,
            "format": fmt, "shape": None, **extra}


def dataset(files, simulate_spec=None):
    entry = {"description": "a test data set", "paper": "none", "files": files}
    if simulate_spec:
        entry["simulate"] = simulate_spec
    return entry


# -- the real manifest -------------------------------------------------------------------------
def test_manifest_matches_schema():
    schema = json.loads((ROOT / "tests" / "manifest.schema.json").read_text())
    jsonschema.validate(data.manifest(ROOT / "data_manifest.json"), schema)


def test_packaged_manifest_is_the_root_manifest():
    assert data.MANIFEST_PATH.resolve() == (ROOT / "data_manifest.json").resolve()


def test_every_simulate_entry_names_a_generator_and_valid_defaults():
    for name, entry in data.manifest()["datasets"].items():
        if "simulate" not in entry:
            continue
        gen = getattr(simulate, entry["simulate"]["generator"], None)
        assert callable(gen), f"{name}: helpers.simulate has no {entry['simulate']['generator']}"
        inspect.signature(gen).bind(**entry["simulate"]["params"])


def test_the_papers_original_data_sets_are_registered():
    names = {f["name"] for e in data.manifest()["datasets"].values() for f in e.get("files", [])}
    assert {"3DStack13-1-exp.npy", "3DStack13-1-dec.npy", "3DStack13-1-coord.npy",
            "second_dataset.npz", "first_dataset.npz", "graphene_imgstacks_dict.npy",
            "example_Se_implanted_MoS2.dm3", "sample_1.asd", "eels.npy"} <= names


def test_unknown_name_lists_available():
    with pytest.raises(ValueError, match="available: .*graphene_si_movie"):
        data.load("no_such_data")


def test_bad_source_is_rejected():
    with pytest.raises(ValueError, match="source must be one of"):
        data.load("graphene_si_movie", source="internet")


# -- downloads, checksums, cache ---------------------------------------------------------------
def test_checksum_mismatch_deletes_and_names_file_and_hashes(sandbox, monkeypatch):
    payload = npy_bytes(np.arange(5.0))
    expected = sha(b"something else")
    sandbox({"d": dataset([file_entry(sha256=expected)])})
    monkeypatch.setattr(download, "_download_remote",
                        lambda spec, tmp, **kw: tmp.write_bytes(payload))
    with pytest.raises(data.ChecksumError) as err:
        data.fetch("d")
    msg = str(err.value)
    assert "a.npy" in msg and expected in msg and sha(payload) in msg
    assert list((data.cache_dir() / "d").iterdir()) == []  # nothing half-written or unverified


def test_verified_download_lands_in_cache_and_loads(sandbox, monkeypatch):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    payload = npy_bytes(arr)
    sandbox({"d": dataset([file_entry(sha256=sha(payload))])})
    monkeypatch.setattr(download, "_download_remote",
                        lambda spec, tmp, **kw: tmp.write_bytes(payload))
    out = data.load("d", source="original")
    np.testing.assert_array_equal(out["arr"], arr)
    assert sorted(p.name for p in (data.cache_dir() / "d").iterdir()) == ["a.npy"]


def test_cache_hit_needs_no_network(sandbox):
    arr = np.ones((2, 2))
    payload = npy_bytes(arr)
    sandbox({"d": dataset([file_entry(sha256=sha(payload))])})
    (data.cache_dir() / "d").mkdir(parents=True)
    (data.cache_dir() / "d" / "a.npy").write_bytes(payload)
    np.testing.assert_array_equal(data.load("d", source="original")["arr"], arr)  # no download


def test_corrupted_cache_file_is_detected(sandbox):
    sandbox({"d": dataset([file_entry(sha256=sha(b"good"))])})
    (data.cache_dir() / "d").mkdir(parents=True)
    (data.cache_dir() / "d" / "a.npy").write_bytes(b"bad")
    with pytest.raises(data.ChecksumError, match="a.npy"):
        data.fetch("d")
    assert not (data.cache_dir() / "d" / "a.npy").exists()


def test_interrupted_download_leaves_nothing(sandbox, monkeypatch):
    sandbox({"d": dataset([file_entry(sha256=sha(b"x"))])})

    def half_then_fail(spec, tmp, **kw):
        tmp.write_bytes(b"half a fi")
        raise ConnectionError("connection reset")

    monkeypatch.setattr(download, "_download_remote", half_then_fail)
    with pytest.raises(data.DataUnavailableError, match="place the file by hand"):
        data.fetch("d")
    assert list((data.cache_dir() / "d").iterdir()) == []


def test_offline_original_says_where_to_put_the_file(sandbox, monkeypatch):
    sandbox({"d": dataset([file_entry(sha256=sha(b"x"))])})
    monkeypatch.setenv("MICROSCOPY_OFFLINE", "1")
    with pytest.raises(data.DataUnavailableError) as err:
        data.load("d", source="original")
    msg = str(err.value)
    assert "offline" in msg and str(data.cache_dir() / "d" / "a.npy") in msg
    assert "drive.google.com" in msg


def test_auto_falls_back_to_simulated_with_printed_warning(sandbox, monkeypatch, capsys):
    monkeypatch.setattr(simulate, "fake_generator", lambda n=3: np.zeros(n), raising=False)
    sandbox({"d": dataset([file_entry(sha256=sha(b"x"))],
                          {"generator": "fake_generator", "params": {"n": 3}})})
    monkeypatch.setenv("MICROSCOPY_OFFLINE", "1")
    with pytest.warns(UserWarning, match="using simulated data"):
        out = data.load("d", source="auto", n=4)
    assert out.shape == (4,)
    assert "original data for 'd' unavailable" in capsys.readouterr().out


def test_simulated_source_uses_manifest_defaults_and_overrides(sandbox, monkeypatch):
    monkeypatch.setattr(simulate, "fake_generator", lambda n=3, k=1: (n, k), raising=False)
    sandbox({"d": {"description": "simulated only", "paper": "none",
                   "simulate": {"generator": "fake_generator", "params": {"n": 5},
                                "smoke_params": {"k": 2}}}})
    assert data.load("d") == (5, 1)
    assert data.load("d", k=7) == (5, 7)
    assert data.load("d", smoke=True) == (5, 2)
    assert data.load("d", smoke=True, k=9) == (5, 9)
    with pytest.raises(ValueError, match="no original files"):
        data.load("d", source="original")


def test_unverified_download_warns_with_its_hash(sandbox, monkeypatch):
    payload = npy_bytes(np.zeros(3))
    sandbox({"d": dataset([file_entry(sha256=None)])})
    monkeypatch.setattr(download, "_download_remote",
                        lambda spec, tmp, **kw: tmp.write_bytes(payload))
    with pytest.warns(UserWarning, match=sha(payload)):
        data.fetch("d")


# -- pickled files -----------------------------------------------------------------------------
def test_pickled_dict_is_converted_once_to_plain_arrays(sandbox, monkeypatch):
    coords = {0: np.array([[1.0, 2.0, 0.0]]), 1: np.array([[3.0, 4.0, 1.0], [5, 6, 0]])}
    payload = npy_bytes(np.array(coords, dtype=object))
    sandbox({"d": dataset([file_entry(name="c.npy", sha256=sha(payload), fmt="npy-pickle")])})
    monkeypatch.setattr(download, "_download_remote",
                        lambda spec, tmp, **kw: tmp.write_bytes(payload))
    out = data.load("d", source="original")  # one file holding a dict: its names
    assert sorted(out.keys()) == ["0", "1"]
    np.testing.assert_array_equal(out["1"], coords[1])
    assert (data.cache_dir() / "d" / "c.converted.npz").is_file()


def test_pickle_without_declared_checksum_is_never_unpickled(sandbox, monkeypatch):
    payload = npy_bytes(np.array({"x": np.zeros(2)}, dtype=object))
    sandbox({"d": dataset([file_entry(name="c.npy", sha256=None, fmt="npy-pickle")])})
    monkeypatch.setattr(download, "_download_remote",
                        lambda spec, tmp, **kw: tmp.write_bytes(payload))
    monkeypatch.setattr(read, "_unpickle_npy", lambda *a: pytest.fail("unpickled unverified"))
    with pytest.warns(UserWarning), pytest.raises(data.ChecksumError) as err:
        data.load("d", source="original")
    assert sha(payload) in str(err.value) and "add that value" in str(err.value)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickle_with_code_is_refused_even_with_matching_checksum(sandbox, monkeypatch):
    payload = npy_bytes(np.array({"x": _Evil()}, dtype=object))
    sandbox({"d": dataset([file_entry(name="c.npy", sha256=sha(payload), fmt="npy-pickle")])})
    monkeypatch.setattr(download, "_download_remote",
                        lambda spec, tmp, **kw: tmp.write_bytes(payload))
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle"):
        data.load("d", source="original")


def test_pickle_is_never_read_before_its_checksum_matched(sandbox, monkeypatch):
    payload = npy_bytes(np.array({"x": np.zeros(2)}, dtype=object))
    sandbox({"d": dataset([file_entry(name="c.npy", sha256=sha(b"other"), fmt="npy-pickle")])})
    monkeypatch.setattr(download, "_download_remote",
                        lambda spec, tmp, **kw: tmp.write_bytes(payload))

    def forbidden(*a, **k):
        raise AssertionError("unpickled before the checksum matched")

    monkeypatch.setattr(read, "_unpickle_npy", forbidden)
    with pytest.raises(data.ChecksumError):
        data.load("d", source="original")


# -- files inside PyPI distributions -----------------------------------------------------------
def test_package_file_is_extracted_and_verified(sandbox, monkeypatch):
    arr = np.arange(6.0)
    payload = npy_bytes(arr)
    pkg = {"name": "somepkg", "version": "1.2.3", "dist": "wheel", "path": "somepkg/data/x.npy",
           "license": "MIT"}
    entry = file_entry(name="x.npy", sha256=sha(payload))
    del entry["gdrive_id"]
    entry["package"] = pkg
    sandbox({"d": dataset([entry])})
    calls = []

    class Done:
        returncode = 0
        stderr = ""

    def fake_pip(cmd, **kw):
        calls.append(cmd)
        dest = Path(cmd[cmd.index("--dest") + 1])
        with zipfile.ZipFile(dest / "somepkg-1.2.3-py3-none-any.whl", "w") as zf:
            zf.writestr("somepkg/data/x.npy", payload)
        return Done()

    monkeypatch.setattr(download, "_download_from_package", REAL_PACKAGE_DOWNLOAD)
    monkeypatch.setattr(download.subprocess, "run", fake_pip)  # pip download, without the network
    np.testing.assert_array_equal(data.load("d", source="original")["arr"], arr)
    assert "somepkg==1.2.3" in calls[0] and "--no-deps" in calls[0]
