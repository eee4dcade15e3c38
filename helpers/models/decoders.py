"""Decoders of the VAE family: latent ``(B, D)`` plus K poses per sample -> images
``(B, K, H, W)``.

- ``ResampleDecoder`` (the default): an MLP decodes one canonical image per sample on a
  canvas large enough that rotation and shift never bring empty canvas into the compared
  pixels (the whole square, or only its centred disk: ``canvas_shape``); the K posed images
  are then made by differentiable bilinear resampling. Its cost per sample is one MLP pass
  plus K cheap resamplings.
- ``CoordinateDecoder`` (the "spatial" decoder of pyroVED and AtomAI, kept as the
  reference): every output pixel's rotated/shifted coordinate is embedded and added to an
  embedding of the latent, and an MLP maps the sum to that pixel's value. Its cost is
  pixels x K x hidden^2 per sample.

Both take poses as ``angle (B, K)`` radians, ``offset (B, K, 2)`` pixels (row, col) or None,
``scale (B, K)`` or None, with the suite's angle convention (see ``pose.py``); ``angle=None``
means no pose at all (a plain VAE) and returns ``(B, 1, H, W)``. Decoding is split in two so
that the pose-free part runs once per sample: ``state = prepare(z)`` (a tensor with the batch
first: the canonical canvas, or the latent's embedding), then ``draw(state, pose)`` (whole
images) or, for the loss, ``point_errors(state, xy1, theta, target, half_weight)``: the
weighted squared errors at chosen pixels only, with the poses given as ``theta =
pose.point_poses(decoder.canvas, angle, offset, scale)`` ``(K, B, 2, 3)`` (where each output
pixel reads the canonical image, in normalised units: ``pose.point_grid``), built once per
batch for all hypotheses.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .pose import (
    homogeneous,
    pixel_points,
    point_grid,
    point_poses,
    render,
    sampled_squared_error,
    squared_error,
)

__all__ = ["ResampleDecoder", "CoordinateDecoder", "make_decoder", "canvas_shape"]


def canvas_shape(image_shape: tuple[int, int], margin: float, disk: bool = False
                 ) -> tuple[int, int]:
    """Square canvas covering every rotation of an ``(H, W)`` image (``disk=True``: of its
    largest centred disk) shifted by up to ``margin`` pixels: side ``ceil(hypot(H, W) + 2 *
    margin)`` (disk: ``ceil(min(H, W) + 2 * margin)``), same parity as H."""
    h, w = image_shape
    extent = min(h, w) if disk else math.hypot(h, w)
    side = int(math.ceil(extent + 2 * margin))
    if (side - h) % 2:
        side += 1
    return side, side


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class ResampleDecoder(nn.Module):
    """MLP (tanh) from the latent to a canonical ``canvas`` image, then resampled at K poses.

    in_dim: latent (+ class one-hot + condition) size; hidden: MLP widths; canvas: the
    canonical image's ``(Hc, Wc)`` (equal to ``image_shape`` for a plain VAE).
    """

    def __init__(
        self,
        image_shape: tuple[int, int],
        in_dim: int,
        hidden: tuple[int, ...] = (128, 128),
        canvas: tuple[int, int] | None = None,
    ):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.canvas = tuple(canvas or image_shape)
        self.net = _mlp([in_dim, *hidden, self.canvas[0] * self.canvas[1]])

    def prepare(self, z: torch.Tensor) -> torch.Tensor:
        """Canonical images ``(B, Hc, Wc)`` (pose zero, the full canvas)."""
        return self.net(z).view(-1, *self.canvas)

    canonical = prepare

    def draw(self, canvas, angle=None, offset=None, scale=None) -> torch.Tensor:
        """The canvases ``(B, Hc, Wc)`` rendered at K poses each: ``(B, K, H, W)``."""
        if angle is None and offset is None and scale is None and self.canvas == self.image_shape:
            return canvas.unsqueeze(1)
        if angle is None:
            k = 1 if offset is None else offset.shape[1]
            angle = canvas.new_zeros(canvas.shape[0], k)
        return render(canvas, self.image_shape, angle, offset, scale)

    def point_errors(self, canvas, xy1, theta, target, half_weight) -> torch.Tensor:
        """Weighted squared errors ``(B, K)`` against ``target`` ``(B, P)`` of the canvases
        rendered at the poses ``theta`` ``(K, B, 2, 3)``, at the output pixels ``xy1``
        ``(P, 3)`` (``pose.homogeneous`` of (row, col) from the image centre) only, in one
        autograd step (``pose.sampled_squared_error``)."""
        return sampled_squared_error(canvas, xy1, theta, target, half_weight)

    def forward(self, z, angle=None, offset=None, scale=None) -> torch.Tensor:
        return self.draw(self.prepare(z), angle, offset, scale)


class CoordinateDecoder(nn.Module):
    """pyroVED's and AtomAI's spatial decoder: ``tanh(W_c p' + W_z z)`` then
    ``n_layers - 1`` dense tanh layers and a linear read-out, evaluated at every pixel's
    posed coordinate ``p'`` (normalised so the image spans [-1, 1])."""

    def __init__(
        self, image_shape: tuple[int, int], in_dim: int, hidden: int = 128, n_layers: int = 2
    ):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.canvas = self.image_shape
        self.coord = nn.Linear(2, hidden)
        self.latent = nn.Linear(in_dim, hidden, bias=False)
        self.net = _mlp([hidden] * n_layers + [1])
        self.register_buffer("pixels", homogeneous(pixel_points(self.image_shape, disk=False)[2]),
                             persistent=False)  # (H*W, 3) row-major

    def prepare(self, z: torch.Tensor) -> torch.Tensor:
        """The latent's embedding ``(B, hidden)``."""
        return self.latent(z)

    def draw(self, emb, angle=None, offset=None, scale=None) -> torch.Tensor:
        """Evaluate the pixel MLP at every posed coordinate: ``(B, K, H, W)``."""
        b = emb.shape[0]
        if angle is None:
            k = 1 if offset is None else offset.shape[1]
            angle = emb.new_zeros(b, k)
        theta = point_poses(self.canvas, angle, offset, scale)
        return self.draw_points(emb, self.pixels, theta).reshape(b, -1, *self.image_shape)

    def draw_points(self, emb, xy1, theta) -> torch.Tensor:
        """The pixel MLP at the output pixels ``xy1`` ``(P, 3)`` (``pose.homogeneous`` of
        (row, col) from the image centre) at the poses ``theta`` ``(K, B, 2, 3)``:
        ``(B, K, P)``."""
        b = emb.shape[0]
        # posed pixel coordinates (B, K, P, 2) as (row, col), the image spanning [-1, 1]
        src = point_grid(xy1, theta).flip(-1)
        hid = torch.tanh(self.coord(src) + emb.view(b, 1, 1, -1))
        return self.net(hid).squeeze(-1)  # (B, K, P)

    def point_errors(self, emb, xy1, theta, target, half_weight) -> torch.Tensor:
        """Weighted squared errors ``(B, K)`` of ``draw_points`` against ``target``
        ``(B, P)`` (``pose.squared_error``)."""
        return squared_error(self.draw_points(emb, xy1, theta), target, half_weight)

    def forward(self, z, angle=None, offset=None, scale=None) -> torch.Tensor:
        return self.draw(self.prepare(z), angle, offset, scale)

    def canonical(self, z: torch.Tensor) -> torch.Tensor:
        """Images at pose zero ``(B, H, W)``."""
        return self.forward(z)[:, 0]


def make_decoder(
    kind: str,
    image_shape: tuple[int, int],
    in_dim: int,
    hidden: tuple[int, ...],
    canvas: tuple[int, int] | None,
) -> nn.Module:
    """Build the decoder named ``kind`` (``"resample"`` or ``"coordinate"``)."""
    if kind == "resample":
        return ResampleDecoder(image_shape, in_dim, hidden, canvas)
    if kind == "coordinate":
        return CoordinateDecoder(image_shape, in_dim, hidden[0], len(hidden))
    raise ValueError(f"unknown decoder {kind!r}; use 'resample' or 'coordinate'")
