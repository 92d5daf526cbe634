"""One camera of a path: :class:`Keyframe` (pose, vertical FOV, optional time, hold and ease) and its
yaw/pitch/roll."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.spatial.transform import Rotation

from engine import validate
from engine.cameras import look_at_w2c
from engine.errors import InputError
from engine.paths.timing import check_ease, check_hold
from engine.validate import finite_float, finite_vec3

# Intrinsic axes for R_c2w = Ry(yaw) @ Rx(pitch) @ Rz(roll) (scipy: upper case = intrinsic).
_YPR_AXES = "YXZ"


@dataclass(frozen=True, eq=False)
class Keyframe:
    """One camera of a path: a rigid OpenCV world-to-camera pose, vertical FOV and its timing.

    ``w2c`` is stored as a read-only float64 [4,4] array. ``time`` in [0, 1] pins the keyframe to a
    moment of the clip; ``None`` lets the path space it (see :meth:`CameraPath.key_times`).
    ``hold``: frames the camera stays on the keyframe after reaching it (0 = it passes through; a
    hold of N gives N + 1 identical frames). ``ease``: one of ``EASES``: "linear" (the camera keeps
    its pace through the keyframe), "ease_in" (it slows down into the keyframe), "ease_out" (it
    starts slowly out of it) or "ease_in_out" (both: it comes to rest there). Timing never changes
    the path's shape (see ``engine.paths.timing``).

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
    hold: int = 0
    ease: str = "linear"

    def __post_init__(self):
        M = np.array(validate.w2c(self.w2c, "keyframe w2c", batch=False), dtype=np.float64)
        M.setflags(write=False)
        object.__setattr__(self, "w2c", M)
        try:
            fov = validate.fov_deg(self.fov_y_deg)
        except InputError as exc:
            raise InputError(f"keyframe {exc}") from None
        object.__setattr__(self, "fov_y_deg", fov)
        if self.time is not None:
            t = finite_float(self.time, "keyframe time")
            if not 0.0 <= t <= 1.0:
                raise InputError(f"keyframe time must be in [0, 1], got {self.time!r}")
            object.__setattr__(self, "time", t)
        object.__setattr__(self, "hold", check_hold(self.hold))
        object.__setattr__(self, "ease", check_ease(self.ease))

    def __eq__(self, other):
        if not isinstance(other, Keyframe):
            return NotImplemented
        return (
            np.array_equal(self.w2c, other.w2c)
            and self.fov_y_deg == other.fov_y_deg
            and self.time == other.time
            and self.hold == other.hold
            and self.ease == other.ease
        )

    def __hash__(self):
        return hash((self.w2c.tobytes(), self.fov_y_deg, self.time, self.hold, self.ease))

    def __repr__(self):
        y, p, r = self.yaw_pitch_roll()
        pos = ", ".join(f"{v:.4g}" for v in self.position)
        return (f"Keyframe(position=({pos}), ypr=({y:.4g}, {p:.4g}, {r:.4g}), "
                f"fov_y_deg={self.fov_y_deg:.4g}, time={self.time}, hold={self.hold}, ease={self.ease!r})")

    # constructors ---------------------------------------------------------------------------

    @classmethod
    def from_pose(cls, position, rotation, fov_y_deg: float, time: float | None = None) -> "Keyframe":
        """From a camera centre and a camera-to-world rotation [3,3]."""
        p = finite_vec3(position, "keyframe position")
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
        roll = finite_float(roll_deg, "keyframe roll")
        w2c = look_at_w2c(position, target)
        R = w2c[:3, :3].T @ Rotation.from_euler("z", roll, degrees=True).as_matrix()
        return cls.from_pose(position, R, fov_y_deg, time)

    @classmethod
    def from_position_ypr(cls, position, yaw: float, pitch: float, roll: float, fov: float,
                          time: float | None = None) -> "Keyframe":
        """Camera at ``position`` with the orientation given by yaw/pitch/roll in degrees."""
        angles = [finite_float(yaw, "keyframe yaw"), finite_float(pitch, "keyframe pitch"),
                  finite_float(roll, "keyframe roll")]
        R = Rotation.from_euler(_YPR_AXES, angles, degrees=True).as_matrix()
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
        # Written out rather than Rotation.as_euler: scipy warns at gimbal lock and picks its own
        # tolerance there; this keeps the documented "roll = 0" rule exact.
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
        d = finite_float(dist, "look-at distance")
        return self.position + d * self.forward

    # edits (each returns a new keyframe) ----------------------------------------------------

    def with_position(self, position) -> "Keyframe":
        """Same orientation, FOV and timing; camera centre moved to ``position``."""
        return Keyframe.from_pose(position, self.rotation, self.fov_y_deg).with_timing_of(self)

    def with_ypr(self, yaw: float, pitch: float, roll: float) -> "Keyframe":
        """Same position, FOV and timing; orientation from yaw/pitch/roll degrees."""
        return Keyframe.from_position_ypr(self.position, yaw, pitch, roll, self.fov_y_deg).with_timing_of(self)

    def with_look_at(self, target, roll_deg: float = 0.0) -> "Keyframe":
        """Same position, FOV and timing; turned to look at ``target``."""
        return Keyframe.from_look_at(self.position, target, self.fov_y_deg, roll_deg).with_timing_of(self)

    def with_fov(self, fov_y_deg: float) -> "Keyframe":
        return replace(self, fov_y_deg=fov_y_deg)

    def with_time(self, time: float | None) -> "Keyframe":
        return replace(self, time=time)

    def with_hold(self, frames: int) -> "Keyframe":
        """Held for ``frames`` frames after it is reached (0: the camera passes through)."""
        return replace(self, hold=frames)

    def with_ease(self, ease: str) -> "Keyframe":
        return replace(self, ease=ease)

    def with_timing_of(self, other: "Keyframe") -> "Keyframe":
        """This camera (pose and FOV) with ``other``'s time, hold and ease: for rebuilding an edited keyframe."""
        return replace(self, time=other.time, hold=other.hold, ease=other.ease)

    def camera_only(self) -> "Keyframe":
        """This camera (pose and FOV) with no time, no hold and linear ease."""
        return replace(self, time=None, hold=0, ease="linear")
