"""Figures of the segmentation and local-structure steps.

- :func:`plot_coordinates`: found (or true) positions over one or several frames;
- :func:`plot_trajectories`: linked trajectories over a frame;
- :func:`plot_patch_mosaic`: a grid of patches (optionally titled by a label);
- :func:`plot_latent_map`: per-object values (latents, classes) painted over an image;
- :func:`plot_histograms`: overlaid histograms of one or several value sets.

Every function returns the matplotlib ``Figure``; pass ``ax`` to draw into an existing axis.
Coordinates are ``(row, col)`` pixels, drawn over ``imshow`` (origin upper left).
"""

from __future__ import annotations

import numpy as np

from ._common import CLASS_COLOURS

__all__ = [
    "plot_coordinates",
    "plot_trajectories",
    "plot_patch_mosaic",
    "plot_latent_map",
    "plot_histograms",
]


def _axes(ax, n: int = 1, size: float = 4.0):
    import matplotlib.pyplot as plt

    if ax is not None:
        axes = np.atleast_1d(ax).ravel()
        return axes[0].figure, axes
    fig, axes = plt.subplots(1, n, figsize=(size * n, size), squeeze=False)
    return fig, axes.ravel()


def _tidy(fig, ax) -> None:
    """Lay out figures this module created; leave a caller's figure (and layout) alone."""
    if ax is None:
        fig.tight_layout()


def _pixel_axes(ax, title: str | None, pixel_size: float | None, pixel_unit: str = "\u00c5"):
    ax.set_xlabel("col (px)")
    ax.set_ylabel("row (px)")
    if title:
        ax.set_title(title)
    if pixel_size:
        ax.text(0.01, 0.01, f"{pixel_size:g} {pixel_unit}/px", transform=ax.transAxes, color="w",
                fontsize=8, va="bottom")


