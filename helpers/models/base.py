"""What every model of the suite shares: configuration, device, seeding, input checks,
and safe checkpoints (a JSON config plus a ``state_dict``, read with ``weights_only=True``).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_path
from ..env import get_device

__all__ = ["Estimator", "as_float_array", "check_finite_loss"]

CHECKPOINT_FORMAT = "microscopy-ml-notebooks/estimator-v1"


class Estimator:
    """Base class of the suite's torch estimators.

    A subclass stores its constructor arguments (JSON-serialisable) in ``self.config`` and its
    torch network in ``self.module``. Anything needed to reproduce predictions (normalisation
    statistics, for example) lives in the module's parameters or buffers, so that
    ``save``/``load`` round-trips exactly.
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

    # -- checkpoints -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the model to ``path`` (one file: JSON config + ``state_dict``), atomically."""
        import torch

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
        """Read a model written by ``save`` (never unpickles arbitrary objects)."""
        import torch

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no model checkpoint at {path}; check the path")
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a checkpoint written by {cls.__name__}.save")
        if payload["class"] != cls.__name__:
            raise ValueError(
                f"{path} holds a {payload['class']}, not a {cls.__name__}; "
                f"load it with {payload['class']}.load"
            )
        config = json.loads(payload["config"])
        model = cls(**config, device=device)
        model.module.load_state_dict(payload["state_dict"])
        model.module.to(model.device)
        model._fitted = True
        return model


def as_float_array(
    x: Any, name: str = "X", ndim: int | tuple[int, ...] | None = None,
    shape_tail: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Check and convert model input to a C-contiguous float32 array.

    Raises ``ValueError`` naming the problem when ``x`` has the wrong number of dimensions,
    the wrong trailing shape (e.g. image size), is empty, or holds NaN/inf.
    """
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be a numeric array, got dtype {arr.dtype}")
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
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise ValueError(f"{name} holds {bad} non-finite values (NaN or inf); clean or mask them")
    return arr


def check_finite_loss(loss: float, epoch: int) -> None:
    """Stop training with a clear message when the loss becomes NaN or inf."""
    if not math.isfinite(loss):
        raise FloatingPointError(
            f"training diverged: the loss became {loss} at epoch {epoch}; "
            "lower the learning rate or check the input scaling"
        )
