"""An official GEN3C preset as a few editable keyframes: :class:`PathPreset`.

A preset path holds ``num_keyframes`` (2..12, default 9) keyframes: samples of the official preset
(``engine.cameras.preset_poses``) at evenly spaced moments of its ``num_frames`` frames (9 keyframes
of 121 frames: frames 0, 15, ..., 120). Between two of them the path evaluates the official formula
itself, at the frame count it is sampled for, so an unedited preset path gives exactly the
official cameras (``preset_trajectory``) for any frame count.

Which segments keep the formula: a segment follows the preset while its two keyframes are two
consecutive keyframes of the preset with their camera (pose and FOV) unchanged. Editing a
keyframe's camera, inserting a keyframe into the segment, or deleting or moving one of its
keyframes makes it an ordinary interpolated segment; every other segment keeps the formula.
Timing edits (time, hold, ease) keep it: they change when the camera gets where, not the shape.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine import validate
from engine.cameras import PRESETS, ROTATION_MODES, preset_poses
from engine.errors import InputError
from engine.paths.keyframe import Keyframe
from engine.validate import MAX_FRAMES

PRESET_KEYFRAMES = 9
MAX_PRESET_KEYFRAMES = 12
# A keyframe counts as the preset's own while it is this close to it (w2c entries, FOV degrees).
_SAME_CAMERA_TOL = 1e-9


def same_camera(a: Keyframe, b: Keyframe, tol: float = 0.0) -> bool:
    """Same pose and FOV (within ``tol``); time, hold and ease are not compared."""
    if tol == 0.0:
        return bool(np.array_equal(a.w2c, b.w2c)) and a.fov_y_deg == b.fov_y_deg
    return bool(np.abs(a.w2c - b.w2c).max() <= tol) and abs(a.fov_y_deg - b.fov_y_deg) <= tol


@dataclass(frozen=True, eq=False)
class PathPreset:
    """The official preset a path's keyframes were sampled from (see the module docstring).

    ``kind`` in ``engine.cameras.PRESETS``, ``rotation`` in ``ROTATION_MODES``, ``movement_distance``,
    ``center_depth`` and ``corrected`` as for ``preset_trajectory``; ``initial_w2c`` [4,4] the input
    camera; ``fov_y_deg`` the FOV of every preset camera; ``num_frames`` the frame count the
    keyframes were sampled at; ``num_keyframes`` how many.
    """

    kind: str
    rotation: str
    movement_distance: float
    fov_y_deg: float
    num_frames: int
    num_keyframes: int = PRESET_KEYFRAMES
    center_depth: float = 1.0
    corrected: bool = False
    initial_w2c: np.ndarray = None

    def __post_init__(self):
        if self.kind not in PRESETS:
            raise InputError(f"unknown preset {self.kind!r}; valid: {', '.join(PRESETS)}")
        if self.rotation not in ROTATION_MODES:
            raise InputError(f"unknown camera rotation {self.rotation!r}; valid: {', '.join(ROTATION_MODES)}")
        for name in ("movement_distance", "center_depth"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v):
                raise InputError(f"preset {name} must be a finite number, got {v!r}")
            object.__setattr__(self, name, float(v))
        if self.center_depth <= 0:
            raise InputError(f"preset center_depth must be positive, got {self.center_depth!r}")
        for name, lo, hi in (("num_frames", 2, MAX_FRAMES), ("num_keyframes", 2, MAX_PRESET_KEYFRAMES)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
                raise InputError(f"preset {name} must be an integer in [{lo}, {hi}], got {v!r}")
            object.__setattr__(self, name, int(v))
        if not isinstance(self.corrected, (bool, np.bool_)):
            raise InputError(f"preset corrected must be true or false, got {self.corrected!r}")
        object.__setattr__(self, "corrected", bool(self.corrected))
        try:
            fov = validate.fov_deg(self.fov_y_deg)
        except InputError as exc:
            raise InputError(f"preset {exc}") from None
        object.__setattr__(self, "fov_y_deg", fov)
        W0 = np.eye(4) if self.initial_w2c is None else validate.w2c(self.initial_w2c, "preset initial_w2c")
        if W0.ndim != 2:
            raise InputError("preset initial_w2c must be a single [4,4] matrix")
        W0 = np.array(W0, dtype=np.float64)
        W0.setflags(write=False)
        object.__setattr__(self, "initial_w2c", W0)
        w2cs = self.poses(self.key_positions(), self.num_frames)
        kfs = []
        for j, w2c in enumerate(w2cs):
            try:
                kfs.append(Keyframe(w2c, fov))
            except InputError:
                raise InputError(f"the {self.kind} preset with movement distance {self.movement_distance:g} puts "
                                 f"keyframe {j} on its look-at point; use a smaller movement distance") from None
        object.__setattr__(self, "_keyframes", tuple(kfs))

    def __eq__(self, other):
        if not isinstance(other, PathPreset):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self):
        return hash(self._fields())

    def _fields(self):
        return (self.kind, self.rotation, self.movement_distance, self.fov_y_deg, self.num_frames,
                self.num_keyframes, self.center_depth, self.corrected, self.initial_w2c.tobytes())

    @property
    def keyframes(self) -> tuple:
        """The preset's own keyframes (pose and FOV; no time, hold or ease)."""
        return self._keyframes

    def key_positions(self) -> np.ndarray:
        """Where each keyframe sits along the preset, as a fraction of the clip: j / (num_keyframes - 1)."""
        return np.arange(self.num_keyframes, dtype=np.float64) / (self.num_keyframes - 1)

    def poses(self, v: np.ndarray, num_frames: int) -> np.ndarray:
        """Official w2cs (float64 [N,4,4]) at clip fractions ``v`` of a ``num_frames``-frame preset; a
        camera on its look-at point is an InputError."""
        w2cs = preset_poses(self.kind, np.asarray(v) * (num_frames - 1), num_frames, self.movement_distance,
                            self.rotation, self.center_depth, initial_w2c=self.initial_w2c,
                            corrected=self.corrected)
        if not np.all(np.isfinite(w2cs)):
            raise InputError(f"the {self.kind} preset with movement distance {self.movement_distance:g} puts the "
                             f"camera on its look-at point at {num_frames} frames; use a smaller movement distance")
        return w2cs

    def backed_segments(self, keyframes) -> np.ndarray:
        """For each segment of a path with these keyframes, the preset keyframe j it starts at when it
        still follows the formula (from preset keyframe j to j + 1), else -1."""
        own = self._keyframes
        match = [[j for j, p in enumerate(own) if same_camera(kf, p, _SAME_CAMERA_TOL)] for kf in keyframes]
        out = np.full(max(len(keyframes) - 1, 0), -1, dtype=int)
        for k in range(len(out)):
            nxt = set(match[k + 1])
            for j in match[k]:
                if j + 1 in nxt:
                    out[k] = j
                    break
        return out

    def to_dict(self) -> dict:
        return {
            "kind": self.kind, "rotation": self.rotation, "movement_distance": self.movement_distance,
            "center_depth": self.center_depth, "corrected": self.corrected, "fov_y_deg": self.fov_y_deg,
            "num_frames": self.num_frames, "num_keyframes": self.num_keyframes,
            "initial_w2c": [float(x) for x in self.initial_w2c.reshape(-1)],
        }

    @classmethod
    def from_dict(cls, d, matrix) -> "PathPreset":
        """Inverse of :meth:`to_dict`; ``matrix(value, where)`` reads the 16-number ``initial_w2c``."""
        if not isinstance(d, dict):
            raise InputError("camera path preset must be a JSON object")
        missing = [k for k in ("kind", "rotation", "movement_distance", "fov_y_deg", "num_frames", "num_keyframes")
                   if k not in d]
        if missing:
            raise InputError(f"camera path preset is missing {missing[0]!r}")
        for key in ("kind", "rotation"):
            if not isinstance(d[key], str):
                raise InputError(f"camera path preset {key} must be a string")
        fov = d["fov_y_deg"]
        if isinstance(fov, bool) or not isinstance(fov, (int, float)):
            raise InputError("camera path preset fov_y_deg must be a number")
        W0 = matrix(d["initial_w2c"], "camera path preset initial_w2c") if "initial_w2c" in d else None
        return cls(d["kind"], d["rotation"], d["movement_distance"], fov, d["num_frames"], d["num_keyframes"],
                   d.get("center_depth", 1.0), d.get("corrected", False), W0)
