"""An atom finder for HAADF-STEM images of graphene that holds from 1e4 to 1e7 e/A^2.

The recipe: simulate graphene with :func:`helpers.simulate.graphene_movie`'s structures, image
every frame under conditions drawn at random (:func:`helpers.simulate.graphene_haadf_frames`:
dose log-uniform over 1e4-1e7 e/A^2, probe size, astigmatism and tails, background, detector
gain/offset/read noise, scan-line noise, drift and jitter), and fit a :class:`UNet` on them, so
the network learns atoms rather than one contrast. Images are binned ``bin x bin`` (summed, so
Poisson counts stay Poisson) before the network, to about 0.2 A/px: a 1 A probe still spans
five pixels and training costs a quarter.

    finder = train_atom_finder(pixel_size=0.1, seed=0)
    atoms = finder.find(frames)   # list of (N, 3) [row_px, col_px, class], class 1 C, 2 Si

Nothing here changes :class:`UNet` or :func:`helpers.segment.find_atoms`; the notebooks that use
them keep their defaults.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..env import progress as progress_bar
from ..segment import _images, find_atoms
from .training import History
from .unet import UNet

__all__ = ["AtomFinder", "train_atom_finder", "bin_images"]


def bin_images(images, factor: int) -> np.ndarray:
    """Sum ``factor x factor`` blocks of ``(N, H, W)`` (or ``(H, W)``) images.

    Trailing rows/columns that do not fill a block are dropped. Pixel ``k`` of the result
    covers pixels ``factor k .. factor k + factor - 1``, so a position ``x`` (pixels) of the
    input is at ``(x - (factor - 1) / 2) / factor`` in the result.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim not in (2, 3):
        raise ValueError(f"images must be (H, W) or (N, H, W), got shape {x.shape}")
    if not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor!r}")
    h, w = (x.shape[-2] // factor) * factor, (x.shape[-1] // factor) * factor
    if h == 0 or w == 0:
        raise ValueError(f"images of {x.shape[-2:]} px are smaller than one {factor}x{factor} bin")
    x = x[..., :h, :w]
    x = x.reshape(*x.shape[:-2], h // factor, factor, w // factor, factor)
    return x.sum(axis=(-3, -1)).astype(np.float32)


@dataclass
class AtomFinder:
    """A trained atom finder: the U-Net and the binning it works at.

    Attributes:
        unet: the fitted :class:`UNet` (classes 0 background, 1 C, 2 Si), which sees images
            binned by ``bin``.
        bin: binning factor (pixels of the input per network pixel, per side).
        pixel_size: angstrom per pixel of the images it was trained for.
        history: the U-Net's training :class:`History`.
        train_seconds: wall time of simulation plus training, seconds.
    """

    unet: UNet
    bin: int
    pixel_size: float
    history: History | None = None
    train_seconds: float = float("nan")

    def predict(self, frames, progress: bool = False) -> np.ndarray:
        """Class probabilities on the binned grid: ``(T, 3, H // bin, W // bin)`` float32
        (``(3, H // bin, W // bin)`` for one image)."""
        x, single = _images(frames, "frames")
        probs = self.unet.predict(bin_images(x, self.bin), progress=progress)
        return probs[0] if single else probs

    def find(self, frames, threshold: float = 0.5, margin: float = 3.0,
             progress: bool = False) -> list[np.ndarray] | np.ndarray:
        """Atoms in every frame.

        Args:
            frames: ``(T, H, W)`` or one ``(H, W)`` image at ``pixel_size`` (any units: counts
                or detector output; each frame is standardised).
            threshold: atom probability threshold (see :func:`helpers.segment.find_atoms`).
            margin: atoms closer than this many input pixels to the border are dropped.

        Returns:
            per frame ``(N, 3)`` ``[row, col, class]`` in input pixels, class 1 C, 2 Si (a
            single array for one image).
        """
        x, single = _images(frames, "frames")
        probs = self.unet.predict(bin_images(x, self.bin), progress=progress)
        b = self.bin
        out = []
        for p in probs:
            a = find_atoms(p, threshold=threshold, margin=max(margin / b, 0.0))
            a[:, :2] = a[:, :2] * b + (b - 1) / 2.0
            out.append(a)
        return out[0] if single else out


def _binned_masks(data, factor: int, shape: tuple[int, int], radius_px: float) -> np.ndarray:
    """Masks on the binned grid, drawn from the true positions (discs of ``radius_px``)."""
    from ..simulate._common import disc_labels

    masks = np.empty((len(data.atoms),) + shape, dtype=np.int64)
    for t, a in enumerate(data.atoms):
        rc = (a[:, :2] - (factor - 1) / 2.0) / factor
        lab = a[:, 2].astype(np.int64) + 1
        draw = np.argsort(lab, kind="stable")  # Si discs last, on top
        masks[t] = disc_labels(shape, rc[draw, 0], rc[draw, 1], lab[draw], radius_px)
    return masks


def train_atom_finder(pixel_size: float = 0.1, n_frames: int = 48, size: int = 160,
                      steps: int = 500, batch_size: int = 8, crop: int = 48,
                      dose_range=(1e4, 1e7), bin: int | None = None, filters: int = 8,
                      depth: int = 4, lr: float = 1e-2, mask_radius: float = 0.5,
                      chunk: int = 10, seed: int = 0, device: str = "auto",
                      progress: bool = True) -> AtomFinder:
    """Simulate randomised HAADF training frames of graphene and fit a U-Net on them.

    Args:
        pixel_size: angstrom per pixel of the images the finder is for (0.1 for the abTEM
            benchmark).
        n_frames: training frames, each a new sample under new random conditions.
        size: frame side, pixels at ``pixel_size`` (160 px = 16 A at 0.1 A/px).
            The defaults train in about 3 minutes on one CPU core and reach F1 0.999 at
            2e5 e/A^2 on the abTEM benchmark (``benchmarks/segmentation_noise.py``).
        steps: training steps (batches of ``batch_size`` random crops of ``crop`` binned px),
            rounded up to whole epochs of 100 steps.
        dose_range: ``(low, high)`` e/A^2 of the training frames (log-uniform).
        bin: binning factor; ``None`` picks ``round(0.2 / pixel_size)`` (at least 1), so the
            network works at about 0.2 A/px.
        filters, depth, lr: the U-Net's width, depth and Adam learning rate.
        mask_radius: training disc radius around every atom, angstrom.
        chunk: frames simulated per progress tick.
        seed: seeds the frames (``seed``) and the network (``seed``); same seed, same finder.
        device: torch device for the U-Net (``"auto"``, ``"cpu"``, ...).
        progress: progress bars (simulation, then training).

    Returns:
        :class:`AtomFinder`; ``train_seconds`` counts the simulation and the training.
    """
    from ..simulate import graphene_haadf_frames
    from ..simulate._common import check_float, check_int

    pixel_size = check_float(pixel_size, "pixel_size", 0.0, 0.6, low_open=True,
                             hint="angstrom per pixel, e.g. 0.1")
    n_frames = check_int(n_frames, "n_frames", 1)
    chunk = check_int(chunk, "chunk", 1)
    if bin is None:
        bin = max(1, int(round(0.2 / pixel_size)))
    bin = check_int(bin, "bin", 1, "pixels per network pixel per side")
    size = check_int(size, "size", 16 * bin, "frame side in pixels")
    start = time.perf_counter()
    parts = []
    starts = list(range(0, n_frames, chunk))
    for k, first in enumerate(progress_bar(starts, desc="simulate", disable=not progress)):
        parts.append(graphene_haadf_frames(min(chunk, n_frames - first), size, pixel_size,
                                           seed=seed * 100_003 + k, dose_range=dose_range,
                                           mask_radius=mask_radius))
    frames = bin_images(np.concatenate([p.frames for p in parts]), bin)
    radius = mask_radius / (pixel_size * bin)  # binned pixels
    masks = np.concatenate([_binned_masks(p, bin, frames.shape[1:], radius) for p in parts])
    unet = UNet(n_classes=3, filters=filters, depth=depth, seed=seed, device=device)
    steps = check_int(steps, "steps", 1)
    per_epoch = min(steps, 100)  # an epoch of 100 steps: one progress tick and loss record
    history = unet.fit(frames, masks, epochs=-(-steps // per_epoch), steps_per_epoch=per_epoch,
                       batch_size=batch_size,
                       crop=crop, lr=lr, noise=0.0, contrast=0.0, progress=progress)
    return AtomFinder(unet=unet, bin=bin, pixel_size=pixel_size, history=history,
                      train_seconds=time.perf_counter() - start)
