"""Faults at the OS boundary for the reliability tests.

- ``small_filesystem(folder, size)``: a real tmpfs of ``size`` bytes mounted on ``folder`` (needs the right to
  mount; None when the machine does not give it), so writes fail with a real ENOSPC;
- ``fill(folder, leave)``: fill a filesystem until ``leave`` bytes are free;
- ``read_only_folder(folder)``: a folder nobody can write in (a read-only tmpfs when we may mount, else
  permissions, which bind a non-root user only; None when neither works);
- ``enospc_after(monkeypatch, folder, nbytes)``: files opened for writing under ``folder`` through Python's
  ``open`` take ``nbytes`` bytes and then raise ``OSError(ENOSPC)``, as a write to a full disk does;
- ``UnusableOut(tmp_path, case)``: an output path no writer can use ("file": an existing file, "under_file",
  "read_only");
- ``lying_npy(shape)`` / ``peak_bytes(fn)``: an .npy header claiming far more data than it holds, and the peak
  memory a call allocates;
- ``fake_ffmpeg(folder, mode)``: an ffmpeg that runs the real one, then fails as a full disk makes it fail
  ("disk_full": half the file, "No space left on device", status 1), or lies ("truncated": half the file,
  status 0; "fewer_frames": only 3 frames encoded, status 0). Reading videos passes to the real ffmpeg.
"""
from __future__ import annotations

import builtins
import contextlib
import errno
import io
import os
import shutil
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest


def _mount(args: list[str]) -> bool:
    if os.name != "posix" or shutil.which("mount") is None:
        return False
    try:
        return subprocess.run(["mount", *args], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _umount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


@contextlib.contextmanager
def small_filesystem(folder: Path, size: int):
    """A tmpfs of ``size`` bytes on ``folder`` (created), or None when mounting is not allowed here."""
    folder.mkdir(parents=True, exist_ok=True)
    if not _mount(["-t", "tmpfs", "-o", f"size={int(size)},mode=0777", "tmpfs", str(folder)]):
        yield None
        return
    try:
        yield folder
    finally:
        _umount(folder)


def free_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def fill(folder: Path, leave: int = 0) -> None:
    """Write a filler file so that at most ``leave`` bytes stay free on ``folder``'s filesystem."""
    with open(folder / "filler", "wb") as fh:
        try:
            while free_bytes(folder) > leave:
                fh.write(b"\0" * min(64 * 1024, max(4096, free_bytes(folder) - leave)))
                fh.flush()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise


@contextlib.contextmanager
def read_only_folder(folder: Path):
    """A folder no write can go into, or None when this machine cannot make one for this user."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    if not _mount(["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)]):
        yield None  # root passes permission bits, and we may not mount
        return
    try:
        yield folder
    finally:
        _umount(folder)


class _FullDiskFile:
    """A file object that accepts ``budget`` more bytes, then fails like a write to a full disk."""

    def __init__(self, fh, budget: int):
        self._fh, self._budget = fh, budget

    def write(self, data) -> int:
        data = memoryview(data).cast("B")
        if len(data) > self._budget:
            self._fh.write(data[:self._budget])
            self._fh.flush()
            self._budget = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self._fh.name)
        self._budget -= len(data)
        return self._fh.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()

    def __getattr__(self, name):
        return getattr(self._fh, name)


def enospc_after(monkeypatch, folder: Path, nbytes: int = 0) -> None:
    """Python-level writes to files under ``folder`` fail with ENOSPC after ``nbytes`` bytes in each file."""
    real_open = builtins.open
    root = os.path.realpath(folder)

    def open_(file, mode="r", *args, **kwargs):
        fh = real_open(file, mode, *args, **kwargs)
        writing = any(c in mode for c in "wax+")
        if writing and isinstance(file, (str, os.PathLike)) and \
                os.path.realpath(os.fspath(file)).startswith(root + os.sep):
            return _FullDiskFile(fh, nbytes)
        return fh

    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)


_FAKE = """#!{python}
import os, subprocess, sys
REAL, MODE = {real!r}, {mode!r}
args = sys.argv[1:]
encoding = "-i" in args and args[args.index("-i") + 1] == "-"
if not encoding:
    os.execv(REAL, [REAL] + args)
if MODE == "fewer_frames":
    args = args[:-1] + ["-frames:v", "3", args[-1]]
status = subprocess.call([REAL] + args)
out = args[-1]
if MODE in ("disk_full", "truncated") and os.path.exists(out):
    with open(out, "r+b") as fh:
        fh.truncate(os.path.getsize(out) // 2)
if MODE == "disk_full":
    sys.stderr.write("[out#0/mp4] Error writing trailer: No space left on device\\n")
    sys.exit(1)
sys.exit(status)
"""


def fake_ffmpeg(folder: Path, mode: str) -> Path:
    """An executable ffmpeg stand-in (see the module docstring); point IMAGEIO_FFMPEG_EXE at it."""
    import imageio_ffmpeg

    real = imageio_ffmpeg.get_ffmpeg_exe()
    script = Path(tempfile.mkdtemp(dir=folder, prefix="ffmpeg-")) / "ffmpeg"
    script.write_text(_FAKE.format(python=sys.executable, real=real, mode=mode))
    script.chmod(0o755)
    return script


def leftovers(folder: Path) -> list[str]:
    """Every name under ``folder`` (recursive, hidden files included), for 'nothing partial' checks."""
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


class UnusableOut:
    """The unusable --out for a case: an existing file, a path under a file, a folder in a read-only folder."""

    def __init__(self, tmp_path, case):
        self.tmp_path, self.case, self._ro = tmp_path, case, None

    def __enter__(self):
        if self.case == "file":
            (self.tmp_path / "taken").write_text("x")
            return self.tmp_path / "taken"
        if self.case == "under_file":
            (self.tmp_path / "plain").write_text("x")
            return self.tmp_path / "plain" / "sub" / "out"
        self._ro = read_only_folder(self.tmp_path / "ro")
        folder = self._ro.__enter__()
        if folder is None:
            self._ro.__exit__(None, None, None)
            pytest.skip("no read-only folder can be made for this user here")
        return folder / "out"

    def __exit__(self, *exc):
        if self._ro is not None:
            self._ro.__exit__(*exc)


def lying_npy(shape, dtype="<f8") -> bytes:
    """An .npy file whose header claims ``shape`` but which holds 64 bytes of data."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    buf.write(b"\0" * 64)
    return buf.getvalue()


def peak_bytes(fn) -> int:
    """Peak memory traced while ``fn`` runs (numpy reports its array buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak
