"""Array helper of the figures (not a figure itself): tile a grid of images into one image."""

from __future__ import annotations

import numpy as np

__all__ = ["tile_mosaic"]


def tile_mosaic(grid: np.ndarray, pad: int = 1, fill: float = np.nan) -> np.ndarray:
    """Tile ``(rows, cols, H, W)`` images into one ``(rows*(H+pad)-pad, cols*(W+pad)-pad)``
    float32 array, image ``[i, j]`` at block row ``i``, block column ``j``; the gaps of
    ``pad`` pixels get ``fill``. The default NaN is drawn by ``imshow`` as background (the
    colour map's "bad" colour, transparent unless set), so the grid never looks like data,
    whatever the colour map; pass a number only for arrays that are not drawn."""
    g = np.asarray(grid, dtype=np.float32)
    if g.ndim != 4:
        raise ValueError(f"grid must be (rows, cols, H, W), got shape {g.shape}; reshape a "
                         "stack of images (N, H, W) to (1, N, H, W) for one row")
    r, c, h, w = g.shape
    out = np.full((r * (h + pad) - pad, c * (w + pad) - pad),
                  fill, dtype=np.float32)
    for i in range(r):
        for j in range(c):
            out[i * (h + pad):i * (h + pad) + h, j * (w + pad):j * (w + pad) + w] = g[i, j]
    return out
