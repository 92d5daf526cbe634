"""Input checks and session look-ups shared by the studio handlers."""
from __future__ import annotations

import numpy as np

from engine import validate
from engine.errors import InputError
from engine.model_defaults import MODEL_SIZE
from engine.validate import finite_float
from studio.state import Session


def vec3(values, name: str) -> np.ndarray:
    """Three numbers typed as "x y z" / "x, y, z" or given as a list, checked by engine.validate."""
    if isinstance(values, str):
        values = [v for v in values.replace(",", " ").split() if v]
    return validate.finite_vec3(values, name)


def require_scene(session: Session | None) -> Session:
    if session is not None and session.scene is None and session.released:
        raise InputError(session.released)
    if session is None or session.scene is None:
        raise InputError("load a scene first (pick a sample or upload an image)")
    return session


def require_path(session: Session | None) -> Session:
    require_scene(session)
    if session.path is None:
        raise InputError("there is no camera path yet: pick a preset or add keyframes")
    return session


def scene_path(session: Session):
    """The session's path with the scene camera's lens (its K: principal point, pixel aspect), as the engine
    samples a path for generation, so previews, exports and the video use the same cameras. A path that carries
    a lens of its own (an imported project file) keeps it."""
    path = session.path
    if path is None or path.intrinsics is not None or session.scene is None:
        return path
    scene = session.scene
    return path.with_intrinsics(np.asarray(scene.K, dtype=np.float64), scene.height, scene.width)


def selected_index(session: Session) -> int:
    """The selected keyframe, clamped to the path's keyframes."""
    return min(max(session.selected, 0), len(session.path.keyframes) - 1)


def frame_index(session: Session, frame) -> int:
    """`frame` as a path frame number in 0..num_frames-1, else InputError."""
    t = int(round(finite_float(frame, "frame")))
    if not 0 <= t < session.num_frames:
        raise InputError(f"frame {t} out of range 0..{session.num_frames - 1}")
    return t
