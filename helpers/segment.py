"""Segmentation: a compact U-Net, atom finding in its probability maps, particle finding.

- :class:`UNet` maps an image ``(H, W)`` to per-class probabilities ``(n_classes, H, W)``;
  trained on (image, class mask) pairs with augmentation, it predicts large frames by
  overlapping tiles. Classes follow the simulator masks (0 background, 1 C, 2 Si for
  graphene).
- :func:`find_atoms` turns the probabilities of one frame into ``(N, 3)`` ``[row, col,
  class]`` atom positions (sub-pixel blob centres of mass).
- :func:`find_particles` finds particles in a height image (AFM) by smoothing, thresholding
  and labelling.
- :func:`match_points` / :func:`detection_scores` compare found positions with ground truth
  (precision, recall, F1, class accuracy).

Coordinates are ``(row, col)`` in pixels.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass

import numpy as np

from ._checks import (
    DivergenceGuard,
    checkpoint_error,
    image_stack,
    not_fitted,
    read_checkpoint,
    real_array,
)
from ._io import atomic_path

__all__ = [
    "UNet",
    "find_atoms",
    "find_particles",
    "Particles",
    "match_points",
    "detection_scores",
    "DetectionScores",
    "otsu_threshold",
]


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------
def _images(x, name: str = "images") -> tuple[np.ndarray, bool]:
    """``(N, H, W)`` float32 and whether a single ``(H, W)`` image was given; a channel axis
    of one, ``(N, 1, H, W)``, is dropped."""
    arr = np.asarray(x)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    arr, single = image_stack(arr, name)
    return arr.astype(np.float32, copy=False), single


def _standardize(x: np.ndarray) -> np.ndarray:
    """Per-image zero mean, unit standard deviation, ``(N, H, W)`` float32.

    The statistics are computed in float32; an image whose float32 statistics overflow
    (values beyond about 1e19) or underflow (a non-constant image below about 1e-23) is
    standardised in float64 instead, so it does not turn into zeros.
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
    redo = np.flatnonzero(bad | small)
    for i in redo:
        xi = x[i].astype(np.float64)
        sd = xi.std()
        if not np.isfinite(sd) or sd > np.finfo(np.float32).max:
            raise ValueError(f"image {i} is too large to standardise (std {sd:.3g}); rescale it")
        out[i] = ((xi - xi.mean()) / sd).astype(np.float32)
    return out


# --------------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------------
def _build(in_channels: int, n_classes: int, filters: int, depth: int, batch_norm: bool):
    import torch
    from torch import nn

    def block(c_in, c_out):
        layers = []
        for c in (c_in, c_out):
            layers += [nn.Conv2d(c, c_out, 3, padding=1, bias=not batch_norm)]
            if batch_norm:
                layers += [nn.BatchNorm2d(c_out)]
            layers += [nn.ReLU(inplace=True)]
        return nn.Sequential(*layers)

    class _Net(nn.Module):
        """Encoder of ``depth`` levels (filters doubling), bilinear-upsampling decoder."""

        def __init__(self):
            super().__init__()
            widths = [filters * 2**i for i in range(depth)]
            self.down = nn.ModuleList(
                [block(in_channels if i == 0 else widths[i - 1], w) for i, w in
                 enumerate(widths)]
            )
            self.up = nn.ModuleList(
                [block(widths[i + 1] + widths[i], widths[i]) for i in range(depth - 1)]
            )
            self.head = nn.Conv2d(widths[0], n_classes, 1)
            self.pool = nn.MaxPool2d(2)

        def forward(self, x):
            skips = []
            for i, layer in enumerate(self.down):
                x = layer(x if i == 0 else self.pool(x))
                skips.append(x)
            for i in reversed(range(len(self.up))):
                x = nn.functional.interpolate(x, scale_factor=2, mode="bilinear",
                                              align_corners=False)
                x = self.up[i](torch.cat([x, skips[i]], dim=1))
            return self.head(x)

    return _Net()


