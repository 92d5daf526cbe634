"""Outputs that are whole or absent: a finished, checked and synced file appears under its name, or nothing does.

Every writer of the engine (mp4, PLY, path files, NPZ, safetensors, weights folders, the CLI's outputs, the
prompt cache) goes through here:

- ``check_output_file`` / ``check_output_dir`` refuse, before any work, an output that cannot be written: a
  folder where a file is expected (or the reverse), a path under a file, a folder that does not exist or is
  not writable (tried by creating a file in it, so read-only mounts count, for every user);
- ``atomic_output`` / ``atomic_write_bytes`` / ``atomic_output_dir`` write to a temporary name in the target
  folder, run the caller's check of the result, fsync, rename into place and fsync the folder. On any failure
  the temporary file or folder is removed and the target is untouched.

Failures are :class:`engine.errors.OutputError` (an InputError, so the CLI and the studio show them in one
line) naming the file: a full disk or quota reads "disk full while writing <file>".
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path

from engine.errors import OutputError

_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
# How a full disk reads when it reaches us as text: OSError strings, ffmpeg's log, safetensors' Rust errors.
_DISK_FULL_TEXT = ("no space left on device", "disk quota exceeded", "os error 28", "os error 122")


def is_disk_full(error) -> bool:
    """Whether an exception (or its causes), or a message, says the disk or the quota is full."""
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, OSError) and error.errno in _DISK_FULL_ERRNOS:
            return True
        if any(t in str(error).lower() for t in _DISK_FULL_TEXT):
            return True
        if isinstance(error, str):
            return False
        error = error.__cause__ or error.__context__
        seen += 1
    return False


def output_error(error, file) -> OutputError:
    """The one-line OutputError for a failure while writing ``file``."""
    if is_disk_full(error):
        return OutputError(f"disk full while writing {file}")
    if isinstance(error, OSError) and error.strerror:
        reason = error.strerror
    else:
        text = str(error).strip()
        reason = text.splitlines()[0][:200] if text else type(error).__name__
    return OutputError(f"cannot write {file}: {reason}")


# ---- checks before any work ---------------------------------------------------------------------------

def _probe_writable(folder: Path, name: str) -> None:
    """Create and remove a file in ``folder``: the one test of writability that holds for every user and mount."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{name}: cannot write in {folder} ({exc.strerror or exc})") from None


