"""Encoder trunks of the VAE family: images ``(N, 1, H, W)`` -> features ``(N, F)``.

The invariant models apply one trunk to K rotated copies of each input (see ``network.py``);
``PolarMLPEncoder`` does so without building the copies. The heads that turn features into
latents live in the model, so a trunk knows nothing of pose.
"""

from __future__ import annotations

import torch
from torch import nn

from .polar import EquivariantDense, PolarFourier

__all__ = ["MLPEncoder", "ConvEncoder", "PolarMLPEncoder", "make_encoder"]


def _dense_tanh(width: int, hidden: tuple[int, ...]) -> list[nn.Module]:
    """Dense layers of the given widths from ``width`` inputs, each followed by tanh."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(width, h), nn.Tanh()]
        width = h
    return layers


class MLPEncoder(nn.Module):
    """Flatten, then ``len(hidden)`` dense layers with tanh (2 x 128 tanh by default, as in
    pyroVED's and AtomAI's encoders).

    Input ``(N, 1, H, W)``; output ``(N, hidden[-1])``.
    """

    def __init__(self, in_shape: tuple[int, int], hidden: tuple[int, ...] = (128, 128)):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), *_dense_tanh(in_shape[0] * in_shape[1], hidden))
        self.out_features = hidden[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvEncoder(nn.Module):
    """Strided 3x3 convolutions (SiLU), flattened (keeping position, which the offsets
    need), then dense tanh layers.

    Input ``(N, 1, H, W)``; output ``(N, hidden[-1])``. ``channels`` sets the conv widths,
    each conv halves the resolution.
    """

    def __init__(
        self,
        in_shape: tuple[int, int],
        hidden: tuple[int, ...] = (128,),
        channels: tuple[int, ...] = (16, 32, 32),
    ):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, h, w = 1, in_shape[0], in_shape[1]
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.SiLU()]
            c_in, h, w = c, (h + 1) // 2, (w + 1) // 2
        layers += [nn.Flatten(), *_dense_tanh(c_in * h * w, hidden)]
        self.net = nn.Sequential(*layers)
        self.out_features = hidden[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PolarMLPEncoder(nn.Module):
    """The MLP trunk for K angle hypotheses in about one pass.

    Its first dense layer is applied to all K copies of the input turned by ``-angles`` at
    once, from the polar-Fourier coefficients of the input's disk
    (``polar.EquivariantDense``). Those per-copy features feed the pose heads; their mean
    over the copies (invariant to the turns) runs through the remaining dense layers for the
    content latents. (The mean, not the maximum: a maximum over the copies learns shape
    faster but can wake spurious weak latents on small windows.)

    ``forward(rows)``, with ``rows = first.data_rows(coeffs)`` ``(F, 2, N, 2R)`` for
    polar-Fourier coefficients ``(N, R, 2, F)``, returns ``(per_copy (K, N, hidden[0]),
    pooled (N, hidden[-1]))``; ``copy_features`` and ``out_features`` are their widths.
    """

    def __init__(self, polar: PolarFourier, angles: torch.Tensor,
                 hidden: tuple[int, ...] = (128, 128)):
        super().__init__()
        self.first = EquivariantDense(polar, angles, hidden[0])
        self.rest = nn.Sequential(*_dense_tanh(hidden[0], hidden[1:]))
        self.copy_features = hidden[0]
        self.out_features = hidden[-1]

    def forward(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        per_copy = torch.tanh(self.first(rows))
        return per_copy, self.rest(per_copy.mean(0))


def make_encoder(kind: str, in_shape: tuple[int, int], hidden: tuple[int, ...]) -> nn.Module:
    """Build the trunk named ``kind`` (``"mlp"`` or ``"conv"``)."""
    if kind == "mlp":
        return MLPEncoder(in_shape, hidden)
    if kind == "conv":
        return ConvEncoder(in_shape, hidden[-1:])
    raise ValueError(f"unknown encoder {kind!r}; use 'mlp' or 'conv'")
