"""Pose geometry shared by the invariant VAEs: rotation, shift and scale of images by
differentiable resampling (``torch.nn.functional.grid_sample``).

Angle convention (the suite's, see CONTRIBUTING.md): radians, counter-clockwise *as
displayed* with the origin at the upper left (``imshow`` default). Pixel coordinates are
``(row, col)``. Rendering an image at pose ``(angle, offset, scale)`` means: scale the
canonical image by ``scale`` about its centre, turn it anticlockwise on screen by ``angle``,
then shift it by ``offset = (d_row, d_col)`` pixels. An output pixel at ``p`` (relative to the
image centre) therefore reads the canonical image at ``R(-angle) (p - offset) / scale``.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "pose_matrices",
    "render",
    "render_points",
    "point_poses",
    "homogeneous",
    "point_grid",
    "sample_points",
    "squared_error",
    "sampled_squared_error",
    "pixel_points",
    "rotate_images",
    "rotate_vectors",
    "disk_mask",
]


def _centred_pixel_grid(shape: tuple[int, int], device, dtype=torch.float32) -> torch.Tensor:
    """Pixel centres of an ``(H, W)`` image relative to its centre: ``(H*W, 2)`` as (row, col)."""
    h, w = shape
    rows = torch.arange(h, device=device, dtype=dtype) - (h - 1) / 2
    cols = torch.arange(w, device=device, dtype=dtype) - (w - 1) / 2
    rr, cc = torch.meshgrid(rows, cols, indexing="ij")
    return torch.stack([rr.reshape(-1), cc.reshape(-1)], dim=-1)


@functools.lru_cache(maxsize=64)
def _pose_coefficients(h, w, hc, wc, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The constants of ``pose_matrices`` (built once per size, dtype and device; never
    modified; ordinary tensors even when first asked for under ``torch.inference_mode``,
    so that training can use them later): ``A; B`` ``(2, 6)`` and ``T_cos | T_sin``
    ``(2, 12)`` (offset row, col)."""
    with torch.inference_mode(False), torch.no_grad():
        coef = torch.tensor([[w / wc, 0, 0, 0, h / hc, 0], [0, -h / wc, 0, w / hc, 0, 0]],
                            dtype=dtype, device=device)
        per_offset = torch.zeros(2, 2, 6, dtype=dtype)
        per_offset[1, 0, 2] = -2.0 / wc  # t_x = -2 / wc (cos o_col - sin o_row)
        per_offset[0, 1, 2] = 2.0 / wc
        per_offset[0, 0, 5] = -2.0 / hc  # t_y = -2 / hc (sin o_col + cos o_row)
        per_offset[1, 1, 5] = -2.0 / hc
        return coef, per_offset.view(2, 12).to(device)


def pose_matrices(
    out_shape: tuple[int, int],
    in_shape: tuple[int, int],
    angle: torch.Tensor,
    offset: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """``affine_grid`` matrices ``(B, K, 2, 3)`` that render an ``in_shape`` canonical image
    into ``out_shape`` at poses ``angle (B, K)``, ``offset (B, K, 2)``, ``scale (B, K)``.

    ``affine_grid`` works in normalised (x = col, y = row) units; in pixels the source of an
    output pixel ``p`` is ``R(-angle) (p - offset) / scale``.
    """
    h, w = out_shape
    hc, wc = in_shape
    # theta = cos * (A + T_cos offset) + sin * (B + T_sin offset), its entries (x row: col,
    # row, 1; y row: col, row, 1), i.e. R = [[cos, -sin], [sin, cos]] on (x, y) = (col, row)
    # pixels (R(-angle) on screen) with the normalisations folded in, and the translation
    # -R (offset_col, offset_row) normalised by the input size. As two small products: on a
    # CPU, fewer and cheaper operations than assembling the matrices entry by entry.
    cs = torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1).view(-1, 1, 2)
    if scale is not None:  # R(-angle) (p - offset) / scale
        cs = cs / scale.reshape(-1, 1, 1)
    coef, per_offset = _pose_coefficients(h, w, hc, wc, cs.dtype, cs.device)
    if offset is None:
        theta = cs @ coef  # (B K, 1, 6)
    else:  # the cos and sin rows of each pose, (B K, 2, 6)
        rows = torch.addmm(coef.view(12), offset.reshape(-1, 2), per_offset).view(-1, 2, 6)
        theta = torch.bmm(cs, rows)
    return theta.view(*angle.shape, 2, 3)