def _existing_ancestor(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path(".")


def check_output_file(file, name: str = "output") -> Path:
    """Refuse, before any work, an output file that could not be written; returns it as a Path.

    Refused: a folder, a path under a file, a folder that does not exist or cannot be written in.
    """
    out = Path(os.fspath(file))
    if out.is_dir():
        raise OutputError(f"{name} {out} is a folder, not a file")
    parent = out.parent
    if not parent.exists():
        above = _existing_ancestor(parent)
        if not above.is_dir():
            raise OutputError(f"{name} {out} is under {above}, which is a file, not a folder")
        raise OutputError(f"{name} folder {parent} does not exist")
    if not parent.is_dir():
        raise OutputError(f"{name} {out} is under {parent}, which is a file, not a folder")
    _probe_writable(parent, name)
    return out


def check_output_dir(folder, name: str = "output folder", *, must_be_empty: bool = False,
                     parent_must_exist: bool = False) -> Path:
    """Refuse, before any work, an output folder that could not be written; returns it as a Path.

    Refused: an existing file, a path under a file, a folder (or, when it does not exist yet, the nearest
    existing folder above it) that cannot be written in; with ``must_be_empty``, a folder that holds files;
    with ``parent_must_exist``, a folder whose parent is missing (it is then created by the rename alone).
    """
    out = Path(os.fspath(folder)).expanduser()
    if out.exists() and not out.is_dir():
        raise OutputError(f"{name} {out} exists and is a file, not a folder")
    if out.is_dir():
        if must_be_empty and any(out.iterdir()):
            raise OutputError(f"{name} {out} exists and is not empty (choose another or pass --overwrite)")
        _probe_writable(out, name)
        if must_be_empty or parent_must_exist:
            _probe_writable(out.parent, name)  # the finished folder is renamed into place there
        return out
    above = _existing_ancestor(out)
    if not above.is_dir():
        raise OutputError(f"{name} {out} is under {above}, which is a file, not a folder")
    if parent_must_exist and above != out.parent:
        raise OutputError(f"{name} {out}: its parent folder {out.parent} does not exist")
    _probe_writable(above, name)
    return out


# ---- writing ------------------------------------------------------------------------------------------

def _fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; filesystems that cannot sync a folder are left as they are."""
    try:
        _fsync_path(folder, directory=True)
    except OSError:
        pass


@contextlib.contextmanager
def atomic_output(file, suffix: str = ".tmp", mode: int = 0o644, *, check=None):
    """Yield a temporary path next to ``file``; on success it is checked, synced and renamed to ``file``.

    ``check(tmp)``, when given, inspects the finished temporary file and raises OutputError when it is not
    whole. The parent folder is created. On any exception the temporary file is removed and ``file`` is
    untouched; an OSError (or a full disk reported any way) becomes a one-line OutputError naming ``file``.
    ``mode`` is applied before the rename (mkstemp creates files readable by the owner only).
    """
    out = Path(os.fspath(file))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(suffix=suffix, prefix=f".{out.name}.", dir=out.parent)
        os.close(fd)
    except OSError as exc:
        raise output_error(exc, out) from None
    tmp = Path(name)
    try:
        yield tmp
        if check is not None:
            check(tmp)
        _fsync_path(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, out)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OutputError) or not (isinstance(exc, OSError) or is_disk_full(exc)):
            raise
        raise output_error(exc, out) from None
    _fsync_folder(out.parent)


def atomic_write_bytes(file, data: bytes) -> Path:
    """Write ``data`` to ``file`` through :func:`atomic_output`, checking that all of it reached the file."""
    data = memoryview(data).cast("B")

    def whole(tmp: Path) -> None:
        if tmp.stat().st_size != len(data):
            raise OutputError(f"cannot write {file}: {tmp.stat().st_size} of {len(data)} bytes reached the file")

    with atomic_output(file, check=whole) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return Path(file)


def _fsync_tree(folder: Path) -> None:
    for root, dirs, files in os.walk(folder):
        for f in files:
            _fsync_path(Path(root) / f)
        _fsync_folder(Path(root))


def _is_write_failure(exc: BaseException, tmp: Path) -> bool:
    """An error of writing into ``tmp`` (not, say, of reading an input while the folder is being filled)."""
    if is_disk_full(exc):
        return True
    if not isinstance(exc, OSError):
        return False
    names = [n for n in (exc.filename, exc.filename2) if n is not None]
    return any(os.path.realpath(os.fspath(n)).startswith(os.path.realpath(tmp)) for n in names)


@contextlib.contextmanager
def atomic_output_dir(out_dir, overwrite: bool = False, *, check=None, name: str = "output folder"):
    """Yield a temporary sibling folder; on success it is checked, synced and replaces ``out_dir``.

    ``out_dir`` is refused first (a file, under a file, not writable, or not empty unless ``overwrite``);
    its parent must exist. ``check(tmp)`` inspects the finished folder. On any error the temporary folder is
    removed and ``out_dir`` is untouched; a failure to write (a full disk included) is a one-line OutputError
    naming ``out_dir``. The temporary folder has a fresh hidden name, so no other folder is ever removed.
    """
    out = check_output_dir(out_dir, name, must_be_empty=not overwrite, parent_must_exist=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as exc:
        raise output_error(exc, out) from None
    try:
        yield tmp
        if check is not None:
            check(tmp)
        _fsync_tree(tmp)
        os.chmod(tmp, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old / "previous")
            try:
                os.replace(tmp, out)
            except BaseException:
                os.replace(old / "previous", out)
                raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OutputError) or not _is_write_failure(exc, tmp):
            raise
        raise output_error(exc, out) from None
    _fsync_folder(out.parent)
