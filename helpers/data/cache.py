"""The download cache: its folder (``$MICROSCOPY_DATA_DIR``, else
``~/.cache/microscopy-ml-notebooks``) with one folder per data set, the check that a folder can be
written before a download goes into it (a complete, verified cache may stay read-only), the
removal of partial files a killed run left behind once they are an hour old, and sha256 of files.
"""

from __future__ import annotations

import glob
import hashlib
import os
import tempfile
import time
from pathlib import Path

from .catalog import _check_dataset_name
from .errors import CacheNotWritableError

# a partial download untouched this long belongs to a run that died (live ones write steadily)
STALE_PARTIAL_S = 3600.0


def _cache_root() -> Path:
    root = os.environ.get("MICROSCOPY_DATA_DIR")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "microscopy-ml-notebooks"


def _not_writable(folder: Path, exc: OSError) -> CacheNotWritableError:
    return CacheNotWritableError(
        f"the data cache folder {folder} cannot be written ({exc.strerror or exc}), and a file "
        "has to be downloaded into it. Make it writable, or set MICROSCOPY_DATA_DIR to a "
        "writable folder. (A complete, verified cache may stay read-only: loading it writes "
        "nothing.)"
    )


def cache_dir(create: bool = True) -> Path:
    """The download cache: ``$MICROSCOPY_DATA_DIR`` or ``~/.cache/microscopy-ml-notebooks``.

    With ``create`` the folder is made if missing; :class:`CacheNotWritableError` (naming the
    folder and ``MICROSCOPY_DATA_DIR``) if that is not possible.
    """
    path = _cache_root()
    if create and not path.is_dir():
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _not_writable(path, exc) from exc
    return path


def _dataset_folder(name: str) -> Path:
    """The cache folder of data set ``name`` (not created), checked to be inside the cache."""
    _check_dataset_name(name, "cache folder")
    return _cache_root() / name


def _ensure_writable(folder: Path) -> None:
    """Create ``folder`` and check a file can be made in it, or raise CacheNotWritableError."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _not_writable(folder, exc) from exc


def _clean_stale_partials(folder: Path, name: str) -> None:
    """Remove temporary files of ``name`` (``.NAME.*``) that a killed run left behind."""
    if not folder.is_dir():
        return
    now = time.time()
    stems = (name, Path(name).with_suffix(".converted.npz").name)
    for stem in stems:
        for path in folder.glob(f".{glob.escape(stem)}.*"):
            try:
                if path.is_file() and now - path.stat().st_mtime > STALE_PARTIAL_S:
                    path.unlink()
            except OSError:  # read-only cache, or another process removed it first
                pass


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
