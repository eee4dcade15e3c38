"""The exceptions of the data layer: a file that cannot be obtained (:class:`DataUnavailableError`,
and its subclass :class:`CacheNotWritableError` when the cache cannot take a download), a file
whose sha256 does not match (:class:`ChecksumError`), a file that cannot be read or does not hold
the declared arrays (:class:`DataFileError`), and a malformed manifest (:class:`ManifestError`).
"""

from __future__ import annotations


class DataUnavailableError(RuntimeError):
    """An original file could not be obtained (offline, quota, dead link, timeout).

    ``offline`` is true when the cause is no network (or downloads switched off), false when
    the network answered but the transfer failed (HTTP error, timeout, ...).
    """

    def __init__(self, message: str, *, offline: bool = False):
        super().__init__(message)
        self.offline = offline


class CacheNotWritableError(DataUnavailableError):
    """The cache folder is needed for writing (a download) but cannot be written."""


class ChecksumError(ValueError):
    """A downloaded or cached file does not have the sha256 the manifest declares."""


class DataFileError(ValueError):
    """A cached file cannot be read, or does not hold the shape/dtype the manifest declares."""


class ManifestError(ValueError):
    """A data manifest is malformed (the message names the file, the entry and the key)."""