def render(
    canonical: torch.Tensor,
    out_shape: tuple[int, int],
    angle: torch.Tensor,
    offset: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Render canonical images at K poses each by bilinear resampling (differentiable).

    canonical: ``(B, Hc, Wc)`` (the canvas may be larger than the output so that rotation
    never brings empty corners into view); angle ``(B, K)``; offset ``(B, K, 2)`` or None;
    scale ``(B, K)`` or None. Returns ``(B, K, H, W)`` with ``(H, W) = out_shape``. Values
    outside the canvas read as 0.
    """
    b, hc, wc = canonical.shape
    k = angle.shape[1]
    h, w = out_shape
    theta = pose_matrices(out_shape, (hc, wc), angle, offset, scale)  # (B, K, 2, 3)
    # affine_grid, separably: grid[r, c] = A[:, 0] x_c + (A[:, 1] y_r + t), one broadcast add
    x = (torch.arange(w, device=angle.device, dtype=angle.dtype) * 2 + 1) / w - 1
    y = (torch.arange(h, device=angle.device, dtype=angle.dtype) * 2 + 1) / h - 1
    gx = theta[..., 0].unsqueeze(2) * x.view(1, 1, w, 1)  # (B, K, W, 2)
    gy = theta[..., 1].unsqueeze(2) * y.view(1, 1, h, 1) + theta[..., 2].unsqueeze(2)
    grid = (gx.unsqueeze(2) + gy.unsqueeze(3)).view(b, k * h, w, 2)
    out = F.grid_sample(
        canonical.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return out.view(b, k, h, w)


def render_points(
    canonical: torch.Tensor,
    points: torch.Tensor,
    angle: torch.Tensor,
    offset: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """``render`` evaluated at chosen output pixels only: ``(B, K, P)``.

    points: ``(P, 2)`` output pixel centres (row, col) relative to the output centre (e.g.
    from ``pixel_points``), in the units of ``offset``; the other arguments as in
    ``render``. The training loss uses it to compare only the pixels that every rotation
    keeps in view.
    """
    theta = point_poses(tuple(canonical.shape[1:]), angle, offset, scale)
    return sample_points(canonical, homogeneous(points), theta)


def point_poses(
    canvas: tuple[int, int],
    angle: torch.Tensor,
    offset: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Poses ``angle`` ``(B, K)``, ``offset`` ``(B, K, 2)``, ``scale`` ``(B, K)`` of an
    ``(Hc, Wc)`` canonical ``canvas`` as the ``(K, B, 2, 3)`` matrices (hypothesis first)
    that ``point_grid`` and ``sample_points`` take."""
    return pose_matrices((2, 2), canvas, angle, offset, scale).transpose(0, 1)


def homogeneous(points: torch.Tensor) -> torch.Tensor:
    """Pixel positions ``(P, 2)`` (row, col) as the homogeneous ``(P, 3)`` (col, row, 1)
    that ``point_grid`` and ``sample_points`` take."""
    return F.pad(points.flip(1), (0, 1), value=1.0)


def point_grid(xy1: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Where output pixels ``xy1`` ``(P, 3)`` (``homogeneous`` row, col from the output
    centre, pixels) read the canonical image at poses ``theta`` ``(K, B, 2, 3)`` (hypothesis
    first): normalised (x, y) source coordinates ``(B, K, P, 2)`` (a permuted view; as
    ``grid_sample`` reads them, the samples come out ``(B, 1, K, P)``).

    ``theta`` must be ``point_poses(canvas_shape, ...)``, i.e. ``pose_matrices((2, 2), ...)``:
    an output "2 pixels wide" makes its normalised output units pixels. Normalised source
    coordinates do not depend on the canvas resolution, so the same ``theta`` serves a canvas
    binned f x f at the binned pixels' centres in full-resolution pixels.
    """
    k, b = theta.shape[:2]
    # one matrix product for every pose and point, no copy (grid_sample reads the strides)
    return (theta.reshape(-1, 3) @ xy1.T).view(k, b, 2, -1).permute(1, 0, 3, 2)


def sample_points(canonical: torch.Tensor, xy1: torch.Tensor, theta: torch.Tensor
                  ) -> torch.Tensor:
    """Canonical images ``(B, Hc, Wc)`` sampled bilinearly (0 outside) at the output pixels
    ``xy1`` ``(P, 3)`` (``homogeneous``) for the poses ``theta``
    ``(K, B, 2, 3)`` (see ``point_grid``): ``(B, K, P)``."""
    k, b = theta.shape[:2]
    out = F.grid_sample(canonical.unsqueeze(1), point_grid(xy1, theta), mode="bilinear",
                        padding_mode="zeros", align_corners=False)  # (B, 1, K, P)
    return out.view(b, k, -1)


def squared_error(x_hat: torch.Tensor, target: torch.Tensor,
                  half_weight: torch.Tensor | None) -> torch.Tensor:
    """``sum_p half_weight_p (x_hat - target)^2`` over the last axis (``half_weight`` None:
    0.5 for every pixel); ``x_hat`` ``(B, ..., P)``, ``target`` ``(B, P)`` broadcast over the
    middle axes."""
    diff = x_hat - target.reshape(target.shape[0], *([1] * (x_hat.dim() - 2)), -1)
    sq = diff * diff
    return 0.5 * sq.sum(-1) if half_weight is None else (sq * half_weight).sum(-1)


def sampled_squared_error(canonical: torch.Tensor, xy1: torch.Tensor, theta: torch.Tensor,
                          target: torch.Tensor, half_weight: torch.Tensor) -> torch.Tensor:
    """``squared_error(sample_points(canonical, xy1, theta), target, half_weight)``: the
    weighted squared errors ``(B, K)`` of canonical images ``(B, Hc, Wc)`` rendered at the
    poses ``theta`` ``(K, B, 2, 3)`` against ``target`` ``(B, P)`` at the output pixels
    ``xy1`` ``(P, 3)`` (``half_weight`` ``(P,)``).

    One autograd step with a hand-written backward (the training loss's rendering; at a
    batch of 32 on a CPU the per-operation overhead of a dozen small recorded operations
    costs more than their arithmetic). Gradients flow to ``canonical`` and ``theta``."""
    return _SampledError.apply(canonical, theta, xy1, target, half_weight)


class _SampledError(torch.autograd.Function):
    """``sampled_squared_error`` as one autograd node."""

    @staticmethod
    def forward(ctx, canonical, theta, xy1, target, half_weight):
        k, b = theta.shape[:2]
        image = canonical.unsqueeze(1)
        grid = point_grid(xy1, theta)  # (B, K, P, 2)
        x_hat = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros",
                              align_corners=False)  # (B, 1, K, P)
        diff = x_hat.view(b, k, -1) - target.unsqueeze(1)
        weighted = diff * half_weight
        ctx.save_for_backward(image, grid, weighted, xy1)
        return (weighted * diff).sum(-1)

    @staticmethod
    def backward(ctx, g_err):
        image, grid, weighted, xy1 = ctx.saved_tensors
        b, k, p = weighted.shape
        want_image, want_theta = ctx.needs_input_grad[:2]
        g_x = (weighted * (2 * g_err).unsqueeze(-1)).view(b, 1, k, p)  # d/dx_hat
        g_image, g_grid = torch.ops.aten.grid_sampler_2d_backward(
            g_x, image, grid, 0, 0, False, [want_image, want_theta])  # bilinear, zeros
        g_canonical = g_image[:, 0] if want_image else None
        g_theta = None
        if want_theta:  # grid[b, k, p] = theta[k, b] @ xy1[p]
            g_theta = (g_grid.permute(1, 0, 3, 2).reshape(k * b * 2, p) @ xy1).view(k, b, 2, 3)
        return g_canonical, g_theta, None, None, None


def pixel_points(shape: tuple[int, int], disk: bool = True, device=None):
    """The pixels of an ``(H, W)`` grid inside its largest centred disk (``disk_mask > 0``),
    or all of them (``disk=False``, row-major).

    Returns ``(index, weight, points)``: ``(P,)`` flat pixel indices, ``(P,)`` the mask's
    value there (1 inside, less on the 1-pixel soft edge; None for all pixels) and ``(P, 2)``
    pixel centres (row, col) relative to the image centre.
    """
    points = _centred_pixel_grid(shape, device)
    if not disk:
        return torch.arange(len(points), device=device), None, points
    mask = disk_mask(shape, device).reshape(-1)
    index = torch.nonzero(mask > 0).reshape(-1)
    return index, mask[index], points[index]


def rotate_vectors(v: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Turn (row, col) displacement vectors anticlockwise on screen by ``angle``.

    v: ``(..., 2)``; angle broadcastable to ``v.shape[:-1]``. Returns the same shape.
    """
    cos, sin = torch.cos(angle), torch.sin(angle)
    dr, dc = v[..., 0], v[..., 1]
    return torch.stack([cos * dr - sin * dc, sin * dr + cos * dc], dim=-1)


def disk_mask(shape: tuple[int, int], device=None) -> torch.Tensor:
    """``(H, W)`` float mask, 1 inside the largest centred disk (soft 1-pixel edge), else 0."""
    p = _centred_pixel_grid(shape, device)
    radius = min(shape) / 2.0
    r = torch.sqrt((p**2).sum(-1))
    return torch.clamp(radius - r + 0.5, 0.0, 1.0).view(shape)


def rotate_images(
    images: np.ndarray,
    angle: np.ndarray | float,
    offset: np.ndarray | None = None,
    scale: np.ndarray | float | None = None,
) -> np.ndarray:
    """Numpy convenience: render ``images`` ``(N, H, W)`` at pose ``angle`` ``(N,)`` radians
    (anticlockwise on screen), ``offset`` ``(N, 2)`` pixels (row, col), ``scale`` ``(N,)``.
    Returns ``(N, H, W)`` float32; pixels that come from outside the image are 0."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    n = x.shape[0]
    a = torch.as_tensor(np.broadcast_to(np.asarray(angle, dtype=np.float32), (n,)).copy())
    o = None if offset is None else torch.as_tensor(np.asarray(offset, np.float32)).view(n, 1, 2)
    s = None
    if scale is not None:
        s = torch.as_tensor(np.broadcast_to(np.asarray(scale, np.float32), (n,)).copy()).view(n, 1)
    with torch.no_grad():
        out = render(x, tuple(x.shape[1:]), a.view(n, 1), o, s)
    return out[:, 0].numpy()
