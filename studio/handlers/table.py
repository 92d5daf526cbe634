"""The keyframe table: its rows (look-at or yaw/pitch/roll), numeric edits of one cell or of whole rows,
the path summary line.

Look-at mode shows, for each keyframe, the point it looks at: the point the user typed (kept in
`Session.targets`, so moving a camera keeps it aimed at the same point and the look columns do not change),
else the point `focus_distance` (the scene's median depth) ahead.
"""
from __future__ import annotations

import json

import numpy as np

from engine import validate
from engine.errors import InputError
from engine.validate import finite_float
from studio.handlers.common import require_path, selected_index
from studio.state import Session

TABLE_LOOK = ["#", "x", "y", "z", "look x", "look y", "look z", "fov"]
TABLE_YPR = ["#", "x", "y", "z", "yaw", "pitch", "roll", "fov"]
TABLE_MODES = ("look-at", "yaw/pitch/roll")
TIMING = ["hold", "ease"]  # the browser list's timing columns (frames held, ease), after the camera ones
DIGITS = 4


def look_target(session: Session, kf) -> np.ndarray:
    """The look-at point the table shows for keyframe `kf`."""
    target = session.targets.get(kf)
    return np.asarray(target, dtype=np.float64) if target is not None else kf.look_target(session.preview.focus_distance)


def keyframe_table(session: Session | None, mode: str = "look-at") -> tuple[list[str], list[list]]:
    """(headers, rows) of the keyframe table."""
    headers = TABLE_YPR if mode == "yaw/pitch/roll" else TABLE_LOOK
    if session is None or session.path is None:
        return headers, []
    rows = []
    for i, kf in enumerate(session.path.keyframes):
        p = kf.position
        rest = list(kf.yaw_pitch_roll()) if mode == "yaw/pitch/roll" else list(look_target(session, kf))
        rows.append([i + 1] + [round(float(v), DIGITS) for v in list(p) + rest] + [round(kf.fov_y_deg, 3)])
    return headers, rows


def table_payload(session: Session | None, mode: str = "look-at", nonce: int = 0) -> str:
    """The keyframe list as JSON for the browser table (studio/web/studio.js renders and edits it)."""
    from engine.paths import EASES

    headers, rows = keyframe_table(session, mode)
    has_path = session is not None and session.path is not None
    selected = selected_index(session) if has_path else -1
    timeline = None
    if has_path:
        kfs = session.path.keyframes
        rows = [row + [kf.hold, kf.ease] for row, kf in zip(rows, kfs)]
        if session.path.can_animate:
            arrivals = session.path.key_frames(session.num_frames)
            timeline = {"frames": session.num_frames, "at": [round(float(a), 3) for a in arrivals],
                        "hold": [kf.hold for kf in kfs]}
    return json.dumps({"headers": headers + TIMING, "rows": rows, "selected": selected, "mode": mode,
                       "eases": list(EASES), "timeline": timeline, "nonce": nonce})


def _replace(session: Session, i: int, new_kf, target=None) -> Session:
    path = session.path.with_keyframe(i, new_kf)
    targets = dict(session.targets)
    old = session.path.keyframes[i]
    if target is not None:
        targets[new_kf] = np.asarray(target, dtype=np.float64)
    elif old in targets and old not in path.keyframes:
        targets.pop(old)
    return session.with_path(path, targets=targets)


