"""Executed notebooks small enough to share: large PNG figures re-encoded as JPEG.

Figures of noisy microscopy frames compress badly as PNG (a movie strip is 0.4-0.7 MB), so an
executed notebook with a dozen of them reaches several MB, too large for GitHub's viewer or a
course page. The runner passes every notebook it saves through :func:`compact_notebook`: a PNG
output larger than ``png_limit`` bytes is replaced by its JPEG when that is at least
``min_saving`` smaller. Line plots (small PNGs) stay PNG, so their text stays sharp.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass

__all__ = ["PNG_LIMIT_BYTES", "JPEG_QUALITY", "Compaction", "jpeg_from_png", "compact_outputs",
           "compact_notebook"]

PNG_LIMIT_BYTES = 60_000  # a PNG above this (decoded bytes) is a candidate for JPEG
JPEG_QUALITY = 75  # 1-95 (PIL's default); keeps a dozen image figures within 2 MB
MIN_SAVING = 0.3  # convert only when the JPEG is at least this fraction smaller


@dataclass
class Compaction:
    """What :func:`compact_outputs` did: ``converted`` figures, bytes before and after (the
    decoded images, not their base64 text)."""

    converted: int = 0
    bytes_before: int = 0
    bytes_after: int = 0


def jpeg_from_png(png: bytes, quality: int = JPEG_QUALITY) -> bytes:
    """The PNG image ``png`` re-encoded as JPEG (RGB on white, ``quality`` 1-95)."""
    from PIL import Image

    if not 1 <= int(quality) <= 95:
        raise ValueError(f"quality must be in 1..95 (PIL's JPEG scale), got {quality}")
    image = Image.open(io.BytesIO(bytes(png)))
    if image.mode in ("RGBA", "LA", "P"):  # transparent parts become white, as displayed
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=int(quality))
    return out.getvalue()


def compact_outputs(notebook: dict, png_limit: int = PNG_LIMIT_BYTES,
                    quality: int = JPEG_QUALITY, min_saving: float = MIN_SAVING) -> Compaction:
    """Replace, in place, each ``image/png`` output of ``notebook`` (a notebook as a dict, as
    ``json.load`` or ``nbformat.read`` give it) above ``png_limit`` decoded bytes by
    ``image/jpeg`` when the JPEG is at least ``min_saving`` (a fraction) smaller. The image's
    display metadata (width, height) moves with it. Returns a :class:`Compaction`."""
    if png_limit < 0 or not 0.0 <= min_saving < 1.0:
        raise ValueError(f"png_limit must be >= 0 and min_saving in [0, 1); got {png_limit}, "
                         f"{min_saving}")
    done = Compaction()
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []) or []:
            data = output.get("data") or {}
            encoded = data.get("image/png")
            if encoded is None or "image/jpeg" in data:
                continue
            png = base64.b64decode("".join(encoded) if isinstance(encoded, list) else encoded)
            if len(png) <= png_limit:
                continue
            jpeg = jpeg_from_png(png, quality)
            if len(jpeg) > (1.0 - min_saving) * len(png):
                continue
            del data["image/png"]
            data["image/jpeg"] = base64.b64encode(jpeg).decode("ascii")
            metadata = output.get("metadata") or {}
            if "image/png" in metadata:
                metadata["image/jpeg"] = metadata.pop("image/png")
            done.converted += 1
            done.bytes_before += len(png)
            done.bytes_after += len(jpeg)
    return done


def compact_notebook(path: str | os.PathLike, **kwargs) -> Compaction:
    """:func:`compact_outputs` applied to the notebook file at ``path``, rewritten in one
    step (a temporary file beside it, then a rename) only when a figure changed."""
    import json

    from .._io import atomic_path

    with open(path, encoding="utf-8") as fh:
        notebook = json.load(fh)
    done = compact_outputs(notebook, **kwargs)
    if done.converted:
        with atomic_path(path, suffix=".ipynb") as tmp:
            text = json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False)
            tmp.write_text(text + "\n", encoding="utf-8")
    return done
