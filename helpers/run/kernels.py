"""CPU-kernel settings for runs whose numbers are compared across machines.

torch picks its vectorised CPU kernels (and MKL and oneDNN theirs) from the processor it finds:
the same float32 program gives slightly different numbers with AVX-512 than with AVX2, and a
training run amplifies the difference. Smoke runs therefore pin every x86-64 processor that
has AVX2 (nearly all since 2013) to the AVX2 kernels, so that two such machines compute the
same numbers. The smoke baseline does not rely on the pin alone: its tolerances come from the
spread measured over seeds and over kernel settings (``helpers.run.baseline``).

Settings (environment variables for the notebook's process and kernel):

- ``pinned``: AVX2 kernels on x86-64 processors with AVX2; nothing elsewhere (Apple and other
  ARM processors, GPUs: there is nothing to pin to).
- ``default``: torch's portable scalar kernels, MKL's compatible path, oneDNN's SSE4.1 path.
- ``native``: the best kernels this processor has.
"""

from __future__ import annotations

import os
import platform

__all__ = ["KERNEL_VARIABLES", "SETTINGS", "cpu_capability", "kernel_environment"]

KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA")
SETTINGS = ("pinned", "default", "native")


def cpu_capability() -> str:
    """torch's name for the best kernel set of this processor (``"AVX512"``, ``"AVX2"``,
    ``"DEFAULT"``, ``"SVE256"``...), ignoring ``ATEN_CPU_CAPABILITY`` in this process."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        pass
    if flags:  # Linux on x86: read the processor itself
        words = set(flags.split())
        if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= words:
            return "AVX512"
        return "AVX2" if "avx2" in words else "DEFAULT"
    import torch  # other systems: torch's own view (this process's setting may colour it)

    return str(torch.backends.cpu.get_cpu_capability())


def _is_x86() -> bool:
    return platform.machine().lower() in {"x86_64", "amd64", "i686", "x86"}


def kernel_environment(setting: str) -> dict[str, str]:
    """The environment variables that select ``setting`` (one of :data:`SETTINGS`) here."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown CPU-kernel setting {setting!r}; choose from {SETTINGS}")
    if not _is_x86():
        return {"ATEN_CPU_CAPABILITY": "default"} if setting == "default" else {}
    best = cpu_capability()
    if setting == "pinned":
        if best not in {"AVX2", "AVX512"}:
            return {}
        return {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    if setting == "default":
        return {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE",
                "ONEDNN_MAX_CPU_ISA": "SSE41"}
    native = {"AVX512": "avx512", "AVX2": "avx2"}.get(best, "default")
    return {"ATEN_CPU_CAPABILITY": native, "MKL_CBWR": "AUTO", "ONEDNN_MAX_CPU_ISA": "ALL"}


def describe(environ: dict[str, str] | None = None) -> str:
    """The kernel variables in ``environ`` (default: this process) as ``A=x B=y``."""
    environ = os.environ if environ is None else environ
    return " ".join(f"{k}={environ[k]}" for k in KERNEL_VARIABLES if k in environ) or "(native)"
