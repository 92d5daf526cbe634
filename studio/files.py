"""Per-session output folders, camera-path import and export.

Every session writes under its own folder in STUDIO_ROOT (default: <tmp>/gen3c-studio, or
$GEN3C_STUDIO_TMP). Folders are removed when the session's state is dropped (tab closed, gradio's
state TTL) and, as a backstop, by age at start-up and on every new session.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from engine.errors import InputError

MAX_AGE_S = 6 * 3600
EXPORT_FORMATS = {
    "nerfstudio": "camera_path.json (nerfstudio)",
    "npz": "cameras.npz (GEN3C w2cs_all / Ks_all)",
    "json": "path.json (GEN3C Studio keyframes)",
}


def studio_root() -> Path:
    root = Path(os.environ.get("GEN3C_STUDIO_TMP") or Path(tempfile.gettempdir()) / "gen3c-studio")
    root.mkdir(parents=True, exist_ok=True)
    return root


def new_session_folder() -> str:
    """A fresh folder for one session's outputs (old folders are swept first)."""
    sweep_old_folders()
    return tempfile.mkdtemp(prefix="session-", dir=studio_root())


def session_folder_for(key: str, create: bool = True) -> str:
    """The folder of the session with id `key` (gradio's session hash); letters, digits, - and _ only."""
    safe = "".join(c for c in str(key) if c.isalnum() or c in "-_")[:64]
    if not safe:
        raise InputError("session id is empty")
    folder = studio_root() / f"session-{safe}"
    if create:
        if not folder.exists():
            sweep_old_folders()
        folder.mkdir(exist_ok=True)
        os.utime(folder)
    return str(folder)


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
    """A not-yet-existing file path in `folder` starting with `name`'s stem (keeps earlier downloads valid)."""
    stem, suffix = Path(name).stem, Path(name).suffix
    Path(folder).mkdir(parents=True, exist_ok=True)
    fd, file = tempfile.mkstemp(prefix=f"{stem}-", suffix=suffix, dir=folder)
    os.close(fd)
    return Path(file)


EXPORT_NAMES = {"nerfstudio": "camera_path.json", "npz": "cameras.npz", "json": "path.json"}


def export_folder(folder: str) -> Path:
    """A new, empty folder under `folder` for one export, so the file keeps its plain name
    (camera_path.json, ...) and every export is a download of its own."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="export-", dir=folder))


def export_path(path, fmt: str, num_frames: int, height: int, width: int, folder: str) -> Path:
    """Write the path as `fmt` (see EXPORT_FORMATS) into a new export folder under `folder`; returns the file,
    named EXPORT_NAMES[fmt]."""
    from engine import paths

    if path is None:
        raise InputError("export: there is no camera path yet (pick a preset or add keyframes)")
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"export: unknown format {fmt!r} (use one of {', '.join(EXPORT_FORMATS)})")
    file = export_folder(folder) / EXPORT_NAMES[fmt]
    try:
        if fmt == "nerfstudio":
            data = paths.to_nerfstudio(path, num_frames, height, width)
            file.write_text(json.dumps(data, indent=1))
        elif fmt == "npz":
            w2cs, Ks = path.sample(num_frames, height, width)
            paths.save_npz(file, w2cs, Ks)
        else:
            paths.save_path_json(path, file)
    except BaseException:
        shutil.rmtree(file.parent, ignore_errors=True)
        raise
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
