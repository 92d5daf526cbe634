"""Studio logic as plain functions: Session in, Session (or display values) out. No gradio here.

Every function validates what it gets and raises `engine.errors.InputError` with a one-line message
for bad input; the session it was given is never modified (sessions are immutable), so a failed edit
changes nothing. `studio.layout` wires these to components and turns InputError into a visible error.
"""
from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import torch

from engine.errors import InputError
from studio import figures
from studio.state import COVERAGE_WARN, PREVIEW_SIZE, VIDEO_SIZE, History, Preview, Session
from studio.viewcam import (
    SceneBox,
    parse_view_payload,
    pose_from_plotly_camera,
    to_display,
    to_world,
    w2c_from_look,
)

MODEL_SIZE = (704, 1280)
CHUNK_CHOICES = (1, 2, 3, 4)  # video length in chunks: 120 * N + 1 frames
DEFAULT_PRESET = dict(kind="zoom_in", rotation="center_facing", distance=0.3, chunks=1, corrected=False)
TABLE_LOOK = ["#", "x", "y", "z", "look x", "look y", "look z", "fov"]
TABLE_YPR = ["#", "x", "y", "z", "yaw", "pitch", "roll", "fov"]
MAX_UPLOAD_SIDE = 8192


def frames_for_chunks(chunks) -> int:
    try:
        n = int(chunks)
    except (TypeError, ValueError):
        raise InputError(f"video length must be 1-4 chunks, got {chunks!r}") from None
    if n not in CHUNK_CHOICES:
        raise InputError(f"video length must be 1-4 chunks, got {chunks!r}")
    return 120 * n + 1


