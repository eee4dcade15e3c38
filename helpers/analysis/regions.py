"""Pixel ownership of segmented particles: which pixels belong to which particle.

In crowded height images (rods packed side by side, proteins on DNA) a threshold high enough
to separate touching particles keeps only their upper *cores*; the flanks (and the tip
broadening) are lost. These functions give each particle its whole footprint back and cut
single-particle patches, so a model sees one particle per patch and not its neighbours:

- :func:`grow_labels`: grow labelled cores into a foreground mask, every foreground pixel
  going to the nearest core within ``max_distance`` pixels (a distance-based watershed);
- :func:`centre_masks`: for patches cut from such a label image (``extract_patches`` on the
  labels), the mask of the particle at each patch's centre.

Coordinates are ``(row, col)`` in pixels.
"""

from __future__ import annotations

import numpy as np

__all__ = ["grow_labels", "centre_masks"]


def grow_labels(labels, foreground, max_distance: float) -> np.ndarray:
    """Grow labelled particle cores into the foreground, nearest core wins.

    Args:
        labels: ``(H, W)`` int, 0 background, ``k > 0`` the cores (e.g.
            ``helpers.segment.find_particles(..., core=0.9).labels``).
        foreground: ``(H, W)`` bool, the pixels that belong to some particle (e.g. the same
            image thresholded at the Otsu level: ``find_particles(image).labels > 0``).
        max_distance: largest distance (pixels) from a core at which a foreground pixel is
            still given to it; farther foreground pixels stay 0.

    Returns:
        ``(H, W)`` int labels: every core keeps its pixels and gains the foreground pixels
        nearer to it than to any other core (Euclidean distance to the nearest core pixel).
    """
    from scipy import ndimage

    lab = np.asarray(labels)
    fg = np.asarray(foreground)
    if lab.ndim != 2 or fg.shape != lab.shape:
        raise ValueError(f"labels and foreground must be (H, W) arrays of the same shape, got "
                         f"{lab.shape} and {fg.shape}")
    if not np.issubdtype(lab.dtype, np.integer) or (lab < 0).any():
        raise ValueError("labels must hold non-negative integers (0 = background)")
    if not np.isfinite(max_distance) or max_distance < 0:
        raise ValueError(f"max_distance must be a non-negative number of pixels, got "
                         f"{max_distance!r}")
    if not (lab > 0).any():
        return np.zeros_like(lab)
    dist, (ir, ic) = ndimage.distance_transform_edt(lab == 0, return_indices=True)
    grown = np.where(fg.astype(bool) & (dist <= max_distance), lab[ir, ic], 0)
    return np.where(lab > 0, lab, grown)


def centre_masks(label_patches) -> np.ndarray:
    """Masks of the particle at the centre of each label patch.

    Args:
        label_patches: ``(M, w, w)`` labels cut around particle centres (for example
            ``helpers.features.extract_patches(label_movie, coords, w).patches``; float labels
            are rounded).

    Returns:
        ``(M, w, w)`` bool: the pixels carrying the label found at ``(w // 2, w // 2)``. Where
        the centre pixel is background (a particle whose centre of mass lies outside its own
        footprint, rare for convex particles) the label most common within 1 px of the
        centre is used; if there is none, the mask is empty.
    """
    lp = np.rint(np.asarray(label_patches, dtype=np.float64)).astype(np.int64)
    if lp.ndim != 3 or lp.shape[1] < 3 or lp.shape[2] < 3:
        raise ValueError(f"label_patches must be (M, w, w) with w >= 3, got {lp.shape}")
    r, c = lp.shape[1] // 2, lp.shape[2] // 2
    centre = lp[:, r, c].copy()
    for i in np.flatnonzero(centre == 0):
        near = lp[i, r - 1:r + 2, c - 1:c + 2].ravel()
        near = near[near > 0]
        if near.size:
            centre[i] = np.bincount(near).argmax()
    return (lp == centre[:, None, None]) & (centre[:, None, None] > 0)
