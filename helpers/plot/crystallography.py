"""Figures of local crystallography: per-site maps over images (continuous values or classes),
a learned distortion mode drawn as arrows, recovered amplitudes against the truth, and the
amplitude regression on the local and global composition, and column intensities against
the bands a Z-contrast model predicts.

Lengths on image axes are Angstrom (``pixel_size`` Angstrom per pixel); displacements and
amplitudes are picometres.
"""

from __future__ import annotations

import numpy as np

from ._common import CLASS_COLOURS, figure_and_axis

__all__ = [
    "plot_site_map",
    "plot_distortion_mode",
    "plot_amplitude_recovery",
    "plot_amplitude_regression",
    "plot_zcontrast_test",
]


def _extent(shape, pixel_size: float):
    h, w = shape
    return (-0.5 * pixel_size, (w - 0.5) * pixel_size, (h - 0.5) * pixel_size,
            -0.5 * pixel_size)


def plot_site_map(image, positions, values, pixel_size: float, ax=None, classes=None,
                  label: str = "value", cmap: str = "viridis", vmin=None, vmax=None,
                  marker_size: float = 14.0, title: str | None = None):
    """Per-site values as coloured points over an image, axes in Angstrom.

    Args:
        image: ``(H, W)`` frame (drawn in grey).
        positions: ``(N, 2)`` site positions, pixels (row, col).
        values: ``(N,)`` a continuous value, or integer class labels with ``classes``.
        pixel_size: Angstrom per pixel (> 0).
        classes: names of the classes ``0..K-1``: draws a discrete colour bar.
        label: colour-bar label (with units).
        marker_size: marker area, points^2.

    Continuous values are drawn with a thin white outline, so that the dark end of a
    colour map stays visible over the dark gaps of a HAADF frame.

    Returns:
        The ``Figure``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap

    img = np.asarray(image, dtype=float)
    pts = np.asarray(positions, dtype=float)
    vals = np.asarray(values, dtype=float).ravel()
    if img.ndim != 2:
        raise ValueError(f"image must be (H, W), got {img.shape}")
    if pts.ndim != 2 or pts.shape[1] < 2 or len(pts) != len(vals):
        raise ValueError(f"positions must be (N, 2) with one value each; got {pts.shape} and "
                         f"{vals.shape}")
    if not pixel_size > 0:
        raise ValueError(f"pixel_size must be > 0 Angstrom per pixel, got {pixel_size!r}")
    fig, a = figure_and_axis(ax, (5.5, 5.0))
    a.imshow(img, cmap="gray", extent=_extent(img.shape, pixel_size))
    xy = pts[:, :2] * pixel_size
    if classes is not None:
        k = len(classes)
        cm = ListedColormap(CLASS_COLOURS[:k])
        norm = BoundaryNorm(np.arange(k + 1) - 0.5, k)
        sc = a.scatter(xy[:, 1], xy[:, 0], c=vals, s=marker_size, cmap=cm, norm=norm,
                       linewidths=0)
        bar = plt.colorbar(sc, ax=a, ticks=np.arange(k), fraction=0.046)
        bar.ax.set_yticklabels(list(classes))
        bar.set_label(label)
    else:
        sc = a.scatter(xy[:, 1], xy[:, 0], c=vals, s=marker_size, cmap=cmap, vmin=vmin,
                       vmax=vmax, edgecolors="white", linewidths=0.3)
        plt.colorbar(sc, ax=a, label=label, fraction=0.046)
    a.set_xlabel("x (\u00c5)")
    a.set_ylabel("y (\u00c5)")
    if title:
        a.set_title(title)
    return fig


def plot_distortion_mode(mode, offsets, basis, ax=None, scale: float | None = None,
                         title: str | None = None):
    """A site-and-neighbours displacement pattern (e.g. a principal component) as arrows.

    Args:
        mode: ``(7, 2)`` displacement of the site and its six neighbours (row, col), any
            units (normalised pattern).
        offsets: ``(6, 2)`` lattice-index offsets of the neighbours.
        basis: ``(2, 2)`` lattice vectors (rows), Angstrom.
        scale: arrow length of a unit entry, Angstrom (default 0.35 lattice constants).

    Returns:
        The ``Figure``.
    """
    m = np.asarray(mode, dtype=float)
    off = np.asarray(offsets, dtype=float)
    B = np.asarray(basis, dtype=float)
    if m.shape != (7, 2) or off.shape != (6, 2) or B.shape != (2, 2):
        raise ValueError(f"need mode (7, 2), offsets (6, 2), basis (2, 2); got {m.shape}, "
                         f"{off.shape}, {B.shape}")
    a_len = float(np.linalg.norm(B, axis=1).mean())
    scale = 0.35 * a_len / np.abs(m).max() if scale is None else float(scale)
    sites = np.vstack([np.zeros(2), off @ B])
    fig, a = figure_and_axis(ax, (4.5, 4.5))
    a.scatter(sites[:1, 1], sites[:1, 0], s=120, c="tab:red", zorder=2, label="the atom")
    a.scatter(sites[1:, 1], sites[1:, 0], s=120, c="tab:blue", zorder=2,
              label="its six metal neighbours")
    a.quiver(sites[:, 1], sites[:, 0], scale * m[:, 1], scale * m[:, 0], angles="xy",
             scale_units="xy", scale=1.0, width=0.012, zorder=3)
    a.set_xlim(-1.6 * a_len, 1.6 * a_len)
    a.set_ylim(1.6 * a_len, -1.6 * a_len)
    a.set_aspect("equal")
    a.set_xlabel("x (\u00c5)")
    a.set_ylabel("y (\u00c5)")
    a.set_title(title or "distortion mode (arrows: relative displacements, exaggerated)")
    a.legend(loc="lower right", fontsize=8, markerscale=0.5)
    return fig


def plot_amplitude_recovery(y_true, y_pred, baseline=None, ax=None,
                            label: str = "PCA mode", baseline_label: str = "|displacement|",
                            title: str | None = None):
    """Recovered per-atom amplitudes against the truth (pm), with the identity line.

    Args:
        y_true, y_pred: ``(N,)`` true and recovered amplitudes, pm.
        baseline: optional ``(N,)`` a baseline's amplitudes, pm.

    Returns:
        The ``Figure``.
    """
    t = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_pred, dtype=float).ravel()
    if t.shape != p.shape or t.size < 2:
        raise ValueError(f"y_true and y_pred must have the same length >= 2, got {t.shape}, "
                         f"{p.shape}")
    fig, a = figure_and_axis(ax, (5.0, 4.6))
    if baseline is not None:
        b = np.asarray(baseline, dtype=float).ravel()
        if b.shape != t.shape:
            raise ValueError(f"baseline must be (N,) like y_true, got {b.shape}")
        a.scatter(t, b, s=4, alpha=0.4, color="tab:gray",
                  label=f"{baseline_label} (r = {np.corrcoef(t, b)[0, 1]:.3f})")
    a.scatter(t, p, s=4, alpha=0.5, color="tab:blue",
              label=f"{label} (r = {np.corrcoef(t, p)[0, 1]:.3f})")
    lo, hi = min(t.min(), p.min()), max(t.max(), p.max())
    a.plot([lo, hi], [lo, hi], "k--", lw=1, label="identity")
    a.set_xlabel("true amplitude (pm)")
    a.set_ylabel("recovered amplitude (pm)")
    a.legend(fontsize=8, markerscale=3)
    if title:
        a.set_title(title)
    return fig


def plot_amplitude_regression(local_fraction, global_fraction, amplitude, coefficients,
                              cv_rmse=None, shell_labels=None, best: int | None = None):
    """Amplitude against the local fraction, coloured by the global fraction, with the fitted
    lines ``b0 + bL f + bG x`` for each image's ``x``; optionally the cross-validated error of
    each candidate shell radius beside it.

    Args:
        local_fraction: ``(N,)`` the chosen local fraction.
        global_fraction: ``(N,)`` each atom's image fraction.
        amplitude: ``(N,)`` pm.
        coefficients: ``(3,)`` ``(b0, bL, bG)`` pm.
        cv_rmse: optional ``(S,)`` pm, one per candidate; ``shell_labels`` their names.
        best: index of the chosen candidate (highlighted).

    Returns:
        The ``Figure``.
    """
    import matplotlib.pyplot as plt

    f = np.asarray(local_fraction, dtype=float).ravel()
    x = np.asarray(global_fraction, dtype=float).ravel()
    y = np.asarray(amplitude, dtype=float).ravel()
    c = np.asarray(coefficients, dtype=float).ravel()
    if not (f.shape == x.shape == y.shape) or c.shape != (3,):
        raise ValueError(f"need (N,) local_fraction, global_fraction, amplitude and (3,) "
                         f"coefficients; got {f.shape}, {x.shape}, {y.shape}, {c.shape}")
    n_panels = 1 if cv_rmse is None else 2
    fig, axes = plt.subplots(1, n_panels, figsize=(5.6 * n_panels, 4.6), squeeze=False,
                             layout="constrained")
    a = axes[0, 0]
    sc = a.scatter(f, y, c=x, s=5, cmap="plasma", vmin=0, vmax=1, alpha=0.6)
    plt.colorbar(sc, ax=a, label="global Re fraction x")
    grid = np.linspace(0, 1, 2)
    for xv in np.unique(np.round(x, 3)):
        a.plot(grid, c[0] + c[1] * grid + c[2] * xv, color=plt.cm.plasma(xv), lw=1.5)
    a.set_xlabel("local Re fraction f")
    a.set_ylabel("distortion amplitude (pm)")
    a.set_title(f"fit: {c[0]:.1f} + {c[1]:.1f} f + {c[2]:.1f} x (pm)")
    if cv_rmse is not None:
        cv = np.asarray(cv_rmse, dtype=float).ravel()
        names = list(shell_labels) if shell_labels is not None else [str(k + 1) for k in
                                                                     range(len(cv))]
        if len(names) != len(cv):
            raise ValueError(f"{len(names)} shell labels for {len(cv)} errors")
        b = axes[0, 1]
        pos = np.arange(len(cv))
        b.plot(pos, cv, "o-", color="tab:gray", ms=8)
        if best is not None:
            b.plot(pos[int(best)], cv[int(best)], "o", color="tab:blue", ms=11,
                   label="chosen (smallest error)")
            b.legend(fontsize=8)
        b.set_xticks(pos, names)
        b.set_xlim(-0.5, len(cv) - 0.5)
        b.set_xlabel("local fraction over")
        b.set_ylabel("cross-validated RMSE (pm)")
        b.set_title("which radius carries the chemistry")
    return fig


def plot_zcontrast_test(reference, candidates, bands: dict, measured: dict | None = None,
                        ax=None, reference_label: str = "sites, not flagged",
                        candidate_label: str = "candidates (flagged)",
                        xlabel: str = "column intensity / reference median",
                        title: str = "Z-contrast test of the candidates"):
    """Histograms (log counts) of the column-intensity ratios of reference sites and of
    flagged candidates, over the ratio bands a Z-contrast model predicts.

    Ratios beyond the axis (0 to the larger of 4 and the highest band's top + 0.5) are drawn
    in its last bin.

    Args:
        reference, candidates: ``(N,)`` and ``(M,)`` intensity ratios (dimensionless, e.g.
            a column over the median reference column).
        bands: ``{label: (low, high)}`` predicted ratio ranges, shaded in the colours C1, C4,
            C0, C2, ... in order.
        measured: optional ``{label: (ratio, colour)}`` values drawn as dashed lines.

    Returns:
        The ``Figure``.
    """
    colours = ["C1", "C4", "C0", "C2", "C5", "C6", "C7", "C8", "C9"]
    if not bands or len(bands) > len(colours):
        raise ValueError(f"bands must hold 1 to {len(colours)} (low, high) ranges, got "
                         f"{len(bands or {})}")
    for label, (lo, hi) in bands.items():
        if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
            raise ValueError(f"band {label!r} must be a finite (low, high) with low <= high, "
                             f"got ({lo}, {hi})")
    top = max(4.0, max(hi for _, hi in bands.values()) + 0.5)
    bins = np.linspace(0, top, 90)
    fig, ax = figure_and_axis(ax, (7, 3.6))
    for values, colour, label in ((reference, "0.6", reference_label),
                                  (candidates, "C3", candidate_label)):
        v = np.asarray(values, dtype=float).ravel()
        ax.hist(np.clip(v[np.isfinite(v)], bins[0], bins[-1]), bins=bins, color=colour,
                label=label)
    for (label, (lo, hi)), colour in zip(bands.items(), colours):
        ax.axvspan(lo, hi, color=colour, alpha=0.2, label=label)
    for label, (value, colour) in (measured or {}).items():
        ax.axvline(value, color=colour, ls="--", label=label)
    ax.set_yscale("log")
    ax.set_xlim(bins[0], bins[-1])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("sites")
    ax.set_title(title)
    ax.legend(fontsize=7)
    return fig