def _finite(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise InputError(f"{name} must be finite, got {value!r}")
    return v


def _vec3(values, name: str) -> np.ndarray:
    if isinstance(values, str):
        values = [v for v in values.replace(",", " ").split() if v]
    try:
        items = list(values)
    except TypeError:
        raise InputError(f"{name} must be three numbers, got {values!r}") from None
    if len(items) != 3:
        raise InputError(f"{name} must be three numbers (x, y, z), got {len(items)}")
    return np.array([_finite(v, f"{name} {a}") for v, a in zip(items, "xyz")])


def require_scene(session: Session | None) -> Session:
    if session is None or session.scene is None:
        raise InputError("load a scene first (pick a sample or upload an image)")
    return session


def require_path(session: Session | None) -> Session:
    require_scene(session)
    if session.path is None:
        raise InputError("there is no camera path yet: pick a preset or add keyframes")
    return session


# ------------------------------------------------------------------------------------------
# scene


def new_session(folder: str = "") -> Session:
    return Session(folder=folder)


OFFICIAL_FILTER_THRESHOLD = 0.05


def preview_cache(small_scene, model_height: int):
    """A Cache3D of a down-sized scene that shows what the model-resolution cache shows.

    The official depth-edge filter compares depths over a 5x5 pixel window, so at 1/s of the
    resolution the same edges look s times steeper; the threshold is scaled by s so the preview drops
    the same points the model-resolution cache drops (coverage then agrees across resolutions).
    """
    from engine.cache3d import Cache3D

    scale = model_height / small_scene.height
    return Cache3D(small_scene.image, small_scene.depth, small_scene.w2c, small_scene.K,
                   filter_points_threshold=OFFICIAL_FILTER_THRESHOLD * scale)


def _scene_session(session: Session | None, scene, source: tuple, label: str) -> Session:
    """A session on a new scene: preview caches built, default preset path, history cleared."""
    ph, pw = PREVIEW_SIZE
    vh, vw = VIDEO_SIZE
    small = scene.resized(ph, pw)
    tiny = scene.resized(vh, vw)
    depth = np.asarray(scene.depth).reshape(-1)
    valid = depth[np.isfinite(depth) & (depth > 0)]
    focus = float(np.median(valid)) if len(valid) else 1.0
    xyz, rgb = scene.point_cloud(max_points=figures.POINT_BUDGET)
    preview = Preview(
        frame_cache=preview_cache(small, scene.height),
        video_cache=preview_cache(tiny, scene.height),
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
    if fit not in ("crop", "pad"):
        raise InputError(f"fit must be 'crop' or 'pad', got {fit!r}")
    image = images.load_image(str(image_file))
    h, w = image.shape[:2]
    fov = None if fov_y_deg in (None, "", 0) else _finite(fov_y_deg, "FOV")
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


# ------------------------------------------------------------------------------------------
# path edits (each returns a new Session, history recorded)


def set_preset(session: Session | None, kind: str, rotation: str, distance, chunks, corrected: bool = False,
               *, record: bool = True) -> Session:
    """An official GEN3C trajectory as the path: every frame a keyframe (exact official cameras)."""
    from engine import cameras
    from engine.paths import CameraPath

    session = require_scene(session)
    if kind not in cameras.PRESETS:
        raise InputError(f"unknown preset {kind!r}; valid: {', '.join(cameras.PRESETS)}")
    if rotation not in cameras.ROTATION_MODES:
        raise InputError(f"unknown rotation mode {rotation!r}; valid: {', '.join(cameras.ROTATION_MODES)}")
    dist = _finite(distance, "movement distance")
    if not 0 < abs(dist) <= 10:
        raise InputError(f"movement distance must be in (0, 10], got {distance!r}")
    frames = frames_for_chunks(chunks)
    scene = session.scene
    w2cs, Ks = cameras.preset_trajectory(kind, scene.w2c, scene.K, frames, dist, rotation,
                                         corrected=bool(corrected))
    interp = session.path.interpolation if session.path is not None else "smooth"
    path = CameraPath.from_cameras(w2cs, Ks, scene.height, interpolation=interp)
    return session.with_path(path, record=record, num_frames=frames, selected=0)


def set_length(session: Session, chunks) -> Session:
    """Change the video length (frames) without touching the keyframes."""
    session = require_scene(session)
    frames = frames_for_chunks(chunks)
    if frames == session.num_frames:
        return session
    return session.replace(num_frames=frames, frame_cams=None, video_cams=None)


def _scene_fov(session: Session) -> float:
    from engine.cameras import fov_y_from_intrinsics

    return float(fov_y_from_intrinsics(session.scene.K, session.scene.height))


def _insert(session: Session, index: int, keyframe) -> Session:
    from engine.paths import CameraPath, Keyframe

    if session.path is None:
        first = Keyframe(np.asarray(session.scene.w2c, dtype=np.float64), _scene_fov(session))
        path = CameraPath((first, keyframe))
        return session.with_path(path, selected=1)
    path = session.path.inserted(index, keyframe)
    return session.with_path(path, selected=index)


def add_keyframe(session: Session, position, look_at, fov_y_deg=None, roll_deg=0.0, index=None) -> Session:
    """Add a keyframe from explicit numbers (world units, OpenCV axes), after the selected one by default."""
    from engine.paths import Keyframe

    session = require_scene(session)
    pos, target = _vec3(position, "position"), _vec3(look_at, "look-at")
    fov = _scene_fov(session) if fov_y_deg in (None, "") else _finite(fov_y_deg, "FOV")
    kf = Keyframe.from_look_at(pos, target, fov, _finite(roll_deg or 0.0, "roll"))
    return _insert(session, _insert_index(session, index), kf)


def _insert_index(session: Session, index) -> int:
    if session.path is None:
        return 1
    n = len(session.path.keyframes)
    if index in (None, ""):
        return n
    i = int(_finite(index, "keyframe index"))
    if not 0 <= i <= n:
        raise InputError(f"keyframe index {i} out of range 0..{n}")
    return i


def view_box(session: Session) -> SceneBox:
    """The 3D view's axis box: the point cloud, the seed camera and every path camera."""
    xyz = session.preview.cloud[0]
    extra = [np.zeros((1, 3))]
    if session.path is not None:
        extra.append(np.array([kf.position for kf in session.path.keyframes]))
    return SceneBox.around(to_display(np.concatenate([xyz] + extra)))


def add_keyframe_from_view(session: Session, payload: str) -> Session:
    """Add the camera the user sees in the 3D view (payload from studio.js.READ_VIEW_JS) as a keyframe.

    The keyframe takes the scene's vertical FOV (see studio.viewcam for why).
    """
    from engine.paths import Keyframe

    session = require_scene(session)
    camera, box = parse_view_payload(payload)
    w2c = pose_from_plotly_camera(camera, box or view_box(session))
    kf = Keyframe(w2c, _scene_fov(session))
    return _insert(session, _insert_index(session, None), kf)


def add_keyframe_at_frame(session: Session, frame) -> Session:
    """Insert the camera of preview frame `frame` as a keyframe, between the keyframes around it."""
    from engine.paths import Keyframe

    session = require_path(session)
    t = _frame_index(session, frame)
    w2cs, _, fovs = session.path.sample_numpy(session.num_frames, *PREVIEW_SIZE)
    times = session.path.frame_times(session.num_frames)
    keys = session.path.key_times()
    kf = Keyframe(w2cs[t], float(fovs[t]))
    index = int(np.searchsorted(keys, times[t], side="right"))
    if index > 0 and np.isclose(keys[index - 1], times[t]):
        raise InputError(f"frame {t} is already keyframe {index}")
    return _insert(session, index, kf)


def select_keyframe(session: Session, index) -> Session:
    session = require_path(session)
    i = int(_finite(index, "keyframe number"))
    n = len(session.path.keyframes)
    if not 0 <= i < n:
        raise InputError(f"keyframe {i + 1} does not exist (1..{n})")
    return session.replace(selected=i)


def _selected(session: Session) -> int:
    return min(max(session.selected, 0), len(session.path.keyframes) - 1)


def delete_keyframe(session: Session) -> Session:
    session = require_path(session)
    i = _selected(session)
    if len(session.path.keyframes) <= 2:
        raise InputError("a path needs at least 2 keyframes: add one before deleting")
    return session.with_path(session.path.removed(i), selected=max(0, i - 1))


def duplicate_keyframe(session: Session) -> Session:
    session = require_path(session)
    path = session.path.duplicated(_selected(session))
    return session.with_path(path, selected=len(path.keyframes) - 1)


def move_keyframe(session: Session, step: int) -> Session:
    session = require_path(session)
    i = _selected(session)
    j = i + int(step)
    if not 0 <= j < len(session.path.keyframes):
        raise InputError(f"keyframe {i + 1} cannot move further {'up' if step < 0 else 'down'}")
    return session.with_path(session.path.moved(i, j), selected=j)


def set_interpolation(session: Session, interpolation: str, constant_speed: bool) -> Session:
    session = require_path(session)
    if interpolation == session.path.interpolation and bool(constant_speed) == session.path.constant_speed:
        return session
    return session.with_path(session.path.with_options(interpolation=interpolation,
                                                       constant_speed=bool(constant_speed)))


def look_at_clicked_point(session: Session, payload: str) -> Session:
    """Turn the selected keyframe toward a clicked cloud point (payload from studio.js.CLICK_HOOK_JS)."""
    session = require_path(session)
    try:
        data = json.loads(payload)
        point = to_world(np.array([float(data[a]) for a in "xyz"]))
    except (TypeError, ValueError, KeyError, json.JSONDecodeError):
        raise InputError("clicked point: expected JSON with x, y, z numbers") from None
    if not np.isfinite(point).all():
        raise InputError("clicked point: non-finite coordinates")
    i = _selected(session)
    kf = session.path.keyframes[i]
    up = -kf.rotation[:, 1]  # keep the keyframe's roll as far as the new direction allows
    w2c = w2c_from_look(kf.position, point, up)
    return session.with_path(session.path.with_keyframe(i, replace(kf, w2c=w2c)))


def undo(session: Session) -> Session:
    session = require_scene(session)
    history, path = session.history.undo(session.path)
    if path is False:
        raise InputError("nothing to undo")
    return _restore(session, history, path)


def redo(session: Session) -> Session:
    session = require_scene(session)
    history, path = session.history.redo(session.path)
    if path is False:
        raise InputError("nothing to redo")
    return _restore(session, history, path)


def _restore(session: Session, history: History, path) -> Session:
    selected = 0 if path is None else min(session.selected, len(path.keyframes) - 1)
    return session.with_path(path, record=False, history=history, selected=selected)


# ------------------------------------------------------------------------------------------
# keyframe table


def keyframe_table(session: Session | None, mode: str = "look-at") -> tuple[list[str], list[list]]:
    """(headers, rows) of the keyframe table; look-at points are `focus_distance` ahead of the camera."""
    headers = TABLE_YPR if mode == "yaw/pitch/roll" else TABLE_LOOK
    if session is None or session.path is None:
        return headers, []
    rows = []
    for i, kf in enumerate(session.path.keyframes):
        p = kf.position
        if mode == "yaw/pitch/roll":
            rest = list(kf.yaw_pitch_roll())
        else:
            rest = list(kf.look_target(session.preview.focus_distance))
        rows.append([i + 1] + [round(float(v), 4) for v in list(p) + rest] + [round(kf.fov_y_deg, 3)])
    return headers, rows


def edit_table(session: Session, rows, mode: str = "look-at") -> Session:
    """Apply a numeric edit of the keyframe table; only rows whose shown values changed are rebuilt."""
    from engine.paths import Keyframe

    session = require_path(session)
    _, current = keyframe_table(session, mode)
    rows = _table_rows(rows)
    if len(rows) != len(current):
        raise InputError(f"the table must keep {len(current)} rows (use the buttons to add or delete keyframes)")
    path = session.path
    for i, (new, old) in enumerate(zip(rows, current)):
        if len(new) < 8:
            raise InputError(f"row {i + 1}: expected 8 columns, got {len(new)}")
        vals = [_finite(v, f"row {i + 1} {name}") for v, name in zip(new[1:8], TABLE_LOOK[1:])]
        if np.allclose(vals, old[1:8], rtol=0, atol=5e-5):
            continue
        kf = path.keyframes[i]
        pos, rest, fov = vals[0:3], vals[3:6], vals[6]
        if mode == "yaw/pitch/roll":
            new_kf = Keyframe.from_position_ypr(pos, *rest, fov, kf.time)
        else:
            roll = kf.yaw_pitch_roll()[2]
            new_kf = Keyframe.from_look_at(pos, rest, fov, roll, kf.time)
        path = path.with_keyframe(i, new_kf)
    if path is session.path:
        return session
    return session.with_path(path)


def _table_rows(rows) -> list[list]:
    if hasattr(rows, "values") and hasattr(rows, "columns"):  # pandas DataFrame
        rows = rows.values.tolist()
    if isinstance(rows, dict) and "data" in rows:
        rows = rows["data"]
    if not isinstance(rows, (list, tuple)):
        raise InputError("keyframe table: expected rows of numbers")
    return [list(r) for r in rows]


def path_summary(session: Session | None) -> str:
    if session is None or session.path is None:
        return "No camera path."
    p = session.path
    speed = ", constant speed" if p.constant_speed else ""
    return (f"{len(p.keyframes)} keyframes | {session.num_frames} frames | {p.interpolation}{speed} | "
            f"selected #{_selected(session) + 1}")


# ------------------------------------------------------------------------------------------
# preview


def _frame_index(session: Session, frame) -> int:
    t = int(round(_finite(frame, "frame")))
    if not 0 <= t < session.num_frames:
        raise InputError(f"frame {t} out of range 0..{session.num_frames - 1}")
    return t


def with_cameras(session: Session) -> Session:
    """The session with the path's preview cameras sampled (cached until the path changes)."""
    if session.path is None or session.frame_cams is not None:
        return session
    return session.replace(frame_cams=session.path.sample(session.num_frames, *PREVIEW_SIZE),
                           video_cams=session.path.sample(session.num_frames, *VIDEO_SIZE))


def render_frame(session: Session, frame, show_holes: bool = False) -> tuple[np.ndarray, float]:
    """The warped preview of one frame (uint8 [H,W,3] at PREVIEW_SIZE) and its coverage in [0, 1]."""
    session = with_cameras(require_path(session))
    t = _frame_index(session, frame)
    w2cs, Ks = session.frame_cams
    images, masks = session.preview.frame_cache.render(w2cs[t:t + 1], Ks[t:t + 1])
    return _to_rgb(images[0, -1], masks[0, -1], show_holes), float(masks[0, -1].float().mean())


HOLE_RGB = np.array([255, 0, 170], dtype=np.uint8)


def _to_rgb(image, mask, show_holes: bool) -> np.ndarray:
    from engine.images import to_uint8

    rgb = to_uint8(image)
    if show_holes:
        hole = np.asarray(mask.detach().cpu().numpy()[0] < 0.5)
        rgb = rgb.copy()
        rgb[hole] = HOLE_RGB
    return rgb


def render_path(session: Session, show_holes: bool = False, stride: int = 1):
    """Every `stride`-th frame of the path at VIDEO_SIZE.

    Returns (frame indices [F], frames uint8 [F,H,W,3], coverage [F] in [0, 1]).
    """
    session = with_cameras(require_path(session))
    stride = max(int(stride), 1)
    w2cs, Ks = session.video_cams
    index = np.arange(0, len(w2cs), stride)
    if index[-1] != len(w2cs) - 1:
        index = np.append(index, len(w2cs) - 1)  # always show where the path ends
    sel = torch.as_tensor(index)
    images, masks = session.preview.video_cache.render(w2cs[sel], Ks[sel], frame_chunk=32)
    frames = np.stack([_to_rgb(images[t, -1], masks[t, -1], show_holes) for t in range(len(index))])
    coverage = masks[:, -1].float().mean(dim=(1, 2, 3)).cpu().numpy()
    return index, frames, coverage


def preview_stride() -> int:
    """Frames to skip in the whole-path preview: every frame on a GPU, every 2nd on a CPU."""
    return 1 if torch.cuda.is_available() else 2


def coverage_warning(coverage: np.ndarray, frames: np.ndarray | None = None) -> str:
    coverage = np.asarray(coverage)
    frames = np.arange(len(coverage)) if frames is None else np.asarray(frames)
    low = np.flatnonzero(coverage < COVERAGE_WARN)
    if len(low) == 0:
        return f"Coverage stays above {COVERAGE_WARN:.0%} along the whole path."
    return (f"Warning: {len(low)} frames (first {frames[low[0]]}, worst {frames[np.argmin(coverage)]} at "
            f"{float(np.min(coverage)):.0%}) are under {COVERAGE_WARN:.0%} covered: "
            "the camera leaves what the cache can show; the model will have to invent those parts.")


def scene_figure(session: Session | None, frame=None):
    """The 3D view for the session (point cloud, keyframes, path, every frame's camera for the highlight)."""
    if session is None or session.scene is None:
        return None
    session = with_cameras(session)
    cloud_xyz, cloud_rgb = session.preview.cloud
    keyframes, centres, cams, current = [], None, None, 0
    selected = None
    if session.path is not None:
        keyframes = [(kf.w2c, kf.fov_y_deg) for kf in session.path.keyframes]
        selected = _selected(session)
        w2cs = session.frame_cams[0].double().numpy()
        centres = -np.einsum("tji,tj->ti", w2cs[:, :3, :3], w2cs[:, :3, 3])
        fy = session.frame_cams[1].double().numpy()[:, 1, 1]
        cams = (w2cs, np.degrees(2 * np.arctan(PREVIEW_SIZE[0] / (2 * fy))))
        if frame is not None:
            current = min(max(int(frame), 0), session.num_frames - 1)
    return figures.scene_figure(
        cloud_xyz, cloud_rgb, box=view_box(session), aspect=MODEL_SIZE[1] / MODEL_SIZE[0],
        focus_distance=session.preview.focus_distance, keyframes=keyframes, selected=selected,
        path_centres=centres, frame_cameras=cams, current=current, uirevision=session.scene_label,
    )
