"""Shared by the engine.paths tests: a keyframe shorthand, a three-key path, an angle metric."""
from __future__ import annotations

import math

import numpy as np

from engine.paths import CameraPath, Keyframe

K_REF = np.array([[1000.0, 0, 640], [0, 1000, 352], [0, 0, 1]])
H, W = 704, 1280


def kf(pos, yaw=0.0, pitch=0.0, roll=0.0, fov=50.0, time=None):
    return Keyframe.from_position_ypr(pos, yaw, pitch, roll, fov, time)


def three_keyframe_path() -> CameraPath:
    return CameraPath((kf([0, 0, 0]), kf([1, 0, 0.5], 30, 10, 5, 40), kf([2, -0.5, 1], -20, 0, 0, 60)))


def angle_between(Ra, Rb):
    """Angle in degrees of the rotation taking Ra to Rb."""
    c = (np.trace(Ra.T @ Rb) - 1) / 2
    return math.degrees(math.acos(np.clip(c, -1, 1)))
