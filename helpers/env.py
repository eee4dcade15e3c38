"""Reproducibility and hardware: seeding, device choice, Colab detection."""

from __future__ import annotations

import os
import random
import sys

import numpy as np

__all__ = ["seed_everything", "get_device", "in_colab", "torch_generator"]


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
