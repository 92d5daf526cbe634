"""Scene handlers: load a bundled sample or an upload, the scene status line, the crop/pad preview of an
upload, the preview caches (with or without foreground masking)."""
from __future__ import annotations

import numpy as np

from engine import validate
from engine.errors import InputError
from engine.images import FIT_MODES
from studio import figures, persist
from studio.handlers.common import MODEL_SIZE
from studio.handlers.path_edits import DEFAULT_PRESET, set_preset
from studio.state import PREVIEW_SIZE, VIDEO_SIZE, History, Preview, Session

FIT_PREVIEW_SIZE = VIDEO_SIZE  # the crop/pad thumbnail (H, W): a quarter of the model frame


def build_preview(scene, foreground_masking: bool = True) -> Preview:
    """Preview caches at both sizes, the focus distance (median depth) and the point cloud for the 3D view."""
    depth = np.asarray(scene.depth).reshape(-1)
    valid = depth[np.isfinite(depth) & (depth > 0)]
    focus = float(np.median(valid)) if len(valid) else 1.0
    xyz, rgb = scene.point_cloud(max_points=figures.POINT_BUDGET)
    return Preview(
        # the model-resolution scene's own cache at the preview sizes (engine.scene.Scene.preview_cache)
        frame_cache=scene.preview_cache(*PREVIEW_SIZE, foreground_masking=bool(foreground_masking)),
        video_cache=scene.preview_cache(*VIDEO_SIZE, foreground_masking=bool(foreground_masking)),
        focus_distance=focus,
        cloud=(np.asarray(xyz), np.asarray(rgb)),
        foreground_masking=bool(foreground_masking),
    )


def _scene_session(session: Session | None, scene, source: tuple, label: str, ref: dict) -> Session:
    """A session on a new scene: preview caches built, default preset path, history cleared."""
    base = session or Session()
    masking = base.preview.foreground_masking if base.preview is not None else True
    fresh = base.replace(scene=scene, scene_label=label, source=source, preview=build_preview(scene, masking),
                         path=None, history=History(), selected=0, frame_cams=None, video_cams=None,
                         targets={}, scene_ref=dict(ref))
    return set_preset(fresh, **DEFAULT_PRESET, record=False)


def set_foreground_masking(session: Session, on: bool) -> Session:
    """Preview caches with foreground masking on or off (the path and its history are kept)."""
    from studio.handlers.common import require_scene

    session = require_scene(session)
    if bool(on) == session.preview.foreground_masking:
        return session
    preview = build_preview(session.scene, bool(on))
    return session.replace(preview=preview, frame_cams=None, video_cams=None)


def load_sample(session: Session | None, name: str) -> Session:
    """Load a bundled sample scene (exact depth, no weights needed)."""
    from engine import samples
    from engine.scene import build_scene

    names = samples.list_samples()
    if name not in names:
        raise InputError(f"unknown sample {name!r}; available: {', '.join(names)}")
    image, depth = samples.load_sample(name)
    scene = build_scene(image, depth, *MODEL_SIZE)
    return _scene_session(session, scene, (image, depth, "crop"), f"sample: {name}", {"sample": name})


def load_upload(session: Session | None, image_file, depth_file=None, fov_y_deg=None, fit: str = "crop",
                weights_dir=None, progress=None) -> Session:
    """A scene from an uploaded image, with depth from an uploaded file or MoGe (when its weights exist).

    The image and its depth are kept on the server (`studio.persist`) so a reload can restore the scene."""
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
    fov_note = _fov_source(result, source, fov)
    scene = build_scene(image, result, *MODEL_SIZE, fit=fit)
    upload_id = persist.save_upload(image, result, fit, f"upload ({source})", fov_note)
    session = _scene_session(session, scene, (image, result, fit), f"upload ({source})", {"upload": upload_id})
    return session.replace(scene_ref={"upload": upload_id, "fov_note": fov_note})


