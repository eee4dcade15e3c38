"""Shared pieces of the simulators: argument checks and image rendering.

Private to :mod:`helpers.simulate`; all coordinates are ``(row, col)`` in pixels.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy import ndimage


class Series:
    """Mixin of the simulators' result dataclasses: ``len(result)`` is the number of frames
    (or samples), the length of the field named by ``_length_of``."""

    _length_of = "frames"

    def __len__(self) -> int:
        return len(getattr(self, self._length_of))


def check_int(value, name: str, minimum: int, hint: str = "") -> int:
    """``value`` as an int >= ``minimum``, else ``ValueError`` naming the argument and the fix."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        extra = f" ({hint})" if hint else ""
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}{extra}")
    return int(value)


def check_float(value, name: str, low: float | None = None, high: float | None = None,
                low_open: bool = False, hint: str = "") -> float:
    """``value`` as a finite float within ``[low, high]`` (``(low, high]`` if ``low_open``)."""
    extra = f" ({hint})" if hint else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}{extra}")
    value = float(value)
    if low is not None and (value < low or (low_open and value == low)):
        bound = ">" if low_open else ">="
        raise ValueError(f"{name} must be {bound} {low}, got {value}{extra}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}{extra}")
    return value


def check_seed(seed) -> int:
    """A non-negative integer seed."""
    return check_int(seed, "seed", 0, "pass a non-negative integer such as seed=0")


def check_shape(size, name: str = "size", minimum: int = 16) -> tuple[int, int]:
    """An image size given as ``n`` or ``(H, W)``, each >= ``minimum`` pixels."""
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (size, size)
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) for s in size)):
        raise ValueError(f"{name} must be an integer or a pair (H, W) of integers, got {size!r}")
    if min(size) < minimum:
        raise ValueError(f"{name} must be at least {minimum} pixels on each side, got {size!r}")
    return int(size[0]), int(size[1])


def gaussian_splat(shape: tuple[int, int], rows, cols, amps, sigma: float,
                   col_shift=None) -> np.ndarray:
    """Sum of isotropic Gaussians ``amp * exp(-r^2 / (2 sigma^2))`` on a pixel grid.

    Args:
        shape: ``(H, W)`` of the output, pixels.
        rows, cols: ``(N,)`` centres, pixels (sub-pixel values allowed; centres outside the
            image still contribute their tails).
        amps: ``(N,)`` peak values.
        sigma: Gaussian standard deviation, pixels.
        col_shift: optional ``(H,)`` per-row horizontal shift, pixels (scan jitter): row ``r``
            shows every Gaussian displaced by ``col_shift[r]`` along the columns.

    Returns:
        ``(H, W)`` float64 image.
    """
    h, w = shape
    rows = np.asarray(rows, dtype=np.float64)
    cols = np.asarray(cols, dtype=np.float64)
    amps = np.broadcast_to(np.asarray(amps, dtype=np.float64), rows.shape)
    half = int(np.ceil(3.5 * sigma)) + 1
    keep = (rows > -half) & (rows < h + half) & (cols > -half) & (cols < w + half)
    rows, cols, amps = rows[keep], cols[keep], amps[keep]
    if rows.size == 0:
        return np.zeros(shape)
    offs = np.arange(-half, half + 1)
    r_idx = np.round(rows).astype(np.int64)[:, None, None] + offs[None, :, None]
    c_idx = np.round(cols).astype(np.int64)[:, None, None] + offs[None, None, :]
    shift = 0.0
    if col_shift is not None:
        padded = np.asarray(col_shift, dtype=np.float64)
        shift = padded[np.clip(r_idx, 0, h - 1)]
    dr = r_idx - rows[:, None, None]
    dc = c_idx - cols[:, None, None] - shift
    val = amps[:, None, None] * np.exp(-(dr**2 + dc**2) / (2.0 * sigma**2))
    inside = (r_idx >= 0) & (r_idx < h) & (c_idx >= 0) & (c_idx < w)
    inside = np.broadcast_to(inside, val.shape)
    flat = (np.broadcast_to(r_idx, val.shape) * w + np.broadcast_to(c_idx, val.shape))[inside]
    return np.bincount(flat, weights=val[inside], minlength=h * w).reshape(h, w)


def disc_labels(shape: tuple[int, int], rows, cols, labels, radius: float) -> np.ndarray:
    """Integer label image with a disc of ``radius`` pixels around every centre.

    Later entries overwrite earlier ones where discs overlap; pass the rarer class last.

    Returns:
        ``(H, W)`` int64, 0 where no disc covers the pixel.
    """
    h, w = shape
    out = np.zeros(shape, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.float64)
    cols = np.asarray(cols, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if rows.size == 0:
        return out
    half = int(np.ceil(radius)) + 1
    offs = np.arange(-half, half + 1)
    r_idx = np.round(rows).astype(np.int64)[:, None, None] + offs[None, :, None]
    c_idx = np.round(cols).astype(np.int64)[:, None, None] + offs[None, None, :]
    hit = (r_idx - rows[:, None, None]) ** 2 + (c_idx - cols[:, None, None]) ** 2 <= radius**2
    hit &= (r_idx >= 0) & (r_idx < h) & (c_idx >= 0) & (c_idx < w)
    lab = np.broadcast_to(labels[:, None, None], hit.shape)
    rr = np.broadcast_to(r_idx, hit.shape)[hit]
    cc = np.broadcast_to(c_idx, hit.shape)[hit]
    out[rr, cc] = lab[hit]  # numpy assigns in order: the last write wins
    return out


def upsample(field: np.ndarray, factor: int, periodic: bool = True) -> np.ndarray:
    """Cubic-spline upsampling of the last two axes by an integer ``factor``.

    Site ``(i, j)`` of the lattice lands on pixel ``(i * factor + (factor - 1) / 2, ...)``, the
    centre of its ``factor x factor`` block.
    """
    if factor == 1:
        return np.asarray(field, dtype=np.float64).copy()
    h, w = field.shape[-2:]
    r = (np.arange(h * factor) - (factor - 1) / 2.0) / factor
    c = (np.arange(w * factor) - (factor - 1) / 2.0) / factor
    rr, cc = np.meshgrid(r, c, indexing="ij")
    mode = "grid-wrap" if periodic else "nearest"
    flat = np.asarray(field, dtype=np.float64).reshape(-1, h, w)
    out = np.stack([ndimage.map_coordinates(f, [rr, cc], order=3, mode=mode) for f in flat])
    return out.reshape(*field.shape[:-2], h * factor, w * factor)
