"""Keyframed camera paths: editing, interpolation to per-frame cameras, and file I/O.

A :class:`CameraPath` is an immutable list of :class:`Keyframe` (pose + vertical FOV + optional
time). Every edit returns a new path, so undo/redo is a list of paths. ``CameraPath.sample`` turns
a path into the exact per-frame cameras (w2cs [T,4,4], Ks [T,3,3]) that both the studio preview
and the generator use.

File formats (all validated; bad files raise :class:`engine.errors.InputError`, nothing is
half-written because writes go to a temporary file that is renamed into place):

* project JSON (``save_path_json`` / ``load_path_json``),
* nerfstudio ``camera_path.json`` (``to_nerfstudio`` / ``save_nerfstudio`` / ``load_nerfstudio``),
* GEN3C NPZ with ``w2cs_all`` / ``Ks_all`` (``save_npz`` / ``load_npz``).
"""
from __future__ import annotations

import io
import json
import math
import os
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from engine.cameras import (
    _check_fov,
    _check_hw,
    fov_y_from_intrinsics,
    intrinsics_from_fov,
    invert_pose,
    look_at_w2c,
    opencv_c2w_to_opengl,
    opengl_c2w_to_opencv,
    validate_intrinsics,
    validate_w2c,
)
from engine.errors import InputError
from engine.fileio import atomic_write_bytes

INTERPOLATIONS = ("linear", "smooth")
MAX_KEYFRAMES = 10000
MAX_FRAMES = 100000
MAX_FILE_BYTES = 20 * 1024 * 1024
PATH_FORMAT = "gen3c-studio-path"
PATH_VERSION = 1
# Catmull-Rom exponent for positions: 0.5 = centripetal (no cusps or self-intersections).
_CR_ALPHA = 0.5


