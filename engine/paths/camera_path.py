"""A keyframed :class:`CameraPath`: edits, keyframe timing, interpolation and sampling to per-frame cameras.

``CameraPath.sample`` turns a path into the exact per-frame cameras (w2cs [T,4,4], Ks [T,3,3]) that
both the studio preview and the generator use.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.spatial.transform import Rotation, Slerp

from engine import validate
from engine.cameras import fov_y_from_intrinsics, intrinsics_from_fov
from engine.errors import InputError
from engine.paths.keyframe import Keyframe

INTERPOLATIONS = ("linear", "smooth")
MAX_KEYFRAMES = 10000
# Catmull-Rom exponent for positions: 0.5 = centripetal (no cusps or self-intersections).
_CR_ALPHA = 0.5


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
        if np.ndim(Ks) == 2 and np.ndim(w2cs) == 3:  # one K for every camera
            Ks = np.broadcast_to(validate.intrinsics(Ks, "Ks", batch=False), (len(w2cs), 3, 3))
        W, K = validate.camera_batch(w2cs, Ks, unit="frames")
        T = W.shape[0]
        if T > MAX_KEYFRAMES:
            raise InputError(f"too many cameras ({T} > {MAX_KEYFRAMES})")
        H, _ = validate.image_size(height, 1)
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
        for k in range(1, n):  # one hemisphere, so the quaternion spline turns the short way
            if np.dot(Q[k], Q[k - 1]) < 0:
                Q[k] = -Q[k]
        F = np.array([kf.fov_y_deg for kf in kfs])[:, None]

        seg = np.clip(np.searchsorted(u, tau, side="right") - 1, 0, n - 2)
        s = np.clip((tau - u[seg]) / (u[seg + 1] - u[seg]), 0.0, 1.0)
        if self.interpolation == "linear":
            pos = (1.0 - s)[:, None] * P[seg] + s[:, None] * P[seg + 1]
            # Before the first / after the last timed key the camera holds that key.
            quat = Slerp(u, Rotation.from_quat(Q))(np.clip(tau, u[0], u[-1])).as_quat()
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
        T = validate.frame_count(num_frames)
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
        H, W = validate.image_size(height, width)
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

