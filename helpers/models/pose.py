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

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "source_coordinates",
    "pose_matrices",
    "render",
    "render_points",
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


def source_coordinates(
    out_shape: tuple[int, int],
    angle: torch.Tensor,
    offset: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    points: torch.Tensor | None = None,
) -> torch.Tensor:
    """Where each output pixel reads the canonical image, in canonical pixels.

    angle: ``(B, K)`` radians; offset: ``(B, K, 2)`` pixels (row, col) or None; scale:
    ``(B, K)`` (> 0) or None. ``points`` ``(P, 2)``: output pixels (row, col, relative to
    the output centre) to use instead of all ``H*W``. Returns
    ``(B, K, P, 2)`` (row, col) relative to the canonical centre (``P = H*W`` by default).
    """
    if points is None:
        points = _centred_pixel_grid(out_shape, angle.device, angle.dtype)
    p = points.view(1, 1, -1, 2)
    if offset is not None:
        p = p - offset.unsqueeze(2)
    dr, dc = p[..., 0], p[..., 1]
    cos = torch.cos(angle).unsqueeze(-1)
    sin = torch.sin(angle).unsqueeze(-1)
    # R(-angle) in screen coordinates (x = col, y = row, y pointing down)
    col = cos * dc - sin * dr
    row = sin * dc + cos * dr
    src = torch.stack([row, col], dim=-1)
    if scale is not None:
        src = src / scale.view(*scale.shape, 1, 1)
    return src


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
    cos, sin = torch.cos(angle), torch.sin(angle)
    if scale is not None:
        cos, sin = cos / scale, sin / scale
    # R = [[cos, -sin], [sin, cos]] on (x, y) = (col, row) pixels, i.e. R(-angle) on screen
    rot = torch.stack([cos, -sin, sin, cos], dim=-1).view(*angle.shape, 2, 2)
    # pixels -> pixels linear part with the output/input normalisations folded in
    lin = rot * rot.new_tensor([[w / wc, h / wc], [w / hc, h / hc]])
    if offset is None:
        t = rot.new_zeros(*angle.shape, 2, 1)
    else:  # -R (offset_col, offset_row), normalised by the input size
        t = (rot @ offset.flip(-1).unsqueeze(-1)) * rot.new_tensor([[-2.0 / wc], [-2.0 / hc]])
    return torch.cat([lin, t], dim=-1)


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
    """``render`` evaluated at chosen output pixels only: ``(B, K, P)`` (a transposed view).

    points: ``(P, 2)`` output pixel centres (row, col) relative to the output centre (e.g.
    from ``pixel_points``), in the units of ``offset``; the other arguments as in
    ``render``. The training loss uses it to compare only the pixels that every rotation
    keeps in view.
    """
    b, hc, wc = canonical.shape
    k = angle.shape[1]
    # affine_grid at the points, from output pixels (an output "2 pixels wide" makes
    # pose_matrices' normalised output units pixels): theta @ (col, row, 1)
    theta = pose_matrices((2, 2), (hc, wc), angle, offset, scale)  # (B, K, 2, 3)
    xy1 = F.pad(points.flip(1), (0, 1), value=1.0)  # (P, 3)
    # one product, laid out (B, P, K, 2) as grid_sample reads it. On CPU the broadcast
    # batched product is quick for many poses per image (K = 16, P = 172: 0.07 ms) but slow
    # for few (K = 1, P = 648: 0.52 ms, 1.1 ms with its backward), where one matrix product
    # and a transposing copy take 0.14 ms (0.39 ms with backward).
    if k >= 8:
        grid = xy1 @ theta.permute(0, 3, 1, 2).reshape(b, 3, 2 * k)
    else:
        grid = (theta.reshape(-1, 3) @ xy1.T).view(b, 2 * k, -1).transpose(1, 2).contiguous()
    out = F.grid_sample(canonical.unsqueeze(1), grid.view(b, -1, k, 2), mode="bilinear",
                        padding_mode="zeros", align_corners=False)  # (B, 1, P, K)
    return out.view(b, -1, k).transpose(1, 2)  # a view


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