# --------------------------------------------------------------------------------------------
# rotations


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _finite_vec3(v, name: str) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().double().numpy()
    try:
        a = np.asarray(v, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be 3 numbers") from exc
    if a.shape != (3,) or not np.all(np.isfinite(a)):
        raise InputError(f"{name} must be 3 finite numbers")
    return a


def _finite_float(v, name: str) -> float:
    if isinstance(v, bool):
        raise InputError(f"{name} must be a number, got {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a number, got {v!r}") from exc
    if not math.isfinite(f):
        raise InputError(f"{name} must be finite, got {v!r}")
    return f


# --------------------------------------------------------------------------------------------
# Keyframe


@dataclass(frozen=True, eq=False)
class Keyframe:
    """One camera of a path: a rigid OpenCV world-to-camera pose, vertical FOV and optional time.

    ``w2c`` is stored as a read-only float64 [4,4] array. ``time`` in [0, 1] pins the keyframe to a
    moment of the clip; ``None`` lets the path space it (see :meth:`CameraPath.key_times`).

    Yaw / pitch / roll (degrees) describe the camera-to-world rotation as
    ``R = Ry(yaw) @ Rx(pitch) @ Rz(roll)`` in the seed camera's world (x right, y down, z forward):
    yaw turns the view about the vertical axis, positive toward +x (right); pitch tilts it, positive
    up (toward -y); roll spins it about the view axis, positive turning the camera's x axis toward
    its y axis (clockwise as the camera sees it). (0, 0, 0) is the seed camera's orientation.
    The view direction is ``(sin(yaw) cos(pitch), -sin(pitch), cos(yaw) cos(pitch))``.
    """

    w2c: np.ndarray
    fov_y_deg: float
    time: float | None = None

    def __post_init__(self):
        M = validate_w2c(self.w2c, "keyframe w2c")
        if M.ndim != 2:
            raise InputError("keyframe w2c must be a single [4,4] matrix")
        M = np.array(M, dtype=np.float64)
        M.setflags(write=False)
        object.__setattr__(self, "w2c", M)
        try:
            fov = _check_fov(self.fov_y_deg)
        except InputError as exc:
            raise InputError(f"keyframe {exc}") from None
        object.__setattr__(self, "fov_y_deg", fov)
        if self.time is not None:
            t = _finite_float(self.time, "keyframe time")
            if not 0.0 <= t <= 1.0:
                raise InputError(f"keyframe time must be in [0, 1], got {self.time!r}")
            object.__setattr__(self, "time", t)

    def __eq__(self, other):
        if not isinstance(other, Keyframe):
            return NotImplemented
        return (
            np.array_equal(self.w2c, other.w2c)
            and self.fov_y_deg == other.fov_y_deg
            and self.time == other.time
        )

    def __hash__(self):
        return hash((self.w2c.tobytes(), self.fov_y_deg, self.time))

    def __repr__(self):
        y, p, r = self.yaw_pitch_roll()
        pos = ", ".join(f"{v:.4g}" for v in self.position)
        return (f"Keyframe(position=({pos}), ypr=({y:.4g}, {p:.4g}, {r:.4g}), "
                f"fov_y_deg={self.fov_y_deg:.4g}, time={self.time})")

    # constructors ---------------------------------------------------------------------------

    @classmethod
    def from_pose(cls, position, rotation, fov_y_deg: float, time: float | None = None) -> "Keyframe":
        """From a camera centre and a camera-to-world rotation [3,3]."""
        p = _finite_vec3(position, "keyframe position")
        R = np.asarray(rotation, dtype=np.float64)
        if R.shape != (3, 3):
            raise InputError("keyframe rotation must be a [3,3] matrix")
        w2c = np.eye(4)
        w2c[:3, :3] = R.T
        w2c[:3, 3] = -R.T @ p
        return cls(w2c, fov_y_deg, time)

    @classmethod
    def from_look_at(cls, position, target, fov_y_deg: float, roll_deg: float = 0.0,
                     time: float | None = None) -> "Keyframe":
        """Camera at ``position`` looking at ``target`` with the image up aligned to world up
        (0, -1, 0), then rolled by ``roll_deg`` about the view axis (same sign as yaw_pitch_roll)."""
        roll = _finite_float(roll_deg, "keyframe roll")
        w2c = look_at_w2c(position, target)
        R = w2c[:3, :3].T @ _rot_z(math.radians(roll))
        return cls.from_pose(position, R, fov_y_deg, time)

    @classmethod
    def from_position_ypr(cls, position, yaw: float, pitch: float, roll: float, fov: float,
                          time: float | None = None) -> "Keyframe":
        """Camera at ``position`` with the orientation given by yaw/pitch/roll in degrees."""
        y = math.radians(_finite_float(yaw, "keyframe yaw"))
        p = math.radians(_finite_float(pitch, "keyframe pitch"))
        r = math.radians(_finite_float(roll, "keyframe roll"))
        R = _rot_y(y) @ _rot_x(p) @ _rot_z(r)
        return cls.from_pose(position, R, fov, time)

    # accessors ------------------------------------------------------------------------------

    @property
    def rotation(self) -> np.ndarray:
        """Camera-to-world rotation [3,3] (columns: camera x, y, z axes in world coordinates)."""
        return self.w2c[:3, :3].T.copy()

    @property
    def position(self) -> np.ndarray:
        """Camera centre in world coordinates [3]."""
        return -self.w2c[:3, :3].T @ self.w2c[:3, 3]

    @property
    def forward(self) -> np.ndarray:
        """Unit view direction (camera +z) in world coordinates."""
        return self.rotation[:, 2]

    def yaw_pitch_roll(self) -> tuple[float, float, float]:
        """(yaw, pitch, roll) in degrees, inverse of :meth:`from_position_ypr`.

        pitch is in [-90, 90]; at gimbal lock (pitch = +-90) roll is reported as 0 and yaw carries
        the whole turn about the view axis.
        """
        R = self.rotation
        pitch = math.atan2(-R[1, 2], math.hypot(R[0, 2], R[2, 2]))
        if math.hypot(R[0, 2], R[2, 2]) < 1e-12:
            # Looking straight up/down: only yaw + roll combined is defined.
            # With roll = 0 the camera x axis is (cos yaw, 0, -sin yaw) whatever the pitch.
            yaw = math.atan2(-R[2, 0], R[0, 0])
            return math.degrees(yaw), math.degrees(pitch), 0.0
        yaw = math.atan2(R[0, 2], R[2, 2])
        roll = math.atan2(R[1, 0], R[1, 1])
        return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)

    def look_target(self, dist: float = 1.0) -> np.ndarray:
        """The world point ``dist`` units in front of the camera along its view axis."""
        d = _finite_float(dist, "look-at distance")
        return self.position + d * self.forward

    # edits (each returns a new keyframe) ----------------------------------------------------

    def with_position(self, position) -> "Keyframe":
        """Same orientation, FOV and time; camera centre moved to ``position``."""
        return Keyframe.from_pose(position, self.rotation, self.fov_y_deg, self.time)

    def with_ypr(self, yaw: float, pitch: float, roll: float) -> "Keyframe":
        """Same position, FOV and time; orientation from yaw/pitch/roll degrees."""
        return Keyframe.from_position_ypr(self.position, yaw, pitch, roll, self.fov_y_deg, self.time)

    def with_look_at(self, target, roll_deg: float = 0.0) -> "Keyframe":
        """Same position, FOV and time; turned to look at ``target``."""
        return Keyframe.from_look_at(self.position, target, self.fov_y_deg, roll_deg, self.time)

    def with_fov(self, fov_y_deg: float) -> "Keyframe":
        return replace(self, fov_y_deg=fov_y_deg)

    def with_time(self, time: float | None) -> "Keyframe":
        return replace(self, time=time)


# --------------------------------------------------------------------------------------------
# interpolation helpers (float64 numpy)


def _hermite(p0, p1, m0, m1, s):
    """Cubic Hermite on s in [0,1]; exact at s = 0 and s = 1. Arrays broadcast over a leading T."""
    s = s[:, None]
    s2, s3 = s * s, s * s * s
    return ((2 * s3 - 3 * s2 + 1) * p0 + (s3 - 2 * s2 + s) * m0
            + (-2 * s3 + 3 * s2) * p1 + (s3 - s2) * m1)


