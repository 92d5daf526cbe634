"""The camera between two keyframes: "linear" (straight lines, slerp, linear FOV) or "smooth"
(centripetal Catmull-Rom positions, Catmull-Rom quaternion spline, Catmull-Rom FOV).

Everything is float64 numpy and evaluated at (segment, s): segment k runs from keyframe k (s = 0)
to keyframe k + 1 (s = 1), so a keyframe is reproduced exactly at its ends.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

INTERPOLATIONS = ("linear", "smooth")
# Catmull-Rom exponent for positions: 0.5 = centripetal (no cusps or self-intersections).
_CR_ALPHA = 0.5


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


class Spline:
    """The interpolated cameras through keyframes (two or more) at key times ``u`` (strictly increasing).

    Quaternions are kept in one hemisphere so turns take the short way; the smooth FOV is clipped
    to the keyed range (Catmull-Rom may overshoot it).
    """

    def __init__(self, keyframes, u: np.ndarray, interpolation: str):
        self.interpolation = interpolation
        self.P = np.stack([kf.position for kf in keyframes])
        R = np.stack([kf.rotation for kf in keyframes])
        Q = Rotation.from_matrix(R).as_quat()
        for k in range(1, len(Q)):  # one hemisphere, so the quaternion spline turns the short way
            if np.dot(Q[k], Q[k - 1]) < 0:
                Q[k] = -Q[k]
        self.Q = Q
        self.F = np.array([kf.fov_y_deg for kf in keyframes])[:, None]
        self._u = u
        self._pos_tangents = None
        self._rot_tangents = None

    def positions(self, seg: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Camera centres [N,3] at (segment, s)."""
        P = self.P
        if self.interpolation == "linear":
            return (1.0 - s)[:, None] * P[seg] + s[:, None] * P[seg + 1]
        if self._pos_tangents is None:
            self._pos_tangents = _centripetal_tangents(P)
        m0, m1 = self._pos_tangents
        return _hermite(P[seg], P[seg + 1], m0[seg], m1[seg], s)

    def evaluate(self, seg: np.ndarray, s: np.ndarray):
        """Positions [N,3], camera-to-world rotations [N,3,3] and vertical FOVs [N] at (segment, s)."""
        pos = self.positions(seg, s)
        Q, F = self.Q, self.F
        if self.interpolation == "linear":
            r0 = Rotation.from_quat(Q[seg])
            rel = (r0.inv() * Rotation.from_quat(Q[seg + 1])).as_rotvec()
            rot = (r0 * Rotation.from_rotvec(s[:, None] * rel)).as_matrix()
            fov = (1.0 - s) * F[seg, 0] + s * F[seg + 1, 0]
        else:
            if self._rot_tangents is None:
                self._rot_tangents = (_time_tangents(Q, self._u), _time_tangents(F, self._u))
            (q0, q1), (f0, f1) = self._rot_tangents
            quat = _hermite(Q[seg], Q[seg + 1], q0[seg], q1[seg], s)
            rot = Rotation.from_quat(quat / np.linalg.norm(quat, axis=1, keepdims=True)).as_matrix()
            fov = _hermite(F[seg], F[seg + 1], f0[seg], f1[seg], s)[:, 0]
            fov = np.clip(fov, F.min(), F.max())
        return pos, rot, fov
