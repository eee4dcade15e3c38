"""Preview figures of the simulated data sets, with their ground truth drawn on top.

One function per generator of :mod:`helpers.simulate`; each takes the generator's dataclass
and returns a matplotlib ``Figure`` with labelled axes (units) and colour bars.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "plot_preview_graphene",
    "plot_preview_protein",
    "plot_preview_switching",
    "plot_preview_hysteresis",
    "plot_preview_temperature_series",
]


def _pick(n: int, frames) -> list[int]:
    if frames is None:
        frames = sorted({0, n // 2, n - 1})
    frames = [int(f) for f in np.atleast_1d(frames)]
    bad = [f for f in frames if not -n <= f < n]
    if bad:
        raise ValueError(f"frames {bad} out of range for a movie of {n} frames")
    return [f % n for f in frames]


def _image_panel(fig, ax, image, label: str, unit: str = "px", pixel_size=None, **imshow_kw):
    """Show ``image`` on ``ax`` with a colour bar labelled ``label`` and axes in ``unit``;
    with ``pixel_size`` (``unit`` per pixel) the axes span the field of view."""
    if pixel_size is not None:
        h, w = image.shape
        imshow_kw["extent"] = (0, w * pixel_size, h * pixel_size, 0)
    im = ax.imshow(image, **imshow_kw)
    fig.colorbar(im, ax=ax, shrink=0.8, label=label)
    ax.set_xlabel(f"x ({unit})")
    ax.set_ylabel(f"y ({unit})")
    return im


def _figure(n_panels: int, extra: int = 0, height: float = 3.6):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n_panels + extra, figsize=(3.8 * (n_panels + extra), height),
                             squeeze=False, constrained_layout=True)
    return fig, list(axes[0])


def plot_preview_graphene(movie, frames=None, show_atoms: bool = True):
    """Frames of a :class:`~helpers.simulate.GrapheneMovie` with the true atoms, and its trends.

    Each frame panel shows the HAADF counts (axes in angstrom); C atoms are dots coloured by
    their true local order, Si atoms red circles, amorphous atoms black rings. The last panel
    plots the per-frame disordered fraction, crystallinity and hole fraction.

    Args:
        movie: a ``GrapheneMovie``.
        frames: indices of the frames to show (default first, middle, last).
        show_atoms: draw the ground-truth atoms.

    Returns:
        ``matplotlib.figure.Figure``.
    """
    idx = _pick(len(movie.frames), frames)
    fig, axes = _figure(len(idx), extra=1)
    ps = movie.pixel_size
    for ax, t in zip(axes, idx):
        _image_panel(fig, ax, movie.frames[t], "HAADF counts", "Å", ps, cmap="gray")
        if show_atoms:
            atoms, sub = movie.atoms[t], movie.sublattice[t]
            y, x = atoms[:, 0] * ps, atoms[:, 1] * ps
            c = atoms[:, 2] == 0
            sc = ax.scatter(x[c], y[c], c=movie.local_order[t][c], s=3, cmap="viridis",
                            vmin=0, vmax=1, linewidths=0)
            ax.scatter(x[sub < 0], y[sub < 0], s=10, facecolors="none", edgecolors="k",
                       linewidths=0.4)
            ax.scatter(x[~c], y[~c], s=30, facecolors="none", edgecolors="r", linewidths=1.0,
                       label="Si")
            if t == idx[-1]:
                fig.colorbar(sc, ax=ax, shrink=0.8, label="true local order")
        ax.set_title(f"frame {t}")
    ax = axes[-1]
    t = np.arange(len(movie.frames))
    ax.plot(t, movie.disordered_fraction, "o-", ms=3, label="disordered fraction")
    ax.plot(t, movie.crystallinity, "s-", ms=3, label="mean local order")
    ax.plot(t, movie.hole_fraction, "^-", ms=3, label="hole area fraction")
    ax.set_xlabel("frame")
    ax.set_ylabel("fraction")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    ax.set_title("ground truth over the movie")
    return fig


def plot_preview_protein(movie, frames=None, show_particles: bool = True):
    """Frames of a :class:`~helpers.simulate.ProteinMovie` with true centres and orientations.

    Each frame panel shows the height (nm) with axes in nm; every particle's true centre and
    long axis is drawn as a cyan segment of the rod's length. The last panel plots the
    orientational order parameter against frame.

    Returns:
        ``matplotlib.figure.Figure``.
    """
    idx = _pick(len(movie.frames), frames)
    fig, axes = _figure(len(idx), extra=1)
    ps = movie.pixel_size
    h, w = movie.frames.shape[1:]
    half = 0.5 * movie.params.get("rod_length", 10.0)
    for ax, t in zip(axes, idx):
        _image_panel(fig, ax, movie.frames[t], "height (nm)", "nm", ps, cmap="afmhot")
        if show_particles:
            c = movie.centres[t] * ps
            th = movie.orientations[t]
            own = getattr(movie, "lengths", None)  # per-rod lengths of mixed assemblies
            r = 0.5 * own[t] if own else half
            dy, dx = -np.sin(th) * r, np.cos(th) * r  # on-screen angle -> (row, col)
            for (y, x), ey, ex in zip(c, dy, dx):
                ax.plot([x - ex, x + ex], [y - ey, y + ey], "c-", lw=0.8)
        ax.set_xlim(0, w * ps)
        ax.set_ylim(h * ps, 0)
        ax.set_title(f"frame {t}")
    ax = axes[-1]
    ax.plot(np.arange(len(movie.frames)), movie.order, "o-", ms=3)
    ax.set_xlabel("frame")
    ax.set_ylabel("nematic order S = |<exp(2iθ)>|")
    ax.set_ylim(0, 1.02)
    ax.set_title("true orientational order")
    return fig


def _wall_overlay(ax, mask, color=(0.0, 1.0, 1.0), alpha=0.6):
    rgba = np.zeros((*mask.shape, 4))
    rgba[..., :3] = color
    rgba[..., 3] = alpha * np.asarray(mask, dtype=float)
    ax.imshow(rgba, interpolation="nearest")


def plot_preview_switching(data, frames=None, show_walls: bool = True):
    """PFM frames of a :class:`~helpers.simulate.SwitchingSequence` with true domain walls.

    Top row: piezoresponse amplitude x cos(phase) (arbitrary units) with the true walls in
    cyan; bottom row: the true local switched fraction. The last panel plots the applied
    field and the switched fraction against frame.

    Returns:
        ``matplotlib.figure.Figure``.
    """
    import matplotlib.pyplot as plt

    idx = _pick(len(data.amplitude), frames)
    n = len(idx)
    fig, axes = plt.subplots(2, n + 1, figsize=(3.8 * (n + 1), 7.0), squeeze=False,
                             constrained_layout=True)
    signal = data.amplitude * np.cos(data.phase)
    lim = float(np.abs(signal).max())
    for k, t in enumerate(idx):
        ax = axes[0, k]
        _image_panel(fig, ax, signal[t], "PFM A·cos(φ) (a.u.)", cmap="RdBu_r", vmin=-lim,
                     vmax=lim)
        if show_walls:
            _wall_overlay(ax, data.walls[t])
        ax.set_title(f"frame {t}, E = {data.field[t]:.2f}")
        _image_panel(fig, axes[1, k], data.switched_fraction[t], "true local switched fraction",
                     cmap="viridis", vmin=0, vmax=1)
    ax = axes[0, -1]
    t = np.arange(len(data.amplitude))
    ax.plot(t, data.field, "o-", ms=3)
    ax.set_xlabel("frame")
    ax.set_ylabel("applied field (reduced units)")
    ax.set_title("bias")
    ax = axes[1, -1]
    ax.plot(t, data.switched_total, "o-", ms=3)
    ax.set_xlabel("frame")
    ax.set_ylabel("switched fraction")
    ax.set_ylim(0, 1.02)
    return fig


def plot_preview_hysteresis(data, sites=None, show_walls: bool = True):
    """The domain image of a :class:`~helpers.simulate.HysteresisMap` and loops at chosen sites.

    Left: the image (piezoresponse at the first voltage step) with the true walls; the
    chosen sites are marked. Right: their loops against voltage.

    Args:
        data: a ``HysteresisMap``.
        sites: ``(k, 2)`` ``(row, col)`` sites (default: four spread over the map).

    Returns:
        ``matplotlib.figure.Figure``.
    """
    fig, axes = _figure(2, extra=1)
    h, w = data.image.shape
    if sites is None:
        sites = [(h // 4, w // 4), (h // 4, 3 * w // 4), (3 * h // 4, w // 4),
                 (3 * h // 4, 3 * w // 4)]
    sites = np.asarray(sites, dtype=int).reshape(-1, 2)
    if ((sites < 0) | (sites >= np.array([h, w]))).any():
        raise ValueError(f"sites must lie inside the {h}x{w} map, got {sites.tolist()}")
    ax = axes[0]
    _image_panel(fig, ax, data.image, "piezoresponse (a.u.)", "site", cmap="RdBu_r")
    if show_walls:
        _wall_overlay(ax, data.walls)
    colors = [f"C{k}" for k in range(len(sites))]
    ax.scatter(sites[:, 1], sites[:, 0], c=colors, s=40, marker="x")
    ax.set_title("domain image and true walls")
    _image_panel(fig, axes[1], data.imprint, "true defect bias field (reduced units)", "site",
                 cmap="PuOr")
    axes[1].set_title("hidden defect field")
    ax = axes[2]
    for (r, c), col in zip(sites, colors):
        ax.plot(data.voltage, data.loops[r, c], "-", color=col, label=f"({r}, {c})")
    ax.set_xlabel("voltage (V)")
    ax.set_ylabel("piezoresponse (a.u.)")
    ax.legend(fontsize=8, title="site (row, col)")
    ax.set_title("loops")
    return fig


def plot_preview_temperature_series(data, temperatures=None, show_walls: bool = True):
    """Domain images of a :class:`~helpers.simulate.TemperatureSeries` and the order vs T.

    Args:
        data: a ``TemperatureSeries``.
        temperatures: indices of the temperatures to show (default: lowest, just below Tc,
            just above Tc).

    Returns:
        ``matplotlib.figure.Figure``.
    """
    temps = data.temperatures
    if temperatures is None:
        below = int(np.flatnonzero(temps < data.tc)[-1]) if (temps < data.tc).any() else 0
        temperatures = sorted({0, below, min(below + 1, len(temps) - 1)})
    idx = _pick(len(temps), temperatures)
    fig, axes = _figure(len(idx), extra=1)
    lim = float(np.abs(data.images).max())
    for ax, k in zip(axes, idx):
        _image_panel(fig, ax, data.images[k], "projected polarisation (a.u.)", cmap="RdBu_r",
                     vmin=-lim, vmax=lim)
        if show_walls:
            _wall_overlay(ax, data.walls[k])
        ax.set_title(f"T = {temps[k]:.0f} K")
    ax = axes[-1]
    ax.plot(temps, data.mean_abs_p, "o-", ms=4)
    ax.axvline(data.tc, color="r", ls="--", label=f"true Tc = {data.tc:.0f} K")
    ax.set_xlabel("temperature (K)")
    ax.set_ylabel("mean |P| (reduced units)")
    ax.legend(fontsize=8)
    ax.set_title("order parameter")
    return fig
