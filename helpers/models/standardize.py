"""Standardisation shared by the models.

- :class:`Standardize`: ``(x - mean) / std`` with statistics set once from training data and
  kept as module buffers, so a saved model standardises new data exactly as in training and
  maps its outputs back to the caller's units (``inverse``).
- :func:`standardize_images`: per-image standardisation (each frame to zero mean and unit
  standard deviation), for models that must not depend on a frame's brightness or units.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["Standardize", "standardize_images"]


class Standardize(nn.Module):
    """``(x - mean) / std`` with ``mean`` and ``std`` held as buffers of shape ``shape``
    (``()`` for one statistic over all values, ``(D,)`` for one per feature of ``(N, D)``
    inputs). Until :meth:`set_statistics` is called it is the identity."""

    def __init__(self, shape: tuple[int, ...] | int = ()):
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.ones(shape))

    @torch.no_grad()
    def set_statistics(self, mean, std, min_std: float = 0.0) -> None:
        """Store ``mean`` and ``std`` (floats or arrays of the buffers' shape, in data units);
        a ``std`` at or below ``min_std`` (a constant feature) is stored as 1."""
        std = np.where(np.asarray(std, dtype=np.float64) > min_std, std, 1.0)
        self.mean.copy_(torch.as_tensor(np.asarray(mean, dtype=np.float64)))
        self.std.copy_(torch.as_tensor(std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Back to data units: ``y * std + mean``."""
        return y * self.std + self.mean

    def checked(self, x: torch.Tensor, name: str = "X") -> torch.Tensor:
        """``forward(x)``, raising ``ValueError`` naming ``name`` when the result overflows
        float32 (data far outside the training range: rescale them)."""
        out = self(x)
        if not bool(torch.isfinite(out).all()):
            raise ValueError(f"{name} overflows float32 once standardised by the training "
                             f"{self._describe()}; rescale it")
        return out

    def _describe(self) -> str:
        if self.mean.numel() == 1:
            return f"mean {float(self.mean):.3g} and std {float(self.std):.3g}"
        return "per-feature means and standard deviations"


def standardize_images(x: np.ndarray) -> np.ndarray:
    """Each image of ``x`` ``(N, H, W)`` to zero mean, unit standard deviation (float32).

    The statistics are computed in float32; an image whose float32 statistics overflow
    (values beyond about 1e19) or underflow (a non-constant image below about 1e-23) is
    standardised in float64 instead, so it does not turn into zeros. A flat image becomes
    zeros. Raises ``ValueError`` for an image whose spread exceeds the float32 range.
    """
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        mean = x.mean(axis=(1, 2), keepdims=True)
        std = x.std(axis=(1, 2), keepdims=True)
        out = ((x - mean) / np.maximum(std, 1e-8)).astype(np.float32)
    bad = ~(np.isfinite(mean) & np.isfinite(std)).ravel()
    small = (std == 0).ravel() & ~bad  # float32 squares underflowed (or a flat image)
    if small.any():
        flat = x[small].reshape(int(small.sum()), -1)
        small[small] = flat.max(axis=1) > flat.min(axis=1)
    for i in np.flatnonzero(bad | small):
        xi = x[i].astype(np.float64)
        sd = xi.std()
        if not np.isfinite(sd) or sd > np.finfo(np.float32).max:
            raise ValueError(f"image {i} is too large to standardise (std {sd:.3g}); rescale it")
        out[i] = ((xi - xi.mean()) / sd).astype(np.float32)
    return out
