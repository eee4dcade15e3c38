"""Polar-Fourier tools for rotation hypotheses: one pass instead of K rotated copies.

A rotation about the image centre is a cyclic shift of the image's polar samples
``P[r, t]`` (ring ``r``, angle ``t``), i.e. a phase factor on their angular Fourier
coefficients ``X[r, f] = sum_t P[r, t] exp(-i f phi_t)``. So a dense layer
``y = sum_{r,t} V[r, t] P[r, t]`` applied to the input turned by ``-theta`` (the copy the
angle hypothesis ``theta`` looks at) equals

    y(theta) = Re( sum_f c_f / T * exp(i f theta) * sum_r X[r, f] U[r, f] ),

with ``U = conj(DFT(V))`` and ``c_0 = 1``, ``c_f = 2`` for ``f > 0`` (Parseval for real
signals). The layer's output for all K hypotheses costs one product per frequency instead of
one pass per copy; keeping only the lowest F frequencies makes it cheaper still.

Polar angles run anticlockwise *as displayed* (origin upper left, rows down), the suite's
convention: the point at radius ``r`` and angle ``phi`` is ``(row, col) = (-r sin phi,
r cos phi)`` from the centre. Rings are 1 pixel apart, ``R = min(H, W) // 2`` of them, at
radii ``0.5, 1.5, ...``; ``T`` angles per ring (a multiple of 4, about one pixel apart on
the outer ring).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PolarFourier", "EquivariantDense"]


class PolarFourier(nn.Module):
    """Angular Fourier coefficients of images on a fixed polar grid.

    shape: the ``(H, W)`` images it reads; n_rings, n_angles: R and T (defaults from
    ``shape``); n_freq: F coefficients kept (``0 .. F-1``, default all ``T // 2 + 1``).

    ``forward(images (B, H, W)) -> (B, R, 2, F)``: real and imaginary parts of the
    coefficients of the samples weighted by the square root of their area (pixels^2).
    """

    def __init__(
        self,
        shape: tuple[int, int],
        n_rings: int | None = None,
        n_angles: int | None = None,
        n_freq: int | None = None,
    ):
        super().__init__()
        h, w = shape
        self.n_rings = n_rings or max(1, min(h, w) // 2)
        if n_angles is None:
            n_angles = 4 * math.ceil(2 * math.pi * (self.n_rings - 0.5) / 4)
        self.n_angles = max(4, n_angles)
        self.n_freq = min(n_freq or self.n_angles // 2 + 1, self.n_angles // 2 + 1)
        radii = torch.arange(self.n_rings, dtype=torch.float32) + 0.5
        phi = torch.arange(self.n_angles, dtype=torch.float32) * (2 * math.pi / self.n_angles)
        row = -radii.view(-1, 1) * torch.sin(phi)
        col = radii.view(-1, 1) * torch.cos(phi)
        # grid_sample's normalised (x = col, y = row) coordinates, align_corners=False
        grid = torch.stack([col * 2 / w, row * 2 / h], dim=-1).unsqueeze(0)  # (1, R, T, 2)
        self.register_buffer("grid", grid, persistent=False)
        f = torch.arange(self.n_freq, dtype=torch.float32)
        arg = phi.view(-1, 1) * f.view(1, -1)  # (T, F)
        self.register_buffer("dft", torch.cat([torch.cos(arg), -torch.sin(arg)], dim=1),
                             persistent=False)  # (T, 2F)
        c = torch.full((self.n_freq,), 2.0)
        c[0] = 1.0
        if self.n_angles % 2 == 0 and self.n_freq == self.n_angles // 2 + 1:
            c[-1] = 1.0  # the Nyquist term appears once
        self.register_buffer("coef", c / self.n_angles, persistent=False)  # c_f / T
        self.register_buffer("freqs", f, persistent=False)
        # each sample weighted by the square root of its area (ring radius x angle step), so
        # that sums of squares match the image's pixel sums: without it the oversampled
        # centre dominates a dense layer and content is learnt more slowly
        area = radii * (2 * math.pi / self.n_angles)
        self.register_buffer("sqrt_area", area.sqrt().view(-1, 1), persistent=False)
        self.total_area = float(area.sum()) * self.n_angles

    def samples(self, images: torch.Tensor) -> torch.Tensor:
        """Bilinear polar samples ``(B, R, T)`` (0 outside the image)."""
        b = images.shape[0]
        return F.grid_sample(images.unsqueeze(1), self.grid.expand(b, -1, -1, -1),
                             mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        p = self.samples(images) * self.sqrt_area  # (B, R, T), area-weighted
        return (p @ self.dft).view(p.shape[0], self.n_rings, 2, self.n_freq)

    def phases(self, angle: torch.Tensor) -> torch.Tensor:
        """``c_f / T * exp(i f angle)`` as ``(..., 2, F)`` (real, imaginary) for angles
        ``(...)`` radians."""
        arg = angle.unsqueeze(-1) * self.freqs
        return torch.stack([torch.cos(arg), torch.sin(arg)], dim=-2) * self.coef


class EquivariantDense(nn.Module):
    """A dense layer (``out_features`` units) applied at once to the input turned by
    ``-angle`` for each of K fixed ``angles``, computed from polar-Fourier coefficients.

    Same function class as ``nn.Linear`` on the band-limited polar samples of each copy: its
    weights ``V`` are stored as their angular Fourier transform ``U = conj(DFT(V))``, as
    ``weight`` ``(F, 2R, out)`` = ``[U_re; U_im]``. ``forward(rows)`` takes the data side of
    the complex product, ``rows = data_rows(coeffs)`` for coefficients ``(B, R, 2, F)``
    (``PolarFourier``; a training set's are computed once), and returns the pre-activations
    ``(K, B, out_features)`` (hypothesis first).
    """

    def __init__(self, polar: PolarFourier, angles: torch.Tensor, out_features: int):
        super().__init__()
        r, t, nf = polar.n_rings, polar.n_angles, polar.n_freq
        self.out_features = out_features
        # initialise like nn.Linear over the disk's pixels (area-weighted samples), then
        # transform
        bound = 1.0 / math.sqrt(polar.total_area)
        v = (torch.rand(out_features, r, t) * 2 - 1) * bound
        u = torch.conj(torch.fft.rfft(v, dim=-1))[..., :nf].permute(2, 1, 0)  # (F, R, h)
        self.weight = nn.Parameter(torch.cat([u.real, u.imag], dim=1).contiguous())
        self.bias = nn.Parameter(((torch.rand(out_features) * 2 - 1) * bound).view(1, 1, -1))
        ph = polar.phases(angles.float())  # (K, 2, F)
        # y_k = sum_f Y_re[f] ph_re[k, f] - Y_im[f] ph_im[k, f]; columns ordered (f, re/im)
        readout = torch.stack([ph[:, 0], -ph[:, 1]], dim=-1).reshape(len(angles), 2 * nf)
        self.register_buffer("readout", readout, persistent=False)  # (K, 2F)

    @staticmethod
    @torch.no_grad()
    def data_rows(coeffs: torch.Tensor) -> torch.Tensor:
        """The data side of the complex product for coefficients ``(B, R, 2, F)``: per
        frequency and image the rows ``[X_re, -X_im]`` and ``[X_im, X_re]``, laid out as the
        product reads them, ``(F, 2, B, 2R)`` (images on axis 2)."""
        re, im = coeffs[:, :, 0], coeffs[:, :, 1]  # (B, R, F)
        rows = torch.stack([torch.cat([re, -im], 1), torch.cat([im, re], 1)], 1)  # (B, 2, 2R, F)
        return rows.permute(3, 1, 0, 2).contiguous()

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        nf, _, b, r2 = rows.shape
        x = rows.reshape(nf, 2 * b, r2)  # per frequency, rows (re/im, b)
        # [X_re, -X_im] U  -> Y_re,  [X_im, X_re] U -> Y_im   (U = [U_re; U_im])
        y = torch.bmm(x, self.weight)  # (F, 2B, h), rows (re/im, b)
        out = self.readout @ y.view(2 * nf, b * self.out_features)  # (K, B*h)
        return out.view(-1, b, self.out_features) + self.bias