def edit_cell(session: Session, row, column: str, value, mode: str = "look-at") -> Session:
    """Set one number of the keyframe table; the rest of that keyframe stays exactly as it was.

    row: 0-based keyframe index; column: a header of the table in `mode` (not "#"). In look-at mode a new
    position keeps the keyframe aimed at its look-at point; a new look-at point turns it (roll kept)."""
    session = require_path(session)
    if mode not in TABLE_MODES:
        raise InputError(f"table mode must be one of {', '.join(TABLE_MODES)}, got {mode!r}")
    headers = (TABLE_YPR if mode == "yaw/pitch/roll" else TABLE_LOOK) + TIMING
    n = len(session.path.keyframes)
    try:
        i = int(row)
    except (TypeError, ValueError):
        raise InputError(f"keyframe table: row must be a number, got {row!r}") from None
    if not 0 <= i < n:
        raise InputError(f"keyframe table: row {i + 1} does not exist (1..{n})")
    if column not in headers[1:]:
        raise InputError(f"keyframe table: no column {column!r} in {mode} mode")
    kf = session.path.keyframes[i]
    if column == "ease":
        from engine.paths import EASES

        if value not in EASES:
            raise InputError(f"keyframe {i + 1} ease must be one of {', '.join(EASES)}, got {value!r}")
        return session.with_path(session.path.with_ease(i, value))
    v = finite_float(value, f"keyframe {i + 1} {column}")
    if column == "hold":
        path = session.path.with_hold(i, validate.integer(v, f"keyframe {i + 1} hold", low=0))
        if path.can_animate:
            path.key_frames(session.num_frames)  # holds that do not fit the clip: InputError
        return session.with_path(path)
    col = headers.index(column)
    if column == "fov":
        return _replace(session, i, kf.with_fov(validate.fov_deg(v, f"keyframe {i + 1} fov")), session.targets.get(kf))
    if col <= 3:  # a position
        pos = kf.position.copy()
        pos[col - 1] = v
        if mode == "look-at":
            target = look_target(session, kf)
            if np.linalg.norm(target - pos) < 1e-9:
                raise InputError(f"keyframe {i + 1}: the position would be its own look-at point")
            roll = kf.yaw_pitch_roll()[2]
            return _replace(session, i, type(kf).from_look_at(pos, target, kf.fov_y_deg, roll).with_timing_of(kf), target)
        return _replace(session, i, kf.with_position(pos))
    if mode == "look-at":
        target = look_target(session, kf).copy()
        target[col - 4] = v
        if np.linalg.norm(target - kf.position) < 1e-9:
            raise InputError(f"keyframe {i + 1}: the look-at point would be the camera position")
        roll = kf.yaw_pitch_roll()[2]
        return _replace(session, i, type(kf).from_look_at(kf.position, target, kf.fov_y_deg, roll).with_timing_of(kf), target)
    ypr = list(kf.yaw_pitch_roll())
    ypr[col - 4] = v
    return _replace(session, i, kf.with_ypr(*ypr))


def edit_table(session: Session, rows, mode: str = "look-at") -> Session:
    """Apply a numeric edit of the keyframe table; only rows whose shown values changed are rebuilt."""
    from engine.paths import Keyframe

    session = require_path(session)
    _, current = keyframe_table(session, mode)
    rows = _table_rows(rows)
    if len(rows) != len(current):
        raise InputError(f"the table must keep {len(current)} rows (use the buttons to add or delete keyframes)")
    path = session.path
    targets = dict(session.targets)
    for i, (new, old) in enumerate(zip(rows, current)):
        if len(new) < 8:
            raise InputError(f"row {i + 1}: expected 8 columns, got {len(new)}")
        vals = [finite_float(v, f"row {i + 1} {name}") for v, name in zip(new[1:8], TABLE_LOOK[1:])]
        if np.allclose(vals, old[1:8], rtol=0, atol=5e-5):
            continue
        kf = path.keyframes[i]
        pos, rest, fov = vals[0:3], vals[3:6], vals[6]
        if mode == "yaw/pitch/roll":
            new_kf = Keyframe.from_position_ypr(pos, *rest, fov).with_timing_of(kf)
        else:
            roll = kf.yaw_pitch_roll()[2]
            new_kf = Keyframe.from_look_at(pos, rest, fov, roll).with_timing_of(kf)
            targets[new_kf] = np.asarray(rest, dtype=np.float64)
        path = path.with_keyframe(i, new_kf)
    if path is session.path:
        return session
    return session.with_path(path, targets=targets)


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
    if not p.can_animate:
        return "1 keyframe | add a keyframe: a path needs two to preview motion or generate | selected #1"
    speed = ", constant speed" if p.constant_speed else ""
    preset = ""
    if p.preset is not None:
        backed = p.preset_segments()
        preset = f" | {p.preset.kind}" + (" preset" if all(backed) else f" ({sum(backed)}/{len(backed)} as preset)")
    return (f"{len(p.keyframes)} keyframes | {session.num_frames} frames | {p.interpolation}{speed}{preset} | "
            f"selected #{selected_index(session) + 1}")
