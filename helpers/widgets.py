"""Interactive explorers (ipywidgets). They build and return widgets; nothing is displayed
or computed at import time, and building one works headless (papermill, CI): only the
browser shows them.
"""

from __future__ import annotations

import base64
import functools
import io

import numpy as np

__all__ = ["decode_point", "latent_explorer", "latent_map_explorer", "LatentMapExplorer"]


def decode_point(model, z, angle_deg: float = 0.0, offset=(0.0, 0.0), class_index=None):
    """Decode one latent point ``z`` ``(latent_dim,)`` at ``angle_deg`` degrees
    (anticlockwise as displayed) and ``offset`` pixels (row, col); returns ``(H, W)``.
    Pose arguments the model does not have are ignored."""
    cfg = model.config
    kwargs = {}
    if getattr(model.module, "rotation", False):
        kwargs["angle"] = np.radians(float(angle_deg))
    if cfg.get("translation"):
        kwargs["offset"] = np.asarray(offset, dtype=np.float32)
    if cfg.get("n_classes"):
        kwargs["classes"] = np.array([0 if class_index is None else int(class_index)])
    z = np.asarray(z, dtype=np.float32).reshape(1, -1)
    return model.decode(z, **kwargs)[0]


def latent_explorer(model, z_range: float = 3.0, figsize=(3.2, 3.2), cmap: str = "viridis"):
    """Sliders for each content latent, the angle (degrees), the offsets and the class (for
    the models that have them); the decoded image updates as they move.

    Returns the ``ipywidgets.VBox`` (display it as a notebook cell's last expression). A page
    without a live kernel (a saved notebook on GitHub or nbviewer) shows a JPEG of the image
    decoded at the current slider values instead of the widget's text.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt

    cfg = model.config
    d = cfg["latent_dim"]
    z_sliders = [w.FloatSlider(value=0.0, min=-z_range, max=z_range, step=0.05,
                               description=f"z{i + 1}", continuous_update=True)
                 for i in range(d)]
    controls = list(z_sliders)
    angle = offr = offc = cls = None
    if getattr(model.module, "rotation", False):
        angle = w.FloatSlider(value=0.0, min=-180, max=180, step=1, description="angle (deg)")
        controls.append(angle)
    if cfg.get("translation"):
        h, wd = model.image_shape
        offr = w.FloatSlider(value=0.0, min=-h / 4, max=h / 4, step=0.25, description="d_row")
        offc = w.FloatSlider(value=0.0, min=-wd / 4, max=wd / 4, step=0.25, description="d_col")
        controls += [offr, offc]
    if cfg.get("n_classes"):
        cls = w.Dropdown(options=list(range(cfg["n_classes"])), value=0, description="class")
        controls.append(cls)
    out = w.Output()
    shown = {}

    def redraw(*_):
        img = decode_point(
            model,
            [s.value for s in z_sliders],
            angle.value if angle is not None else 0.0,
            (offr.value if offr is not None else 0.0, offc.value if offc is not None else 0.0),
            cls.value if cls is not None else None,
        )
        shown["image"] = img
        shown["title"] = ", ".join(f"{c.description} {c.value:.3g}" for c in controls)
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=figsize)
            ax.imshow(img, cmap=cmap)
            ax.set_axis_off()
            plt.show()
            plt.close(fig)

    for c in controls:
        c.observe(redraw, names="value")
    redraw()
    box = _explorer_box()([w.HBox([w.VBox(controls), out])])
    box.static_picture = lambda: _picture_jpeg(shown["image"], shown["title"], figsize, cmap)
    return box


@functools.cache
def _explorer_box():
    """A ``VBox`` class whose display bundle also holds a static JPEG (``static_picture()``),
    the picture a page without a kernel shows (built on first use: ipywidgets is imported
    lazily)."""
    import ipywidgets as w

    class ExplorerBox(w.VBox):
        static_picture = None

        def _repr_mimebundle_(self, **kwargs):
            bundle = super()._repr_mimebundle_(**kwargs)
            if self.static_picture is not None:
                bundle["image/jpeg"] = base64.b64encode(self.static_picture()).decode("ascii")
                bundle["text/plain"] = ("Latent explorer (the picture: the image decoded at the "
                                        "sliders' values); run the notebook in Jupyter to move "
                                        "them.")
            return bundle

    return ExplorerBox


def _picture_jpeg(image: np.ndarray, title: str, figsize, cmap: str) -> bytes:
    """``image`` ``(H, W)`` drawn with a colour bar and ``title`` (a standalone Figure: no
    pyplot state touched), as JPEG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(figsize[0] + 1.0, figsize[1] + 0.4), dpi=80, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    im = ax.imshow(image, cmap=cmap)
    fig.colorbar(im, ax=ax, label="decoded intensity (data units)")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9, wrap=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return _as_jpeg(buf.getvalue())


