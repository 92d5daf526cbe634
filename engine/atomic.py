"""Atomic file output: a finished file appears under its name, or nothing does."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_output(file, suffix: str = ".tmp", mode: int = 0o644):
    """Yield a temporary path next to ``file``; on success it is renamed to ``file``.

    The parent folder is created. On any exception the temporary file is removed and ``file`` is
    untouched. ``mode`` is applied before the rename (mkstemp creates files readable by the owner only).
    """
    out = Path(file)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=suffix, prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(file, data: bytes) -> Path:
    with atomic_output(file) as tmp:
        tmp.write_bytes(data)
    return Path(file)