def _augment(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator, noise: float,
             contrast: float):
    """Random flips, 90-degree rotations, contrast/offset and Gaussian noise on a batch.

    ``img`` ``(B, h, w)`` standardised float32, ``mask`` ``(B, h, w)`` int; returns copies.
    """
    out_i, out_m = np.empty_like(img), np.empty_like(mask)
    for b in range(len(img)):
        k = int(rng.integers(4))
        i, m = np.rot90(img[b], k), np.rot90(mask[b], k)
        if rng.random() < 0.5:
            i, m = i[:, ::-1], m[:, ::-1]
        out_i[b], out_m[b] = i, m
    if contrast > 0:
        gain = np.exp(rng.uniform(-contrast, contrast, (len(img), 1, 1)))
        gamma = np.exp(rng.uniform(-contrast, contrast, (len(img), 1, 1)) / 2)
        lo = out_i.min(axis=(1, 2), keepdims=True)
        hi = out_i.max(axis=(1, 2), keepdims=True)
        unit = (out_i - lo) / np.maximum(hi - lo, 1e-8)
        out_i = unit**gamma * gain + rng.normal(0, contrast / 2, (len(img), 1, 1))
    if noise > 0:
        sigma = rng.uniform(0, noise, (len(img), 1, 1))
        out_i = out_i + sigma * out_i.std(axis=(1, 2), keepdims=True) * rng.standard_normal(
            out_i.shape
        )
    return _standardize(out_i.astype(np.float32)), out_m


