"""Spectra on a spatial grid: (patch, spectrum) pairs, spatial splits, loop areas, maps and
latent grids.

The data layout of a spectroscopic map (e.g. piezoresponse hysteresis loops): an image
``(H, W)`` and one spectrum of ``L`` points at every pixel, ``(H, W, L)``. ``patch_loop_pairs``
cuts the image into sliding patches and pairs each with the spectrum at its centre pixel;
``spatial_split`` separates them into a left (train) and a right (test) region without overlap;
``loop_area`` measures each hysteresis loop, ``values_to_map`` paints per-pair values back onto
the image grid, and ``latent_grid`` / ``nearest_on_grid`` lay a regular grid over a latent
plane. The scores of predicted spectra and patches against the truth (normalised RMSE, R^2,
SSIM) are in :mod:`helpers.analysis.scores`. Everything takes and returns numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..features import grid_patches
from .scores import _finite

__all__ = [
    "PairSet",
    "SpatialSplit",
    "loop_map_from_arrays",
    "patch_loop_pairs",
    "spatial_split",
    "loop_area",
    "values_to_map",
    "latent_grid",
    "nearest_on_grid",
]


def loop_map_from_arrays(arrays) -> tuple[np.ndarray, np.ndarray]:
    """Find the loop map and the voltage vector among the arrays of a spectroscopy file.

    Args:
        arrays: a mapping name -> array (e.g. the contents of an ``.npz``), holding exactly
            one 3D array ``(H, W, L)`` (the loops) and one 1D array of length ``L`` (the
            voltages); other arrays are ignored.

    Returns:
        ``(loops, voltage)``: ``(H, W, L)`` float32 and ``(L,)`` float64 (volts).
    """
    if not hasattr(arrays, "items"):
        raise ValueError(f"expected a mapping of name -> array, got {type(arrays).__name__}")
    cubes = {k: np.asarray(v) for k, v in arrays.items() if np.ndim(v) == 3}
    if len(cubes) != 1:
        raise ValueError(f"expected one (H, W, L) loop array, found {sorted(cubes) or 'none'} "
                         f"among {sorted(arrays)}")
    loops = _finite(next(iter(cubes.values())), "loops", 3)
    vectors = {k: v for k, v in arrays.items() if np.ndim(v) == 1 and len(v) == loops.shape[2]}
    if len(vectors) != 1:
        raise ValueError(f"expected one voltage vector of length {loops.shape[2]}, found "
                         f"{sorted(vectors) or 'none'} among {sorted(arrays)}")
    voltage = _finite(next(iter(vectors.values())), "voltage", 1)
    return loops.astype(np.float32), voltage


@dataclass
class PairSet:
    """Image patches paired with the spectrum at each patch centre.

    Attributes:
        patches: ``(N, p, p)`` float32, image values.
        loops: ``(N, L)`` float32, the spectrum at the centre pixel of each patch.
        rows, cols: ``(N,)`` int, the centre pixel ``(row, col)`` of each patch (pixel
            ``(p // 2, p // 2)`` of the patch).
        image_shape: ``(H, W)`` of the source image, pixels.
        patch_size: ``p``, pixels.
    """

    patches: np.ndarray
    loops: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    image_shape: tuple[int, int]
    patch_size: int

    def __len__(self) -> int:
        return len(self.patches)

    def subset(self, mask) -> PairSet:
        """The pairs selected by a boolean mask or an index array."""
        return PairSet(self.patches[mask], self.loops[mask], self.rows[mask], self.cols[mask],
                       self.image_shape, self.patch_size)


def patch_loop_pairs(image, loops, patch_size: int = 8) -> PairSet:
    """Pair every sliding ``patch_size`` window of ``image`` with the spectrum at its centre.

    Args:
        image: ``(H, W)`` image (e.g. the piezoresponse at the first voltage step).
        loops: ``(H, W, L)`` one spectrum per pixel.
        patch_size: window side in pixels (the paper: 8); windows step by one pixel and stay
            inside the image, so there are ``(H - p + 1) * (W - p + 1)`` pairs.

    Returns:
        :class:`PairSet`, ordered row by row.
    """
    img = _finite(image, "image", 2)
    spec = _finite(loops, "loops", 3)
    if spec.shape[:2] != img.shape:
        raise ValueError(f"loops must be (H, W, L) on the image grid {img.shape}, got "
                         f"{spec.shape}")
    if not isinstance(patch_size, (int, np.integer)) or patch_size < 1:
        raise ValueError(f"patch_size must be a positive integer, got {patch_size!r}")
    if patch_size > min(img.shape):
        raise ValueError(f"patch_size {patch_size} is larger than the image {img.shape}")
    grid = grid_patches(img, int(patch_size))
    rows, cols = grid.centers[:, 0].astype(int), grid.centers[:, 1].astype(int)
    return PairSet(grid.patches.astype(np.float32), spec[rows, cols].astype(np.float32),
                   rows, cols, tuple(img.shape), int(patch_size))


@dataclass
class SpatialSplit:
    """A left/right split of a :class:`PairSet` with no patch crossing the boundary.

    Attributes:
        train, test: ``(N,)`` bool masks; a train patch lies entirely left of ``boundary``, a
            test patch entirely right of it (patches straddling it are in neither).
        boundary: the first image column of the test region, pixels.
    """

    train: np.ndarray
    test: np.ndarray
    boundary: int


def spatial_split(pairs: PairSet, train_fraction: float = 0.5) -> SpatialSplit:
    """Split pairs into a left training region and a right held-out region.

    The boundary is the image column ``round(train_fraction * W)``. Patches overlapping it are
    dropped, so no pixel of a test patch was seen in training.
    """
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction!r}")
    width = pairs.image_shape[1]
    boundary = int(round(train_fraction * width))
    first = pairs.cols - pairs.patch_size // 2  # first column of each patch
    train = first + pairs.patch_size <= boundary
    test = first >= boundary
    if not train.any() or not test.any():
        raise ValueError(f"train_fraction {train_fraction} leaves an empty region for patches "
                         f"of {pairs.patch_size} px on an image {width} px wide")
    return SpatialSplit(train, test, boundary)


def loop_area(loops, voltage) -> np.ndarray:
    """Area enclosed by each hysteresis loop (shoelace formula on the closed (V, P) polygon).

    Args:
        loops: ``(..., L)`` response values (e.g. piezoresponse, arbitrary units).
        voltage: ``(L,)`` applied voltage of each point, volts.

    Returns:
        ``(...)`` non-negative areas in volts x response units.
    """
    y = _finite(loops, "loops", tuple(range(1, 8)))
    v = _finite(voltage, "voltage", 1)
    if y.shape[-1] != len(v):
        raise ValueError(f"loops have {y.shape[-1]} points but voltage has {len(v)}")
    v_next = np.roll(v, -1)
    y_next = np.roll(y, -1, axis=-1)
    return 0.5 * np.abs(np.sum(v * y_next - v_next * y, axis=-1))


def values_to_map(values, rows, cols, shape, fill: float = np.nan) -> np.ndarray:
    """Place per-pair values at their centre pixels of an ``(H, W)`` map (``fill`` elsewhere).

    ``values`` may be ``(N,)`` or ``(N, K)``; the result is ``(H, W)`` or ``(H, W, K)``.
    """
    vals = np.asarray(values, dtype=float)
    r, c = np.asarray(rows, dtype=int), np.asarray(cols, dtype=int)
    if not (len(vals) == len(r) == len(c)):
        raise ValueError(f"got {len(vals)} values for {len(r)} rows and {len(c)} cols")
    height, width = int(shape[0]), int(shape[1])
    if len(r) and (r.min() < 0 or c.min() < 0 or r.max() >= height or c.max() >= width):
        raise ValueError(f"positions fall outside the map of shape {(height, width)}")
    out = np.full((height, width) + vals.shape[1:], fill, dtype=float)
    out[r, c] = vals
    return out


def latent_grid(z, n: int = 8, quantile: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """A regular ``n x n`` grid over the first two latent dimensions of codes ``z``.

    The grid spans the ``quantile`` to ``1 - quantile`` range of each dimension; any further
    dimensions are held at their median. Returns ``(grid, axes)``: ``grid`` is ``(n * n, d)``
    codes ordered row by row (row: dimension 1 from high to low, as displayed; column:
    dimension 0 from low to high), ``axes`` is ``(2, n)`` the values along dims 0 and 1.
    """
    zz = _finite(z, "z", 2)
    if zz.shape[1] < 2:
        raise ValueError("z needs at least 2 latent dimensions for a 2D grid")
    if not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    lo, hi = np.quantile(zz[:, :2], [quantile, 1 - quantile], axis=0)
    a0 = np.linspace(lo[0], hi[0], n)
    a1 = np.linspace(hi[1], lo[1], n)
    g1, g0 = np.meshgrid(a1, a0, indexing="ij")
    grid = np.tile(np.median(zz, axis=0), (n * n, 1))
    grid[:, 0], grid[:, 1] = g0.ravel(), g1.ravel()
    return grid, np.stack([a0, a1[::-1]])


def nearest_on_grid(z, grid, max_distance: float | None = None) -> np.ndarray:
    """Index of the code in ``z`` nearest each grid point, in the first two dimensions.

    ``z``: ``(N, d)``; ``grid``: ``(M, d)``. Returns ``(M,)`` int indices, ``-1`` where the
    nearest code is farther than ``max_distance`` (an empty cell of a latent mosaic).
    """
    zz = _finite(z, "z", 2)[:, :2]
    gg = _finite(grid, "grid", 2)[:, :2]
    d2 = ((gg[:, None, :] - zz[None, :, :]) ** 2).sum(-1)
    idx = d2.argmin(1)
    if max_distance is not None:
        idx[np.sqrt(d2[np.arange(len(gg)), idx]) > max_distance] = -1
    return idx
