"""Small builders shared by several test files (imported as ``support``; pytest puts tests/
on the path)."""

from __future__ import annotations

import hashlib
import io

import numpy as np


def npy_bytes(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    """The bytes of ``arr`` saved as a .npy file."""
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def sha(b: bytes) -> str:
    """The sha256 hex digest of ``b``."""
    return hashlib.sha256(b).hexdigest()


def disc_segmentation_data(n: int = 2, size: int = 32, seed: int = 0):
    """``n`` noisy ``(size, size)`` float32 images with six bright discs each, and their
    masks (int64; 0 background, 1 or 2 the disc's class, which sets its brightness)."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0, 0.1, (n, size, size)).astype(np.float32)
    masks = np.zeros((n, size, size), dtype=np.int64)
    rr, cc = np.mgrid[0:size, 0:size]
    for i in range(n):
        for _ in range(6):
            r, c = rng.uniform(4, size - 4, 2)
            disc = (rr - r) ** 2 + (cc - c) ** 2 <= 4
            k = 1 + int(rng.integers(2))
            images[i][disc] += k
            masks[i][disc] = k
    return images, masks
