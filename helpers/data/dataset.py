"""The object :func:`helpers.data.load` returns for original files: named arrays and metadata.

Simulated sources return their generator's dataclass (``GrapheneMovie``, ``HysteresisMap``,
...): named arrays as attributes, the generator's arguments in ``params``. A :class:`Dataset`
is the same kind of object for original files: named arrays as attributes, and what is known
about them in ``meta``. Where an original array corresponds to a simulated one it has the
simulator's name, shape convention and units (``frames``, ``atoms``, ``loops``, ``voltage``,
``image``, ``pixel_size``), so a notebook reads either source with the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Dataset"]


@dataclass(frozen=True)
class Dataset:
    """Arrays read from the original files of data set ``name``.

    Attributes:
        name: the data set's name in the manifest.
        source: ``"original"``.
        arrays: array name -> numpy array (or a list of per-frame arrays for ragged data such
            as atom positions); each data set's names and shapes are documented in
            :mod:`helpers.data.read`.
        meta: scalars read from the files (``pixel_size``, ``pixel_unit``, ...), the
            manifest's ``description`` and ``paper``, and ``files`` (file key -> local path).

    ``ds.frames`` and ``ds["frames"]`` look a name up in ``arrays``, then in ``meta``.
    """

    name: str
    source: str
    arrays: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    def _lookup(self, key: str) -> Any:
        if key in self.arrays:
            return self.arrays[key]
        if key in self.meta:
            return self.meta[key]
        raise KeyError(f"data set {self.name!r} ({self.source}) has no {key!r}; its arrays are "
                       f"{sorted(self.arrays)} and its metadata {sorted(self.meta)}")

    def __getitem__(self, key: str) -> Any:
        return self._lookup(key)

    def __getattr__(self, key: str) -> Any:
        # called only for names that are not fields; never for the fields themselves, so that
        # copying or unpickling a half-built instance cannot recurse
        if key.startswith("__") or key in ("arrays", "meta", "name", "source"):
            raise AttributeError(key)
        try:
            return self._lookup(key)
        except KeyError as exc:
            raise AttributeError(exc.args[0]) from None

    def __contains__(self, key: str) -> bool:
        return key in self.arrays or key in self.meta

    def keys(self) -> list[str]:
        """The array names (not the metadata)."""
        return list(self.arrays)

    def __repr__(self) -> str:
        shapes = ", ".join(
            f"{k}: {v.shape} {v.dtype}" if isinstance(v, np.ndarray) else f"{k}: {len(v)} items"
            for k, v in self.arrays.items())
        return f"Dataset({self.name!r}, {self.source}; {shapes})"
