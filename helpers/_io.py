"""Atomic file writes: nothing half-written is ever left at the destination."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def current_umask() -> int:
    """The process umask (e.g. ``0o022``), read without changing it where the OS allows."""
    try:  # Linux: read it; os.umask can only be read by setting it, which races with threads
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to.

    When the block ends normally the temporary file replaces ``path`` in one step
    (``os.replace``); when it raises, the temporary file is removed and ``path`` is untouched.
    The parent folder is created if needed. ``suffix`` ends the temporary name (writers such
    as ``np.savez`` append their own extension otherwise). The file ends with the permissions
    a plain ``open(path, "w")`` would give it (``0o666`` less the umask), not the private
    ``0o600`` of the temporary file, so shared caches and results stay readable by others.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        try:
            os.chmod(tmp, 0o666 & ~current_umask())
        except OSError:  # a file system without Unix modes: the content is still right
            pass
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
