"""Checks shared by the image-handling and model modules (no dependencies inside ``helpers``).

- :func:`real_array` / :func:`image_stack`: input arrays of real numbers (complex, object and
  text arrays are refused rather than silently truncated or mis-read).
- :func:`mean_std`: the standardisation statistics of training data, safe for very large or
  very small magnitudes.
- :class:`DivergenceGuard` / :class:`TrainingDivergedError`: stop a training loop whose loss
  became non-finite or exploded (a learning rate far too large).
- :class:`NotFittedError`: inference on a model that was neither trained nor loaded.
- :func:`read_checkpoint` / :class:`CheckpointError`: read a torch checkpoint safely
  (``weights_only=True``) and turn every failure into one clear error naming the file.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CheckpointError",
    "DivergenceGuard",
    "NotFittedError",
    "TrainingDivergedError",
    "image_stack",
    "mean_std",
    "read_checkpoint",
    "real_array",
]


# --------------------------------------------------------------------------------------------
# real-valued input
# --------------------------------------------------------------------------------------------
def real_array(x: Any, name: str = "X") -> np.ndarray:
    """``np.asarray(x)`` after checking that it holds real numbers (or booleans).

    Raises ``ValueError`` naming ``name`` for complex input (which a float conversion would
    silently truncate to its real part) and for object, text or other non-numeric dtypes.
    The dtype is kept; NaN/inf are not checked here.
    """
    arr = np.asarray(x)
    if np.iscomplexobj(arr):
        raise ValueError(
            f"{name} holds complex numbers (dtype {arr.dtype}); pass a real array, e.g. "
            "np.abs(x) for the magnitude, x.real, or the real and imaginary parts as "
            "separate inputs"
        )
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be a numeric array of real numbers, got dtype {arr.dtype}")
    return arr


def image_stack(x, name: str = "frames") -> tuple[np.ndarray, bool]:
    """Check an image ``(H, W)`` or a stack ``(T, H, W)`` of real numbers.

    Returns the ``(T, H, W)`` array (dtype kept) and whether a single image was given.
    Raises ``ValueError`` naming the problem for other shapes, non-real dtypes, NaN/inf and
    empty input.
    """
    arr = np.asarray(x)
    if arr.ndim == 2:
        arr, single = arr[None], True
    elif arr.ndim == 3:
        single = False
    else:
        raise ValueError(
            f"{name} must be an image (H, W) or a stack (T, H, W), got shape {arr.shape}; "
            "squeeze channel axes first, e.g. x[..., 0]"
        )
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf; fill or crop them before this step")
    if min(arr.shape) == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    return arr, single


# --------------------------------------------------------------------------------------------
# standardisation
# --------------------------------------------------------------------------------------------
def mean_std(x: np.ndarray, name: str = "X") -> tuple[float, float]:
    """Mean and standard deviation of all of ``x``, as Python floats.

    They are computed in ``x``'s own dtype (float32 for model inputs: the numbers every
    seeded run of the suite was made with). Only when that fails, because squares overflow
    (values beyond about 1e19 in float32) or underflow to zero (below about 1e-23), are they
    recomputed in float64, so that such data are standardised instead of becoming all zeros.
    A constant array has standard deviation 0 (callers then divide by 1).

    Raises ``ValueError`` when the statistics do not fit in float32 (values near 3e38): the
    data must be rescaled first.
    """
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        mean, std = float(x.mean()), float(x.std())
    if math.isfinite(mean) and math.isfinite(std) and (std > 0 or x.min() == x.max()):
        return mean, std
    x64 = np.asarray(x, dtype=np.float64)
    mean, std = float(x64.mean()), float(x64.std())
    limit = float(np.finfo(np.float32).max)
    if not (abs(mean) < limit and std < limit):
        raise ValueError(
            f"{name} is too large to standardise in float32 (mean {mean:.3g}, standard "
            f"deviation {std:.3g}); rescale it first, e.g. divide by {std:.0e}"
        )
    return mean, std


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------
class TrainingDivergedError(FloatingPointError, RuntimeError):
    """Training stopped because the loss became NaN/inf or exploded (see DivergenceGuard).

    A ``FloatingPointError`` (as the suite's NaN stop always was) and a ``RuntimeError``.
    """


class DivergenceGuard:
    """Stop a training loop whose loss diverges.

    Feed it every loss value the loop computes (per optimiser step or per epoch) with
    :meth:`check`. The first value is the reference: the loss of the model as it was before
    this ``fit`` changed it (taken per step, because a learning rate far too large can blow
    the loss up within the first epoch, which then makes a poor reference). Training stops
    with :class:`TrainingDivergedError` when a value is NaN/inf, or exceeds
    ``factor * max(|reference|, floor)``.

    ``factor`` (default 1e3) is far above anything a working run shows: losses fall from
    their first value, and the mini-batch noise of a running fit stays within a few times
    it. ``floor`` (the natural size of the loss, e.g. 1 for a loss on standardised targets)
    keeps a first value near zero from making the bound tiny.
    """

    def __init__(self, factor: float = 1e3, floor: float = 1.0, what: str = "loss"):
        if not (factor > 1 and floor > 0):
            raise ValueError(f"factor must be > 1 and floor > 0, got {factor}, {floor}")
        self.factor, self.floor, self.what = float(factor), float(floor), what
        self.reference: float | None = None

    @property
    def limit(self) -> float:
        """The largest loss allowed (inf until the first value is seen)."""
        if self.reference is None:
            return math.inf
        return self.factor * max(abs(self.reference), self.floor)

    def check(self, value: float, epoch: int) -> None:
        """Raise :class:`TrainingDivergedError` naming ``epoch`` if ``value`` diverged."""
        value = float(value)
        if not math.isfinite(value):
            raise TrainingDivergedError(
                f"training diverged: the {self.what} became {value} at epoch {epoch}; "
                "lower the learning rate (lr), e.g. by 10x, or check the input scaling"
            )
        if self.reference is None:
            self.reference = value
            return
        if value > self.limit:
            raise TrainingDivergedError(
                f"training diverged at epoch {epoch}: the {self.what} grew to {value:.4g}, "
                f"more than {self.factor:.0e} times its first value {self.reference:.4g} "
                f"(limit {self.limit:.4g}); lower the learning rate (lr), e.g. by 10x"
            )


class NotFittedError(ValueError):
    """A model was asked to encode/predict/decode before ``fit`` or ``load``."""


def not_fitted(owner: str, fit_call: str = "fit(X)") -> NotFittedError:
    """The error for inference on an untrained model (``owner``: the class name)."""
    return NotFittedError(
        f"this {owner} is not fitted yet: call {fit_call} first, or {owner}.load(path) to "
        "read a trained one"
    )


# --------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------
class CheckpointError(ValueError):
    """A file is not a valid checkpoint of the class that tried to read it."""


def read_checkpoint(path: str | os.PathLike, owner: str) -> Any:
    """``torch.load(path, weights_only=True)`` with every failure as a :class:`CheckpointError`.

    Only tensors and plain containers are ever unpickled. A missing file raises
    ``FileNotFoundError``; a damaged, foreign or unsafe file raises ``CheckpointError``
    naming the file and ``owner`` (the class reading it).
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {owner} checkpoint at {path}; check the path, or train "
                                "a model and call save()")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types (pickle, zip, runtime errors)
        raise checkpoint_error(path, owner, _load_reason(exc)) from None


def checkpoint_error(path, owner: str, reason: str) -> CheckpointError:
    """The error for a file that is not a valid ``owner`` checkpoint, with ``reason``."""
    return CheckpointError(
        f"{os.fspath(path)} is not a valid {owner} checkpoint ({reason}); use a file "
        f"written by {owner}.save, or retrain and save the model again"
    )


def _load_reason(exc: BaseException) -> str:
    """A short reason for a failed safe load, without torch's advice to unpickle unsafely."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "GLOBAL" in line:  # a pickled class or function: refused, never executed
            return ("it holds objects other than tensors, which are never unpickled: "
                    f"{line.split('. ')[0].rstrip('.')}")
    detail = next((line for line in lines if line.startswith("Unsupported operand")), "")
    return ("the file is damaged or not a torch checkpoint: "
            f"{type(exc).__name__}{' (' + detail + ')' if detail else ''}")