def plot_coordinates(frames, coords, frame_index=None, class_names=None, ax=None,
                     marker_size: float = 6.0, pixel_size: float | None = None,
                     pixel_unit: str = "\u00c5", cmap: str = "gray"):
    """Positions over one image or over chosen frames of a movie.

    Args:
        frames: ``(H, W)`` image or ``(T, H, W)`` movie.
        coords: for an image an ``(N, 2|3)`` array ``[row, col(, class)]``; for a movie a list
            of ``T`` such arrays.
        frame_index: frames of a movie to show (default: first, middle, last).
        class_names: names of the classes in column 2 (e.g. ``{1: "C", 2: "Si"}`` or a list).
        ax: one axis per shown frame (optional).
        pixel_size: angstrom per pixel, printed on the image.
    """
    frames = np.asarray(frames)
    if frames.ndim == 2:
        frames, coords, frame_index = frames[None], [coords], [0]
    if frame_index is None:
        t = len(frames)
        frame_index = sorted({0, t // 2, t - 1})
    frame_index = list(np.atleast_1d(frame_index))
    fig, axes = _axes(ax, len(frame_index))
    if isinstance(class_names, (list, tuple)):
        class_names = dict(enumerate(class_names))
    for a, t in zip(axes, frame_index):
        a.imshow(frames[t], cmap=cmap)
        pts = np.asarray(coords[t], dtype=float).reshape(-1, np.shape(coords[t])[-1]
                                                          if np.size(coords[t]) else 2)
        classes = pts[:, 2].astype(int) if pts.shape[1] > 2 else np.zeros(len(pts), int)
        for k in np.unique(classes):
            sel = classes == k
            name = (class_names or {}).get(int(k), f"class {k}")
            a.scatter(pts[sel, 1], pts[sel, 0], s=marker_size, label=f"{name} ({sel.sum()})",
                      color=CLASS_COLOURS[int(k) % len(CLASS_COLOURS)], linewidths=0)
        if len(pts):
            a.legend(loc="upper right", fontsize=7, markerscale=2)
        _pixel_axes(a, f"frame {t}", pixel_size, pixel_unit)
    _tidy(fig, ax)
    return fig


def plot_trajectories(image, trajectories, ax=None, min_length: int = 2,
                      color_by=None, cmap: str = "viridis", label: str = "frame"):
    """Trajectories ``[frame, row, col]`` (``helpers.features.Tracks.trajectories``) over
    an image.

    Args:
        image: ``(H, W)`` background (for example the first frame).
        trajectories: list of ``(L, 3)`` arrays ``[frame, row, col]``.
        min_length: shorter trajectories are not drawn.
        color_by: ``None`` colours each segment by frame; or one value per trajectory.
        label: colour-bar label.
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    fig, (a,) = _axes(ax)
    a.imshow(np.asarray(image), cmap="gray")
    segs, vals = [], []
    for k, tr in enumerate(trajectories):
        tr = np.asarray(tr, dtype=float)
        if len(tr) < max(min_length, 2):
            continue
        xy = tr[:, [2, 1]]
        segs.extend(np.stack([xy[:-1], xy[1:]], axis=1))
        if color_by is None:
            vals.extend(tr[1:, 0])
        else:
            vals.extend([np.asarray(color_by)[k]] * (len(tr) - 1))
    if segs:
        lines = LineCollection(segs, cmap=cmap, linewidths=1.2)
        lines.set_array(np.asarray(vals, dtype=float))
        a.add_collection(lines)
        plt.colorbar(lines, ax=a, label=label, fraction=0.046)
    _pixel_axes(a, f"{sum(len(t) >= max(min_length, 2) for t in trajectories)} trajectories",
                None)
    _tidy(fig, ax)
    return fig


def plot_patch_mosaic(patches, n: int = 64, ncols: int = 8, labels=None, seed: int = 0,
                      cmap: str = "viridis", title: str | None = None):
    """A grid of ``n`` patches, drawn at random (reproducibly) when there are more.

    Args:
        patches: ``(M, h, w)``.
        labels: optional ``(M,)`` values shown above each patch (class, latent value).
    """
    import matplotlib.pyplot as plt

    patches = np.asarray(patches)
    if patches.ndim != 3:
        raise ValueError(f"patches must be (M, h, w), got shape {patches.shape}")
    m = len(patches)
    pick = np.arange(m) if m <= n else np.sort(
        np.random.default_rng(seed).choice(m, n, replace=False))
    ncols = max(1, min(ncols, len(pick)))
    nrows = max(1, int(np.ceil(len(pick) / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.2 * ncols, 1.25 * nrows + 0.3),
                             squeeze=False)
    for a in axes.ravel():
        a.axis("off")
    for a, i in zip(axes.ravel(), pick):
        a.imshow(patches[i], cmap=cmap)
        if labels is not None:
            v = np.asarray(labels)[i]
            a.set_title(f"{v:.2g}" if np.issubdtype(np.asarray(v).dtype, np.floating)
                        else str(v), fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_latent_map(image, coords, values, ax=None, overlay=None, overlay_label: str = "Si",
                    cmap: str = "RdBu_r", label: str = "latent", marker_size: float = 8.0,
                    vmin=None, vmax=None, pixel_size: float | None = None,
                    pixel_unit: str = "\u00c5"):
    """Per-object values drawn as coloured points over an image.

    Args:
        image: ``(H, W)`` background frame.
        coords: ``(N, 2+)`` ``[row, col, ...]`` of the objects.
        values: ``(N,)`` value of each object (a latent, an angle, a class).
        overlay: optional ``(K, 2+)`` positions drawn as open circles (e.g. Si atoms).
        label: colour-bar label (say the units, e.g. "angle (rad)").
    """
    import matplotlib.pyplot as plt

    pts = np.asarray(coords, dtype=float)
    vals = np.asarray(values, dtype=float).ravel()
    if len(pts) != len(vals):
        raise ValueError(f"got {len(vals)} values for {len(pts)} positions")
    fig, (a,) = _axes(ax, size=5.0)
    a.imshow(np.asarray(image), cmap="gray", alpha=0.6)
    if len(pts):
        sc = a.scatter(pts[:, 1], pts[:, 0], c=vals, s=marker_size, cmap=cmap, vmin=vmin,
                       vmax=vmax, linewidths=0)
        plt.colorbar(sc, ax=a, label=label, fraction=0.046)
    if overlay is not None and len(overlay):
        ov = np.asarray(overlay, dtype=float)
        a.scatter(ov[:, 1], ov[:, 0], s=marker_size * 6, facecolors="none", edgecolors="k",
                  linewidths=1.0, label=overlay_label)
        a.legend(loc="upper right", fontsize=8)
    _pixel_axes(a, None, pixel_size, pixel_unit)
    _tidy(fig, ax)
    return fig


def plot_histograms(values, bins=50, labels=None, xlabel: str = "value", ax=None,
                    density: bool = True, title: str | None = None):
    """Overlaid histograms.

    Args:
        values: one array, a list of arrays, or a dict ``{label: array}``.
        bins: shared bins (number or edges, computed over all sets).
        labels: names of the sets when ``values`` is a list.
    """
    if isinstance(values, dict):
        labels, sets = list(values), [np.ravel(v) for v in values.values()]
    elif isinstance(values, (list, tuple)) and len(values) and np.ndim(values[0]) >= 1:
        sets = [np.ravel(v) for v in values]
    else:
        sets = [np.ravel(values)]
    labels = labels or [None] * len(sets)
    allv = np.concatenate([s[np.isfinite(s)] for s in sets]) if sets else np.zeros(0)
    edges = np.histogram_bin_edges(allv, bins=bins) if allv.size else bins
    fig, (a,) = _axes(ax, size=4.0)
    for s, name in zip(sets, labels):
        a.hist(s[np.isfinite(s)], bins=edges, density=density, histtype="stepfilled",
               alpha=0.45, label=name)
    a.set_xlabel(xlabel)
    a.set_ylabel("density" if density else "count")
    if any(lab is not None for lab in labels):
        a.legend(fontsize=8)
    if title:
        a.set_title(title)
    return fig
