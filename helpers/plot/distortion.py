"""Figures of the scan-distortion notebook (09): a frame and the distortion components, the PCA
of atomic trajectories, the GP field against the scan row, averaged frames, errors per method
and the within-frame line-jitter profile. Positions in pm, scan lines and columns in pixels.
"""

from __future__ import annotations

import numpy as np

__all__ = [  # in the notebook's order
    "plot_scan_components",
    "plot_trajectory_pca",
    "plot_method_errors",
    "plot_field_along_scan",
    "plot_corrected_averages",
    "plot_row_jitter",
]


def plot_scan_components(frame, pixel_size: float, drift, jitter, flyback, frame_index: int = 0):
    """A frame (counts) and its distortion components along the scan.

    Args:
        frame: ``(H, W)`` counts; pixel_size: pm per pixel.
        drift: ``(T, H, 2)`` pm, drift at every scan line of every frame.
        jitter: ``(T, H, 2)`` pm, line jitter; flyback: ``(T, W, 2)`` pm.
        frame_index: the frame whose jitter and flyback are drawn.
    """
    import matplotlib.pyplot as plt

    drift, jitter, flyback = (np.asarray(a, float) for a in (drift, jitter, flyback))
    t_n, h = drift.shape[:2]
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8), constrained_layout=True)
    ext = (0, frame.shape[1] * pixel_size / 1000, frame.shape[0] * pixel_size / 1000, 0)
    im = axes[0].imshow(frame, cmap="gray", extent=ext)
    axes[0].set(title=f"frame {frame_index}", xlabel="x, fast scan (nm)",
                ylabel="y, slow scan (nm)")
    fig.colorbar(im, ax=axes[0], label="counts")
    tau = (np.arange(t_n)[:, None] + np.arange(h)[None] / h).ravel()
    for a, name in ((0, "row"), (1, "col")):
        axes[1].plot(tau, drift[..., a].ravel(), label=f"along {name}")
        axes[2].plot(np.arange(h), jitter[frame_index, :, a], label=f"along {name}")
        axes[3].plot(np.arange(flyback.shape[1]), flyback[frame_index, :, a],
                     label=f"along {name}")
    axes[1].set(title="drift", xlabel="scan time (frames)", ylabel="displacement (pm)")
    axes[2].set(title=f"line jitter, frame {frame_index}", xlabel="scan line (px)",
                ylabel="displacement (pm)")
    axes[3].set(title=f"flyback, frame {frame_index}", xlabel="fast-scan column (px)",
                ylabel="displacement (pm)")
    for ax in axes[1:]:
        ax.legend(fontsize=8)
    return fig


def plot_trajectory_pca(pca, positions, n_show: int = 3):
    """Scree, component maps over the field of view and component time series.

    Args:
        pca: :class:`helpers.analysis.distortion.TrajectoryPCA`.
        positions: ``(N, 2)`` pm, where each atom sits (its time mean).
        n_show: components drawn.
    """
    import matplotlib.pyplot as plt

    pos = np.asarray(positions, float) / 1000
    k = min(n_show, len(pca.explained))
    fig, axes = plt.subplots(2, k + 1, figsize=(4.2 * (k + 1), 7.4), constrained_layout=True)
    axes[0, 0].semilogy(np.arange(1, len(pca.explained) + 1), pca.explained, "o-")
    axes[0, 0].set(title="scree", xlabel="component", ylabel="fraction of squared displacement")
    axes[1, 0].axis("off")
    t = np.arange(pca.series.shape[1])
    for i in range(k):
        ax = axes[0, i + 1]
        lim = np.abs(pca.scores[i]).max()
        sc = ax.scatter(pos[:, 1], pos[:, 0], c=pca.scores[i], cmap="RdBu_r", vmin=-lim,
                        vmax=lim, s=18)
        ax.set(title=f"PC {i + 1} map ({pca.explained[i]:.1%})", xlabel="x (nm)",
               ylabel="y (nm)", aspect="equal")
        ax.invert_yaxis()
        fig.colorbar(sc, ax=ax, label="score (pm)")
        ax = axes[1, i + 1]
        ax.plot(t, pca.series[i, :, 0], "o-", label="along row (y)")
        ax.plot(t, pca.series[i, :, 1], "s-", label="along col (x)")
        ax.set(title=f"PC {i + 1} time series", xlabel="frame", ylabel="loading (unit norm)")
        ax.legend(fontsize=8)
    return fig


