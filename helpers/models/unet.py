"""A compact U-Net for per-pixel classification of microscopy images.

:class:`UNet` maps an image ``(H, W)`` to per-class probabilities ``(n_classes, H, W)``;
trained on (image, class mask) pairs with augmentation, it predicts large frames by
overlapping tiles. Classes follow the simulator masks (0 background, 1 C, 2 Si for graphene);
:func:`helpers.segment.find_atoms` turns the probabilities into atom positions.
Coordinates are ``(row, col)`` in pixels.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..env import progress as progress_bar
from ..segment import _images
from .base import Estimator, not_fitted
from .standardize import standardize_images
from .training import History, run_epochs

__all__ = ["UNet", "UNetNet"]


def _block(c_in: int, c_out: int, batch_norm: bool) -> nn.Sequential:
    """Two 3x3 convolutions (each followed by batch norm if asked, then ReLU)."""
    layers = []
    for c in (c_in, c_out):
        layers += [nn.Conv2d(c, c_out, 3, padding=1, bias=not batch_norm)]
        if batch_norm:
            layers += [nn.BatchNorm2d(c_out)]
        layers += [nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class UNetNet(nn.Module):
    """Encoder of ``depth`` levels (``filters`` channels doubling per level), decoder with
    bilinear upsampling and skip connections: ``(N, in_channels, H, W)`` -> class logits
    ``(N, n_classes, H, W)``; ``H`` and ``W`` must be multiples of ``2 ** (depth - 1)``."""

    def __init__(self, in_channels: int, n_classes: int, filters: int, depth: int,
                 batch_norm: bool):
        super().__init__()
        widths = [filters * 2**i for i in range(depth)]
        self.down = nn.ModuleList(
            [_block(in_channels if i == 0 else widths[i - 1], w, batch_norm)
             for i, w in enumerate(widths)]
        )
        self.up = nn.ModuleList(
            [_block(widths[i + 1] + widths[i], widths[i], batch_norm) for i in range(depth - 1)]
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
    return standardize_images(out_i.astype(np.float32)), out_m


class UNet(Estimator):
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
    ``predict``, so raw counts or heights can be passed directly. The network is
    ``self.module`` (a :class:`UNetNet`).
    """

    def __init__(self, n_classes: int = 3, filters: int = 8, depth: int = 3,
                 batch_norm: bool = True, seed: int = 0, device: str = "auto"):
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2 (background + objects), got {n_classes}")
        if filters < 1 or depth < 1:
            raise ValueError(f"filters and depth must be >= 1, got {filters}, {depth}")
        super().__init__(seed=seed, device=device, n_classes=int(n_classes),
                         filters=int(filters), depth=int(depth), batch_norm=bool(batch_norm))
        c = self.config
        self._build_module(lambda: UNetNet(1, c["n_classes"], c["filters"], c["depth"],
                                           c["batch_norm"]))

    @property
    def n_classes(self) -> int:
        return self.config["n_classes"]

    def n_parameters(self) -> int:
        """Number of trainable weights."""
        return sum(p.numel() for p in self.module.parameters())

    # ---------------------------------------------------------------------------- training
    def _masks(self, masks, shape: tuple[int, ...]) -> np.ndarray:
        """Check class masks against the images' ``shape``; ``(N, H, W)`` int64."""
        y = np.asarray(masks)
        if y.ndim == 2:
            y = y[None]
        if y.shape != shape:
            raise ValueError(f"masks shape {y.shape} must equal images shape {shape}")
        if not np.issubdtype(y.dtype, np.integer) and not np.all(y == np.round(y)):
            raise ValueError("masks must hold integer class labels")
        y = y.astype(np.int64)
        if y.min() < 0 or y.max() >= self.n_classes:
            raise ValueError(
                f"mask labels must be in [0, {self.n_classes}), found {y.min()}..{y.max()}; "
                "set n_classes accordingly"
            )
        return y

    def fit(self, images, masks, epochs: int = 20, batch_size: int = 16, crop: int = 64,
            lr: float = 1e-2, steps_per_epoch: int | None = None, augment: bool = True,
            noise: float = 0.3, contrast: float = 0.3, class_weights="auto",
            progress: bool = True) -> History:
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
            :class:`History` with ``loss`` (mean cross-entropy per epoch) and ``seconds``.

        Raises:
            TrainingDivergedError: (a ``FloatingPointError``) naming the epoch (from 1) when a
                step's loss is NaN/inf or exceeds 1e3 times the first step's (at least 1;
                the cross-entropy starts near log(n_classes)): lower ``lr``.
        """
        x, _ = _images(images)
        y = self._masks(masks, x.shape)
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

        x = standardize_images(x)
        rng = np.random.default_rng(self._fit_seed() + 1)  # crops and augmentation
        model = self.module
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        total = epochs * steps_per_epoch
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
        )
        loss_fn = torch.nn.CrossEntropyLoss(weight=weight)

        def epoch_batches(epoch):
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
                yield (xt, yt), 1.0 / steps_per_epoch

        def batch_loss(batch):
            xt, yt = batch
            return loss_fn(model(xt), yt), {}

        history = run_epochs(module=model, optimizer=opt, epoch_batches=epoch_batches,
                             batch_loss=batch_loss, epochs=epochs, desc="U-Net",
                             progress=progress, guard_floor=1.0, after_step=sched.step)
        self._fitted = True
        return history

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
        x, single = _images(frames, "frames")
        if not self._fitted:
            raise not_fitted("UNet", "fit(images, masks)")
        x = standardize_images(x)
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
        self.module.eval()
        with torch.no_grad():
            for t in progress_bar(range(n), desc="predict", disable=not progress or n == 1):
                acc = np.zeros((self.n_classes, ph, pw), dtype=np.float32)
                norm = np.zeros((ph, pw), dtype=np.float32)
                for b in range(0, len(corners), batch_size):
                    chunk = corners[b:b + batch_size]
                    batch = np.stack([xp[t, r:r + th, c:c + tw] for r, c in chunk])
                    xt = torch.from_numpy(batch)[:, None].to(self.device)
                    prob = torch.softmax(self.module(xt), dim=1).cpu().numpy()
                    for (r, c), p in zip(chunk, prob):
                        acc[:, r:r + th, c:c + tw] += p * weight
                        norm[r:r + th, c:c + tw] += weight
                out[t] = (acc / norm)[:, :height, :width]
        return out[0] if single else out


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
