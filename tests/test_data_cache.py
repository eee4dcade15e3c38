"""The cache: names that would escape it, the converted copy of pickled files, read-only
caches, damaged files, ``smoke`` with original data, file permissions. Never downloads: files
are put into the cache by the test (cache hits)."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import stat
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from support import npy_bytes, sha

import helpers.data as data
import helpers.simulate as simulate
from helpers._io import atomic_path


@pytest.fixture
def suite(suite_manifest_path):
    """A private cache and a replacement suite manifest; returns its writer."""
    path = suite_manifest_path

    def write(datasets: dict) -> Path:
        path.write_text(json.dumps({"version": 1, "datasets": datasets}))
        return path

    return write


def entry(name="a.npy", sha256=None, fmt="npy", key="arr", **extra):
    # a URL nobody serves: these tests must never reach a download
    return {"key": key, "name": name, "url": "http://127.0.0.1:9/never", "sha256": sha256,
            "size": None, "format": fmt, "shape": None, **extra}


def dataset(files, simulate_spec=None):
    out = {"description": "a test data set", "paper": "none", "files": files}
    if simulate_spec:
        out["simulate"] = simulate_spec
    return out


def put(name: str, dataset_name: str, payload: bytes) -> Path:
    folder = data.cache_dir() / dataset_name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(payload)
    return folder / name


# -- names that would leave the cache ----------------------------------------------------------
@pytest.mark.parametrize("bad", ["../../victim.npy", "ABSOLUTE", "sub/a.npy", "..", ".hidden",
                                 "a\\b.npy"])
def test_file_names_that_leave_the_cache_are_refused(suite, tmp_path, bad):
    victim = tmp_path / "victim.npy"
    victim.write_bytes(b"precious")
    name = str(victim) if bad == "ABSOLUTE" else bad
    suite({"d": dataset([entry(name=name, sha256=sha(b"something else"))])})
    with pytest.raises(ValueError, match="not a plain file name"):
        data.load("d", source="original")
    assert victim.read_bytes() == b"precious"  # neither overwritten nor deleted
    assert not (tmp_path / "cache").exists()  # nothing written anywhere


@pytest.mark.parametrize("bad", ["../evil", "/abs", "a/b", ".hidden", ".."])
def test_data_set_names_that_leave_the_cache_are_refused(suite, tmp_path, bad):
    suite({bad: dataset([entry(sha256=sha(b"x"))])})
    with pytest.raises(ValueError, match="data set name"):
        data.fetch(bad)
    assert not (tmp_path / "evil").exists() and not (tmp_path / "cache").exists()


def test_check_file_name_accepts_plain_names():
    for ok in ("a.npy", "cKPFM loop_0001 10 x 10-proc.npz", "3DStack13-1-exp.npy"):
        assert data.check_file_name(ok) == ok


# -- the converted copy of a pickled file ------------------------------------------------------
def pickled_coords():
    coords = {0: np.array([[1.0, 2.0, 0.0]]), 1: np.array([[3.0, 4.0, 1.0], [5, 6, 0]])}
    return coords, npy_bytes(np.array(coords, dtype=object), allow_pickle=True)


def test_converted_copy_records_its_source(suite):
    coords, payload = pickled_coords()
    suite({"d": dataset([entry(name="c.npy", sha256=sha(payload), fmt="npy-pickle")])})
    put("c.npy", "d", payload)
    out = data.load("d", source="original")
    np.testing.assert_array_equal(out["1"], coords[1])
    with np.load(data.cache_dir() / "d" / "c.converted.npz", allow_pickle=False) as z:
        assert str(z["__source_sha256__"]) == sha(payload)


def test_stale_converted_copy_is_made_again(suite):
    coords, payload = pickled_coords()
    suite({"d": dataset([entry(name="c.npy", sha256=sha(payload), fmt="npy-pickle")])})
    put("c.npy", "d", payload)
    converted = data.cache_dir() / "d" / "c.converted.npz"
    np.savez(converted, **{"0": np.zeros((1, 3)), "9": np.ones(2)})  # from some other source
    out = data.load("d", source="original")
    assert sorted(out.keys()) == ["0", "1"]
    np.testing.assert_array_equal(out["0"], coords[0])
    with np.load(converted, allow_pickle=False) as z:  # rewritten from the verified source
        np.testing.assert_array_equal(z["0"], coords[0])


def test_hand_edited_converted_copy_is_made_again(suite):
    coords, payload = pickled_coords()
    suite({"d": dataset([entry(name="c.npy", sha256=sha(payload), fmt="npy-pickle")])})
    put("c.npy", "d", payload)
    data.load("d", source="original")
    converted = data.cache_dir() / "d" / "c.converted.npz"
    with np.load(converted, allow_pickle=False) as z:
        edited = {k: z[k] for k in z.files}
    edited["1"] = edited["1"] * 0 + 7  # edited by hand, its source stamp kept
    np.savez(converted, **edited)
    np.testing.assert_array_equal(data.load("d", source="original")["1"], coords[1])


# -- read-only caches --------------------------------------------------------------------------
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


@contextmanager
def _without_root_override():
    """As root, drop the right to ignore file permissions from this thread, then restore it.

    Root writes into read-only folders anyway; with CAP_DAC_OVERRIDE out of the effective set
    it meets the permissions like any owner does.
    """
    if os.geteuid() != 0:
        yield
        return
    if not sys.platform.startswith("linux"):
        pytest.skip("running as root where file permissions cannot be enforced")
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    header, caps = _CapHeader(0x20080522, 0), (_CapData * 2)()
    if libc.capget(ctypes.byref(header), caps) != 0:
        pytest.skip("capget failed: cannot make this root process honour permissions")
    saved = caps[0].effective
    caps[0].effective &= ~((1 << _CAP_DAC_OVERRIDE) | (1 << _CAP_DAC_READ_SEARCH))
    if libc.capset(ctypes.byref(header), caps) != 0:
        pytest.skip("capset failed: cannot make this root process honour permissions")
    try:
        yield
    finally:
        caps[0].effective = saved
        libc.capset(ctypes.byref(header), caps)


@contextmanager
def read_only(*folders: Path):
    """Make ``folders`` and everything in them read-only for the duration."""
    paths = [p for f in folders for p in [f, *f.rglob("*")]]
    modes = {p: p.stat().st_mode for p in paths}
    for p in paths:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        with _without_root_override():
            yield
    finally:
        for p in reversed(paths):
            p.chmod(stat.S_IMODE(modes[p]))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_complete_read_only_cache_loads_without_writing(suite):
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    plain = npy_bytes(arr)
    coords, pickled = pickled_coords()
    suite({"d": dataset([entry(name="a.npy", sha256=sha(plain), shape=[2, 3], dtype="float32"),
                         entry(name="c.npy", sha256=sha(pickled), fmt="npy-pickle",
                               key="coords")])})
    put("a.npy", "d", plain)
    put("c.npy", "d", pickled)  # its converted copy does not exist yet
    root = data.cache_dir()
    before = snapshot(root)
    with read_only(root):
        out = data.load("d", source="original")
    np.testing.assert_array_equal(out["arr"], arr)
    np.testing.assert_array_equal(out["coords/1"], coords[1])  # converted in memory
    assert snapshot(root) == before


def test_read_only_cache_missing_a_file_says_which_folder_and_the_setting(suite):
    suite({"d": dataset([entry(name="a.npy", sha256=sha(b"x"))])})
    folder = data.cache_dir() / "d"
    folder.mkdir(parents=True)
    with read_only(data.cache_dir()), pytest.raises(data.CacheNotWritableError) as err:
        data.load("d", source="original")
    msg = str(err.value)
    assert str(folder) in msg and "MICROSCOPY_DATA_DIR" in msg
    assert list(folder.iterdir()) == []


def test_cache_folder_that_cannot_be_created_is_a_clear_error(suite, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    monkeypatch.setenv("MICROSCOPY_DATA_DIR", str(locked / "cache"))
    suite({"d": dataset([entry(name="a.npy", sha256=sha(b"x"))])})
    with read_only(locked), pytest.raises(data.CacheNotWritableError, match="MICROSCOPY_DATA_DIR"):
        data.cache_dir()


def test_auto_falls_back_from_a_read_only_cache(suite, monkeypatch):
    monkeypatch.setattr(simulate, "fake_generator", lambda n=3: np.zeros(n), raising=False)
    suite({"d": dataset([entry(name="a.npy", sha256=sha(b"x"))],
                        {"generator": "fake_generator", "params": {"n": 3}})})
    (data.cache_dir() / "d").mkdir(parents=True)
    with read_only(data.cache_dir()), pytest.warns(UserWarning, match="MICROSCOPY_DATA_DIR"):
        out = data.load("d", source="auto")
    assert out.shape == (3,)


def test_mismatching_file_in_read_only_cache_is_reported_not_crashed(suite):
    suite({"d": dataset([entry(name="a.npy", sha256=sha(b"good"))])})
    bad = put("a.npy", "d", b"bad")
    with read_only(data.cache_dir()), pytest.raises(data.ChecksumError) as err:
        data.fetch("d")
    assert str(bad) in str(err.value) and "by hand" in str(err.value)


# -- damaged files -----------------------------------------------------------------------------
@pytest.mark.parametrize(("fmt", "name"), [("npy", "a.npy"), ("npz", "a.npz")])
def test_damaged_unverified_file_names_file_and_fix(suite, fmt, name):
    suite({"d": dataset([entry(name=name, sha256=None, fmt=fmt)])})
    put(name, "d", b"this is not an array file at all")
    with pytest.raises(data.DataFileError) as err:
        data.load("d", source="original")
    msg = str(err.value)
    assert name in msg and "Delete it" in msg and "allow_pickle" not in msg


def test_pickle_in_a_plain_npy_is_not_read_and_named(suite):
    _coords, pickled = pickled_coords()
    suite({"d": dataset([entry(name="a.npy", sha256=None, fmt="npy")])})
    put("a.npy", "d", pickled)
    with pytest.raises(data.DataFileError, match="a.npy.*pickled") as err:
        data.load("d", source="original")
    assert "allow_pickle" not in str(err.value)


# -- smoke with original data ------------------------------------------------------------------
def test_smoke_is_valid_for_original_data(suite, monkeypatch):
    monkeypatch.setattr(simulate, "fake_generator", lambda n=3, k=1: (n, k), raising=False)
    arr = np.arange(4.0)
    payload = npy_bytes(arr)
    suite({"d": dataset([entry(sha256=sha(payload))],
                        {"generator": "fake_generator", "params": {"n": 5},
                         "smoke_params": {"k": 2}})})
    put("a.npy", "d", payload)
    np.testing.assert_array_equal(data.load("d", source="original", smoke=True)["arr"], arr)
    np.testing.assert_array_equal(data.load("d", source="auto", smoke=True)["arr"], arr)
    assert data.load("d", source="simulated", smoke=True) == (5, 2)
    with pytest.raises(ValueError, match="apply to source='simulated' only"):
        data.load("d", source="original", k=3)  # explicit generator parameters still refused


def test_smoke_fallback_of_auto_uses_smoke_params(suite, monkeypatch):
    monkeypatch.setattr(simulate, "fake_generator", lambda n=3, k=1: (n, k), raising=False)
    monkeypatch.setenv("MICROSCOPY_OFFLINE", "1")
    suite({"d": dataset([entry(sha256=sha(b"x"))],
                        {"generator": "fake_generator", "params": {"n": 5},
                         "smoke_params": {"k": 2}})})
    with pytest.warns(UserWarning, match="using simulated data"):
        assert data.load("d", source="auto", smoke=True) == (5, 2)


# -- permissions -------------------------------------------------------------------------------
@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def test_atomic_writes_respect_the_umask(tmp_path):
    for mask, expected in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        target = tmp_path / f"out{mask:o}.txt"
        with umask(mask), atomic_path(target) as tmp:
            tmp.write_text("x")
        assert stat.S_IMODE(target.stat().st_mode) == expected, oct(mask)


def test_cache_files_respect_the_umask(suite):
    _coords, payload = pickled_coords()
    suite({"d": dataset([entry(name="c.npy", sha256=sha(payload), fmt="npy-pickle")])})
    put("c.npy", "d", payload)
    with umask(0o022):
        data.load("d", source="original")
    converted = data.cache_dir() / "d" / "c.converted.npz"
    assert stat.S_IMODE(converted.stat().st_mode) == 0o644