def _centripetal_tangents(P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-segment Hermite tangents (m0, m1) of a centripetal Catmull-Rom spline through P [n,3].

    Ends use reflected phantom points (P[-1] = 2 P0 - P1, P[n] = 2 P[n-1] - P[n-2]). Zero-length
    knot intervals (repeated positions, i.e. pure rotations) are guarded so nothing divides by 0:
    a zero-length segment stays put, a zero-length neighbour interval borrows the segment's own.
    """
    ext = np.concatenate([2 * P[:1] - P[1:2], P, 2 * P[-1:] - P[-2:-1]])
    d = np.linalg.norm(np.diff(ext, axis=0), axis=1) ** _CR_ALPHA  # n+1 intervals
    n = len(P)
    m0 = np.zeros((n - 1, 3))
    m1 = np.zeros((n - 1, 3))
    scale = max(float(d.max()), 1e-300)
    eps = 1e-12 * scale
    for k in range(n - 1):
        q0, q1, q2, q3 = ext[k], ext[k + 1], ext[k + 2], ext[k + 3]
        d0, d1, d2 = d[k], d[k + 1], d[k + 2]
        if d1 < eps:
            continue  # the segment does not move
        d0 = d0 if d0 >= eps else d1
        d2 = d2 if d2 >= eps else d1
        t1 = (q1 - q0) / d0 - (q2 - q0) / (d0 + d1) + (q2 - q1) / d1
        t2 = (q2 - q1) / d1 - (q3 - q1) / (d1 + d2) + (q3 - q2) / d2
        m0[k] = t1 * d1
        m1[k] = t2 * d1
    return m0, m1


def _time_tangents(V: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-segment Hermite tangents of a Catmull-Rom spline of values V [n,D] over key times u.

    Interior slopes are central differences in time; the ends use the one-sided slope (the same as
    reflecting a phantom key). Tangents are scaled to each segment's duration.
    """
    n = len(V)
    slope = np.empty_like(V)
    slope[0] = (V[1] - V[0]) / (u[1] - u[0])
    slope[-1] = (V[-1] - V[-2]) / (u[-1] - u[-2])
    if n > 2:
        slope[1:-1] = (V[2:] - V[:-2]) / (u[2:] - u[:-2])[:, None]
    dur = np.diff(u)[:, None]
    return slope[:-1] * dur, slope[1:] * dur


def _slerp(q0: np.ndarray, q1: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Row-wise slerp of unit quaternions (same hemisphere), exact at s = 0 and 1."""
    dot = np.clip(np.sum(q0 * q1, axis=1), -1.0, 1.0)
    theta = np.arccos(dot)
    sin = np.sin(theta)
    small = sin < 1e-9
    safe = np.where(small, 1.0, sin)
    w0 = np.where(small, 1.0 - s, np.sin((1.0 - s) * theta) / safe)
    w1 = np.where(small, s, np.sin(s * theta) / safe)
    w0 = np.where(s == 0.0, 1.0, np.where(s == 1.0, 0.0, w0))
    w1 = np.where(s == 0.0, 0.0, np.where(s == 1.0, 1.0, w1))
    q = w0[:, None] * q0 + w1[:, None] * q1
    return q / np.linalg.norm(q, axis=1, keepdims=True)


# --------------------------------------------------------------------------------------------
# CameraPath


@dataclass(frozen=True)
class CameraPath:
    """An immutable keyframed camera path.

    ``interpolation``: "linear" (straight segments, slerp, linear FOV) or "smooth" (centripetal
    Catmull-Rom positions, Catmull-Rom quaternion spline renormalised, Catmull-Rom FOV; at the two
    ends a phantom key is reflected through the end key, i.e. the end tangent points at the
    neighbour). Quaternions are kept in one hemisphere so turns take the short way.
    ``constant_speed``: frames are spaced by arc length so the camera moves at constant speed
    (keyframe times are then ignored, except the ends).
    Validation: 2..10000 keyframes, no two consecutive identical keyframes (same pose and FOV),
    times (where given) strictly increasing in [0, 1].
    """

    keyframes: tuple = field(default_factory=tuple)
    interpolation: str = "smooth"
    constant_speed: bool = False

    def __post_init__(self):
        kfs = self.keyframes
        if isinstance(kfs, (str, bytes, dict)) or not hasattr(kfs, "__iter__"):
            raise InputError("camera path keyframes must be a sequence of Keyframe")
        kfs = tuple(kfs)
        object.__setattr__(self, "keyframes", kfs)
        if len(kfs) < 2:
            raise InputError(f"a camera path needs at least 2 keyframes, got {len(kfs)}")
        if len(kfs) > MAX_KEYFRAMES:
            raise InputError(f"too many keyframes ({len(kfs)} > {MAX_KEYFRAMES})")
        for i, kf in enumerate(kfs):
            if not isinstance(kf, Keyframe):
                raise InputError(f"keyframe {i} is a {type(kf).__name__}, not a Keyframe")
        if self.interpolation not in INTERPOLATIONS:
            raise InputError(f"unknown interpolation {self.interpolation!r}; valid: {', '.join(INTERPOLATIONS)}")
        if not isinstance(self.constant_speed, (bool, np.bool_)):
            raise InputError(f"constant_speed must be true or false, got {self.constant_speed!r}")
        object.__setattr__(self, "constant_speed", bool(self.constant_speed))
        for i in range(len(kfs) - 1):
            a, b = kfs[i], kfs[i + 1]
            if np.array_equal(a.w2c, b.w2c) and a.fov_y_deg == b.fov_y_deg:
                raise InputError(f"keyframes {i} and {i + 1} are identical (same pose and fov)")
        self.key_times()  # validates the times

    def __len__(self):
        return len(self.keyframes)

    # timing ---------------------------------------------------------------------------------

    def key_times(self) -> np.ndarray:
        """The time in [0, 1] of every keyframe.

        Given times are used as they are. Missing ones: the first defaults to 0, the last to 1,
        and interior gaps are spaced evenly between their nearest timed neighbours (with no times
        at all this is uniform, k / (n-1)). The result must be strictly increasing.
        """
        n = len(self.keyframes)
        given = [kf.time for kf in self.keyframes]
        u = np.array([np.nan if t is None else t for t in given], dtype=np.float64)
        if given[0] is None:
            u[0] = 0.0
        if given[-1] is None:
            u[-1] = 1.0
        known = np.flatnonzero(~np.isnan(u))
        for a, b in zip(known[:-1], known[1:]):
            if b - a > 1:
                k = np.arange(a + 1, b)
                u[k] = u[a] + (u[b] - u[a]) * (k - a) / (b - a)
        if given.count(None) == n:
            u = np.arange(n, dtype=np.float64) / (n - 1)
        if np.any(np.diff(u) <= 0):
            bad = int(np.flatnonzero(np.diff(u) <= 0)[0])
            raise InputError(f"keyframe times must be strictly increasing (keyframe {bad} at {u[bad]:.6g}, "
                             f"keyframe {bad + 1} at {u[bad + 1]:.6g})")
        return u

    # edits ----------------------------------------------------------------------------------

    def _index(self, i: int, name: str = "keyframe index", extra: int = 0) -> int:
        n = len(self.keyframes) + extra
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise InputError(f"{name} must be an integer, got {i!r}")
        if not -n <= i < n:
            raise InputError(f"{name} {i} out of range for {len(self.keyframes)} keyframes")
        return int(i) % n

    def _with(self, kfs) -> "CameraPath":
        return CameraPath(tuple(kfs), self.interpolation, self.constant_speed)

    def with_keyframe(self, i: int, kf: Keyframe) -> "CameraPath":
        """A new path with keyframe i replaced by ``kf``."""
        i = self._index(i)
        kfs = list(self.keyframes)
        kfs[i] = kf
        return self._with(kfs)

    def inserted(self, i: int, kf: Keyframe) -> "CameraPath":
        """A new path with ``kf`` inserted before index i (i == len appends)."""
        i = self._index(i, extra=1)
        kfs = list(self.keyframes)
        kfs.insert(i, kf)
        return self._with(kfs)

    def removed(self, i: int) -> "CameraPath":
        """A new path without keyframe i (a path keeps at least 2 keyframes)."""
        i = self._index(i)
        kfs = list(self.keyframes)
        del kfs[i]
        return self._with(kfs)

    def moved(self, i: int, j: int) -> "CameraPath":
        """A new path where keyframe i now sits at index j (the others keep their order)."""
        i = self._index(i)
        j = self._index(j, name="target index")
        kfs = list(self.keyframes)
        kfs.insert(j, kfs.pop(i))
        return self._with(kfs)

    def duplicated(self, i: int) -> "CameraPath":
        """A new path with a copy of keyframe i (without its time) appended at the end.

        Appending (rather than inserting next to the original) keeps the path valid, since two
        consecutive identical keyframes are not allowed; duplicating the first keyframe closes a
        loop. Duplicating the last keyframe is therefore an InputError.
        """
        i = self._index(i)
        return self._with(list(self.keyframes) + [self.keyframes[i].with_time(None)])

    def with_options(self, *, interpolation: str | None = None, constant_speed: bool | None = None) -> "CameraPath":
        return CameraPath(self.keyframes,
                          self.interpolation if interpolation is None else interpolation,
                          self.constant_speed if constant_speed is None else constant_speed)

    # construction from cameras ---------------------------------------------------------------

    @classmethod
    def from_cameras(cls, w2cs, Ks, height: int, interpolation: str = "smooth",
                     constant_speed: bool = False) -> "CameraPath":
        """Every camera becomes a keyframe (uniform times), FOV from fy of each K at ``height``.

        ``sample`` with the same frame count reproduces the cameras. K is reduced to a vertical
        FOV: sampled cameras have square pixels and a centred principal point (W/2, H/2), as
        the official presets do. Consecutive identical cameras are an InputError.
        """
        W = validate_w2c(w2cs, "w2cs")
        K = validate_intrinsics(Ks, "Ks")
        if W.ndim != 3:
            raise InputError(f"w2cs must have shape [T,4,4], got {list(W.shape)}")
        T = W.shape[0]
        if T > MAX_KEYFRAMES:
            raise InputError(f"too many cameras ({T} > {MAX_KEYFRAMES})")
        if K.ndim == 2:
            K = np.broadcast_to(K, (T, 3, 3))
        if K.shape[0] != T:
            raise InputError(f"Ks has {K.shape[0]} frames but w2cs has {T}")
        H, _ = _check_hw(height, 1)
        kfs = [Keyframe(W[t], fov_y_from_intrinsics(K[t], H)) for t in range(T)]
        return cls(tuple(kfs), interpolation, constant_speed)

    # sampling -------------------------------------------------------------------------------

    def _evaluate(self, tau: np.ndarray):
        """Positions [T,3], c2w rotations [T,3,3] and FOVs [T] at path times tau (float64)."""
        kfs = self.keyframes
        n = len(kfs)
        u = self.key_times()
        P = np.stack([kf.position for kf in kfs])
        Q = Rotation.from_matrix(np.stack([kf.rotation for kf in kfs])).as_quat()
        for k in range(1, n):  # hemisphere fix: neighbours on the same side
            if np.dot(Q[k], Q[k - 1]) < 0:
                Q[k] = -Q[k]
        F = np.array([kf.fov_y_deg for kf in kfs])[:, None]

        seg = np.clip(np.searchsorted(u, tau, side="right") - 1, 0, n - 2)
        s = np.clip((tau - u[seg]) / (u[seg + 1] - u[seg]), 0.0, 1.0)
        if self.interpolation == "linear":
            pos = (1.0 - s)[:, None] * P[seg] + s[:, None] * P[seg + 1]
            quat = _slerp(Q[seg], Q[seg + 1], s)
            fov = (1.0 - s) * F[seg, 0] + s * F[seg + 1, 0]
        else:
            m0, m1 = _centripetal_tangents(P)
            pos = _hermite(P[seg], P[seg + 1], m0[seg], m1[seg], s)
            q0, q1 = _time_tangents(Q, u)
            quat = _hermite(Q[seg], Q[seg + 1], q0[seg], q1[seg], s)
            quat = quat / np.linalg.norm(quat, axis=1, keepdims=True)
            f0, f1 = _time_tangents(F, u)
            fov = _hermite(F[seg], F[seg + 1], f0[seg], f1[seg], s)[:, 0]
            fov = np.clip(fov, F.min(), F.max())  # Catmull-Rom may overshoot the keyed range
        # Keyframe rotations themselves are used where a frame lands exactly on a key, so a key
        # is reproduced bit-for-bit up to the float32 cast.
        rot = Rotation.from_quat(quat).as_matrix()
        at_key0 = s == 0.0
        at_key1 = s == 1.0
        R_keys = np.stack([kf.rotation for kf in kfs])
        rot[at_key0] = R_keys[seg[at_key0]]
        rot[at_key1] = R_keys[seg[at_key1] + 1]
        return pos, rot, fov

    def frame_times(self, num_frames: int) -> np.ndarray:
        """Path time of each frame: i/(T-1), or arc-length spaced when ``constant_speed``."""
        if (isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer))
                or not 2 <= num_frames <= MAX_FRAMES):
            raise InputError(f"num_frames must be an integer in [2, {MAX_FRAMES}], got {num_frames!r}")
        T = int(num_frames)
        tau = np.arange(T, dtype=np.float64) / (T - 1)
        if not self.constant_speed:
            return tau
        n = len(self.keyframes)
        grid = np.linspace(0.0, 1.0, max(1025, 64 * (n - 1) + 1, 4 * T + 1))
        pts = self._evaluate(grid)[0]
        seglen = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        total = float(seglen.sum())
        scale = float(np.abs(pts).max()) + 1.0
        if total <= 1e-9 * scale:
            return tau  # no translation (pure rotation / zoom): uniform in time
        # A tiny time term makes the cumulative length strictly increasing, so pauses in
        # translation (rotation-only stretches) are passed through in a vanishing time.
        cum = np.concatenate([[0.0], np.cumsum(seglen)]) + 1e-9 * total * grid
        out = np.interp(tau * cum[-1], cum, grid)
        out[0], out[-1] = 0.0, 1.0
        return out

    def sample_numpy(self, num_frames: int, height: int, width: int):
        """Like :meth:`sample` but float64 numpy (w2cs [T,4,4], Ks [T,3,3], fovs [T])."""
        H, W = _check_hw(height, width)
        tau = self.frame_times(num_frames)
        pos, rot, fov = self._evaluate(tau)
        T = len(tau)
        w2cs = np.zeros((T, 4, 4))
        Rt = np.swapaxes(rot, 1, 2)
        w2cs[:, :3, :3] = Rt
        w2cs[:, :3, 3] = -np.einsum("tij,tj->ti", Rt, pos)
        w2cs[:, 3, 3] = 1.0
        Ks = np.stack([intrinsics_from_fov(f, H, W) for f in fov])
        return w2cs, Ks, fov

    def sample(self, num_frames: int, height: int, width: int):
        """Per-frame cameras (w2cs [T,4,4], Ks [T,3,3]) as torch float32.

        Frame i is at path time i/(T-1) (or arc-length spaced with ``constant_speed``). Where a
        frame time equals a keyframe time, that frame is the keyframe's camera. K has square
        pixels, fy from the interpolated vertical FOV and principal point (W/2, H/2).
        """
        w2cs, Ks, _ = self.sample_numpy(num_frames, height, width)
        return (torch.from_numpy(w2cs.astype(np.float32)), torch.from_numpy(Ks.astype(np.float32)))


# --------------------------------------------------------------------------------------------
# file helpers


def _read_bytes(file, what: str) -> bytes:
    """Read a user file with the size limit; every failure is a one-line InputError."""
    try:
        p = Path(os.fspath(file))
    except TypeError:
        raise InputError(f"{what} must be a file path, got {type(file).__name__}") from None
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise InputError(f"{what} {p.name!r} cannot be read: {exc.strerror or exc}") from None
    if not p.is_file():
        raise InputError(f"{what} {p.name!r} is not a file")
    if size > MAX_FILE_BYTES:
        raise InputError(f"{what} {p.name!r} is too large ({size / 1e6:.1f} MB > {MAX_FILE_BYTES // (1024 * 1024)} MB)")
    try:
        with open(p, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{what} {p.name!r} cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{what} {p.name!r} is too large (> {MAX_FILE_BYTES // (1024 * 1024)} MB)")
    return data


def _reject_constant(name):
    raise ValueError(f"non-finite number {name}")


def _parse_json(data: bytes, what: str):
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise InputError(f"{what} is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{what} is not valid JSON ({msg})") from None


def _atomic_write(file, data: bytes) -> None:
    """Write bytes to a temporary file next to ``file`` and rename it into place."""
    try:
        p = Path(os.fspath(file))
    except TypeError:
        raise InputError(f"output must be a file path, got {type(file).__name__}") from None
    directory = p.parent if str(p.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(f"folder {str(directory)!r} does not exist")
    atomic_write_bytes(p, data)


def _flat16(v, where: str) -> np.ndarray:
    """16 finite numbers (a flat list, a nested 4x4 list, or the old string form) -> [4,4]."""
    if isinstance(v, list) and len(v) == 4 and all(isinstance(r, list) for r in v):
        v = [x for r in v for x in r]
    if not isinstance(v, list) or len(v) != 16:
        raise InputError(f"{where} must be a list of 16 numbers")
    out = np.empty(16)
    for k, x in enumerate(v):
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise InputError(f"{where} must be a list of 16 numbers (entry {k} is {type(x).__name__})")
        out[k] = x
    if not np.all(np.isfinite(out)):
        raise InputError(f"{where} contains NaN or infinite values")
    return out.reshape(4, 4)


def _get(d: dict, key: str, where: str):
    if key not in d:
        raise InputError(f"{where} is missing {key!r}")
    return d[key]


# --------------------------------------------------------------------------------------------
# project JSON


def _json_objects(entries: list, label: str):
    """Yield (``"<label> <i>"``, entry) for a keyframe list, checking its size and that entries are objects."""
    if len(entries) > MAX_KEYFRAMES:
        raise InputError(f"too many keyframes ({len(entries)} > {MAX_KEYFRAMES})")
    for i, e in enumerate(entries):
        where = f"{label} {i}"
        if not isinstance(e, dict):
            raise InputError(f"{where} must be a JSON object")
        yield where, e


def path_to_dict(path: CameraPath) -> dict:
    """The project-JSON dict of a path (floats kept exact; w2c row-major, 16 numbers)."""
    return {
        "format": PATH_FORMAT,
        "version": PATH_VERSION,
        "interpolation": path.interpolation,
        "constant_speed": path.constant_speed,
        "keyframes": [
            {"w2c": [float(x) for x in kf.w2c.reshape(-1)], "fov_y_deg": float(kf.fov_y_deg), "time": kf.time}
            for kf in path.keyframes
        ],
    }


def path_from_dict(d) -> CameraPath:
    """Inverse of :func:`path_to_dict`, validating every field."""
    if not isinstance(d, dict):
        raise InputError("camera path file must hold a JSON object")
    if d.get("format") != PATH_FORMAT:
        raise InputError(f"camera path file has format {d.get('format')!r}, expected {PATH_FORMAT!r}")
    version = d.get("version")
    if version != PATH_VERSION or isinstance(version, bool):
        raise InputError(f"camera path file version {version!r} is not supported (expected {PATH_VERSION})")
    interpolation = d.get("interpolation", "smooth")
    if not isinstance(interpolation, str) or interpolation not in INTERPOLATIONS:
        raise InputError(f"camera path interpolation {interpolation!r} is not one of {', '.join(INTERPOLATIONS)}")
    cs = d.get("constant_speed", False)
    if not isinstance(cs, bool):
        raise InputError(f"camera path constant_speed must be true or false, got {cs!r}")
    kfs_in = _get(d, "keyframes", "camera path file")
    if not isinstance(kfs_in, list):
        raise InputError("camera path keyframes must be a list")
    kfs = []
    for where, e in _json_objects(kfs_in, "keyframe"):
        w2c = _flat16(_get(e, "w2c", where), f"{where} w2c")
        fov = _get(e, "fov_y_deg", where)
        if isinstance(fov, bool) or not isinstance(fov, (int, float)):
            raise InputError(f"{where} fov_y_deg must be a number")
        t = e.get("time")
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float))):
            raise InputError(f"{where} time must be a number or null")
        try:
            kfs.append(Keyframe(w2c, fov, t))
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
    return CameraPath(tuple(kfs), interpolation, cs)


def save_path_json(path: CameraPath, file) -> None:
    """Write a path in the project format (exact: floats are written with repr precision)."""
    if not isinstance(path, CameraPath):
        raise InputError("save_path_json needs a CameraPath")
    _atomic_write(file, json.dumps(path_to_dict(path), indent=1, allow_nan=False).encode("utf-8"))


def load_path_json(file) -> CameraPath:
    """Read a project-format camera path file."""
    return path_from_dict(_parse_json(_read_bytes(file, "camera path file"), "camera path file"))


# --------------------------------------------------------------------------------------------
# nerfstudio camera_path.json


def _kf_gl_c2w(kf: Keyframe) -> np.ndarray:
    return opencv_c2w_to_opengl(invert_pose(kf.w2c))


def to_nerfstudio(path: CameraPath, num_frames: int, height: int, width: int, fps: float = 24) -> dict:
    """A nerfstudio ``camera_path.json`` dict for the path rendered at T frames of H x W.

    Matrices are OpenGL camera-to-world (x right, y up, looking down -z) in the same world as ours
    (only the camera axes flip), flattened row-major; ``fov`` is vertical, in degrees; ``seconds``
    is T / fps as ``ns-render`` expects. ``keyframes`` hold the editable keys and ``camera_path``
    the exact per-frame cameras. A ``gen3c_studio`` block keeps interpolation, speed and times.
    """
    if not isinstance(path, CameraPath):
        raise InputError("to_nerfstudio needs a CameraPath")
    H, W = _check_hw(height, width)
    fps = _finite_float(fps, "fps")
    if fps <= 0:
        raise InputError(f"fps must be positive, got {fps!r}")
    w2cs, _, fovs = path.sample_numpy(num_frames, H, W)
    T = w2cs.shape[0]
    aspect = W / H
    gl = opencv_c2w_to_opengl(invert_pose(w2cs))
    seconds = T / fps
    return {
        "camera_type": "perspective",
        "render_height": H,
        "render_width": W,
        "fps": fps,
        "seconds": seconds,
        "is_cycle": False,
        "smoothness_value": 0.0 if path.interpolation == "linear" else 0.5,
        "default_fov": float(path.keyframes[0].fov_y_deg),
        "default_transition_sec": seconds / (len(path) - 1),
        "keyframes": [
            {
                "matrix": [float(x) for x in _kf_gl_c2w(kf).reshape(-1)],
                "fov": float(kf.fov_y_deg),
                "aspect": aspect,
                "override_transition_enabled": False,
                "override_transition_sec": None,
            }
            for kf in path.keyframes
        ],
        "camera_path": [
            {"camera_to_world": [float(x) for x in gl[t].reshape(-1)], "fov": float(fovs[t]), "aspect": aspect}
            for t in range(T)
        ],
        "gen3c_studio": {
            "format": PATH_FORMAT,
            "version": PATH_VERSION,
            "interpolation": path.interpolation,
            "constant_speed": path.constant_speed,
            "times": [kf.time for kf in path.keyframes],
        },
    }


def save_nerfstudio(path: CameraPath, file, num_frames: int, height: int, width: int, fps: float = 24) -> None:
    """Write :func:`to_nerfstudio` to ``file``."""
    d = to_nerfstudio(path, num_frames, height, width, fps)
    _atomic_write(file, json.dumps(d, indent=1, allow_nan=False).encode("utf-8"))


def _ns_matrix(v, where: str) -> np.ndarray:
    """A nerfstudio matrix -> OpenGL c2w [4,4].

    Lists are row-major (viser viewer, ``ns-render``). The old web viewer wrote a JSON string of
    three.js ``Matrix4.elements``, which are column-major. If the assumed order does not give a
    last row (0, 0, 0, 1) but the other order does, the other order is used.
    """
    column_major = False
    if isinstance(v, str):
        if len(v) > 10000:
            raise InputError(f"{where} string is too long")
        try:
            v = json.loads(v, parse_constant=_reject_constant)
        except ValueError:
            raise InputError(f"{where} string is not a JSON list of 16 numbers") from None
        column_major = True
    M = _flat16(v, where)
    if column_major:
        M = M.T
    affine = np.allclose(M[3], [0, 0, 0, 1], atol=1e-6)
    if not affine and np.allclose(M[:, 3], [0, 0, 0, 1], atol=1e-6):
        M = M.T
    return M


def load_nerfstudio(file) -> CameraPath:
    """Read a nerfstudio camera_path.json as a CameraPath.

    Uses ``keyframes`` when present (``matrix`` as a list or the old string form), else every
    ``camera_path`` entry (``camera_to_world``) becomes a keyframe. ``fov`` falls back to
    ``default_fov``. Interpolation comes from our ``gen3c_studio`` block when present, else from
    ``smoothness_value`` (0 = linear).
    """
    d = _parse_json(_read_bytes(file, "nerfstudio camera path"), "nerfstudio camera path")
    if not isinstance(d, dict):
        raise InputError("nerfstudio camera path must hold a JSON object")
    default_fov = d.get("default_fov")
    entries = d.get("keyframes")
    key, label = "matrix", "keyframe"
    if not entries:
        entries = d.get("camera_path")
        key, label = "camera_to_world", "camera_path entry"
    if not isinstance(entries, list) or not entries:
        raise InputError("nerfstudio camera path has no keyframes and no camera_path entries")
    kfs = []
    for where, e in _json_objects(entries, f"nerfstudio {label}"):
        gl = _ns_matrix(_get(e, key, where), f"{where} {key}")
        try:
            validate_w2c(gl, f"{where} {key}")
        except InputError as exc:
            raise InputError(str(exc)) from None
        fov = e.get("fov", default_fov)
        if fov is None:
            raise InputError(f"{where} is missing 'fov'")
        if isinstance(fov, bool) or not isinstance(fov, (int, float)):
            raise InputError(f"{where} fov must be a number")
        w2c = invert_pose(opengl_c2w_to_opencv(gl))
        try:
            kfs.append(Keyframe(w2c, fov))
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None

    interpolation = "linear" if d.get("smoothness_value") == 0 else "smooth"
    constant_speed = False
    extra = d.get("gen3c_studio")
    if isinstance(extra, dict) and extra.get("format") == PATH_FORMAT and key == "matrix":
        if extra.get("interpolation") in INTERPOLATIONS:
            interpolation = extra["interpolation"]
        if isinstance(extra.get("constant_speed"), bool):
            constant_speed = extra["constant_speed"]
        times = extra.get("times")
        if isinstance(times, list) and len(times) == len(kfs):
            for i, t in enumerate(times):
                if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float))):
                    raise InputError(f"nerfstudio gen3c_studio time {i} must be a number or null")
            kfs = [kf.with_time(t) for kf, t in zip(kfs, times)]
    return CameraPath(tuple(kfs), interpolation, constant_speed)


# --------------------------------------------------------------------------------------------
# GEN3C NPZ


def _check_cameras(w2cs, Ks, what: str) -> tuple[np.ndarray, np.ndarray]:
    W = validate_w2c(w2cs, f"{what} w2cs_all")
    K = validate_intrinsics(Ks, f"{what} Ks_all")
    if W.ndim == 4 or K.ndim == 4:
        raise InputError(f"{what} cameras have too many dimensions")
    if W.ndim != 3 or K.ndim != 3:
        raise InputError(f"{what} needs w2cs_all [T,4,4] and Ks_all [T,3,3]")
    if W.shape[0] != K.shape[0]:
        raise InputError(f"{what} w2cs_all has {W.shape[0]} frames but Ks_all has {K.shape[0]}")
    if W.shape[0] < 1 or W.shape[0] > MAX_KEYFRAMES:
        raise InputError(f"{what} must hold 1..{MAX_KEYFRAMES} cameras, got {W.shape[0]}")
    return W, K


def _drop_batch(a: np.ndarray, ndim: int) -> np.ndarray:
    return a[0] if a.ndim == ndim + 1 and a.shape[0] == 1 else a


def save_npz(file, w2cs, Ks) -> None:
    """Write cameras as a GEN3C NPZ (``w2cs_all`` [T,4,4], ``Ks_all`` [T,3,3], float32)."""
    def arr(x):
        return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    W = _drop_batch(arr(w2cs), 3)
    K = _drop_batch(arr(Ks), 3)
    _check_cameras(W, K, "NPZ")
    buf = io.BytesIO()
    np.savez(buf, w2cs_all=W.astype(np.float32), Ks_all=K.astype(np.float32))
    _atomic_write(file, buf.getvalue())


def load_npz(file):
    """Read a GEN3C NPZ -> (w2cs [T,4,4], Ks [T,3,3]) torch float32.

    Accepts a leading batch dimension of 1. Loaded with ``allow_pickle=False``: object arrays are
    refused, never executed.
    """
    data = _read_bytes(file, "camera NPZ")
    name = Path(os.fspath(file)).name
    try:
        npz = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception:
        raise InputError(f"camera NPZ {name!r} is not a valid .npz archive") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        npz_close = getattr(npz, "close", None)
        if npz_close:
            npz_close()
        raise InputError(f"camera NPZ {name!r} is a single array, not an archive with w2cs_all and Ks_all")
    with npz:
        out = {}
        for key in ("w2cs_all", "Ks_all"):
            if key not in npz.files:
                raise InputError(f"camera NPZ {name!r} is missing {key!r} (has {', '.join(npz.files) or 'nothing'})")
            try:
                info = npz.zip.getinfo(f"{key}.npy")
            except KeyError:
                raise InputError(f"camera NPZ {name!r} entry {key!r} is unreadable") from None
            if info.file_size > MAX_FILE_BYTES:
                raise InputError(f"camera NPZ {name!r} entry {key!r} is too large")
            try:
                a = npz[key]
            except ValueError as exc:
                if "pickle" in str(exc).lower() or "object" in str(exc).lower():
                    raise InputError(f"camera NPZ {name!r} entry {key!r} is a pickled object array (refused)") from None
                raise InputError(f"camera NPZ {name!r} entry {key!r} is unreadable") from None
            except (OSError, zipfile.BadZipFile, EOFError):
                raise InputError(f"camera NPZ {name!r} entry {key!r} is unreadable") from None
            if a.dtype.kind not in "fiu":
                raise InputError(f"camera NPZ {name!r} entry {key!r} has non-numeric dtype {a.dtype}")
            out[key] = _drop_batch(a, 3)
    _check_cameras(out["w2cs_all"], out["Ks_all"], f"camera NPZ {name!r}")
    return (torch.from_numpy(out["w2cs_all"].astype(np.float32)),
            torch.from_numpy(out["Ks_all"].astype(np.float32)))
