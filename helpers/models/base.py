"""What every model of the suite shares: configuration, device, seeding, input checks,
and safe checkpoints (a JSON config plus a ``state_dict``, read with ``weights_only=True``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._checks import (
    CheckpointError,
    DivergenceGuard,
    NotFittedError,
    TrainingDivergedError,
    checkpoint_error,
    mean_std,
    not_fitted,
    read_checkpoint,
    real_array,
)
from .._io import atomic_path
from ..env import get_device, torch_generator

__all__ = [
    "CheckpointError",
    "DivergenceGuard",
    "Estimator",
    "NotFittedError",
    "TrainingDivergedError",
    "as_float_array",
    "mean_std",
    "not_fitted",
]

CHECKPOINT_FORMAT = "microscopy-ml-notebooks/estimator-v1"


class Estimator:
    """Base class of the suite's torch estimators.

    A subclass stores its constructor arguments (JSON-serialisable) in ``self.config`` and its
    torch network in ``self.module`` (built with :meth:`_build_module`). Anything needed to
    reproduce predictions (normalisation statistics, for example) lives in the module's
    parameters or buffers, so that ``save``/``load`` round-trips exactly.

    Randomness: the weights are initialised from ``seed``; the ``k``-th call of ``fit``
    (k = 0, 1, ...) draws from ``fit_seed = seed + 1000 * k`` (:meth:`_fit_seed`), with one
    stream per purpose: ``fit_seed + 0`` shuffling, ``+ 1`` noise and crops, ``+ 2``
    validation. The device is resolved once, here.
    """

    module: Any  # torch.nn.Module, set by the subclass

    def __init__(self, *, seed: int = 0, device: str = "auto", **config: Any):
        self.seed = int(seed)
        self.device = get_device(device)
        self.config = dict(config, seed=self.seed)
        try:
            json.dumps(self.config)
        except TypeError as exc:
            raise ValueError(f"model arguments must be JSON-serialisable: {exc}") from None
        self._fitted = False
        self._n_fits = 0

    # -- seeding -----------------------------------------------------------------------------
    def _build_module(self, factory: Callable[[], torch.nn.Module]) -> torch.nn.Module:
        """Set ``self.module = factory()`` on the model's device, its initial weights drawn
        from ``self.seed`` without touching torch's global random state."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.module = factory().to(self.device)
        return self.module

    def _fit_seed(self) -> int:
        """The seed of this ``fit`` call, ``seed + 1000 * (fits so far)``; counts the fit."""
        seed = self.seed + 1000 * self._n_fits
        self._n_fits += 1
        return seed

    def _generator(self, seed: int) -> torch.Generator:
        """A generator seeded with ``seed`` on the model's device (CPU where it has none)."""
        return torch_generator(seed, self.device)

    # -- checkpoints -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the model to ``path`` (one file: JSON config + ``state_dict``), atomically;
        returns the path."""
        path = Path(path)
        payload = {
            "format": CHECKPOINT_FORMAT,
            "class": type(self).__name__,
            "config": json.dumps(self.config),
            "state_dict": {k: v.detach().cpu() for k, v in self.module.state_dict().items()},
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "auto"):
        """Read a model written by ``save`` (never unpickles arbitrary objects).

        Raises ``FileNotFoundError`` for a missing file and ``CheckpointError`` (a
        ``ValueError``) naming the file for anything that is not a valid checkpoint of this
        class: a damaged or foreign file, one holding other objects than tensors, another
        class's checkpoint, or an edited config or weights that do not fit the class.
        """
        path = Path(path)
        name = cls.__name__
        payload = read_checkpoint(path, name)
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise checkpoint_error(path, name, f"it was not written by {name}.save")
        if payload.get("class") != name:
            raise CheckpointError(
                f"{path} holds a {payload.get('class')!r} model, not a {name}; "
                f"load it with {payload.get('class')}.load"
            )
        try:
            config = json.loads(payload["config"])
        except (KeyError, TypeError, ValueError):
            raise checkpoint_error(path, name, "its config is missing or not JSON") from None
        state = payload.get("state_dict")
        if not isinstance(config, dict) or not isinstance(state, dict):
            raise checkpoint_error(path, name, "its config or weights are not dictionaries")
        try:
            model = cls(**config, device=device)
        except (TypeError, ValueError) as exc:
            raise checkpoint_error(
                path, name, f"its config does not match {name}({', '.join(config)}): {exc}"
            ) from None
        try:
            model.module.load_state_dict(state)
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise checkpoint_error(
                path, name, f"its weights do not fit the network its config builds: {first}"
            ) from None
        model.module.to(model.device).eval()
        model._fitted = True
        return model


def as_float_array(
    x: Any, name: str = "X", ndim: int | tuple[int, ...] | None = None,
    shape_tail: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Check and convert model input to a C-contiguous float32 array.

    Raises ``ValueError`` naming the problem when ``x`` has the wrong number of dimensions,
    the wrong trailing shape (e.g. image size), is empty, holds NaN/inf or values beyond
    the float32 range, or is not real (complex input is refused, never truncated).
    """
    arr = real_array(x, name)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise ValueError(
                f"{name} must have {' or '.join(map(str, allowed))} dimensions, "
                f"got shape {arr.shape}"
            )
    if shape_tail is not None and tuple(arr.shape[-len(shape_tail):]) != tuple(shape_tail):
        raise ValueError(
            f"{name} has trailing shape {tuple(arr.shape[-len(shape_tail):])}, but the model "
            f"was built for {tuple(shape_tail)}; resize the input or build a new model"
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    with np.errstate(over="ignore"):
        arr32 = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr32).all():
        if arr.dtype.kind == "f" and arr.dtype.itemsize > 4 and np.isfinite(arr).all():
            raise ValueError(f"{name} holds values beyond the float32 range (|x| > 3.4e38); "
                             "rescale it first")
        bad = int((~np.isfinite(arr32)).sum())
        raise ValueError(f"{name} holds {bad} non-finite values (NaN or inf); clean or mask them")
    return arr32
