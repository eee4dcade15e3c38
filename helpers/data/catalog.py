"""The data manifest: the suite's ``data_manifest.json`` (repository root) and your own manifests
(``manifest=`` or ``$MICROSCOPY_MANIFEST``, several paths joined by ``os.pathsep``), merged with
yours winning, each validated when read (the rules of ``tests/manifest.schema.json``, no key twice
in one JSON object, file and data set names that stay inside the cache); :func:`available` and
:func:`describe`. A data set declares a generator of :mod:`helpers.simulate` with its default
and smoke parameters, original files (each from a Google Drive id, a URL or a file inside a PyPI
distribution, with sha256, size, format, shape and dtype), or both.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ManifestError

# the packaged manifest: helpers/data_manifest.json (a link to the repository root's file)
MANIFEST_PATH = Path(__file__).resolve().parent.parent / "data_manifest.json"
FORMATS = ("npy", "npy-pickle", "npz", "dm3", "asd")

_DATASET_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_FILE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GDRIVE_ID = re.compile(r"^[A-Za-z0-9_-]{20,}$")
_URL = re.compile(r"^(https?://|doi:)\S+$")
_GENERATOR = re.compile(r"^[a-z_][a-z0-9_]*$")
_VERSION = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_FILE_REQUIRED = ("key", "name", "sha256", "size", "format", "shape")
_FILE_ALLOWED = (*_FILE_REQUIRED, "gdrive_id", "url", "package", "dtype", "description")
_PACKAGE_KEYS = ("name", "version", "dist", "path", "license")
_SCHEMA_HINT = "(the schema: tests/manifest.schema.json; the README section 'Data' has an example)"


def _no_duplicate_keys(path: Path):
    """``json`` object hook that refuses a key given twice (JSON readers keep the last one)."""

    def hook(pairs: list[tuple[str, Any]]) -> dict:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ManifestError(
                    f"data manifest {path}: the key {key!r} appears twice in one JSON object, so "
                    "one of the two entries would be silently lost; remove or rename one."
                )
            out[key] = value
        return out

    return hook


def check_file_name(name: Any, where: str = "file name") -> str:
    """Return ``name`` if it is a plain file name that stays inside its cache folder.

    Refuses empty names, ``.``/``..``, path separators, absolute paths and a leading dot
    (reserved for the cache's temporary files) with a :class:`ValueError` naming ``where``.
    """
    bad = (not isinstance(name, str) or not name or name in {".", ".."} or name.startswith(".")
           or "/" in name or "\\" in name or "\0" in name or os.path.isabs(name)
           or Path(name).name != name)
    if bad:
        raise ValueError(
            f"{where}: {name!r} is not a plain file name; it must name a file inside the cache "
            "folder (no '/', '\\', '..', absolute path or leading '.'). Fix the manifest entry."
        )
    return name


def _check_dataset_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not _DATASET_NAME.match(name):
        raise ValueError(
            f"{where}: data set name {name!r} is not allowed; it names the data set's cache "
            "folder, so use letters, digits, '_', '-' and '.', not starting with '.' or '-' "
            "(no path separators)."
        )
    return name


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_shape(shape: Any, where: str) -> None:
    def dims_ok(dims: Any) -> bool:
        return isinstance(dims, list) and all(d is None or (_is_int(d) and d >= 1) for d in dims)

    if shape is None or dims_ok(shape):
        return
    if isinstance(shape, dict) and all(dims_ok(v) for v in shape.values()):
        return
    raise ManifestError(f"{where}: 'shape' must be null, a list of positive integers (or null "
                        f"for any size), or an object of such lists per array; got {shape!r}")


def _validate_file(spec: Any, where: str) -> None:
    if not isinstance(spec, dict):
        raise ManifestError(f"{where}: must be an object, got {type(spec).__name__}")
    for key in _FILE_REQUIRED:
        if key not in spec:
            raise ManifestError(f"{where}: the required key {key!r} is missing {_SCHEMA_HINT}")
    extra = sorted(set(spec) - set(_FILE_ALLOWED))
    if extra:
        raise ManifestError(f"{where}: unknown key(s) {extra}; allowed: {list(_FILE_ALLOWED)}")
    if not isinstance(spec["key"], str) or not _FILE_KEY.match(spec["key"]):
        raise ManifestError(f"{where}: 'key' must be an identifier (letters, digits, '_'), got "
                            f"{spec['key']!r}")
    try:
        check_file_name(spec["name"], f"{where}, 'name'")
    except ValueError as exc:
        raise ManifestError(str(exc)) from None
    places = [k for k in ("gdrive_id", "url", "package") if k in spec]
    if len(places) != 1:
        raise ManifestError(f"{where}: give exactly one of 'gdrive_id', 'url', 'package' "
                            f"(found {places or 'none'})")
    if "gdrive_id" in spec and not (isinstance(spec["gdrive_id"], str)
                                    and _GDRIVE_ID.match(spec["gdrive_id"])):
        raise ManifestError(f"{where}: 'gdrive_id' {spec['gdrive_id']!r} is not a Drive id")
    if "url" in spec and not (isinstance(spec["url"], str) and _URL.match(spec["url"])):
        raise ManifestError(f"{where}: 'url' must start with https://, http:// or doi:, got "
                            f"{spec['url']!r}")
    if "package" in spec:
        pkg = spec["package"]
        if not isinstance(pkg, dict) or set(pkg) != set(_PACKAGE_KEYS):
            raise ManifestError(f"{where}: 'package' must be an object with exactly the keys "
                                f"{list(_PACKAGE_KEYS)}, got {pkg!r}")
        if not all(isinstance(pkg[k], str) for k in _PACKAGE_KEYS) or not pkg["path"]:
            raise ManifestError(f"{where}: every 'package' value must be a string, and 'path' "
                                "not empty")
        if not _VERSION.match(pkg["version"]) or pkg["dist"] not in ("wheel", "sdist"):
            raise ManifestError(f"{where}: 'package' needs an exact version like 1.2.3 and dist "
                                f"'wheel' or 'sdist', got {pkg['version']!r}, {pkg['dist']!r}")
    sha = spec["sha256"]
    if sha is not None and not (isinstance(sha, str) and _SHA256.match(sha)):
        raise ManifestError(f"{where}: 'sha256' must be null or 64 lower-case hex digits, got "
                            f"{sha!r}")
    size = spec["size"]
    if size is not None and not (_is_int(size) and size >= 1):
        raise ManifestError(f"{where}: 'size' must be null or a positive integer, got {size!r}")
    if spec["format"] not in FORMATS:
        raise ManifestError(f"{where}: 'format' must be one of {list(FORMATS)}, got "
                            f"{spec['format']!r}")
    _check_shape(spec["shape"], where)
    dtype = spec.get("dtype")
    if dtype is not None:
        try:
            ok = isinstance(dtype, str) and not np.dtype(dtype).hasobject
        except TypeError:
            ok = False
        if not ok:
            raise ManifestError(f"{where}: 'dtype' must be null or a numpy dtype name such as "
                                f"'float32', got {dtype!r}")
    for key in ("description",):
        if key in spec and not isinstance(spec[key], str):
            raise ManifestError(f"{where}: {key!r} must be a string")


def _validate_dataset(name: str, entry: Any, where: str) -> None:
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: must be an object, got {type(entry).__name__}")
    for key in ("description", "paper"):
        if key not in entry:
            raise ManifestError(f"{where}: the required key {key!r} is missing {_SCHEMA_HINT}")
        if not isinstance(entry[key], str):
            raise ManifestError(f"{where}: {key!r} must be a string")
    if len(entry["description"]) < 10:
        raise ManifestError(f"{where}: 'description' must say what the data are (10+ chars)")
    extra = sorted(set(entry) - {"description", "paper", "simulate", "files"})
    if extra:
        raise ManifestError(f"{where}: unknown key(s) {extra}; allowed: description, paper, "
                            "simulate, files")
    if "simulate" not in entry and "files" not in entry:
        raise ManifestError(f"{where}: give 'simulate', 'files' or both")
    if "simulate" in entry:
        sim = entry["simulate"]
        if not isinstance(sim, dict):
            raise ManifestError(f"{where}, 'simulate': must be an object")
        for key in ("generator", "params"):
            if key not in sim:
                raise ManifestError(f"{where}, 'simulate': the required key {key!r} is missing")
        extra = sorted(set(sim) - {"generator", "params", "smoke_params"})
        if extra:
            raise ManifestError(f"{where}, 'simulate': unknown key(s) {extra}")
        if not isinstance(sim["generator"], str) or not _GENERATOR.match(sim["generator"]):
            raise ManifestError(f"{where}, 'simulate': 'generator' must be a function name of "
                                f"helpers.simulate, got {sim['generator']!r}")
        for key in ("params", "smoke_params"):
            if key in sim and not isinstance(sim[key], dict):
                raise ManifestError(f"{where}, 'simulate': {key!r} must be an object")
    if "files" in entry:
        files = entry["files"]
        if not isinstance(files, list) or not files:
            raise ManifestError(f"{where}: 'files' must be a non-empty list")
        seen_keys: set[str] = set()
        seen_names: set[str] = set()
        for i, spec in enumerate(files):
            label = spec.get("name") if isinstance(spec, dict) else None
            file_where = f"{where}, file {i}" + (f" ({label!r})" if label else "")
            _validate_file(spec, file_where)
            for seen, field in ((seen_keys, "key"), (seen_names, "name")):
                if spec[field] in seen:
                    raise ManifestError(f"{file_where}: {field} {spec[field]!r} is used by two "
                                        "files of this data set; each needs its own")
                seen.add(spec[field])


def _validate_manifest(doc: Any, path: Path) -> None:
    """Check a parsed manifest against the schema's rules; raise :class:`ManifestError`."""
    where = f"data manifest {path}"
    if not isinstance(doc, dict):
        raise ManifestError(f"{where}: the top level must be a JSON object")
    for key in ("version", "datasets"):
        if key not in doc:
            raise ManifestError(f"{where}: the required key {key!r} is missing {_SCHEMA_HINT}")
    if doc["version"] != 1 or isinstance(doc["version"], bool):
        raise ManifestError(f"{where}: 'version' must be 1, got {doc['version']!r}")
    if "about" in doc and not isinstance(doc["about"], str):
        raise ManifestError(f"{where}: 'about' must be a string")
    datasets = doc["datasets"]
    if not isinstance(datasets, dict) or not datasets:
        raise ManifestError(f"{where}: 'datasets' must be an object with at least one data set")
    for name, entry in datasets.items():
        try:
            _check_dataset_name(name, where)
        except ValueError as exc:
            raise ManifestError(str(exc)) from None
        _validate_dataset(name, entry, f"{where}, data set {name!r}")


def manifest(path: str | os.PathLike | None = None) -> dict:
    """One parsed and validated manifest: the suite's ``data_manifest.json`` by default.

    Raises :class:`ManifestError` (a ``ValueError``) naming the file, data set and key of the
    first problem, and ``FileNotFoundError`` when the file is missing.
    """
    path = Path(path).expanduser() if path else MANIFEST_PATH
    if not path.is_file():
        if path == MANIFEST_PATH:
            raise FileNotFoundError(f"data manifest not found at {path}; reinstall the package")
        raise FileNotFoundError(f"data manifest not found at {path}; check the path given as "
                                "manifest= or in MICROSCOPY_MANIFEST")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"),
                         object_pairs_hook=_no_duplicate_keys(path))
    except json.JSONDecodeError as exc:
        raise ManifestError(f"data manifest {path} is not valid JSON: {exc}") from None
    _validate_manifest(doc, path)
    return doc


def _extra_manifests(extra: str | os.PathLike | None) -> list[Path]:
    """User manifests: ``MICROSCOPY_MANIFEST`` (``os.pathsep``-separated), then ``extra``."""
    paths = [Path(p).expanduser()
             for p in os.environ.get("MICROSCOPY_MANIFEST", "").split(os.pathsep) if p.strip()]
    if extra is not None:
        paths.append(Path(extra).expanduser())
    return paths


def _datasets(extra: str | os.PathLike | None = None) -> dict[str, dict]:
    """The suite's data sets with the user's manifests merged over them (theirs win)."""
    datasets = dict(manifest()["datasets"])
    for path in _extra_manifests(extra):
        datasets.update(manifest(path)["datasets"])
    return datasets


def available(manifest: str | os.PathLike | None = None) -> list[str]:
    """Names of the declared data sets (the suite's and those of your own manifests)."""
    return sorted(_datasets(manifest))


def describe(name: str, manifest: str | os.PathLike | None = None) -> dict:
    """The manifest entry of data set ``name``; unknown names list the available ones."""
    datasets = _datasets(manifest)
    if name not in datasets:
        raise ValueError(f"unknown data set {name!r}; available: {', '.join(sorted(datasets))}")
    return datasets[name]