def restore_upload(session: Session | None, upload_id: str) -> Session | None:
    """The scene of an earlier upload still on the server, or None when it is gone."""
    from engine.scene import build_scene

    found = persist.load_upload(upload_id)
    if found is None:
        return None
    image, result, fit, label, fov_note = found
    scene = build_scene(image, result, *MODEL_SIZE, fit=fit)
    session = _scene_session(session, scene, (image, result, fit), label, {"upload": upload_id})
    return session.replace(scene_ref={"upload": upload_id, "fov_note": fov_note})


def _fov_source(result, source: str, fov) -> str:
    """Where the scene's FOV comes from, in words (the status shows the FOV after the crop or pad)."""
    from engine.cameras import fov_y_from_intrinsics

    h, w = np.asarray(result.depth).shape
    whole = f"{float(fov_y_from_intrinsics(result.K, h)):.1f} deg for the whole {w}x{h} image"
    if fov is not None:
        return f"as entered: {whole}"
    if source == "MoGe":
        return f"estimated by MoGe: {whole}"
    if any("assumed" in n for n in result.notes):
        return f"assumed {whole}: the depth file has no intrinsics"
    return f"from the depth file: {whole}"


def _fit_text(fit) -> str:
    """How an image reaches the model frame, in words: 'crop: 1600x1200 -> x0.8 -> 1280x960, 128 px cut top and bottom'."""
    (sh, sw), (rh, rw), (th, tw) = fit.source_size, fit.resized_size, fit.target_size
    head = f"{fit.mode}: {sw}x{sh}"
    if (rh, rw) != (sh, sw):
        head += f" scaled x{fit.scale:.3g} to {rw}x{rh}"
    cuts = []
    if fit.mode == "crop":
        if fit.crop_y:
            cuts.append(f"{fit.crop_y} px cut top and bottom")
        if fit.crop_x:
            cuts.append(f"{fit.crop_x} px cut left and right")
    else:
        if fit.pad_y:
            cuts.append(f"{fit.pad_y} px black bars top and bottom")
        if fit.pad_x:
            cuts.append(f"{fit.pad_x} px black bars left and right")
    return head + (", " + ", ".join(cuts) if cuts else ", nothing cut") + f" -> {tw}x{th}"


def fit_preview(image_file, fit: str = "crop") -> tuple[np.ndarray, str]:
    """What the model will see of an upload before building: the fitted frame (a thumbnail) and the crop or
    padding in words."""
    from engine import images

    if image_file is None:
        raise InputError("upload an image first")
    validate.one_of(fit, FIT_MODES, "fit")
    image = images.load_image(str(image_file))
    plan = images.plan_fit(image.shape[:2], *MODEL_SIZE, mode=fit)
    # a thumbnail of the fitted frame: fit a small copy the same way (same crop / padding proportions)
    fitted, _ = images.fit_image(image, *FIT_PREVIEW_SIZE, mode=fit)
    return fitted, _fit_text(plan)


def scene_status(session: Session | None) -> str:
    """The scene status line: source, resolution, FOV and where it comes from, the crop, depth range, points."""
    from engine.images import plan_fit

    if session is None or session.scene is None:
        return "No scene loaded."
    s = session.scene.stats()
    parts = [session.scene_label]
    res = s.get("resolution")
    if res is not None:
        parts.append(f"{res[1]}x{res[0]}" if isinstance(res, (tuple, list)) else str(res))
    if "fov_y_deg" in s:
        note = session.scene_ref.get("fov_note") or ("the sample's camera" if "sample" in session.scene_ref
                                                     else "")
        parts.append(f"FOV {s['fov_y_deg']:.1f} deg" + (f" ({note})" if note else ""))
    if session.source is not None:
        image, _, fit = session.source
        parts.append(_fit_text(plan_fit(np.asarray(image).shape[:2], *MODEL_SIZE, mode=fit)))
    lo, hi = s.get("depth_min"), s.get("depth_max")
    if lo is not None and hi is not None:
        parts.append(f"depth {float(lo):.2f}-{float(hi):.2f}")
    pts = s.get("points", s.get("point_count"))
    if pts is not None:
        parts.append(f"{int(pts):,} points")
    return " | ".join(str(p) for p in parts)