def plot_field_along_scan(rows, mean, std, truth=None, measured=None, frame_index: int = 0,
                          axis_name: str = "col (fast scan)"):
    """GP posterior of one displacement component along the scan lines of one frame.

    Args:
        rows: ``(H,)`` scan lines (px); mean, std: ``(H,)`` pm; truth: ``(H,)`` pm or None.
        measured: ``(n, 2)`` ``[row, displacement]`` of the atoms in that frame, or None.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.6), constrained_layout=True)
    ax.fill_between(rows, mean - 1.96 * std, mean + 1.96 * std, alpha=0.3,
                    label="GP 95 % band")
    ax.plot(rows, mean, label="GP mean")
    if truth is not None:
        ax.plot(rows, truth, "k--", lw=1, label="true field (scoring only)")
    if measured is not None:
        ax.plot(*np.asarray(measured).T, ".", ms=4, color="tab:red",
                label="measured columns (any fast-scan position)")
    ax.set(title=f"frame {frame_index}: displacement along {axis_name}",
           xlabel="scan line (px)", ylabel="displacement from time mean (pm)")
    ax.legend(fontsize=8, ncol=4)
    return fig


def plot_corrected_averages(images: dict, pixel_size: float):
    """Averages of all frames, one panel per correction (``{name: (H, W) image}``)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=(4.6 * len(images), 4.2),
                             constrained_layout=True)
    axes = np.atleast_1d(axes)
    for ax, (name, img) in zip(axes, images.items()):
        h, w = img.shape
        im = ax.imshow(img, cmap="gray", extent=(0, w * pixel_size / 1000,
                                                 h * pixel_size / 1000, 0))
        ax.set(title=name, xlabel="x (nm)", ylabel="y (nm)")
        fig.colorbar(im, ax=ax, label="mean counts", shrink=0.85)
    return fig


def plot_method_errors(errors: dict, floor: float | None = None, ax=None):
    """Bar chart of the RMS position error per method, each bar labelled with its value.

    Args:
        errors: ``{method name: RMS error in pm}``, drawn in their order.
        floor: the localisation floor (pm) drawn as a dashed line, or None.
    """
    from matplotlib.ticker import LogLocator, ScalarFormatter

    from ._common import figure_and_axis

    fig, ax = figure_and_axis(ax, (7, 3.6))
    names = list(errors)
    values = [float(errors[n]) for n in names]
    bars = ax.bar(names, values, color="tab:blue")
    ax.bar_label(bars, labels=[f"{v:.1f} pm" for v in values], padding=2, fontsize=9)
    if floor is not None:
        ax.axhline(floor, color="k", ls="--", lw=1,
                   label=f"localisation floor ({floor:.1f} pm)")
        ax.legend(fontsize=8, loc="upper right")
    ax.set(ylabel="RMS position error (pm)", title="test columns (never fitted), all frames")
    ax.set_yscale("log")
    low = min(values + ([float(floor)] if floor is not None else []))
    ax.set_ylim(low / 1.5, max(values) * 2.0)
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter("")
    ax.tick_params(axis="x", labelrotation=15)
    return fig


def plot_row_jitter(image, positions, residuals, centres, profile, pixel_size: float,
                    scatter=None):
    """A single real frame with its lattice residuals, and the within-frame line-jitter
    profile (band means of the residuals along the fast-scan axis).

    Args:
        image: ``(H, W)``; positions: ``(N, 2)`` px; residuals: ``(N, 2)`` pm.
        centres: ``(B,)`` band centres (scan lines, px); profile: ``(B, 2)`` pm.
        scatter: ``(2,)`` pm (row, col) or None: the rms of a band mean expected from the
            columns' scatter alone (no jitter), drawn as dotted lines at +-that level.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), constrained_layout=True)
    h, w = image.shape
    axes[0].imshow(image, cmap="gray", extent=(0, w, h, 0))
    lim = np.nanpercentile(np.abs(residuals[:, 1]), 98)
    sc = axes[0].scatter(positions[:, 1], positions[:, 0], c=residuals[:, 1], cmap="RdBu_r",
                         vmin=-lim, vmax=lim, s=10)
    axes[0].set(title="lattice residual along the fast scan", xlabel="column (px)",
                ylabel="scan line (px)")
    fig.colorbar(sc, ax=axes[0], label="residual along the fast scan (pm)")
    for a, name in ((1, "along col (fast scan)"), (0, "along row (slow scan)")):
        line, = axes[1].plot(centres, profile[:, a], "o-", ms=3, label=name)
        if scatter is not None:
            for sign in (-1, 1):
                axes[1].axhline(sign * float(scatter[a]), color=line.get_color(), ls=":",
                                lw=1.2, label=f"±rms from scatter alone, {name.split()[1]}"
                                if sign > 0 else None)
    axes[1].set(title=f"band means of the lattice residual ({pixel_size:.1f} pm/px)",
                xlabel="scan line (px)", ylabel="band-mean residual (pm)")
    axes[1].legend(fontsize=8)
    return fig
