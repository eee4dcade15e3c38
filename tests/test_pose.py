"""Pose geometry (``helpers.models.pose``): the angle convention, rendering at chosen pixels,
and the one-step rendering + error against its autograd reference."""

import math

import numpy as np
import pytest
import torch

from helpers.models import pose
from helpers.models.decoders import CoordinateDecoder
from helpers.models.pose import (
    homogeneous,
    pixel_points,
    point_poses,
    render,
    render_points,
    rotate_images,
    rotate_vectors,
    sample_points,
    sampled_squared_error,
    squared_error,
)

SHAPE = (28, 28)


def test_render_turns_anticlockwise_on_screen_and_shifts_by_row_col():
    img = np.zeros((1, 21, 21), np.float32)
    img[0, 10, 16] = 1.0  # a dot to the right of the centre
    up = rotate_images(img, np.pi / 2)[0]
    assert np.unravel_index(up.argmax(), up.shape) == (4, 10)  # now above the centre
    shifted = rotate_images(img, 0.0, offset=np.array([[3.0, -2.0]]))[0]
    assert np.unravel_index(shifted.argmax(), shifted.shape) == (13, 14)
    v = rotate_vectors(torch.tensor([[0.0, 6.0]]), torch.tensor([math.pi / 2]))
    np.testing.assert_allclose(v.numpy(), [[-6.0, 0.0]], atol=1e-6)  # right -> up


def test_render_from_a_larger_canvas_fills_the_corners():
    canvas = torch.ones(1, 40, 40)
    out = render(canvas, (28, 28), torch.tensor([[math.pi / 4]]))
    assert out.shape == (1, 1, 28, 28) and float(out.min()) > 0.99
    small_canvas = render(torch.ones(1, 28, 28), (28, 28), torch.tensor([[math.pi / 4]]))
    assert float(small_canvas.min()) < 0.5  # the corners a same-size image cannot fill


@pytest.mark.parametrize("k", [1, 16])  # one pose per image, and many
def test_render_points_equals_render_at_the_disk_pixels(k):
    gen = torch.Generator().manual_seed(0)
    canvas = torch.randn(3, 34, 34, generator=gen)
    angle = torch.rand(3, k, generator=gen) * 2 * math.pi
    offset = 2 * torch.randn(3, k, 2, generator=gen)
    scale = 0.8 + 0.4 * torch.rand(3, k, generator=gen)
    index, weight, points = pixel_points(SHAPE)
    assert 600 < len(index) < 28 * 28 and float(weight.min()) > 0 and float(weight.max()) == 1
    full = render(canvas, SHAPE, angle, offset, scale).reshape(3, k, -1)[..., index]
    torch.testing.assert_close(render_points(canvas, points, angle, offset, scale), full,
                               atol=1e-4, rtol=0)
    # the coordinate decoder reads the same pixel convention
    dec = CoordinateDecoder(SHAPE, in_dim=2)
    emb = dec.prepare(torch.randn(3, 2, generator=gen))
    with torch.no_grad():
        whole = dec.draw(emb, angle, offset, scale).reshape(3, k, -1)[..., index]
        theta = point_poses(dec.canvas, angle, offset, scale)
        torch.testing.assert_close(dec.draw_points(emb, homogeneous(points), theta), whole)


@pytest.mark.parametrize("k", [1, 3])
def test_sampled_squared_error_matches_sampling_then_error_and_its_gradient(k):
    """The training loss's one-step rendering and error equals ``sample_points`` followed by
    ``squared_error``, and its hand-written gradient equals autograd's (float64)."""
    gen = torch.Generator().manual_seed(0)
    canvas = torch.randn(2, 14, 14, generator=gen, dtype=torch.float64, requires_grad=True)
    angle = torch.rand(2, k, generator=gen, dtype=torch.float64) * 2 * math.pi
    offset = torch.randn(2, k, 2, generator=gen, dtype=torch.float64)
    theta = point_poses((14, 14), angle, offset).requires_grad_()
    index, weight, points = pixel_points((12, 12))
    xy1, half = homogeneous(points).double(), 0.5 * weight.double()
    target = torch.randn(2, len(index), generator=gen, dtype=torch.float64)
    err = sampled_squared_error(canvas, xy1, theta, target, half)
    ref = squared_error(sample_points(canvas, xy1, theta), target, half)
    assert err.shape == (2, k)
    torch.testing.assert_close(err, ref)
    g = torch.randn(2, k, generator=gen, dtype=torch.float64)
    for a, b in zip(torch.autograd.grad(err, (canvas, theta), g),
                    torch.autograd.grad(ref, (canvas, theta), g)):
        torch.testing.assert_close(a, b)
    assert torch.autograd.gradcheck(
        lambda c, t: sampled_squared_error(c, xy1, t, target, half), (canvas, theta))


def test_pose_constants_first_built_in_inference_mode_still_train():
    pose._pose_coefficients.cache_clear()
    angle = torch.rand(2, 3)
    with torch.inference_mode():
        render_points(torch.ones(2, 10, 10), torch.zeros(1, 2), angle, torch.zeros(2, 3, 2))
    offset = torch.zeros(2, 3, 2, requires_grad=True)
    render_points(torch.ones(2, 10, 10), torch.zeros(1, 2), angle, offset).sum().backward()
    assert offset.grad is not None
