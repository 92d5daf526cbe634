"""The studio root, per-session output folders, the export quota, camera-path import and export.

Every session writes under its own folder in the studio root (default: <tmp>/gen3c-studio, or
$GEN3C_STUDIO_TMP). The root is private: created with mode 0700, and refused (StudioRootError, one line,
at start-up) when it is a symbolic link, not a folder, or owned by another user; a root of ours that others
may read is made private. Session folders have unguessable names (`secrets.token_urlsafe`), are removed
when the session is closed or expires, and, as a backstop, by age at start-up and on every new session.

Each session's exports (path files, PLY) share a quota (EXPORT_QUOTA_MB, $GEN3C_STUDIO_EXPORT_QUOTA_MB):
past it the oldest exports are removed first; the newest is always kept. An export that fails leaves
nothing behind: its folder is removed with it.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import stat
import tempfile
import time
from pathlib import Path

from engine.errors import InputError

MAX_AGE_S = 6 * 3600
EXPORT_QUOTA_MB = 64  # per session; a PLY of a whole scene is about 13 MB, a path file well under 1 MB
QUOTA_ENV = "GEN3C_STUDIO_EXPORT_QUOTA_MB"
EXPORT_FORMATS = {
    "nerfstudio": "camera_path.json (nerfstudio)",
    "npz": "cameras.npz (GEN3C w2cs_all / Ks_all)",
    "json": "path.json (GEN3C Studio keyframes)",
}


class StudioRootError(RuntimeError):
    """The studio root cannot be used safely (a link, not a folder, another user's)."""


def studio_root() -> Path:
    """The private studio root (created 0700 when missing); StudioRootError when it is unsafe."""
    root = Path(os.environ.get("GEN3C_STUDIO_TMP") or Path(tempfile.gettempdir()) / "gen3c-studio")
    return private_folder(root)


def private_folder(root: Path) -> Path:
    """`root` as a folder only this user can use: made with mode 0700 when missing, refused when it is a
    symbolic link, not a folder or owned by someone else; group/other permissions of our own are removed."""
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(root, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StudioRootError(f"studio root {root}: cannot create it ({exc.strerror or exc})") from None
    info = os.lstat(root)
    if stat.S_ISLNK(info.st_mode):
        raise StudioRootError(f"studio root {root} is a symbolic link: refusing it (remove it, or set "
                              "$GEN3C_STUDIO_TMP to a folder of your own)")
    if not stat.S_ISDIR(info.st_mode):
        raise StudioRootError(f"studio root {root} is not a folder")
    if info.st_uid != os.geteuid():
        raise StudioRootError(f"studio root {root} is owned by another user (uid {info.st_uid}): refusing it "
                              "(set $GEN3C_STUDIO_TMP to a folder of your own)")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(root, 0o700)
    return root


def new_session_folder() -> str:
    """A fresh folder with an unguessable name for one session's outputs (old folders are swept first)."""
    root = studio_root()
    sweep_old_folders()
    while True:
        folder = root / f"session-{secrets.token_urlsafe(18)}"
        try:
            folder.mkdir(mode=0o700)
            return str(folder)
        except FileExistsError:
            continue


def keep_newest(folder, prefix: str, keep: int = 2) -> None:
    """Delete all but the `keep` newest files named `prefix*` in `folder` (old preview videos)."""
    items = sorted(Path(folder).glob(f"{prefix}*"), key=lambda f: f.stat().st_mtime, reverse=True)
    for old in items[keep:]:
        old.unlink(missing_ok=True)


def remove_session_folder(folder: str) -> None:
    """Delete a session folder; only folders inside the studio root are ever touched."""
    if not folder:
        return
    path = Path(folder).resolve()
    root = studio_root().resolve()
    if path.parent == root and path.name.startswith("session-"):
        shutil.rmtree(path, ignore_errors=True)


def sweep_old_folders(max_age_s: float = MAX_AGE_S) -> int:
    """Remove session and kept-upload folders not modified for `max_age_s` seconds; returns how many went."""
    now, removed = time.time(), 0
    root = studio_root()
    for child in [*root.glob("session-*"), *root.glob("upload-*")]:
        try:
            if child.is_dir() and now - child.stat().st_mtime > max_age_s:
                shutil.rmtree(child, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


def unique_file(folder: str, name: str) -> Path:
    """A not-yet-existing file path in `folder` starting with `name`'s stem (keeps earlier downloads valid).
    Nothing is created: the writer (atomic) makes the file whole or not at all, so no empty placeholder
    is left when it fails."""
    stem, suffix = Path(name).stem, Path(name).suffix
    Path(folder).mkdir(parents=True, exist_ok=True)
    while True:
        file = Path(folder) / f"{stem}-{secrets.token_urlsafe(9)}{suffix}"
        if not file.exists():
            return file


def export_quota_bytes() -> int:
    raw = os.environ.get(QUOTA_ENV, "").strip()
    mb = float(raw) if raw else EXPORT_QUOTA_MB
    return int(mb * 1024 * 1024)


def _tree_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def prune_exports(folder, keep=None, quota: int | None = None) -> list[Path]:
    """Remove the oldest export folders under `folder` until its exports fit `quota` bytes (default: the
    session quota); the export folder `keep` (the newest) always stays. Returns the folders removed."""
    quota = export_quota_bytes() if quota is None else quota
    keep = Path(keep).resolve() if keep is not None else None
    exports = sorted((p for p in Path(folder).glob("export-*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    sizes = {p: _tree_bytes(p) for p in exports}
    total, removed = sum(sizes.values()), []
    for old in exports:
        if total <= quota:
            break
        if keep is not None and old.resolve() == keep:
            continue
        shutil.rmtree(old, ignore_errors=True)
        total -= sizes[old]
        removed.append(old)
    return removed


@contextlib.contextmanager
def export_file(folder: str, name: str):
    """A path `name` in a new, empty export folder under `folder` (every export a download of its own,
    under its plain name). On any failure the folder goes with it: nothing is left; on success the
    session's oldest exports past the quota are removed."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    sub = Path(tempfile.mkdtemp(prefix="export-", dir=folder))
    try:
        yield sub / name
        if not (sub / name).is_file():
            raise FileNotFoundError(f"export: {name} was not written")
    except BaseException:
        shutil.rmtree(sub, ignore_errors=True)
        raise
    prune_exports(folder, keep=sub)


EXPORT_NAMES = {"nerfstudio": "camera_path.json", "npz": "cameras.npz", "json": "path.json"}


def export_path(path, fmt: str, num_frames: int, height: int, width: int, folder: str) -> Path:
    """Write the path as `fmt` (see EXPORT_FORMATS) into a new export folder under `folder`; returns the file,
    named EXPORT_NAMES[fmt]."""
    from engine import paths

    if path is None:
        raise InputError("export: there is no camera path yet (pick a preset or add keyframes)")
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"export: unknown format {fmt!r} (use one of {', '.join(EXPORT_FORMATS)})")
    with export_file(folder, EXPORT_NAMES[fmt]) as file:
        if fmt == "nerfstudio":
            paths.save_nerfstudio(path, file, num_frames, height, width)
        elif fmt == "npz":
            w2cs, Ks = path.sample(num_frames, height, width)
            paths.save_npz(file, w2cs, Ks)
        else:
            paths.save_path_json(path, file)
    return file


def import_path(file, height: int):
    """A CameraPath from an uploaded project JSON, nerfstudio camera_path.json or GEN3C NPZ.

    Read by ``engine.paths.read_path_file`` (as the CLI's --path is); any problem raises InputError
    (the caller keeps its current path). `height` is the image height the NPZ intrinsics are given
    for (the model's).
    """
    from engine import paths

    if file is not None and not isinstance(file, (str, os.PathLike)):
        file = getattr(file, "path", None) or getattr(file, "name", None)  # a gradio file object
    if not file:
        raise InputError("import: no file received")
    try:
        return paths.read_path_file(file, height).path
    except InputError as exc:
        raise InputError(f"import: {exc}") from None
