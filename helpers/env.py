"""Reproducibility and the running environment: seeding, device choice, Colab detection, and
progress bars that render both in a live kernel and in a saved notebook."""

from __future__ import annotations

import os
import random
import sys
import time

import numpy as np

__all__ = ["PROGRESS_VARIABLE", "seed_everything", "get_device", "in_colab", "progress",
           "torch_generator"]


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python's ``random``, numpy's legacy global state and torch (CPU and CUDA).

    Returns a fresh ``numpy.random.Generator`` seeded with ``seed``: prefer passing it around
    over relying on global state. With the same seed, CPU runs give the same numbers.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (seeds legacy global state for old code)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    import torch

    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return np.random.default_rng(seed)


def torch_generator(seed: int, device: str = "cpu"):
    """A ``torch.Generator`` seeded with ``seed`` on ``device`` (local randomness, no globals).

    A backend without device generators gets a CPU generator; sample on the CPU with it and
    move the result (``torch.randn(..., generator=g).to(device)``).
    """
    import torch

    try:
        g = torch.Generator(device=device)
    except RuntimeError:  # e.g. a backend that has no generator of its own
        g = torch.Generator()
    g.manual_seed(int(seed))
    return g


def get_device(device: str | None = "auto") -> str:
    """Resolve a device name.

    ``"auto"`` (or None) picks ``"cuda"`` if available, then ``"mps"`` (Apple GPUs), then
    ``"cpu"``. An explicit ``"cuda"``/``"mps"`` that is not available raises ``ValueError``
    naming the fix, rather than failing later inside a model.
    """
    import torch

    name = "auto" if device is None else str(device).lower()
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps is not None and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if mps_ok else "cpu"
    base = name.split(":")[0]
    if base == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device='cuda' was requested but torch sees no CUDA GPU; use device='auto' or 'cpu'"
        )
    if base == "mps" and not mps_ok:
        raise ValueError(
            "device='mps' was requested but this torch has no Apple MPS backend; "
            "use device='auto' or 'cpu'"
        )
    if base not in {"cpu", "cuda", "mps"}:
        raise ValueError(f"unknown device {device!r}; expected 'auto', 'cpu', 'cuda' or 'mps'")
    return name


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


#: environment variable that chooses how progress is shown: ``"text"`` (plain lines, for
#: notebooks executed headlessly and saved) or ``"auto"`` (widgets in a live kernel, the default)
PROGRESS_VARIABLE = "MICROSCOPY_PROGRESS"


class _Lines:
    """A file for ``tqdm`` that turns its carriage-return redraws into a few whole lines.

    A saved notebook keeps every redraw of a text bar (or a widget frozen at 0 %); this keeps
    the latest status and writes it as one line when the bar closes or when ``interval``
    seconds have passed since the last line.
    """

    def __init__(self, stream, interval: float):
        self.stream, self.interval = stream, float(interval)
        self.status, self.last = "", time.monotonic()

    def write(self, text: str) -> None:
        status = text.replace("\r", "").strip()
        if status:
            self.status = status
        now = time.monotonic()
        if self.status and ("\n" in text or now - self.last >= self.interval):
            self.stream.write(self.status + "\n")
            self.stream.flush()
            self.status, self.last = "", now

    def flush(self) -> None:
        self.stream.flush()


def progress(iterable=None, *, desc: str | None = None, total: int | None = None,
             disable: bool = False, interval: float = 30.0, stream=None):
    """A ``tqdm`` progress bar over ``iterable`` that reads correctly wherever it is shown.

    In a live notebook it is ``tqdm.auto`` (a widget in Jupyter, text in a terminal). When the
    environment variable :data:`PROGRESS_VARIABLE` is ``"text"`` (the suite's runner sets it
    for the notebooks it executes and saves), it prints plain lines instead: the status every
    ``interval`` seconds and once at the end, so a saved or rendered notebook shows where the
    loop finished rather than a widget frozen at "0%". ``stream`` (default ``sys.stderr``)
    receives the text lines.
    """
    mode = os.environ.get(PROGRESS_VARIABLE, "auto").strip().lower()
    if mode not in {"auto", "text"}:
        raise ValueError(f"{PROGRESS_VARIABLE}={mode!r} is not understood; "
                         "set it to 'text' (plain lines) or 'auto' (widgets when live)")
    if mode == "text":
        from tqdm.std import tqdm

        lines = _Lines(sys.stderr if stream is None else stream, interval)
        return tqdm(iterable, desc=desc, total=total, disable=disable, file=lines,
                    mininterval=interval, dynamic_ncols=False, ncols=100, ascii=True)
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, disable=disable)
