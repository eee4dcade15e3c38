"""Input checks shared by the image-handling modules (no dependencies inside ``helpers``)."""

from __future__ import annotations

import numpy as np


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