class UNet:
    """A compact U-Net for per-pixel classification of microscopy images.

    Args:
        n_classes: number of classes in the masks (graphene: 0 background, 1 C, 2 Si).
        filters: channels of the first level; each deeper level doubles them
            (``filters=8, depth=3`` gives 8-16-32).
        depth: number of resolution levels (images are padded to a multiple of
            ``2 ** (depth - 1)``, so any size works).
        batch_norm: batch normalisation after every convolution.
        seed: seeds the weights and the training crops/augmentation (same seed, same
            numbers on CPU; no global random state is touched).
        device: ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"`` or ``"mps"``.

    Images are standardised per frame (zero mean, unit variance) inside ``fit`` and
    ``predict``, so raw counts or heights can be passed directly.
    """

    def __init__(self, n_classes: int = 3, filters: int = 8, depth: int = 3,
                 batch_norm: bool = True, seed: int = 0, device: str = "auto"):
        import torch

        from helpers.env import get_device

        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2 (background + objects), got {n_classes}")
        if filters < 1 or depth < 1:
            raise ValueError(f"filters and depth must be >= 1, got {filters}, {depth}")
        self.config = dict(n_classes=int(n_classes), filters=int(filters), depth=int(depth),
                           batch_norm=bool(batch_norm), seed=int(seed))
        self.device = get_device(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.model = _build(1, n_classes, filters, depth, batch_norm).to(self.device)
        self.history: dict = {}
        self._fitted = False  # set by fit and load; predict needs it

    @property
    def n_classes(self) -> int:
        return self.config["n_classes"]

    def n_parameters(self) -> int:
        """Number of trainable weights."""
        return sum(p.numel() for p in self.model.parameters())

    # ---------------------------------------------------------------------------- training
    def fit(self, images, masks, epochs: int = 20, batch_size: int = 16, crop: int = 64,
            lr: float = 1e-2, steps_per_epoch: int | None = None, augment: bool = True,
            noise: float = 0.3, contrast: float = 0.3, class_weights="auto",
            progress: bool = True) -> dict:
        """Train on random crops of (image, mask) pairs.

        Args:
            images: ``(N, H, W)`` float (any units; standardised per image).
            masks: ``(N, H, W)`` int class labels in ``[0, n_classes)``.
            epochs: passes; one epoch draws about as many crop pixels as the training set has
                (``steps_per_epoch`` overrides).
            batch_size: crops per step. crop: crop side in pixels (at most the image side).
            lr: Adam learning rate (cosine-annealed to 5 % over training).
            augment: random flips and 90-degree rotations, plus up to ``contrast`` (log
                gain, gamma and offset) and ``noise`` (Gaussian, as a fraction of the image
                standard deviation) changes.
            class_weights: ``(n_classes,)`` cross-entropy weights, or ``"auto"`` (default):
                background and the commonest object class weigh 1, a rarer object class ``k``
                weighs ``sqrt(f_common / f_k)`` (at most 10), so rare atoms (Si, about 1 %)
                are learned early without inflating the blobs of common ones.
            progress: tqdm progress bar.

        Returns:
            history dict: ``loss`` (mean cross-entropy per epoch), ``time_s`` (training wall
            time), ``steps``.

        Raises:
            TrainingDivergedError: (a ``FloatingPointError``) naming the epoch (from 1) when a
                step's loss is NaN/inf or exceeds 1e3 times the first step's (at least 1;
                the cross-entropy starts near log(n_classes)): lower ``lr``.
        """
        import torch
        from tqdm.auto import tqdm

        x, _ = _images(images)
        y = np.asarray(masks)
        if y.ndim == 2:
            y = y[None]
        if y.shape != x.shape:
            raise ValueError(f"masks shape {y.shape} must equal images shape {x.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            if not np.all(y == np.round(y)):
                raise ValueError("masks must hold integer class labels")
        y = y.astype(np.int64)
        if y.min() < 0 or y.max() >= self.n_classes:
            raise ValueError(
                f"mask labels must be in [0, {self.n_classes}), found {y.min()}..{y.max()}; "
                "set n_classes accordingly"
            )
        n, height, width = x.shape
        crop = int(min(crop, height, width))
        div = 2 ** (self.config["depth"] - 1)
        crop -= crop % div
        if crop < div:
            raise ValueError(f"images of {height}x{width} px are too small for depth "
                             f"{self.config['depth']}")
        if steps_per_epoch is None:
            steps_per_epoch = max(1, math.ceil(n * height * width / (crop * crop * batch_size)))
        weight = torch.as_tensor(_class_weights(y, self.n_classes, class_weights),
                                 device=self.device)

        x = _standardize(x)
        rng = np.random.default_rng(self.config["seed"] + 1)
        model = self.model
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        total = epochs * steps_per_epoch
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
        )
        loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
        losses = []
        guard = DivergenceGuard(floor=1.0)
        start = time.perf_counter()
        model.train()
        bar = tqdm(range(epochs), desc="U-Net", disable=not progress)
        for epoch in bar:
            run = 0.0
            for _ in range(steps_per_epoch):
                idx = rng.integers(n, size=batch_size)
                r0 = rng.integers(height - crop + 1, size=batch_size)
                c0 = rng.integers(width - crop + 1, size=batch_size)
                bi = np.stack([x[i, r:r + crop, c:c + crop] for i, r, c in zip(idx, r0, c0)])
                bm = np.stack([y[i, r:r + crop, c:c + crop] for i, r, c in zip(idx, r0, c0)])
                if augment:
                    bi, bm = _augment(bi, bm, rng, noise, contrast)
                xt = torch.from_numpy(np.ascontiguousarray(bi))[:, None].to(self.device)
                yt = torch.from_numpy(np.ascontiguousarray(bm)).to(self.device)
                loss = loss_fn(model(xt), yt)
                value = float(loss.detach())
                guard.check(value, epoch + 1)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                run += value
            losses.append(run / steps_per_epoch)
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        model.eval()
        self._fitted = True
        self.history = {"loss": losses, "time_s": time.perf_counter() - start,
                        "steps": total}
        return self.history

    # ---------------------------------------------------------------------------- inference
    def predict(self, frames, tile: int = 256, overlap: int = 32, batch_size: int = 4,
                progress: bool = True) -> np.ndarray:
        """Per-class probabilities of every pixel, predicted by overlapping tiles.

        Args:
            frames: ``(T, H, W)`` or one ``(H, W)`` image, any size (frames smaller than a
                tile, down to one pixel, are padded to a multiple of ``2 ** (depth - 1)``
                and cropped back).
            tile: tile side in pixels (rounded to a multiple of ``2 ** (depth - 1)``).
            overlap: pixels shared by neighbouring tiles; tile outputs are blended with
                weights that fall off towards the tile edges, so seams do not show.
            batch_size: tiles per forward pass.
            progress: tqdm progress bar over frames.

        Returns:
            float32 ``(T, n_classes, H, W)`` (``(n_classes, H, W)`` for one image); the
            class axis sums to 1.

        Raises ``NotFittedError`` (a ValueError) on a network neither fitted nor loaded.
        """
        import torch
        from tqdm.auto import tqdm

        x, single = _images(frames, "frames")
        if not self._fitted:
            raise not_fitted("UNet", "fit(images, masks)")
        x = _standardize(x)
        n, height, width = x.shape
        div = 2 ** (self.config["depth"] - 1)
        tile = max(div, int(tile) - int(tile) % div)
        overlap = int(min(max(overlap, 0), tile // 2))
        # a frame smaller than a tile is padded (reflect) to a multiple of `div`; a larger one
        # is covered by evenly spread tiles that overlap by at least `overlap` px
        th, tw = min(tile, _ceil_to(height, div)), min(tile, _ceil_to(width, div))
        ph, pw = max(height, th), max(width, tw)
        pad = ((0, 0), (0, ph - height), (0, pw - width))
        mode = "reflect" if min(height, width) > max(ph - height, pw - width) else "edge"
        xp = np.pad(x, pad, mode=mode)
        corners = [(r, c) for r in _starts(ph, th, overlap) for c in _starts(pw, tw, overlap)]
        weight = _blend_window(th, tw, overlap)
        out = np.zeros((n, self.n_classes, height, width), dtype=np.float32)
        self.model.eval()
        with torch.no_grad():
            for t in tqdm(range(n), desc="predict", disable=not progress or n == 1):
                acc = np.zeros((self.n_classes, ph, pw), dtype=np.float32)
                norm = np.zeros((ph, pw), dtype=np.float32)
                for b in range(0, len(corners), batch_size):
                    chunk = corners[b:b + batch_size]
                    batch = np.stack([xp[t, r:r + th, c:c + tw] for r, c in chunk])
                    xt = torch.from_numpy(batch)[:, None].to(self.device)
                    prob = torch.softmax(self.model(xt), dim=1).cpu().numpy()
                    for (r, c), p in zip(chunk, prob):
                        acc[:, r:r + th, c:c + tw] += p * weight
                        norm[r:r + th, c:c + tw] += weight
                out[t] = (acc / norm)[:, :height, :width]
        return out[0] if single else out

    # ---------------------------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Write one file: the JSON config and the ``state_dict`` (atomic replace)."""
        import torch

        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        with atomic_path(path) as tmp:
            torch.save({"config": json.dumps(self.config), "state_dict": state}, tmp)

    @classmethod
    def load(cls, path, device: str = "auto") -> UNet:
        """Read a file written by :meth:`save` (``torch.load(..., weights_only=True)``).

        Raises ``FileNotFoundError`` for a missing file and ``CheckpointError`` (a
        ``ValueError``) naming the file for anything else that is not a UNet checkpoint
        (damaged, foreign, holding objects other than tensors, or an edited config or
        weights that do not fit).
        """
        path = os.fspath(path)
        blob = read_checkpoint(path, "UNet")
        if not isinstance(blob, dict) or "config" not in blob or "state_dict" not in blob:
            raise checkpoint_error(path, "UNet", "it was not written by UNet.save")
        try:
            config = json.loads(blob["config"])
        except (TypeError, ValueError):
            raise checkpoint_error(path, "UNet", "its config is not JSON") from None
        if not isinstance(config, dict) or not isinstance(blob["state_dict"], dict):
            raise checkpoint_error(path, "UNet", "its config or weights are not dictionaries")
        try:
            net = cls(**config, device=device)
        except (TypeError, ValueError) as exc:
            raise checkpoint_error(
                path, "UNet", f"its config does not match UNet({', '.join(config)}): {exc}"
            ) from None
        try:
            net.model.load_state_dict(blob["state_dict"])
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise checkpoint_error(
                path, "UNet", f"its weights do not fit the network its config builds: {first}"
            ) from None
        net.model.eval()
        net._fitted = True
        return net


def _class_weights(masks: np.ndarray, n_classes: int, spec) -> np.ndarray:
    """Cross-entropy weights ``(n_classes,)`` float32 (see ``UNet.fit``)."""
    if isinstance(spec, str):
        if spec != "auto":
            raise ValueError(f"class_weights must be 'auto' or one weight per class, got {spec!r}")
        freq = np.bincount(masks.ravel(), minlength=n_classes) / masks.size
        w = np.ones(n_classes)
        common = freq[1:].max()
        for k in range(1, n_classes):
            if freq[k] > 0:
                w[k] = min(10.0, np.sqrt(common / freq[k]))
        return w.astype(np.float32)
    w = np.asarray(spec, dtype=np.float32).ravel()
    if w.shape != (n_classes,) or not np.all(np.isfinite(w)) or (w < 0).any():
        raise ValueError(f"class_weights must be {n_classes} non-negative numbers, got {spec!r}")
    return w


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` px covering ``length`` px, overlapping >= overlap."""
    if length <= tile:
        return [0]
    n = math.ceil((length - overlap) / (tile - overlap))
    return sorted({int(round(v)) for v in np.linspace(0, length - tile, n)})


def _ceil_to(n: int, div: int) -> int:
    return int(math.ceil(n / div) * div)


def _blend_window(height: int, width: int, overlap: int) -> np.ndarray:
    """Tile weights: 1 in the centre, a linear ramp over ``overlap`` px at the edges.

    A side shorter than ``overlap`` (a small frame, one tile) ramps over its own length; its
    weights only need to be positive there, since no other tile shares those pixels.
    """
    def ramp(n):
        w = np.ones(n, dtype=np.float32)
        o = min(overlap, n)
        if o > 0:
            edge = (np.arange(o, dtype=np.float32) + 1) / (o + 1)
            w[:o] = np.minimum(w[:o], edge)
            w[-o:] = np.minimum(w[-o:], edge[::-1])
        return w

    return np.outer(ramp(height), ramp(width))


# --------------------------------------------------------------------------------------------
# atoms
# --------------------------------------------------------------------------------------------
def find_atoms(probs, threshold: float = 0.5, margin: float = 2.0, min_area: int = 1,
               grow: float = 2.0):
    """Atom positions from the class probabilities of one frame.

    The atom probability ``1 - probs[0]`` (everything but background) is thresholded; each
    connected blob gives one atom at the probability-weighted centre of mass (sub-pixel) of the
    blob grown by ``grow`` pixels (so the soft edge counts too, without bias towards the pixel
    grid) and the class (1..C-1) with the largest summed probability there.

    Args:
        probs: ``(n_classes, H, W)`` probabilities of one frame (``UNet.predict(...)[t]``),
            or one ``(H, W)`` atom-probability map (every atom gets class 1).
        threshold: probability above which a pixel belongs to an atom, strictly between 0
            and 1 (0 would make the whole frame one blob, 1 would find nothing).
        margin: atoms whose centre lies closer than this many pixels to the border are dropped
            (their blobs are cut by the edge, so their centres are biased).
        min_area: blobs with fewer pixels are ignored (noise specks).
        grow: pixels added around each blob for the centre of mass (0: thresholded pixels
            only); keep it below half the distance between neighbouring atoms.

    Returns:
        ``(N, 3)`` float array ``[row, col, class]`` (class as in the masks).
    """
    from scipy import ndimage

    try:
        level = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a number in (0, 1), got {threshold!r}") from None
    if not 0.0 < level < 1.0:  # also refuses NaN
        raise ValueError(
            f"threshold must be a probability strictly between 0 and 1, got {threshold!r}; "
            "0.5 is the usual choice"
        )
    p = np.asarray(real_array(probs, "probs"), dtype=np.float64)
    if p.ndim == 2:
        p = np.stack([1.0 - p, p])
    if p.ndim != 3 or p.shape[0] < 2:
        raise ValueError(
            f"probs must be (n_classes, H, W) for one frame or an (H, W) map, got {p.shape}; "
            "for a movie pass probs[t]"
        )
    if not np.isfinite(p).all():
        raise ValueError("probs contain NaN or inf")
    fg = 1.0 - p[0]
    labels, n = ndimage.label(fg > level)
    if n == 0:
        return np.zeros((0, 3))
    index = np.arange(1, n + 1)
    area = ndimage.sum_labels(np.ones_like(fg), labels, index)
    # the centre of mass of the thresholded pixels alone is pulled towards the pixel grid:
    # weigh the probabilities over each blob grown by `grow` px (nearest blob wins)
    if grow > 0:
        dist, (ir, ic) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
        region = np.where(dist <= grow, labels[ir, ic], 0)
    else:
        region = labels
    com = np.asarray(ndimage.center_of_mass(fg, region, index), dtype=float).reshape(-1, 2)
    class_mass = np.stack([ndimage.sum_labels(p[k], region, index) for k in
                           range(1, p.shape[0])], axis=1)
    cls = 1 + class_mass.argmax(axis=1)
    height, width = fg.shape
    keep = (
        (area >= min_area)
        & (com[:, 0] >= margin) & (com[:, 0] <= height - 1 - margin)
        & (com[:, 1] >= margin) & (com[:, 1] <= width - 1 - margin)
    )
    return np.column_stack([com[keep], cls[keep].astype(float)])


# --------------------------------------------------------------------------------------------
# particles (AFM height images)
# --------------------------------------------------------------------------------------------
def otsu_threshold(image, n_bins: int = 256) -> float:
    """Otsu's threshold: the level that maximises the between-class variance of a histogram."""
    values = np.asarray(image, dtype=float).ravel()
    hist, edges = np.histogram(values, bins=n_bins)
    centres = 0.5 * (edges[1:] + edges[:-1])
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = np.divide(m0, w0, out=np.zeros_like(m0), where=w0 > 0)
    mu1 = np.divide(m0[-1] - m0, w1, out=np.zeros_like(m0), where=w1 > 0)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[1:][np.argmax(between)])


def _substrate(h: np.ndarray, order: int, n_iter: int = 6) -> np.ndarray:
    """Polynomial surface of ``order`` fitted to the substrate pixels of ``h`` (H, W)."""
    if order < 0:
        raise ValueError(f"flatten must be a polynomial order >= 0, got {order}")
    rows, cols = np.indices(h.shape, dtype=float)
    y, x = rows.ravel() / h.shape[0] - 0.5, cols.ravel() / h.shape[1] - 0.5
    basis = np.column_stack([x**i * y**j for i in range(order + 1)
                             for j in range(order + 1 - i)])
    z = h.ravel()
    keep = np.ones(z.size, dtype=bool)
    for _ in range(n_iter):
        coef = np.linalg.lstsq(basis[keep], z[keep], rcond=None)[0]
        res = z - basis @ coef
        centre = np.median(res[keep])
        spread = 1.4826 * np.median(np.abs(res[keep] - centre)) + 1e-12
        keep = res < centre + 2.0 * spread
    return (basis @ coef).reshape(h.shape)


@dataclass
class Particles:
    """Particles found in one height image.

    Attributes:
        coords: ``(N, 2)`` float ``(row, col)`` centres (height-weighted centres of mass), px.
        area: ``(N,)`` int pixels per particle.
        orientation: ``(N,)`` float radians in ``[0, pi)``, direction of the long axis,
            anticlockwise as displayed (0 = along +col, pi/2 = towards the top), from the
            blob's second moments.
        elongation: ``(N,)`` ratio of long to short axis (1 for a disc).
        labels: ``(H, W)`` int, 0 background, ``k`` for the k-th particle (``coords[k - 1]``).
        threshold: the height threshold used.
    """

    coords: np.ndarray
    area: np.ndarray
    orientation: np.ndarray
    elongation: np.ndarray
    labels: np.ndarray
    threshold: float


def find_particles(image, threshold="otsu", sigma: float = 1.0, min_area: int = 5,
                   max_area: int | None = None, margin: float = 0.0,
                   flatten: int | None = None, core: float | None = None) -> Particles:
    """Find particles in an AFM height image by smoothing, thresholding and labelling.

    Args:
        image: ``(H, W)`` heights (any units).
        threshold: ``"otsu"`` (automatic) or a height in the image's units, applied after
            smoothing and background removal.
        core: if given (a fraction in (0, 1)), threshold instead at ``substrate + core *
            (top - substrate)``, where ``substrate`` is the median height below the Otsu
            level and ``top`` the 90th percentile above it. Only the particles' upper cores
            are kept, so particles that touch (merged by the tip at half height) stay apart;
            0.95 suits densely packed rods. Centres stay right, areas shrink to the cores.
        sigma: Gaussian smoothing in pixels before thresholding (0: none).
        min_area, max_area: keep blobs with this many pixels (specks and merged clusters out).
        margin: drop particles whose centre is closer than this to the border, px.
        flatten: if given, first subtract a polynomial background of this order (1: plane,
            2: bow) fitted to the substrate only (pixels more than 2 robust standard
            deviations above the fit are excluded, iteratively), the usual AFM levelling.

    Returns:
        :class:`Particles`.
    """
    from scipy import ndimage

    img, single = _images(image, "image")
    if not single:
        raise ValueError("find_particles takes one (H, W) frame; loop over a movie's frames")
    h = img[0].astype(np.float64)
    if flatten is not None:
        h = h - _substrate(h, int(flatten))
    if sigma and sigma > 0:
        h = ndimage.gaussian_filter(h, sigma)
    if isinstance(threshold, str):
        if threshold != "otsu":
            raise ValueError(f"threshold must be 'otsu' or a number, got {threshold!r}")
        level = otsu_threshold(h)
    else:
        level = float(threshold)
    if core is not None:
        if not 0 < core < 1:
            raise ValueError(f"core must be a fraction in (0, 1), got {core!r}")
        below, above = h[h <= level], h[h > level]
        if below.size and above.size:
            substrate, top = np.median(below), np.percentile(above, 90)
            level = float(substrate + core * (top - substrate))
    labels, n = ndimage.label(h > level)
    index = np.arange(1, n + 1)
    area = ndimage.sum_labels(np.ones_like(h), labels, index).astype(int)
    weight = np.clip(h - level, 0, None)
    com = np.asarray(ndimage.center_of_mass(weight, labels, index), dtype=float).reshape(-1, 2)
    height, width = h.shape
    keep = (area >= min_area) & (com[:, 0] >= margin) & (com[:, 0] <= height - 1 - margin)
    keep &= (com[:, 1] >= margin) & (com[:, 1] <= width - 1 - margin)
    if max_area is not None:
        keep &= area <= max_area
    # second moments of each blob (unweighted) for orientation and elongation
    rr, cc = np.indices(h.shape, dtype=float)
    mr = ndimage.mean(rr, labels, index)
    mc = ndimage.mean(cc, labels, index)
    rr_c = ndimage.mean(rr * rr, labels, index) - mr**2
    cc_c = ndimage.mean(cc * cc, labels, index) - mc**2
    rc_c = ndimage.mean(rr * cc, labels, index) - mr * mc
    rr_c, cc_c, rc_c = (np.atleast_1d(np.asarray(v, float)) for v in (rr_c, cc_c, rc_c))
    # long axis of the covariance; in display coordinates (x = col, y = -row)
    theta = 0.5 * np.arctan2(-2 * rc_c, cc_c - rr_c)
    spread = np.sqrt(((cc_c - rr_c) / 2) ** 2 + rc_c**2)
    big = (cc_c + rr_c) / 2 + spread
    small = np.maximum((cc_c + rr_c) / 2 - spread, 1e-12)
    elong = np.sqrt(big / small)
    theta = np.mod(theta, np.pi)
    # relabel the kept particles 1..N
    new = np.zeros(n + 1, dtype=np.int32)
    new[1:][keep] = np.arange(1, keep.sum() + 1)
    return Particles(
        coords=com[keep],
        area=area[keep],
        orientation=theta[keep] if n else np.zeros(0),
        elongation=elong[keep] if n else np.zeros(0),
        labels=new[labels],
        threshold=level,
    )


# --------------------------------------------------------------------------------------------
# scores against ground truth
# --------------------------------------------------------------------------------------------
def match_points(pred, true, max_distance: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of found to true positions within ``max_distance``.

    Maximises the number of matched pairs, then minimises their total distance
    (``scipy.optimize.linear_sum_assignment`` on the points that have a candidate).

    Args:
        pred: ``(N, 2+)`` found ``[row, col, ...]``; true: ``(M, 2+)`` true positions (same
            units, e.g. pixels).
        max_distance: largest distance of a match, same units.

    Returns:
        ``(pairs, distances)``: ``(K, 2)`` int indices ``[i_pred, i_true]`` and ``(K,)``.
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial import cKDTree

    p = _as_points(pred, "pred")
    t = _as_points(true, "true")
    if not (np.isfinite(p[:, :2]).all() and np.isfinite(t[:, :2]).all()):
        raise ValueError("positions contain NaN or inf")
    empty = np.zeros((0, 2), int), np.zeros(0)
    if not len(p) or not len(t):
        return empty
    cand = cKDTree(t[:, :2]).query_ball_point(p[:, :2], max_distance)
    rows = np.array([i for i, c in enumerate(cand) if c])
    if rows.size == 0:
        return empty
    cols = np.unique(np.concatenate([cand[i] for i in rows]))
    sub = np.linalg.norm(p[rows, None, :2] - t[None, cols, :2], axis=-1)
    big = 1e6 * (max_distance + 1)
    cost = np.where(sub <= max_distance, sub, big)
    r, c = linear_sum_assignment(cost)
    ok = cost[r, c] <= max_distance
    pairs = np.column_stack([rows[r[ok]], cols[c[ok]]])
    return pairs, sub[r[ok], c[ok]]


@dataclass
class DetectionScores:
    """Detection quality against ground truth.

    Attributes:
        precision, recall, f1: fractions in [0, 1].
        class_accuracy: fraction of matched detections with the right class (nan if no
            classes were given or nothing matched).
        confusion: ``(K, K)`` int counts of matched pairs, row = true class, column = found
            class (``K`` = largest class + 1; empty without classes). With a rare class (Si)
            the accuracy is dominated by the common one: read its row and column here.
        n_pred, n_true, n_matched: counts.
        mean_distance: mean distance of the matched pairs (input units).
        pairs: ``(M, 2)`` ``[i_pred, i_true]`` (empty when frames are pooled).
    """

    precision: float
    recall: float
    f1: float
    class_accuracy: float
    confusion: np.ndarray
    n_pred: int
    n_true: int
    n_matched: int
    mean_distance: float
    pairs: np.ndarray

    def class_recall(self, k: int) -> float:
        """Fraction of matched true class-``k`` objects found with class ``k`` (nan if none)."""
        if k >= len(self.confusion) or self.confusion[k].sum() == 0:
            return float("nan")
        return float(self.confusion[k, k] / self.confusion[k].sum())

    def class_precision(self, k: int) -> float:
        """Fraction of matched class-``k`` detections that are truly class ``k``."""
        if k >= len(self.confusion) or self.confusion[:, k].sum() == 0:
            return float("nan")
        return float(self.confusion[k, k] / self.confusion[:, k].sum())


def detection_scores(pred, true, max_distance: float) -> DetectionScores:
    """Precision, recall, F1 and class accuracy of found positions against the truth.

    Args:
        pred: ``(N, 2)`` or ``(N, 3)`` ``[row, col(, class)]``; true: same layout, with the
            same class numbering (for graphene ground truth ``[row, col, species]`` use
            ``species + 1`` to match the mask classes).
        max_distance: a detection counts if it is matched (one-to-one) to a true position
            within this distance (same units as the positions).

    Lists of per-frame arrays for both ``pred`` and ``true`` pool all frames.
    """
    if isinstance(pred, (list, tuple)) and isinstance(true, (list, tuple)):
        if len(pred) != len(true):
            raise ValueError(f"pred has {len(pred)} frames but true has {len(true)}")
        parts = [detection_scores(p, t, max_distance) for p, t in zip(pred, true)]
        size = max((len(s.confusion) for s in parts), default=0)
        confusion = np.zeros((size, size), dtype=np.int64)
        for s in parts:
            k = len(s.confusion)
            confusion[:k, :k] += s.confusion
        n_matched = sum(s.n_matched for s in parts)
        dist = sum(s.mean_distance * s.n_matched for s in parts if s.n_matched)
        return _scores(sum(s.n_pred for s in parts), sum(s.n_true for s in parts), n_matched,
                       confusion, dist / n_matched if n_matched else float("nan"),
                       np.zeros((0, 2), int))
    p = _as_points(pred, "pred")
    t = _as_points(true, "true")
    pairs, d = match_points(p, t, max_distance)
    confusion = np.zeros((0, 0), dtype=np.int64)
    if p.shape[1] >= 3 and t.shape[1] >= 3:
        tc, pc = t[pairs[:, 1], 2].astype(int), p[pairs[:, 0], 2].astype(int)
        size = int(max(t[:, 2].max(initial=0), p[:, 2].max(initial=0))) + 1
        confusion = np.zeros((size, size), dtype=np.int64)
        np.add.at(confusion, (tc, pc), 1)
    return _scores(len(p), len(t), len(pairs), confusion,
                   float(d.mean()) if len(d) else float("nan"), pairs)


def _as_points(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.size == 0:
        return np.zeros((0, arr.shape[-1] if arr.ndim == 2 else 2))
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(f"{name} must be an (N, 2+) array [row, col, ...], got {arr.shape}")
    return arr


def _scores(n_pred, n_true, n_matched, confusion, mean_d, pairs) -> DetectionScores:
    precision = n_matched / n_pred if n_pred else 0.0
    recall = n_matched / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    total = confusion.sum()
    cls_acc = float(np.trace(confusion) / total) if total else float("nan")
    return DetectionScores(float(precision), float(recall), float(f1), cls_acc, confusion,
                           int(n_pred), int(n_true), int(n_matched), mean_d, pairs)
