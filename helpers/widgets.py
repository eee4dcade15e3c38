"""Interactive explorers (ipywidgets). They build and return widgets; nothing is displayed
or computed at import time, and building one works headless (papermill, CI): only the
browser shows them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["decode_point", "latent_explorer"]


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

    Returns the ``ipywidgets.VBox`` (display it as a notebook cell's last expression).
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

    def redraw(*_):
        img = decode_point(
            model,
            [s.value for s in z_sliders],
            angle.value if angle is not None else 0.0,
            (offr.value if offr is not None else 0.0, offc.value if offc is not None else 0.0),
            cls.value if cls is not None else None,
        )
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
    return w.VBox([w.HBox([w.VBox(controls), out])])
