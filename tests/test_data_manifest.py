"""Manifests are validated when read (the rules of manifest.schema.json, without jsonschema at
run time; duplicate keys refused), and arrays are checked against their declared shape/dtype."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from support import npy_bytes, sha

import helpers.data as data
from helpers.data import catalog

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "tests" / "manifest.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


@pytest.fixture
def suite(suite_manifest_path):
    """A private cache and a replacement suite manifest; returns a writer of its text."""
    path = suite_manifest_path

    def write(doc) -> Path:
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return path

    return write


def entry(name="a.npy", key="arr", sha256=None, fmt="npy", **extra):
    return {"key": key, "name": name, "url": "http://127.0.0.1:9/never", "sha256": sha256,
            "size": None, "format": fmt, "shape": None, **extra}


def doc_with(files=None, **datasets):
    if files is not None:
        datasets["d"] = {"description": "a test data set", "paper": "none", "files": files}
    return {"version": 1, "datasets": datasets}


def put(name: str, payload: bytes) -> None:
    folder = data.cache_dir() / "d"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(payload)


# -- the suite's manifest ----------------------------------------------------------------------
def test_suite_manifest_passes_both_validators():
    doc = data.manifest()  # the built-in validator (raises on any problem)
    VALIDATOR.validate(doc)


def test_real_public_sources_are_registered_unverified():
    files = {f["name"]: (name, f) for name, e in data.manifest()["datasets"].items()
             for f in e.get("files", [])}
    movies = files["graphene_imgstacks_dict.npy"][1]  # what AtomAI's stem_graphene fetches
    assert movies["url"] == "https://zenodo.org/record/4885132/files/graphene_imgstacks_dict.npy"
    assert movies["format"] == "npy-pickle"  # never unpickled before a sha256 is declared
    for name in ("bepfm_test_data.npy", "ckpfm_loop_0001_10x10_proc.npz"):
        _dataset, spec = files[name]
        assert spec["url"].startswith("https://github.com/ziatdinovmax/GPim/raw/")
        assert spec["format"] in ("npy", "npz")  # plain arrays: safe to read unverified
    for name in ("graphene_imgstacks_dict.npy", "bepfm_test_data.npy",
                 "ckpfm_loop_0001_10x10_proc.npz"):
        assert files[name][1]["sha256"] is None  # until a run can fetch and verify them


# -- malformed manifests -----------------------------------------------------------------------
def test_duplicate_json_key_is_refused(suite):
    one = json.dumps({"description": "first data set", "paper": "none",
                      "files": [entry(name="a.npy")]})
    two = json.dumps({"description": "second data set", "paper": "none",
                      "files": [entry(name="b.npy")]})
    suite('{"version": 1, "datasets": {"d": ' + one + ', "d": ' + two + '}}')
    with pytest.raises(data.ManifestError, match="'d' appears twice"):
        data.load("d", source="original")


def test_two_files_with_one_key_are_refused(suite):
    suite(doc_with([entry(name="a.npy", key="arr"), entry(name="b.npy", key="arr")]))
    with pytest.raises(data.ManifestError, match="file 1.*'b.npy'.*key 'arr'.*two files"):
        data.describe("d")


def test_missing_key_names_data_set_file_and_key(suite):
    spec = entry()
    del spec["key"]
    suite(doc_with([spec]))
    with pytest.raises(data.ManifestError) as err:
        data.load("d", source="original")
    msg = str(err.value)
    assert "data set 'd'" in msg and "file 0 ('a.npy')" in msg and "'key'" in msg


def test_manifest_that_is_not_json_is_named(suite):
    path = suite('{"version": 1, "datasets": {')
    with pytest.raises(data.ManifestError, match=str(path)):
        data.available()


def mutations():
    """(label, change) pairs: each makes the manifest invalid for the schema."""

    def drop(key):
        return lambda d: d["datasets"]["d"]["files"][0].pop(key)

    def setf(key, value):
        return lambda d: d["datasets"]["d"]["files"][0].__setitem__(key, value)

    def setd(key, value):
        return lambda d: d["datasets"]["d"].__setitem__(key, value)

    return [
        ("no version", lambda d: d.pop("version")),
        ("version 2", lambda d: d.__setitem__("version", 2)),
        ("no datasets", lambda d: d.pop("datasets")),
        ("empty datasets", lambda d: d.__setitem__("datasets", {})),
        ("bad data set name", lambda d: d["datasets"].__setitem__("../x", d["datasets"]["d"])),
        ("no description", lambda d: d["datasets"]["d"].pop("description")),
        ("short description", setd("description", "short")),
        ("extra data set key", setd("notes", "x")),
        ("neither source", lambda d: d["datasets"]["d"].pop("files")),
        ("empty files", setd("files", [])),
        ("simulate without params", setd("simulate", {"generator": "g"})),
        ("simulate bad generator", setd("simulate", {"generator": "G-1", "params": {}})),
        ("simulate extra key", setd("simulate", {"generator": "g", "params": {}, "x": 1})),
        ("no key", drop("key")),
        ("no name", drop("name")),
        ("no sha256", drop("sha256")),
        ("no size", drop("size")),
        ("no format", drop("format")),
        ("no shape", drop("shape")),
        ("bad key", setf("key", "1st")),
        ("name with ..", setf("name", "../x.npy")),
        ("absolute name", setf("name", "/tmp/x.npy")),
        ("name with separator", setf("name", "a/b.npy")),
        ("hidden name", setf("name", ".x.npy")),
        ("ftp url", setf("url", "ftp://x/y.npy")),
        ("two places", setf("gdrive_id", "X" * 25)),
        ("no place", drop("url")),
        ("short sha", setf("sha256", "abc")),
        ("size zero", setf("size", 0)),
        ("size text", setf("size", "12")),
        ("unknown format", setf("format", "tiff")),
        ("shape with zero", setf("shape", [0, 3])),
        ("shape text", setf("shape", "3x3")),
        ("shape dict of text", setf("shape", {"a": "3"})),
        ("extra file key", setf("colour", "red")),
        ("package and url", setf("package", {"name": "p", "version": "1.0", "dist": "wheel",
                                             "path": "x", "license": "MIT"})),
    ]


@pytest.mark.parametrize(("label", "change"), mutations(), ids=[m[0] for m in mutations()])
def test_built_in_validator_agrees_with_the_schema(suite, label, change):
    doc = doc_with([entry(shape=[2, 3], dtype="float32")])
    VALIDATOR.validate(doc)
    suite(doc)
    data.manifest(catalog.MANIFEST_PATH)  # the valid one passes
    bad = copy.deepcopy(doc)
    change(bad)
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(bad)
    suite(bad)
    with pytest.raises(data.ManifestError):
        data.manifest(catalog.MANIFEST_PATH)


def test_valid_variants_pass_both_validators(suite):
    pkg = {"name": "p", "version": "1.2.3", "dist": "sdist", "path": "p-1.2.3/x.npy",
           "license": "MIT"}
    variants = [entry(url="https://example.org/a.npy"), entry(url="doi:10.5281/zenodo.1/a.npy"),
                {**{k: v for k, v in entry().items() if k != "url"}, "gdrive_id": "X" * 25},
                {**{k: v for k, v in entry().items() if k != "url"}, "package": pkg},
                entry(shape={"loops": [60, 60, None], "v": [64]}, dtype=None),
                entry(name="cKPFM loop 10 x 10-proc.npz", fmt="npz")]
    for spec in variants:
        doc = doc_with([spec])
        VALIDATOR.validate(doc)
        suite(doc)
        data.manifest(catalog.MANIFEST_PATH)


# -- declared shape and dtype ------------------------------------------------------------------
def test_array_of_the_wrong_shape_and_dtype_is_refused(suite):
    payload = npy_bytes(np.zeros((2, 2), dtype=np.int8))
    suite(doc_with([entry(name="a.npy", sha256=sha(payload), shape=[50, 512, 512, 1],
                          dtype="float32")]))
    put("a.npy", payload)
    with pytest.raises(data.DataFileError) as err:
        data.load("d", source="original")
    msg = str(err.value)
    assert "a.npy" in msg and "(50, 512, 512, 1) float32" in msg and "(2, 2) int8" in msg


def test_array_of_the_wrong_dtype_only_is_refused(suite):
    payload = npy_bytes(np.zeros((2, 3), dtype=np.float64))
    suite(doc_with([entry(name="a.npy", sha256=sha(payload), shape=[2, 3], dtype="float32")]))
    put("a.npy", payload)
    with pytest.raises(data.DataFileError, match="float64"):
        data.load("d", source="original")


def test_declared_shape_with_free_dimensions_accepts_any_size(suite):
    arr = np.zeros((3, 7, 5), dtype=np.float32)
    payload = npy_bytes(arr)
    suite(doc_with([entry(name="a.npy", sha256=sha(payload), shape=[3, None, None],
                          dtype="float32")]))
    put("a.npy", payload)
    assert data.load("d", source="original")["arr"].shape == (3, 7, 5)


def test_npz_arrays_are_checked_by_name(suite):
    buf = io.BytesIO()
    np.savez(buf, loops=np.zeros((4, 4, 8), np.float32), voltages=np.zeros(8, np.float32))
    payload = buf.getvalue()
    declared = {"loops": [4, 4, 8], "voltages": [8]}
    suite(doc_with([entry(name="a.npz", fmt="npz", sha256=sha(payload), shape=declared,
                          dtype="float32")]))
    put("a.npz", payload)
    out = data.load("d", source="original")
    assert out.loops.shape == (4, 4, 8)
    suite(doc_with([entry(name="a.npz", fmt="npz", sha256=sha(payload),
                          shape={**declared, "images": [4, 4]}, dtype="float32")]))
    with pytest.raises(data.DataFileError, match="'images'.*holds \\['loops', 'voltages'\\]"):
        data.load("d", source="original")