def _as_points(z, dims) -> tuple[np.ndarray, tuple[int, int]]:
    """The two displayed columns of ``z`` ``(N, D)`` as float ``(N, 2)``, checked."""
    z = np.asarray(z)
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"z must be (N, D) latent points with D >= 2, got shape {z.shape}; "
                         "stack 1-D values with np.column_stack([a, b])")
    if len(z) == 0:
        raise ValueError("z is empty: the explorer needs at least one encoded patch")
    try:
        d0, d1 = (int(d) for d in dims)
    except (TypeError, ValueError):
        raise ValueError(f"dims must be two column indices of z, got {dims!r}") from None
    if d0 == d1 or not (0 <= d0 < z.shape[1] and 0 <= d1 < z.shape[1]):
        raise ValueError(f"dims must be two different columns of z (0..{z.shape[1] - 1}), "
                         f"got {dims!r}")
    pts = z[:, [d0, d1]].astype(np.float64)
    if not np.isfinite(pts).all():
        raise ValueError("z holds NaN or inf in the displayed columns; drop those patches "
                         "(and their rows of patches, positions and frame_index) first")
    return pts, (d0, d1)


class LatentMapExplorer:
    """Pick a point of a latent scatter; see the nearest patches and where they lie on their
    frame. Built by :func:`latent_map_explorer`; display it as a cell's last expression.

    The point is chosen with the two sliders (the two displayed latent columns, over the
    range the data occupy) or by typing a patch number, which moves the sliders onto that
    patch's latent point. The ``k`` patches nearest to the point are found on the plot's
    scale: each column is divided by its data range, so "nearest" is what looks nearest.

    State, updated on every change (and readable headless):
        point: ``(x, y)``, the selected latent point in the units of the two columns.
        neighbours: ``(k,)`` int, indices of the nearest patches, nearest first.
        frame_shown: the frame of the nearest patch, the one drawn.
        positions_shown: ``(m, 2)`` float ``(row, col)`` pixels, the neighbours on that frame.
        patches_shown: ``(k, h, w)``, the neighbours' patches.
        image: ``ipywidgets.Image``, the PNG of the three panels (scatter, patches, frame).
        widget: the ``ipywidgets.VBox`` that is displayed.
    """

    def __init__(self, z, patches, frames, positions, frame_index=None, *, dims=(0, 1),
                 n_neighbours: int = 8, labels=None, max_points: int = 4000,
                 cmap: str = "viridis", frame_cmap: str = "gray", figsize=(12.0, 3.8),
                 value_label: str | None = None, bad_colour: str = "white"):
        import ipywidgets as w

        self.points, self.dims = _as_points(z, dims)
        n = len(self.points)
        self.patches = np.asarray(patches)
        if self.patches.ndim != 3 or len(self.patches) != n:
            raise ValueError(f"patches must be (N, h, w) with N = {n} (one per row of z), got "
                             f"shape {self.patches.shape}")
        frames = np.asarray(frames)
        if frames.ndim == 2:
            frames = frames[None]
        if frames.ndim != 3:
            raise ValueError(f"frames must be an image (H, W) or a stack (T, H, W), got shape "
                             f"{frames.shape}")
        self.frames = frames
        self.positions = np.asarray(positions, dtype=np.float64)
        if self.positions.ndim != 2 or self.positions.shape != (n, 2):
            raise ValueError(f"positions must be (N, 2) (row, col) pixels with N = {n}, got "
                             f"shape {self.positions.shape}")
        if frame_index is None:
            if len(frames) > 1:
                raise ValueError(f"frame_index is needed with {len(frames)} frames: pass the "
                                 "frame of each patch (e.g. Patches.frame)")
            frame_index = np.zeros(n, dtype=int)
        self.frame_index = np.asarray(frame_index)
        if (self.frame_index.shape != (n,) or not np.issubdtype(self.frame_index.dtype, np.integer)
                or self.frame_index.min() < 0 or self.frame_index.max() >= len(frames)):
            raise ValueError(f"frame_index must be (N,) integers in [0, {len(frames) - 1}] with "
                             f"N = {n}, got shape {self.frame_index.shape}, dtype "
                             f"{self.frame_index.dtype}")
        if not isinstance(n_neighbours, (int, np.integer)) or n_neighbours < 1:
            raise ValueError(f"n_neighbours must be a positive integer, got {n_neighbours!r}")
        self.labels = tuple(labels) if labels is not None else (
            f"$z_{{{self.dims[0] + 1}}}$", f"$z_{{{self.dims[1] + 1}}}$")
        self.cmap, self.frame_cmap, self.figsize = cmap, frame_cmap, figsize
        self.value_label, self.bad_colour = value_label, bad_colour
        lo, hi = self.points.min(0), self.points.max(0)
        self._scale = np.where(hi > lo, hi - lo, 1.0)  # the plot's scale per column
        # the scatter shows an evenly strided subset when there are many points (no RNG)
        self._shown = np.arange(0, n, max(1, int(np.ceil(n / max(1, int(max_points))))))
        self._quiet = False

        # start on a real patch: the one nearest the per-axis median (the median itself can
        # fall in an empty gap between clusters, where the scatter shows nothing)
        start_patch = int(self.nearest(*np.median(self.points, axis=0), 1)[0])
        start = self.points[start_patch]
        self.x = w.FloatSlider(value=start[0], min=lo[0], max=max(hi[0], lo[0] + 1e-9),
                               step=float(self._scale[0]) / 200, description="x",
                               continuous_update=False, readout_format=".3g")
        self.y = w.FloatSlider(value=start[1], min=lo[1], max=max(hi[1], lo[1] + 1e-9),
                               step=float(self._scale[1]) / 200, description="y",
                               continuous_update=False, readout_format=".3g")
        self.k = w.IntSlider(value=min(int(n_neighbours), n), min=1, max=min(max(32, int(
            n_neighbours)), n), description="patches", continuous_update=False)
        self.patch = w.BoundedIntText(value=start_patch, min=0, max=n - 1,
                                      description="go to patch")
        self.image = w.Image(format="png")
        self.summary = w.HTML()
        for c in (self.x, self.y, self.k):
            c.observe(self._changed, names="value")
        self.patch.observe(self._go_to_patch, names="value")
        self.widget = w.VBox([w.HBox([self.x, self.y]), w.HBox([self.k, self.patch]),
                              self.image, self.summary])
        self.update()

    # -- selection ------------------------------------------------------------------------
    def select(self, x: float, y: float) -> None:
        """Move the selection to the latent point ``(x, y)`` (one redraw)."""
        self._quiet = True
        try:
            self.x.value, self.y.value = float(x), float(y)
        finally:
            self._quiet = False
        self.update()

    def select_patch(self, index: int) -> None:
        """Move the selection onto patch ``index``'s latent point."""
        index = int(index)
        if not 0 <= index < len(self.points):
            raise ValueError(f"patch index {index} is out of range: there are "
                             f"{len(self.points)} patches (0..{len(self.points) - 1})")
        self._quiet = True
        try:
            self.patch.value = index
        finally:
            self._quiet = False
        self.select(*self.points[index])

    def _go_to_patch(self, change) -> None:
        if not self._quiet:
            self.select(*self.points[int(change["new"])])

    def _changed(self, _change) -> None:
        if not self._quiet:
            self.update()

    def nearest(self, x: float, y: float, k: int) -> np.ndarray:
        """Indices of the ``k`` patches nearest to ``(x, y)`` on the plot's scale, nearest
        first (ties by index)."""
        d = (((self.points - [x, y]) / self._scale) ** 2).sum(1)
        k = min(int(k), len(d))
        part = np.argpartition(d, k - 1)[:k]
        return part[np.lexsort((part, d[part]))]

    # -- drawing --------------------------------------------------------------------------
    TILE_PAD = 2  # px of blank between the patch tiles

    def tile_mosaic(self) -> np.ndarray:
        """The neighbours' patches tiled nearest first, row by row, on a near-square grid:
        float32 ``(rows * (h + pad) - pad, cols * (w + pad) - pad)``. The gaps between tiles
        and the unused tiles of the last row are NaN, drawn in the colormap's bad colour
        (:meth:`patch_colormap`), so they can't be mistaken for data."""
        from .plot.tiles import tile_mosaic

        nb = self.neighbours
        ncols = int(np.ceil(np.sqrt(len(nb))))
        nrows = int(np.ceil(len(nb) / ncols))
        tiles = np.full((nrows * ncols,) + self.patches.shape[1:], np.nan, np.float32)
        tiles[:len(nb)] = self.patches[nb]
        grid = tiles.reshape(nrows, ncols, *self.patches.shape[1:])
        return tile_mosaic(grid, pad=self.TILE_PAD, fill=np.nan)

    def patch_colormap(self):
        """The patches' colormap ``cmap`` with ``bad_colour`` (default white) as its bad colour
        (the NaN gaps)."""
        import matplotlib

        return matplotlib.colormaps[self.cmap].with_extremes(bad=self.bad_colour)  # a copy

    def update(self) -> None:
        """Recompute the neighbours of the current point and redraw the panels."""
        self.point = (float(self.x.value), float(self.y.value))
        self.neighbours = self.nearest(*self.point, self.k.value)
        self.frame_shown = int(self.frame_index[self.neighbours[0]])
        here = self.neighbours[self.frame_index[self.neighbours] == self.frame_shown]
        self.positions_shown = self.positions[here]
        self.patches_shown = self.patches[self.neighbours]
        self.image.value = self._render()
        listed = ", ".join(f"{i} (frame {self.frame_index[i]})" for i in self.neighbours[:8])
        more = " ..." if len(self.neighbours) > 8 else ""
        self.summary.value = (f"point ({self.point[0]:.3g}, {self.point[1]:.3g}); nearest "
                              f"patches: {listed}{more}")

    def panels_figure(self):
        """The three panels (scatter, patches, frame) of the current selection as a standalone
        matplotlib ``Figure`` (no pyplot state touched). With ``value_label``, the patches and
        the frame each get a colour bar of their values, labelled with it."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=self.figsize, dpi=80, layout="constrained")
        FigureCanvasAgg(fig)
        ax_z, ax_p, ax_f = fig.subplots(1, 3, width_ratios=[1.0, 1.0, 1.1])
        s = self._shown
        ax_z.scatter(self.points[s, 0], self.points[s, 1], s=3, c="0.7", rasterized=True)
        nb = self.neighbours
        ax_z.scatter(self.points[nb, 0], self.points[nb, 1], s=14, c="C3", label="nearest")
        ax_z.plot(*self.point, "k+", ms=14, mew=2)
        ax_z.set_xlabel(self.labels[0])
        ax_z.set_ylabel(self.labels[1])
        ax_z.set_title("latent plane: + selected point", fontsize=9)
        im_p = ax_p.imshow(self.tile_mosaic(), cmap=self.patch_colormap())
        ax_p.set_axis_off()
        ax_p.set_title(f"{len(nb)} nearest patches (nearest top left)", fontsize=9)
        im_f = ax_f.imshow(self.frames[self.frame_shown], cmap=self.frame_cmap)
        if self.value_label is not None:
            fig.colorbar(im_p, ax=ax_p, label=self.value_label)
            fig.colorbar(im_f, ax=ax_f, label=self.value_label)
        pos = self.positions_shown  # the neighbours on the frame shown
        ax_f.scatter(pos[:, 1], pos[:, 0], s=60, facecolors="none", edgecolors="C3", lw=1.5)
        first = self.positions[nb[0]]
        ax_f.plot(first[1], first[0], "x", color="C1", ms=9, mew=2)
        ax_f.set_title(f"frame {self.frame_shown}: {len(pos)} of {len(nb)} here "
                       "(x = nearest)", fontsize=9)
        ax_f.set_xlabel("col (px)")
        ax_f.set_ylabel("row (px)")
        return fig

    def _render(self) -> bytes:
        """The three panels as PNG bytes."""
        buf = io.BytesIO()
        self.panels_figure().savefig(buf, format="png")
        return buf.getvalue()

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        # what a page without the live kernel (a saved notebook, GitHub) shows instead: the
        # panels as they were drawn (JPEG: a tenth of the PNG's size on noisy frames), and a
        # line saying the controls need Jupyter
        bundle["image/jpeg"] = base64.b64encode(_as_jpeg(self.image.value)).decode("ascii")
        bundle["text/plain"] = (f"Latent-map explorer of {len(self.points)} patches: run the "
                                "notebook in Jupyter to use it.")
        return bundle


def _as_jpeg(png: bytes) -> bytes:
    """The PNG image ``png`` as JPEG at quality 85 (the widgets' pictures are shown at full
    size, so a little finer than the runner's figures); the conversion is
    :func:`helpers.run.compact.jpeg_from_png`."""
    from .run.compact import jpeg_from_png

    return jpeg_from_png(png, quality=85)


def latent_map_explorer(z, patches, frames, positions, frame_index=None, **kwargs):
    """A latent-map explorer: choose a point of the latent scatter of ``z`` and see the
    nearest patches and where they lie on their frame.

    Args:
        z: ``(N, D)`` latent points (or any per-patch values), one row per patch; the
            columns ``dims`` (default the first two) are shown.
        patches: ``(N, h, w)``, the patch of each row.
        frames: ``(H, W)`` image or ``(T, H, W)`` movie the patches were cut from.
        positions: ``(N, 2)`` ``(row, col)`` pixel centre of each patch in its frame.
        frame_index: ``(N,)`` int frame of each patch (optional for a single image).
        **kwargs: ``dims``, ``n_neighbours`` (8), ``labels`` (axis names), ``max_points``
            (scatter points drawn, 4000), ``cmap`` (patches), ``frame_cmap``, ``figsize``,
            ``value_label`` (label of a colour bar on the patches and on the frame; default
            none, no colour bars; widen ``figsize`` to about 13.5 for them), ``bad_colour``
            (of the gaps between patch tiles, default white; e.g. ``"0.8"`` where white would
            read as a value of a diverging map).

    Returns:
        A :class:`LatentMapExplorer`; display it as a cell's last expression. It builds
        headless (papermill, CI); the panels need a live kernel to follow the sliders.
    """
    return LatentMapExplorer(z, patches, frames, positions, frame_index, **kwargs)
