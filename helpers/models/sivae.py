"""Scale-invariant VAE (SI-VAE, arXiv 2408.00229), reconstructed: multi-scale patches and
progressive training across window sizes.

Descriptors are cut at several window sizes around the *same* centres and brought to one
input size, so one network can read every scale; the VAE is then trained scale after scale,
each scale warm-started from the previous scale's weights. Latent maps per window size show
which factors of variation live at which length scale.

- :func:`grid_centres`: centres on a regular grid where every window fits.
- :func:`multiscale_patches`: ``(S, N, size, size)`` patches, one stack per window size.
- :func:`progressive_fit`: trains one model per scale (warm-started or from scratch) and
  returns the models, their histories and their encodings.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .._checks import real_array

__all__ = [
    "MultiScalePatches",
    "ProgressiveResult",
    "grid_centres",
    "multiscale_patches",
    "progressive_fit",
]


@dataclass
class MultiScalePatches:
    """Patches of several window sizes around the same centres.

    Attributes:
        patches: ``(S, N, size, size)`` float32; ``patches[s, i]`` is the window of side
            ``windows[s]`` px around ``centres[i]``, resampled to ``size x size``.
        windows: ``(S,)`` int, window sides in pixels (as given).
        centres: ``(N, 2)`` int ``(row, col)`` pixel centres.
        size: common input side in pixels.
    """

    patches: np.ndarray
    windows: np.ndarray
    centres: np.ndarray
    size: int

    def __len__(self) -> int:
        return int(self.patches.shape[1])

    def at(self, window: int) -> np.ndarray:
        """The ``(N, size, size)`` stack for one window side (px)."""
        idx = np.flatnonzero(self.windows == int(window))
        if idx.size == 0:
            raise ValueError(f"window {window} not sampled; windows are {self.windows.tolist()}")
        return self.patches[int(idx[0])]


@dataclass
class ProgressiveResult:
    """What :func:`progressive_fit` returns, one entry per scale (in training order).

    Attributes:
        models: the trained estimators (``S`` of them; each a separate object).
        histories: their ``fit`` histories (per-epoch ``loss`` etc., nats per image).
        encodings: ``model.encode(X_by_scale[s])`` for each scale (``z`` is ``(N, d)``).
        final_loss: ``(S,)`` float, last-epoch training loss per scale (nats per image).
        warm_start: whether each scale started from the previous scale's weights.
    """

    models: list
    histories: list
    encodings: list
    final_loss: np.ndarray
    warm_start: bool


def _window_start(c: int, window: int) -> int:
    return int(c) - int(window) // 2


def grid_centres(shape, windows: Sequence[int], step: int) -> np.ndarray:
    """Centres every ``step`` px where the largest window fits inside an ``(H, W)`` image.

    Returns ``(N, 2)`` int ``(row, col)``, row-major (rows of the grid first).
    """
    if len(shape) != 2:
        raise ValueError(f"shape must be (H, W), got {tuple(shape)}")
    if int(step) < 1:
        raise ValueError("step must be >= 1 pixel")
    w = max(int(x) for x in windows)
    H, W = int(shape[0]), int(shape[1])
    lo = w // 2
    rows = np.arange(lo, H - (w - w // 2) + 1, int(step))
    cols = np.arange(lo, W - (w - w // 2) + 1, int(step))
    if rows.size == 0 or cols.size == 0:
        raise ValueError(f"the largest window ({w} px) does not fit in a {H} x {W} image; "
                         "use smaller windows or a larger image")
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    return np.stack([rr.ravel(), cc.ravel()], axis=1).astype(np.int64)


def _resample(patch: np.ndarray, size: int) -> np.ndarray:
    w = patch.shape[-1]
    if w == size:
        return patch
    if w % size == 0:  # exact block averaging (area-preserving, no aliasing)
        f = w // size
        return patch.reshape(patch.shape[:-2] + (size, f, size, f)).mean(axis=(-3, -1))
    zoom = (1.0,) * (patch.ndim - 2) + (size / w, size / w)
    out = ndimage.zoom(patch, zoom, order=1, mode="nearest", grid_mode=True)
    return out[..., :size, :size]


def multiscale_patches(image, centres, windows: Sequence[int], size: int) -> MultiScalePatches:
    """Cut windows of several sizes around the same centres and bring them to one size.

    Args:
        image: ``(H, W)`` real image (any units).
        centres: ``(N, 2+)`` ``(row, col, ...)`` in pixels (rounded to the nearest pixel;
            extra columns ignored). The window of side ``w`` around ``(r, c)`` covers rows
            ``r - w // 2`` to ``r - w // 2 + w - 1`` (same for columns), as in
            :func:`helpers.features.extract_patches`.
        windows: window sides in pixels, each ``>= 1``.
        size: common output side in pixels. A window that is a multiple of ``size`` is
            block-averaged (exact area means); otherwise it is resampled with linear
            interpolation (``scipy.ndimage.zoom``, ``order=1``).

    Returns:
        :class:`MultiScalePatches` with ``patches`` ``(S, N, size, size)`` float32.

    Raises:
        ValueError: wrong shapes, complex input, NaN/inf, bad window sizes, or a window
            crossing the border (use :func:`grid_centres` to pick centres where every
            window fits).
    """
    img = np.asarray(real_array(image, "image"), dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"image must be (H, W), got shape {img.shape}; loop over movie frames")
    if not np.all(np.isfinite(img)):
        raise ValueError("image contains NaN or inf; clean or mask it first")
    c = real_array(centres, "centres")
    if c.ndim != 2 or c.shape[1] < 2 or c.shape[0] == 0:
        raise ValueError(f"centres must be a non-empty (N, 2) array of (row, col), got {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError("centres contain NaN or inf")
    c = np.rint(c[:, :2]).astype(np.int64)
    wins = np.asarray([int(w) for w in windows], dtype=np.int64)
    if wins.size == 0 or np.any(wins < 1):
        raise ValueError(f"windows must be a non-empty list of sides >= 1 px, got {list(windows)}")
    if int(size) < 1:
        raise ValueError("size must be >= 1 pixel")
    size = int(size)
    H, W = img.shape
    out = np.empty((wins.size, len(c), size, size), dtype=np.float32)
    for s, w in enumerate(wins):
        r0 = c[:, 0] - w // 2
        c0 = c[:, 1] - w // 2
        bad = (r0 < 0) | (c0 < 0) | (r0 + w > H) | (c0 + w > W)
        if np.any(bad):
            raise ValueError(f"{int(bad.sum())} centres put the {int(w)} px window across the "
                             f"border of the {H} x {W} image (first: {c[bad][0].tolist()}); "
                             "use grid_centres(...) or drop centres near the edges")
        idx = np.arange(w)
        rows = r0[:, None, None] + idx[None, :, None]
        cols = c0[:, None, None] + idx[None, None, :]
        stack = img[rows, cols]
        out[s] = _resample(stack, size)
    return MultiScalePatches(patches=out, windows=wins, centres=c, size=size)


def progressive_fit(
    X_by_scale,
    make_model: Callable[[], object],
    epochs: int | Sequence[int] = 20,
    *,
    warm_start: bool = True,
    batch_size: int = 64,
    lr: float = 1e-3,
    progress: bool = True,
) -> ProgressiveResult:
    """Train one model per scale, scale after scale, each warm-started from the previous.

    Args:
        X_by_scale: ``(S, N, H, W)`` array (e.g. ``MultiScalePatches.patches``) or a list of
            ``S`` arrays ``(N_s, H, W)`` with the same ``H, W``, in training order.
        make_model: a no-argument factory returning a fresh, unfitted estimator
            (``VAE``/``RVAE``...) with a torch ``module``; called once per scale.
        epochs: epochs per scale, an int or one per scale.
        warm_start: ``True`` (progressive, SI-VAE): before training scale ``s > 0``, copy the
            weights of scale ``s - 1``'s model with ``module.load_state_dict``; each scale is
            still normalised by its own data's mean and standard deviation (set by the
            first ``fit``). ``False``: every scale from scratch (the comparison).
        batch_size, lr, progress: passed to ``fit``.

    Returns:
        :class:`ProgressiveResult`.

    Raises:
        ValueError: empty input, mismatched image sizes, or ``epochs`` of the wrong length.
    """
    if isinstance(X_by_scale, np.ndarray):
        if X_by_scale.ndim != 4:
            raise ValueError(f"X_by_scale must be (S, N, H, W), got shape {X_by_scale.shape}")
        Xs = [X_by_scale[s] for s in range(X_by_scale.shape[0])]
    else:
        Xs = [np.asarray(x) for x in X_by_scale]
    Xs = [real_array(x, f"X_by_scale[{s}]") for s, x in enumerate(Xs)]
    if not Xs:
        raise ValueError("X_by_scale is empty: give at least one scale")
    shapes = {x.shape[1:] for x in Xs}
    if any(x.ndim != 3 or len(x) == 0 for x in Xs) or len(shapes) != 1:
        raise ValueError("every scale must be a non-empty (N, H, W) stack with the same H, W; "
                         f"got {[x.shape for x in Xs]}")
    ep = [int(epochs)] * len(Xs) if np.isscalar(epochs) else [int(e) for e in epochs]
    if len(ep) != len(Xs) or min(ep) < 1:
        raise ValueError(f"epochs must be >= 1, an int or one per scale ({len(Xs)}), got {epochs}")
    models, histories, encodings = [], [], []
    for s, X in enumerate(Xs):
        model = make_model()
        if not hasattr(model, "module"):
            raise ValueError("make_model must return an estimator with a torch `module`")
        if warm_start and models:
            model.module.load_state_dict(models[-1].module.state_dict())
        hist = model.fit(X, epochs=ep[s], batch_size=batch_size, lr=lr, progress=progress)
        models.append(model)
        histories.append(hist)
        encodings.append(model.encode(X))
    final = np.array([float(h["loss"][-1]) for h in histories])
    return ProgressiveResult(models=models, histories=histories, encodings=encodings,
                             final_loss=final, warm_start=bool(warm_start))
