"""Scene handlers: load a bundled sample or an upload, the scene status line, the preview caches."""
from __future__ import annotations

import numpy as np

from engine import validate
from engine.errors import InputError
from engine.images import FIT_MODES
from studio import figures
from studio.handlers.common import MODEL_SIZE
from studio.handlers.path_edits import DEFAULT_PRESET, set_preset
from studio.state import PREVIEW_SIZE, VIDEO_SIZE, History, Preview, Session


def _scene_session(session: Session | None, scene, source: tuple, label: str) -> Session:
    """A session on a new scene: preview caches built, default preset path, history cleared."""
    depth = np.asarray(scene.depth).reshape(-1)
    valid = depth[np.isfinite(depth) & (depth > 0)]
    focus = float(np.median(valid)) if len(valid) else 1.0
    xyz, rgb = scene.point_cloud(max_points=figures.POINT_BUDGET)
    preview = Preview(
        frame_cache=scene.preview_cache(*PREVIEW_SIZE),  # the model-resolution scene's cache at preview sizes
        video_cache=scene.preview_cache(*VIDEO_SIZE),
        focus_distance=focus,
        cloud=(np.asarray(xyz), np.asarray(rgb)),
    )
    base = session or Session()
    fresh = base.replace(scene=scene, scene_label=label, source=source, preview=preview, path=None,
                         history=History(), selected=0, frame_cams=None, video_cams=None)
    return set_preset(fresh, **DEFAULT_PRESET, record=False)


def load_sample(session: Session | None, name: str) -> Session:
    """Load a bundled sample scene (exact depth, no weights needed)."""
    from engine import samples
    from engine.scene import build_scene

    names = samples.list_samples()
    if name not in names:
        raise InputError(f"unknown sample {name!r}; available: {', '.join(names)}")
    image, depth = samples.load_sample(name)
    scene = build_scene(image, depth, *MODEL_SIZE)
    return _scene_session(session, scene, (image, depth, "crop"), f"sample: {name}")


def load_upload(session: Session | None, image_file, depth_file=None, fov_y_deg=None, fit: str = "crop",
                weights_dir=None, progress=None) -> Session:
    """A scene from an uploaded image, with depth from an uploaded file or MoGe (when its weights exist)."""
    from engine import depth as depth_mod
    from engine import images
    from engine.scene import build_scene

    if image_file is None:
        raise InputError("upload an image first")
    validate.one_of(fit, FIT_MODES, "fit")
    image = images.load_image(str(image_file))
    h, w = image.shape[:2]
    fov = None if fov_y_deg in (None, "", 0) else validate.fov_deg(fov_y_deg, "FOV")
    if depth_file is not None:
        result = depth_mod.load_depth_file(str(depth_file), h, w, fov_y_deg=fov)
        source = "depth file"
    else:
        weights = depth_mod.find_moge_weights(weights_dir)
        if weights is None:
            raise InputError(depth_mod.MOGE_HELP)
        estimator = depth_mod.MoGeEstimator(str(weights), progress=progress)
        try:
            result = estimator.estimate(image)
        finally:
            estimator.release()
        source = "MoGe"
    scene = build_scene(image, result, *MODEL_SIZE, fit=fit)
    return _scene_session(session, scene, (image, result, fit), f"upload ({source})")


def scene_status(session: Session | None) -> str:
    """One status line: resolution, FOV, depth range, point count."""
    if session is None or session.scene is None:
        return "No scene loaded."
    s = session.scene.stats()
    parts = [session.scene_label]
    res = s.get("resolution")
    if res is not None:
        parts.append(f"{res[1]}x{res[0]}" if isinstance(res, (tuple, list)) else str(res))
    if "fov_y_deg" in s:
        parts.append(f"FOV {s['fov_y_deg']:.1f} deg")
    lo, hi = s.get("depth_min"), s.get("depth_max")
    if lo is not None and hi is not None:
        parts.append(f"depth {float(lo):.2f}-{float(hi):.2f}")
    pts = s.get("points", s.get("point_count"))
    if pts is not None:
        parts.append(f"{int(pts):,} points")
    return " | ".join(str(p) for p in parts)
