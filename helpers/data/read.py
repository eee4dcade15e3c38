"""Reading verified files into numpy arrays (``npy``, ``npz``, ``dm3``, ``asd``) and checking every
array against the manifest's ``shape`` and ``dtype``. Pickled ``.npy`` files are read only after
their sha256 matched, by an unpickler that accepts numpy arrays and plain containers only, and are
converted once to a plain ``.npz`` that records the sha256 of its source (a stale or edited copy
is converted again; in a read-only cache the conversion is kept in memory).

The files of a data set become one :class:`~helpers.data.dataset.Dataset`. By default a file's
arrays keep their names: a file holding one array is named by its manifest ``key``, the arrays
inside a file holding several keep their own names (prefixed ``key/`` when the data set has
several files), and scalars (pixel size, units) go to ``meta``. Data sets whose arrays
correspond to a simulator's are given the simulator's names and conventions:

- ``graphene_si_movie`` (like :class:`~helpers.simulate.GrapheneMovie`): ``frames``
  ``(T, H, W)`` float32 HAADF counts; ``probabilities`` ``(T, 3, H, W)`` float32, the
  authors' segmentation output in the classes ``[background, C, Si]``; ``atoms``, a list of
  ``T`` arrays ``(N_t, 3)`` float64 ``[row_px, col_px, species]``, species 0 = C, 1 = Si,
  frames in order; ``meta["pixel_size"]`` is None (the files do not give it) and
  ``meta["atom_probability"]`` the mean atom probability at the given and at the swapped
  coordinates (the check of their ``(row, col)`` order).
- ``hysteresis_loops`` (like :class:`~helpers.simulate.HysteresisMap`): ``loops``
  ``(H, W, L)`` float32 and ``voltage`` ``(L,)`` float64 volts from ``second_dataset``;
  ``image`` ``(H, W)``, the response at the first voltage step; ``first_dataset/...`` as read.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_path
from .cache import sha256_of
from .catalog import describe
from .dataset import Dataset
from .download import _file_specs, _where_from, fetch
from .errors import ChecksumError, DataFileError

# inside a .converted.npz: the sha256 of the source it was made from, and of its own arrays
_SOURCE_SHA_KEY = "__source_sha256__"
_CONTENT_SHA_KEY = "__content_sha256__"
# formats whose reader returns the stored arrays unchanged: their declared dtype is enforced
# (dm3 and asd readers return float32 images; their dtype names the stored type)
_DTYPE_CHECKED = ("npy", "npy-pickle", "npz")


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


def _plain_arrays(obj: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """Flatten unpickled content to name -> plain (non-object) array.

    A dict becomes one entry per key (nested dicts give ``outer/inner`` names); anything else
    is one entry ``array``. A value that is not an array (``None``, a ragged list) is kept as
    its text (``repr``) so that the copy never needs pickling.
    """
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject and obj.shape == ():
        obj = obj.item()
    if isinstance(obj, dict):
        out: dict[str, np.ndarray] = {}
        for key, value in obj.items():
            out.update(_plain_arrays(value, f"{prefix}{key}/"))
        return out
    name = prefix[:-1] if prefix else "array"
    try:
        arr = np.asarray(obj)
    except ValueError:  # ragged nested sequences
        arr = np.asarray(repr(obj))
    if arr.dtype.hasobject:
        arr = np.asarray(repr(obj))
    return {name: arr}


def _save_plain_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as an ``.npz`` without pickles (any key name, even ``file``)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, arr in arrays.items():
            with zf.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)


def _arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over the names, dtypes, shapes and bytes of ``arrays`` (order-independent)."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        arr = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}\0{arr.dtype.str}\0{arr.shape}\0".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def _read_converted(converted: Path, source_sha: str) -> dict[str, np.ndarray] | None:
    """The arrays of an intact converted copy made from ``source_sha``; None otherwise.

    None when the copy is missing, was made from another source (stale), was edited (its
    arrays no longer match the digest recorded with them), or cannot be read.
    """
    if not converted.is_file():
        return None
    try:
        with np.load(converted, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):  # damaged: convert again
        return None
    recorded_source = arrays.pop(_SOURCE_SHA_KEY, None)
    recorded_content = arrays.pop(_CONTENT_SHA_KEY, None)
    if recorded_source is None or recorded_content is None:
        return None
    if str(recorded_source) != source_sha or str(recorded_content) != _arrays_digest(arrays):
        return None
    return arrays


def _pickled_to_npz(path: Path, source_sha: str) -> dict[str, np.ndarray]:
    """The arrays of a verified pickled ``.npy``, from its ``.converted.npz`` copy.

    The copy records ``source_sha`` (the verified source's sha256) and a digest of its own
    arrays; it is made again when either does not match (a stale or hand-edited copy). In a
    read-only cache the conversion is kept in memory only.
    """
    converted = path.with_suffix(".converted.npz")
    arrays = _read_converted(converted, source_sha)
    if arrays is not None:
        return arrays
    arrays = _plain_arrays(_unpickle_npy(path))
    stamps = {_SOURCE_SHA_KEY: np.asarray(source_sha),
              _CONTENT_SHA_KEY: np.asarray(_arrays_digest(arrays))}
    try:
        with atomic_path(converted, suffix=".npz") as tmp:
            _save_plain_npz(tmp, {**arrays, **stamps})
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
    return arrays


def _read(path: Path, fmt: str, sha: str | None = None) -> Any:
    """Read one verified file into numpy arrays according to its declared format."""
    if fmt == "npy":
        return np.load(path, allow_pickle=False)
    if fmt == "npy-pickle":
        return _pickled_to_npz(path, sha or sha256_of(path))
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


def _read_file(path: Path, spec: dict) -> Any:
    """:func:`_read`, with a damaged file reported by name with the fix (never a raw error)."""
    fmt = spec["format"]
    try:
        return _read(path, fmt, spec.get("sha256"))
    except ImportError:
        raise
    except pickle.UnpicklingError as exc:
        if "refusing to unpickle" in str(exc):
            raise
        cause: Exception = exc
    except Exception as exc:  # numpy, zip and reader errors alike: the file is the problem
        cause = exc
    if "pickle" in str(cause).lower():
        reason = "it holds pickled Python objects, which a plain array file must not"
    else:
        reason = f"{type(cause).__name__}: {cause}"
    verified = "" if spec.get("sha256") else " (the manifest declares no sha256 for it)"
    raise DataFileError(
        f"{path} cannot be read as a {fmt!r} file: {reason}. It is damaged or not the file the "
        f"manifest declares{verified}. Delete it and load again to download it afresh from "
        f"{_where_from(spec)}, or put a good copy there."
    ) from cause


def _check_array(arr: Any, dims: list | None, dtype: str | None, what: str, path: Path) -> None:
    if not isinstance(arr, np.ndarray):
        raise DataFileError(f"{path} ({what}): expected an array, found {type(arr).__name__}")
    shape_ok = dims is None or (len(dims) == arr.ndim
                                and all(d is None or d == n for d, n in zip(dims, arr.shape)))
    dtype_ok = dtype is None or np.dtype(dtype).str[1:] == arr.dtype.str[1:]  # any byte order
    if not (shape_ok and dtype_ok):
        declared = (f"shape {tuple(dims) if dims is not None else 'any'}"
                    f"{' ' + str(np.dtype(dtype)) if dtype else ''}")
        raise DataFileError(
            f"{path} ({what}): the manifest declares {declared}, the file holds shape "
            f"{arr.shape} {arr.dtype}. It is not the declared file: delete it and load again to "
            "download it afresh, or correct 'shape'/'dtype' in the manifest."
        )


def _check_declared(value: Any, spec: dict, path: Path) -> None:
    """Check the arrays read from ``path`` against the manifest's ``shape`` and ``dtype``."""
    shape = spec.get("shape")
    fmt = spec["format"]
    dtype = spec.get("dtype") if fmt in _DTYPE_CHECKED else None
    main = {"dm3": "image", "asd": "frames"}.get(fmt)
    if main is not None:
        value = value[main]
    what = f"key {spec['key']!r}"
    if isinstance(value, dict):
        if isinstance(shape, list):
            raise DataFileError(f"{path} ({what}): the manifest declares one array of shape "
                                f"{tuple(shape)}, the file holds arrays {sorted(value)}; declare "
                                "'shape' as an object of shapes per array.")
        declared = shape if isinstance(shape, dict) else dict.fromkeys(value)
        for key, dims in declared.items():
            if key not in value:
                raise DataFileError(f"{path} ({what}): the manifest declares an array {key!r}, "
                                    f"the file holds {sorted(value)}. Delete it and load again, "
                                    "or correct 'shape' in the manifest.")
            _check_array(value[key], dims, dtype, f"{what}, array {key!r}", path)
    else:
        if isinstance(shape, dict):
            raise DataFileError(f"{path} ({what}): the manifest declares arrays {sorted(shape)}, "
                                "the file holds a single array; declare 'shape' as a list.")
        _check_array(value, shape, dtype, what, path)


def _named_arrays(contents: dict[str, Any], prefixed: bool | None = None):
    """``(arrays, meta)`` of the files' ``contents`` (key -> value) in the default naming (see
    the module docstring); ``prefixed`` (default: several files) puts ``key/`` before the
    names found inside a file."""
    if prefixed is None:
        prefixed = len(contents) > 1
    arrays: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for key, value in contents.items():
        if not isinstance(value, dict):
            arrays[key] = value
            continue
        prefix = f"{key}/" if prefixed else ""
        for inner, v in value.items():
            (arrays if isinstance(v, np.ndarray) else meta)[prefix + inner] = v
    return arrays, meta


def _graphene_si_movie(contents: dict[str, Any], paths: dict[str, Path]):
    """The paper's movie, segmentation and coordinates in :class:`GrapheneMovie`'s terms."""
    frames = np.asarray(contents["frames"][..., 0], dtype=np.float32)
    # the authors' channels [C, Si, background] reordered to this suite's [background, C, Si]
    probabilities = np.ascontiguousarray(
        np.moveaxis(contents["decoded"][..., [2, 0, 1]], -1, 1), dtype=np.float32)
    coords = contents["coords"]
    keys = sorted(coords, key=lambda k: int(float(k)))
    atoms = [np.asarray(coords[k], dtype=float).reshape(-1, 3) for k in keys]
    if len(atoms) != len(frames):
        raise DataFileError(f"{paths['coords']} holds coordinates of {len(atoms)} frames, "
                            f"{paths['frames']} {len(frames)} frames; delete both and load "
                            "again to download them afresh")

    def on_atoms(columns) -> float:
        """Mean atom probability (1 - p(background)) at the atoms' pixels, over the frames."""
        limit = np.array(frames.shape[1:]) - 1
        values = [(1 - probabilities[t, 0])[tuple(np.clip(np.rint(a[:, columns]).astype(int),
                                                          0, limit).T)].mean()
                  for t, a in enumerate(atoms) if len(a)]
        return float(np.mean(values)) if values else float("nan")

    # the files document (row, col); atoms must sit where the segmentation sees atoms
    as_given, swapped = on_atoms([0, 1]), on_atoms([1, 0])
    if swapped > as_given + 0.2:
        warnings.warn(f"{paths['coords']}: the coordinates look like (col, row) (mean atom "
                      f"probability {as_given:.2f} as given, {swapped:.2f} swapped); swapping "
                      "them", stacklevel=3)
        atoms = [a[:, [1, 0, 2]] for a in atoms]
    meta = {"pixel_size": None, "atom_probability": {"as_given": as_given, "swapped": swapped}}
    return {"frames": frames, "probabilities": probabilities, "atoms": atoms}, meta


def _hysteresis_loops(contents: dict[str, Any], paths: dict[str, Path]):
    """The paper's loop map in :class:`HysteresisMap`'s terms (``first_dataset`` as read)."""
    second = contents["second_dataset"]
    loops = np.asarray(second["loops"], dtype=np.float32)
    voltage = np.asarray(second["voltages"], dtype=np.float64)
    if not (np.isfinite(loops).all() and np.isfinite(voltage).all()):
        raise DataFileError(f"{paths['second_dataset']} holds NaN or infinite loops or "
                            "voltages; delete it and load again to download it afresh")
    arrays, meta = _named_arrays({k: v for k, v in contents.items() if k != "second_dataset"},
                                 prefixed=True)
    arrays.update(loops=loops, voltage=voltage, image=loops[..., 0])
    return arrays, meta


# data sets whose original arrays are given the names of the simulator's dataclass
_SHAPERS = {"graphene_si_movie": _graphene_si_movie, "hysteresis_loops": _hysteresis_loops}


def _load_original(name: str, offline: bool | None,
                   manifest: str | os.PathLike | None = None) -> Dataset:
    """Fetch, verify, read and check the original files of ``name``, as one :class:`Dataset`."""
    paths = fetch(name, offline=offline, manifest=manifest)
    specs = {spec["key"]: spec for spec in _file_specs(name, manifest)}
    for key, spec in specs.items():
        if spec["format"] == "npy-pickle" and not spec.get("sha256"):
            raise ChecksumError(
                f"{spec['name']} is a pickled file and its manifest declares no sha256 "
                f"for it, so it will not be unpickled. The cached copy at {paths[key]} has "
                f"sha256 {sha256_of(paths[key])}: if you trust it, add that value as its "
                "sha256 in the manifest and load again."
            )
    contents = {}
    for key, path in paths.items():
        value = _read_file(path, specs[key])
        _check_declared(value, specs[key], path)
        contents[key] = value
    shaper = _SHAPERS.get(name)
    arrays, meta = shaper(contents, paths) if shaper else _named_arrays(contents)
    entry = describe(name, manifest)
    meta.update(description=entry.get("description", ""), paper=entry.get("paper", ""),
                files={k: str(p) for k, p in paths.items()})
    return Dataset(name=name, source="original", arrays=arrays, meta=meta)
