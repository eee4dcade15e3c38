"""Downloads for real, from an HTTP server on 127.0.0.1 that each test starts (nothing mocked
in the transfer): URLs through pooch, verification, timeouts, partial files, the error text,
``auto``'s warning, and your own manifest (``manifest=`` and ``MICROSCOPY_MANIFEST``)."""

from __future__ import annotations

import functools
import http.server
import inspect
import json
import os
import socket
import threading
import time

import numpy as np
import pytest
from support import npy_bytes, sha

import helpers.data as data
import helpers.simulate as simulate
from helpers.data import catalog, download


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the test's folder; under ``/stall/`` it sends a header and 6 bytes, then waits."""

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        if self.path.startswith("/stall/"):
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b"\x93NUMPY")
            self.wfile.flush()
            self.server.release.wait(30)  # nothing more until the test is over
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path, monkeypatch):
    """(folder served, base URL) of a threaded HTTP server on a free port of 127.0.0.1."""
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    httpd.daemon_threads = True
    httpd.release = threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A private cache; returns a writer of a user manifest (path returned)."""
    monkeypatch.setenv("MICROSCOPY_DATA_DIR", str(tmp_path / "cache"))
    for var in ("MICROSCOPY_OFFLINE", "MICROSCOPY_MANIFEST", "MICROSCOPY_DOWNLOAD_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)

    def write(datasets: dict, name: str = "my_manifest.json"):
        path = tmp_path / name
        path.write_text(json.dumps({"version": 1, "datasets": datasets}))
        return path

    return write


def url_file(url, name="a.npy", sha256=None, fmt="npy", key="arr", **extra):
    return {"key": key, "name": name, "url": url, "sha256": sha256, "size": None,
            "format": fmt, "shape": None, **extra}


def dataset(files, simulate_spec=None):
    entry = {"description": "a data set of my own", "paper": "none", "files": files}
    if simulate_spec:
        entry["simulate"] = simulate_spec
    return entry


def cache_listing(name="mine"):
    folder = data.cache_dir() / name
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# -- real transfers ----------------------------------------------------------------------------
def test_url_download_is_fetched_verified_and_cached(server, env):
    root, base = server
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    payload = npy_bytes(arr)
    (root / "a.npy").write_bytes(payload)
    mine = env({"mine": dataset([url_file(f"{base}/a.npy", sha256=sha(payload),
                                          shape=[3, 4], dtype="float32")])})
    out = data.load("mine", source="original", manifest=mine)
    np.testing.assert_array_equal(out["arr"], arr)
    assert cache_listing() == ["a.npy"]  # no temporary or partial file left
    (root / "a.npy").unlink()  # a second load is a cache hit: the server no longer has it
    np.testing.assert_array_equal(data.load("mine", source="original", manifest=mine)["arr"], arr)


def test_url_in_the_suite_manifest_downloads(server, env, tmp_path, monkeypatch):
    root, base = server
    payload = npy_bytes(np.ones(3))
    (root / "a.npy").write_bytes(payload)
    suite = tmp_path / "suite_manifest.json"
    suite.write_text(json.dumps({"version": 1, "datasets": {
        "mine": dataset([url_file(f"{base}/a.npy", sha256=sha(payload))])}}))
    monkeypatch.setattr(catalog, "MANIFEST_PATH", suite)
    np.testing.assert_array_equal(data.load("mine", source="original")["arr"], np.ones(3))


def test_url_download_with_wrong_sha_is_not_kept(server, env):
    root, base = server
    payload = npy_bytes(np.zeros(3))
    (root / "a.npy").write_bytes(payload)
    mine = env({"mine": dataset([url_file(f"{base}/a.npy", sha256=sha(b"other"))])})
    with pytest.raises(data.ChecksumError, match=sha(payload)):
        data.fetch("mine", manifest=mine, progress=False)
    assert cache_listing() == []


def test_unverified_url_download_prints_and_warns_its_hash(server, env, capsys):
    root, base = server
    payload = npy_bytes(np.zeros(3))
    (root / "a.npy").write_bytes(payload)
    mine = env({"mine": dataset([url_file(f"{base}/a.npy", sha256=None)])})
    with pytest.warns(UserWarning, match=sha(payload)):
        data.fetch("mine", manifest=mine, progress=False)
    assert "unverified" in capsys.readouterr().out


def test_http_error_names_the_url_and_status_not_offline(server, env):
    _root, base = server
    mine = env({"mine": dataset([url_file(f"{base}/gone.npy")])})
    with pytest.raises(data.DataUnavailableError) as err:
        data.fetch("mine", manifest=mine, progress=False)
    msg = str(err.value)
    assert f"{base}/gone.npy" in msg and "404" in msg and "offline" not in msg
    assert not err.value.offline
    assert cache_listing() == []


def test_auto_warns_with_the_real_reason_when_the_network_answered(server, env, monkeypatch,
                                                                   capsys):
    _root, base = server
    monkeypatch.setattr(simulate, "fake_generator", lambda n=3: np.zeros(n), raising=False)
    mine = env({"mine": dataset([url_file(f"{base}/gone.npy")],
                                {"generator": "fake_generator", "params": {"n": 3}})})
    with pytest.warns(UserWarning, match="404") as record:
        out = data.load("mine", source="auto", manifest=mine)
    assert out.shape == (3,)
    message = next(str(w.message) for w in record if issubclass(w.category, UserWarning))
    assert f"{base}/gone.npy" in message and "offline" not in message
    assert "404" in capsys.readouterr().out


def test_refused_connection_is_a_failure_with_the_url(env):
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/a.npy"
    mine = env({"mine": dataset([url_file(url)])})
    with pytest.raises(data.DataUnavailableError, match=url):
        data.fetch("mine", manifest=mine, progress=False)


# -- timeouts and partial files ----------------------------------------------------------------
def test_stalled_server_times_out_naming_url_and_setting(server, env, monkeypatch):
    _root, base = server
    monkeypatch.setenv("MICROSCOPY_DOWNLOAD_TIMEOUT", "0.5")
    mine = env({"mine": dataset([url_file(f"{base}/stall/a.npy")])})
    with pytest.raises(data.DataUnavailableError) as err:
        data.fetch("mine", manifest=mine, progress=False)
    msg = str(err.value)
    assert "timed out" in msg and f"{base}/stall/a.npy" in msg
    assert "MICROSCOPY_DOWNLOAD_TIMEOUT" in msg
    assert cache_listing() == []  # the partial transfer was removed


def test_download_timeout_setting(monkeypatch):
    monkeypatch.delenv("MICROSCOPY_DOWNLOAD_TIMEOUT", raising=False)
    assert data.download_timeout() == 60.0
    assert data.download_timeout(5) == 5.0
    monkeypatch.setenv("MICROSCOPY_DOWNLOAD_TIMEOUT", "12.5")
    assert data.download_timeout() == 12.5
    for bad in ("soon", "0", "-3", "nan"):
        monkeypatch.setenv("MICROSCOPY_DOWNLOAD_TIMEOUT", bad)
        with pytest.raises(ValueError, match="MICROSCOPY_DOWNLOAD_TIMEOUT"):
            data.download_timeout()


def test_stale_partial_files_are_cleaned_and_live_ones_kept(server, env):
    root, base = server
    payload = npy_bytes(np.ones(4))
    (root / "a.npy").write_bytes(payload)
    mine = env({"mine": dataset([url_file(f"{base}/a.npy", sha256=sha(payload))])})
    folder = data.cache_dir() / "mine"
    folder.mkdir(parents=True)
    stale = folder / ".a.npy.k3j2h1.part"  # left by a run that was killed two hours ago
    stale.write_bytes(b"half a fi")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    live = folder / ".a.npy.9x8y7z.part"  # another process is writing this one right now
    live.write_bytes(b"half")
    data.fetch("mine", manifest=mine, progress=False)
    assert not stale.exists() and live.exists()
    assert (folder / "a.npy").read_bytes() == payload


def test_gdown_is_called_with_arguments_it_accepts(tmp_path):
    import gdown

    kwargs = download._gdown_kwargs("X" * 25, tmp_path / "out.npy", 60.0, False)
    inspect.signature(gdown.download).bind(**kwargs)  # raises TypeError on a bad argument
    assert kwargs["id"] == "X" * 25 and kwargs["output"] == str(tmp_path / "out.npy")
    if "timeout" in inspect.signature(gdown.download).parameters:
        assert kwargs["timeout"] == 60.0


def test_network_failures_are_told_apart():
    try:
        try:
            raise socket.gaierror(-3, "Temporary failure in name resolution")
        except socket.gaierror as inner:
            raise OSError("download failed") from inner
    except OSError as wrapped:
        assert download._is_offline(wrapped)
    assert not download._is_offline(ConnectionRefusedError(111, "Connection refused"))
    assert not download._is_offline(OSError("HTTP 404"))


# -- your own manifest -------------------------------------------------------------------------
def test_env_manifest_adds_and_overrides_data_sets(server, env, monkeypatch):
    root, base = server
    arr = np.arange(5, dtype=np.int16)
    payload = npy_bytes(arr)
    (root / "b.npy").write_bytes(payload)
    mine = env({"mine": dataset([url_file(f"{base}/b.npy", name="b.npy", sha256=sha(payload))]),
                "rotated_objects": dataset([url_file(f"{base}/b.npy", name="b.npy",
                                                     sha256=sha(payload))])})
    monkeypatch.setenv("MICROSCOPY_MANIFEST", str(mine))
    names = data.available()
    assert "mine" in names and "graphene_si_movie" in names  # added to the suite's
    assert "simulate" not in data.describe("rotated_objects")  # the user's entry wins
    np.testing.assert_array_equal(data.load("mine", source="original")["arr"], arr)


def test_argument_manifest_wins_over_env_manifest(env, monkeypatch):
    first = env({"mine": {"description": "from the environment", "paper": "none",
                          "simulate": {"generator": "rotated_objects", "params": {}}}}, "a.json")
    second = env({"mine": {"description": "from the argument", "paper": "none",
                           "simulate": {"generator": "rotated_objects", "params": {}}}}, "b.json")
    monkeypatch.setenv("MICROSCOPY_MANIFEST", str(first))
    assert data.describe("mine")["description"] == "from the environment"
    assert data.describe("mine", manifest=second)["description"] == "from the argument"


def test_missing_user_manifest_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        data.load("rotated_objects", manifest=tmp_path / "nope.json")
