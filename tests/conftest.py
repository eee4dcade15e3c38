"""Fixtures shared by the test files."""

from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")  # tests draw figures without a display


@pytest.fixture
def suite_manifest_path(tmp_path, monkeypatch):
    """A private data cache and a replacement suite manifest at the returned path (not yet
    written), with the data-layer variables of the environment cleared."""
    from helpers.data import catalog

    monkeypatch.setenv("MICROSCOPY_DATA_DIR", str(tmp_path / "cache"))
    for var in ("MICROSCOPY_OFFLINE", "MICROSCOPY_MANIFEST", "MICROSCOPY_DOWNLOAD_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "manifest.json"
    monkeypatch.setattr(catalog, "MANIFEST_PATH", path)
    return path
