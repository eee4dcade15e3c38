"""Executed notebooks' large image figures become JPEG; line plots stay PNG."""

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from helpers.run.compact import compact_notebook, compact_outputs, jpeg_from_png


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def _noise_png(side=400, seed=0) -> bytes:
    """A noisy frame, the kind of figure PNG compresses badly."""
    rng = np.random.default_rng(seed)
    smooth = np.add.outer(np.linspace(0, 150, side), np.linspace(0, 60, side))
    pixels = np.clip(smooth[..., None] + rng.normal(0, 25, (side, side, 3)), 0, 255)
    return _png(pixels.astype(np.uint8))


def _line_png() -> bytes:
    """A white figure with one black line: small as PNG."""
    pixels = np.full((200, 300, 3), 255, np.uint8)
    pixels[100, 20:280] = 0
    return _png(pixels)


def _notebook(*pngs) -> dict:
    outputs = [{"output_type": "display_data", "metadata": {"image/png": {"width": 400}},
                "data": {"image/png": base64.b64encode(p).decode("ascii"),
                         "text/plain": "<Figure>"}} for p in pngs]
    return {"cells": [{"cell_type": "code", "source": "", "outputs": outputs}],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _decoded(data: dict, kind: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data[kind]))).convert("RGB"),
                      dtype=float)


def test_a_noisy_image_figure_becomes_a_smaller_jpeg_of_the_same_picture():
    png = _noise_png()
    nb = _notebook(png)
    done = compact_outputs(nb, png_limit=10_000)
    data = nb["cells"][0]["outputs"][0]["data"]
    assert done.converted == 1 and "image/png" not in data and "image/jpeg" in data
    assert done.bytes_after < 0.7 * done.bytes_before == 0.7 * len(png)
    original = np.asarray(Image.open(io.BytesIO(png)), dtype=float)
    shown = _decoded(data, "image/jpeg")
    assert shown.shape == original.shape
    # the picture survives: the smooth ramp under the noise is kept to a few grey levels
    assert abs(shown.mean() - original.mean()) < 2.0
    assert np.abs(shown - original).mean() < 20.0
    meta = nb["cells"][0]["outputs"][0]["metadata"]
    assert meta == {"image/jpeg": {"width": 400}}
    assert data["text/plain"] == "<Figure>"


def test_small_and_line_figures_stay_png():
    line = _line_png()
    nb = _notebook(line, _noise_png(side=40))
    done = compact_outputs(nb, png_limit=5_000)
    assert done.converted == 0
    assert all("image/png" in o["data"] for o in nb["cells"][0]["outputs"])
    # even when asked to look at every PNG, a line plot is not made larger
    done = compact_outputs(nb, png_limit=0)
    assert "image/png" in nb["cells"][0]["outputs"][0]["data"]
    assert done.converted == sum("image/jpeg" in o["data"] for o in nb["cells"][0]["outputs"])
    assert done.converted <= 1 and done.bytes_after <= done.bytes_before
    # an output that already carries a JPEG is left as it is
    both = _notebook(_noise_png())
    both["cells"][0]["outputs"][0]["data"]["image/jpeg"] = "kept"
    assert compact_outputs(both, png_limit=0).converted == 0
    assert both["cells"][0]["outputs"][0]["data"]["image/jpeg"] == "kept"


def test_transparent_parts_become_white_not_black():
    rgba = np.zeros((64, 64, 4), np.uint8)  # fully transparent
    jpeg = jpeg_from_png(_png(rgba))
    assert np.asarray(Image.open(io.BytesIO(jpeg))).min() > 240


def test_bad_settings_name_the_range():
    with pytest.raises(ValueError, match="quality must be in 1..95"):
        jpeg_from_png(_line_png(), quality=100)
    with pytest.raises(ValueError, match="min_saving"):
        compact_outputs(_notebook(), min_saving=1.5)


def test_compact_notebook_rewrites_the_file_only_when_a_figure_changed(tmp_path):
    big, small = tmp_path / "big.ipynb", tmp_path / "small.ipynb"
    big.write_text(json.dumps(_notebook(_noise_png())))
    small.write_text(json.dumps(_notebook(_line_png())))
    before_small = small.read_bytes()
    size_before = big.stat().st_size
    assert compact_notebook(big, png_limit=10_000).converted == 1
    assert compact_notebook(small, png_limit=10_000).converted == 0
    assert small.read_bytes() == before_small
    assert big.stat().st_size < 0.7 * size_before
    assert json.loads(big.read_text())["cells"][0]["outputs"][0]["data"]["image/jpeg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.ipynb", "small.ipynb"]
