"""The polar-Fourier trunk of the RVAE: exact rotation behaviour, checked on exact 90-degree
turns (``np.rot90`` turns an array anticlockwise as displayed, the suite's convention)."""

import math

import numpy as np
import torch

from helpers.models.encoders import PolarMLPEncoder
from helpers.models.polar import EquivariantDense, PolarFourier


def _images(n=3, size=28, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, size, size)).astype(np.float32)


def test_coefficients_turn_by_a_phase_when_the_image_turns():
    pf = PolarFourier((28, 28))
    x = _images()
    a = pf(torch.as_tensor(x))
    b = pf(torch.as_tensor(np.ascontiguousarray(np.rot90(x, 1, axes=(1, 2)))))
    # turned anticlockwise by t: X_f -> X_f exp(-i f t), t = pi / 2
    za = torch.complex(a[:, :, 0], a[:, :, 1])
    zb = torch.complex(b[:, :, 0], b[:, :, 1])
    expected = za * torch.exp(-1j * pf.freqs * (math.pi / 2))
    assert torch.allclose(zb, expected, atol=1e-4 * float(za.abs().max()))


def test_equivariant_dense_is_a_dense_layer_on_each_turned_copy():
    torch.manual_seed(0)
    pf = PolarFourier((28, 28))
    t = pf.n_angles
    angles = torch.arange(8) * (2 * math.pi / 8)
    layer = EquivariantDense(pf, angles, 5)
    x = torch.as_tensor(_images())
    y = layer(layer.data_rows(pf(x)))  # (K, B, 5)
    r = pf.n_rings
    u = torch.complex(layer.weight[:, :r], layer.weight[:, r:]).permute(2, 1, 0).detach()
    v = torch.fft.irfft(torch.conj(u), n=t, dim=-1)  # the layer's weights on polar samples
    samples = pf.samples(x) * pf.sqrt_area
    for k in range(8):
        copy = torch.roll(samples, -(k * t // 8), dims=-1)  # the input turned by -angle_k
        direct = torch.einsum("hrt,brt->bh", v, copy) + layer.bias[0, 0].detach()
        assert torch.allclose(y[k].detach(), direct, atol=1e-4), k


def test_trunk_content_features_ignore_a_turn_and_pose_features_follow_it():
    torch.manual_seed(0)
    pf = PolarFourier((28, 28))
    angles = torch.arange(16) * (2 * math.pi / 16)
    trunk = PolarMLPEncoder(pf, angles, (32, 16))
    x = _images()
    per_a, pooled_a = trunk(trunk.first.data_rows(pf(torch.as_tensor(x))))
    turned = torch.as_tensor(np.ascontiguousarray(np.rot90(x, 1, (1, 2))))
    per_b, pooled_b = trunk(trunk.first.data_rows(pf(turned)))
    assert torch.allclose(pooled_a, pooled_b, atol=1e-4)
    # the copy of the turned image at hypothesis k + 4 (k + 90 degrees) is copy k of the original
    assert torch.allclose(per_b.roll(-4, dims=0), per_a, atol=1e-4)
    assert not torch.allclose(per_a, per_b, atol=1e-2)
