"""Data sets of the suite: :func:`load` returns data set ``name`` of ``data_manifest.json``
simulated (ground truth known; the default), from its original files, or original with a
fallback to simulated. The package's modules, each importing only those before it: ``errors``
(exceptions), ``dataset`` (:class:`Dataset`, what original files load as), ``catalog`` (the
manifest), ``cache`` (the cache folder, sha256), ``download`` (:func:`fetch`), ``read`` (reading
and checking files, shaping them into a :class:`Dataset`); their public names are re-exported
here.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from .cache import STALE_PARTIAL_S, cache_dir, sha256_of
from .catalog import FORMATS, MANIFEST_PATH, available, check_file_name, describe, manifest
from .dataset import Dataset
from .download import DEFAULT_TIMEOUT_S, download_timeout, fetch
from .errors import (
    CacheNotWritableError,
    ChecksumError,
    DataFileError,
    DataUnavailableError,
    ManifestError,
)
from .read import _load_original

__all__ = [
    "Dataset",
    "DataUnavailableError",
    "CacheNotWritableError",
    "ChecksumError",
    "DataFileError",
    "ManifestError",
    "manifest",
    "available",
    "describe",
    "cache_dir",
    "download_timeout",
    "fetch",
    "load",
    "sha256_of",
]

SOURCES = ("simulated", "original", "auto")


def _simulate(name: str, entry: dict, params: dict) -> Any:
    from .. import simulate

    sim = entry["simulate"]
    generator = getattr(simulate, sim["generator"], None)
    if generator is None:
        raise ValueError(f"data set {name!r} names a generator {sim['generator']!r} "
                         "that helpers.simulate does not have")
    return generator(**{**sim.get("params", {}), **params})


def load(
    name: str, source: str = "simulated", offline: bool | None = None, smoke: bool = False,
    manifest: str | os.PathLike | None = None, **params: Any,
) -> Any:
    """Load data set ``name``.

    Parameters
    ----------
    source : ``"simulated"`` (the generator, with the manifest's default parameters updated by
        ``params``; returns its dataclass: named arrays, the generator's arguments in
        ``params``), ``"original"`` (the real files; returns a :class:`Dataset`: named arrays,
        with the simulator's names where they correspond, and ``meta``; raises
        :class:`DataUnavailableError` with instructions when they cannot be obtained), or
        ``"auto"`` (original if obtainable, else simulated, with a printed warning giving the
        real reason, never silently). A file that is present but
        wrong (:class:`ChecksumError`, :class:`DataFileError`) is an error, never a fallback.
    offline : forbid downloads (default: env ``MICROSCOPY_OFFLINE``).
    smoke : CI scale (notebooks pass ``smoke=SMOKE``; the manifest's ``smoke_params`` are the
        one place where smoke-scale data sizes are set). Simulated data use the manifest's
        ``smoke_params`` on top of its default parameters; original files are returned whole
        (their size is what it is: a notebook takes the part it needs).
    manifest : path of your own manifest (same schema), merged over the suite's; see also the
        environment variable ``MICROSCOPY_MANIFEST``.
    params : generator parameters (simulated source, and the fallback of ``"auto"``); they
        override both the defaults and the smoke parameters. ``source="original"`` refuses
        them.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    entry = describe(name, manifest)
    has_original = "files" in entry
    has_simulated = "simulate" in entry
    sim_params = params
    if smoke and has_simulated:
        sim_params = {**entry["simulate"].get("smoke_params", {}), **params}
    if source == "simulated" or (source == "auto" and not has_original):
        if not has_simulated:
            raise ValueError(f"data set {name!r} has no simulator; use source='original'")
        return _simulate(name, entry, sim_params)
    if params and source == "original":
        raise ValueError(f"generator parameters {sorted(params)} apply to source='simulated' "
                         "only; remove them to load the original files")
    if source == "original" or not has_simulated:
        return _load_original(name, offline, manifest)
    try:
        return _load_original(name, offline, manifest)
    except DataUnavailableError as exc:
        if exc.offline:
            message = f"original data for {name!r} unavailable ({exc}); using simulated data"
        else:
            message = (f"original data for {name!r} could not be obtained, and not for want "
                       f"of a network ({exc}); using simulated data")
        print(f"WARNING: {message}")
        warnings.warn(message, stacklevel=2)
        return _simulate(name, entry, sim_params)
