"""Camera-path edits: presets, keyframes added / deleted / duplicated / moved, undo and redo, interpolation.

Each edit takes a Session and returns a new one with its history recorded; bad input raises
`engine.errors.InputError` and the given session is left as it was (sessions are immutable).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from engine import validate
from engine.cameras import look_at_w2c
from engine.errors import InputError
from engine.json_input import parse_json
from engine.model_defaults import CHUNK_FRAMES
from studio.handlers.common import frame_index, require_path, require_scene, selected_index, vec3
from studio.handlers.view3d import view_box
from studio.state import PREVIEW_SIZE, History, Session
from studio.viewcam import MAX_PAYLOAD_BYTES, parse_view_payload, pose_from_plotly_camera, to_world

CHUNK_CHOICES = (1, 2, 3, 4)  # video length in chunks: (CHUNK_FRAMES - 1) * N + 1 = 120 N + 1 frames
DEFAULT_PRESET = dict(kind="zoom_in", rotation="center_facing", distance=0.3, chunks=1, corrected=False)


def frames_for_chunks(chunks) -> int:
    try:
        n = int(chunks)
    except (TypeError, ValueError):
        raise InputError(f"video length must be 1-4 chunks, got {chunks!r}") from None
    if n not in CHUNK_CHOICES:
        raise InputError(f"video length must be 1-4 chunks, got {chunks!r}")
    return (CHUNK_FRAMES - 1) * n + 1


def set_preset(session: Session | None, kind: str, rotation: str, distance, chunks, corrected: bool = False,
               *, record: bool = True) -> Session:
    """An official GEN3C trajectory as the path: a few editable keyframes whose cameras follow the official
    formula until edited."""
    from engine import cameras
    from engine.paths import CameraPath

    session = require_scene(session)
    if kind not in cameras.PRESETS:
        raise InputError(f"unknown preset {kind!r}; valid: {', '.join(cameras.PRESETS)}")
    if rotation not in cameras.ROTATION_MODES:
        raise InputError(f"unknown rotation mode {rotation!r}; valid: {', '.join(cameras.ROTATION_MODES)}")
    dist = validate.movement_distance(distance)
    frames = frames_for_chunks(chunks)
    scene = session.scene
    interp = session.path.interpolation if session.path is not None else "smooth"
    path = CameraPath.from_preset(kind, rotation, dist, num_frames=frames, K=np.asarray(scene.K, dtype=np.float64),
                                  height=scene.height, corrected=bool(corrected),
                                  initial_w2c=np.asarray(scene.w2c, dtype=np.float64), interpolation=interp)
    return session.with_path(path, record=record, num_frames=frames, selected=0, targets={})


def new_path(session: Session) -> Session:
    """Start over: a path whose only keyframe is the input camera (add keyframes to it from the view)."""
    from engine.paths import CameraPath

    session = require_scene(session)
    interp = session.path.interpolation if session.path is not None else "smooth"
    path = CameraPath.from_input_camera(_scene_fov(session), np.asarray(session.scene.w2c, dtype=np.float64),
                                        interpolation=interp)
    return session.with_path(path, selected=0, targets={})


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
    pos, target = vec3(position, "position"), vec3(look_at, "look-at")
    fov = _scene_fov(session) if fov_y_deg in (None, "") else validate.finite_float(fov_y_deg, "FOV")
    kf = Keyframe.from_look_at(pos, target, fov, validate.finite_float(roll_deg or 0.0, "roll"))
    return _insert(session, _insert_index(session, index), kf)


def _insert_index(session: Session, index) -> int:
    if session.path is None:
        return 1
    n = len(session.path.keyframes)
    if index in (None, ""):
        return n
    i = int(validate.finite_float(index, "keyframe index"))
    if not 0 <= i <= n:
        raise InputError(f"keyframe index {i} out of range 0..{n}")
    return i


def _view_fov(session: Session, payload: str) -> float:
    """The FOV of the frame the 3D view shows (the payload's "fov"), else the selected keyframe's, else the
    scene's."""
    data = parse_json(payload, "3D view camera", max_bytes=MAX_PAYLOAD_BYTES)
    fov = data.get("fov") if isinstance(data, dict) else None
    if fov is not None:
        return validate.fov_deg(fov, "3D view FOV")
    if session.path is not None:
        return float(session.path.keyframes[selected_index(session)].fov_y_deg)
    return _scene_fov(session)


def view_pose(session: Session, payload: str) -> np.ndarray:
    """The w2c of the camera the 3D view shows (payload from the browser, see studio/web/studio.js)."""
    camera, box = parse_view_payload(payload)
    return pose_from_plotly_camera(camera, box or view_box(session))


def add_keyframe_from_view(session: Session, payload: str) -> Session:
    """Add what the 3D view shows as a keyframe after the selected one: the view's position, direction and
    roll, and the FOV of the frame drawn over the view (the selected keyframe's)."""
    from engine.paths import Keyframe

    session = require_scene(session)
    kf = Keyframe(view_pose(session, payload), _view_fov(session, payload))
    index = selected_index(session) + 1 if session.path is not None else None
    return _insert(session, _insert_index(session, index), kf)


def set_keyframe_to_view(session: Session, payload: str) -> Session:
    """Move the selected keyframe to what the 3D view shows (its FOV and time are kept)."""
    session = require_path(session)
    i = selected_index(session)
    kf = session.path.keyframes[i]
    return session.with_path(session.path.with_keyframe(i, replace(kf, w2c=view_pose(session, payload))))


def add_keyframe_at_frame(session: Session, frame) -> Session:
    """Insert the camera of preview frame `frame` as a keyframe, between the keyframes around it."""
    from engine.paths import Keyframe

    session = require_path(session)
    t = frame_index(session, frame)
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
    i = int(validate.finite_float(index, "keyframe number"))
    n = len(session.path.keyframes)
    if not 0 <= i < n:
        raise InputError(f"keyframe {i + 1} does not exist (1..{n})")
    return session.replace(selected=i)


def delete_keyframe(session: Session) -> Session:
    session = require_path(session)
    i = selected_index(session)
    if len(session.path.keyframes) <= 1:
        raise InputError("the path's last keyframe cannot be deleted: use New path or a preset to start over")
    return session.with_path(session.path.removed(i), selected=max(0, i - 1))


def duplicate_keyframe(session: Session) -> Session:
    """A copy of the selected keyframe's camera right after it (selected): move it to make a new keyframe, or
    leave it for a pause."""
    session = require_path(session)
    i = selected_index(session)
    return session.with_path(session.path.duplicated(i), selected=i + 1)


def set_hold(session: Session, frames) -> Session:
    """Hold the selected keyframe for `frames` frames (0: the camera passes through)."""
    session = require_path(session)
    n = validate.integer(validate.finite_float(frames, "hold"), "hold", low=0)
    i = selected_index(session)
    path = session.path.with_hold(i, n)
    path.key_frames(session.num_frames) if path.can_animate else None  # holds that do not fit: InputError
    return session.with_path(path)


def set_ease(session: Session, ease: str) -> Session:
    """Ease the camera into / out of the selected keyframe (one of engine.paths.EASES)."""
    from engine.paths import EASES

    session = require_path(session)
    if ease not in EASES:
        raise InputError(f"ease must be one of {', '.join(EASES)}, got {ease!r}")
    return session.with_path(session.path.with_ease(selected_index(session), ease))


def move_keyframe(session: Session, step: int) -> Session:
    session = require_path(session)
    i = selected_index(session)
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
    data = parse_json(payload, "clicked point", max_bytes=MAX_PAYLOAD_BYTES)
    if not isinstance(data, dict) or not all(a in data for a in "xyz"):
        raise InputError("clicked point: expected JSON with x, y, z numbers")
    point = to_world(validate.finite_vec3([data[a] for a in "xyz"], "clicked point"))
    i = selected_index(session)
    kf = session.path.keyframes[i]
    up = -kf.rotation[:, 1]  # keep the keyframe's roll as far as the new direction allows
    w2c = look_at_w2c(kf.position, point, up)
    return session.with_path(session.path.with_keyframe(i, replace(kf, w2c=w2c)))


def undo(session: Session) -> Session:
    return _history_step(session, "undo")


def redo(session: Session) -> Session:
    return _history_step(session, "redo")


def _history_step(session: Session, direction: str) -> Session:
    session = require_scene(session)
    history, path = getattr(session.history, direction)(session.path)
    if path is False:
        raise InputError(f"nothing to {direction}")
    return _restore(session, history, path)


def _restore(session: Session, history: History, path) -> Session:
    """Undo/redo to `path`, keeping the selection on the same keyframe where it is still in the path (else
    on the same position)."""
    selected = 0
    if path is not None:
        selected = min(session.selected, len(path.keyframes) - 1)
        if session.path is not None:
            current = session.path.keyframes[selected_index(session)]
            same = [i for i, kf in enumerate(path.keyframes) if kf is current]
            if same:
                selected = min(same, key=lambda i: abs(i - session.selected))
    return session.with_path(path, record=False, history=history, selected=selected)
