"""The keyframe table: its rows (look-at or yaw/pitch/roll), numeric edits, the path summary line."""
from __future__ import annotations

import numpy as np

from engine.errors import InputError
from engine.validate import finite_float
from studio.handlers.common import require_path, selected_index
from studio.state import Session

TABLE_LOOK = ["#", "x", "y", "z", "look x", "look y", "look z", "fov"]
TABLE_YPR = ["#", "x", "y", "z", "yaw", "pitch", "roll", "fov"]


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
        vals = [finite_float(v, f"row {i + 1} {name}") for v, name in zip(new[1:8], TABLE_LOOK[1:])]
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
            f"selected #{selected_index(session) + 1}")
