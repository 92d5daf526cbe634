"""What survives a page reload: the browser keeps a small JSON state (`gr.BrowserState`), the server keeps
uploaded images with their depth for a while (folders `upload-<id>` in the studio root, swept by age like
session folders).

The browser state holds the scene reference ({"sample": name} or {"upload": id}), the path (project-JSON
dict), its length, selection, table mode, foreground masking and the 3D view settings. Everything read back
is validated: a stale or tampered state falls back to the defaults, never to a file outside the studio root.
"""
from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import numpy as np

from studio import files

STATE_VERSION = 1
STORAGE_KEY = "gen3c-studio"
FRAME_CHOICES = (121, 241, 361, 481)
_UPLOAD_ID = re.compile(r"^[0-9a-f]{16}$")


def browser_secret() -> str:
    """The key gradio encrypts the browser state with: $GEN3C_STUDIO_SECRET, else one kept in the studio root
    (made once), so a restarted server still reads what browsers kept."""
    import os

    env = os.environ.get("GEN3C_STUDIO_SECRET", "").strip()
    if env:
        return env
    file = files.studio_root() / "browser-state.key"
    try:
        key = file.read_text().strip()
        if len(key) >= 16:
            return key
    except OSError:
        pass
    key = secrets.token_hex(16)
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key)
    except OSError:
        pass  # a read-only root: this run's key only
    return key


def _upload_folder(upload_id: str, create: bool = False) -> Path | None:
    if not isinstance(upload_id, str) or not _UPLOAD_ID.match(upload_id):
        return None
    folder = files.studio_root() / f"upload-{upload_id}"
    if create:
        folder.mkdir(exist_ok=True)
    return folder


def save_upload(image: np.ndarray, depth_result, fit: str, label: str, fov_note: str) -> str:
    """Keep an uploaded image (as decoded, uint8) and its depth on the server; returns its id."""
    from PIL import Image

    upload_id = secrets.token_hex(8)
    folder = _upload_folder(upload_id, create=True)
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(folder / "image.png")
    arrays = {"depth": np.asarray(depth_result.depth, dtype=np.float32), "K": np.asarray(depth_result.K, np.float32)}
    if depth_result.mask is not None:
        arrays["mask"] = np.asarray(depth_result.mask, dtype=bool)
    np.savez_compressed(folder / "depth.npz", **arrays)
    meta = {"fit": fit, "label": label, "fov_note": fov_note, "notes": list(depth_result.notes)}
    (folder / "meta.json").write_text(json.dumps(meta))
    return upload_id


def load_upload(upload_id: str):
    """(image uint8, DepthResult, fit, label, fov note) of a kept upload, or None when it is gone or damaged."""
    from PIL import Image

    from engine.depth import DepthResult

    folder = _upload_folder(upload_id)
    if folder is None or not folder.is_dir():
        return None
    try:
        meta = json.loads((folder / "meta.json").read_text())
        image = np.asarray(Image.open(folder / "image.png").convert("RGB"))
        with np.load(folder / "depth.npz", allow_pickle=False) as z:
            result = DepthResult(z["depth"], z["K"], z["mask"] if "mask" in z else None, list(meta.get("notes", [])))
        result.validate(*image.shape[:2])
        fit = meta["fit"] if meta.get("fit") in ("crop", "pad") else "crop"
        return image, result, fit, str(meta.get("label", "upload")), str(meta.get("fov_note", ""))
    except Exception:  # noqa: BLE001 - any damage means "gone": the user is asked to upload again
        return None


def snapshot(session, table_mode: str = "look-at") -> dict:
    """The browser state of a session (JSON-ready)."""
    from engine.paths import path_to_dict

    if session is None or session.scene is None:
        return {}
    ref = {k: v for k, v in session.scene_ref.items() if k in ("sample", "upload")}
    path = session.path
    targets = None
    if path is not None and session.targets:
        targets = [None if kf not in session.targets else [float(v) for v in session.targets[kf]]
                   for kf in path.keyframes]
    return {
        "version": STATE_VERSION,
        "scene": ref,
        "path": path_to_dict(path) if path is not None else None,
        "frames": int(session.num_frames),
        "selected": int(session.selected),
        "table_mode": table_mode if table_mode in ("look-at", "yaw/pitch/roll") else "look-at",
        "masking": bool(session.preview.foreground_masking) if session.preview is not None else True,
        "view": dict(session.view),
        "targets": targets,
    }


def read_state(state) -> dict | None:
    """The validated parts of a browser state (None when there is nothing usable). Keys: scene
    ({"sample": name} | {"upload": id}), path (CameraPath | None), path_error, frames, selected, table_mode,
    masking, view, targets (list aligned with the path's keyframes, or None)."""
    from engine.errors import InputError
    from engine.paths import path_from_dict

    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        return None
    scene = state.get("scene")
    if not isinstance(scene, dict):
        return None
    if isinstance(scene.get("sample"), str):
        ref = {"sample": scene["sample"]}
    elif isinstance(scene.get("upload"), str) and _UPLOAD_ID.match(scene["upload"]):
        ref = {"upload": scene["upload"]}
    else:
        return None
    out = {"scene": ref, "path": None, "path_error": None}
    if state.get("path") is not None:
        try:
            out["path"] = path_from_dict(state["path"])
        except InputError as exc:
            out["path_error"] = str(exc)
    frames = state.get("frames")
    out["frames"] = frames if frames in FRAME_CHOICES else 121
    selected = state.get("selected")
    out["selected"] = selected if isinstance(selected, int) and not isinstance(selected, bool) and selected >= 0 else 0
    out["table_mode"] = state.get("table_mode") if state.get("table_mode") in ("look-at", "yaw/pitch/roll") else "look-at"
    out["masking"] = state.get("masking") if isinstance(state.get("masking"), bool) else True
    view = state.get("view") if isinstance(state.get("view"), dict) else {}
    out["view"] = {"style": view.get("style") if view.get("style") in ("surface", "points") else "surface",
                   "detail": view.get("detail") if isinstance(view.get("detail"), str) else "standard"}
    targets = state.get("targets")
    out["targets"] = None
    if out["path"] is not None and isinstance(targets, list) and len(targets) == len(out["path"].keyframes):
        clean = []
        for t in targets:
            ok = (isinstance(t, list) and len(t) == 3
                  and all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in t))
            clean.append(np.array(t, dtype=np.float64) if ok else None)
        out["targets"] = clean
    return out
