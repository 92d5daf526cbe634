"""Input checks and session look-ups shared by the studio handlers."""
from __future__ import annotations

import math

from engine.errors import InputError
from studio.state import Session

MODEL_SIZE = (704, 1280)


def finite(value, name: str) -> float:
    """`value` as a finite float, else InputError naming `name`."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise InputError(f"{name} must be finite, got {value!r}")
    return v


def require_scene(session: Session | None) -> Session:
    if session is None or session.scene is None:
        raise InputError("load a scene first (pick a sample or upload an image)")
    return session


def require_path(session: Session | None) -> Session:
    require_scene(session)
    if session.path is None:
        raise InputError("there is no camera path yet: pick a preset or add keyframes")
    return session


def selected_index(session: Session) -> int:
    """The selected keyframe, clamped to the path's keyframes."""
    return min(max(session.selected, 0), len(session.path.keyframes) - 1)


def frame_index(session: Session, frame) -> int:
    """`frame` as a path frame number in 0..num_frames-1, else InputError."""
    t = int(round(finite(frame, "frame")))
    if not 0 <= t < session.num_frames:
        raise InputError(f"frame {t} out of range 0..{session.num_frames - 1}")
    return t
