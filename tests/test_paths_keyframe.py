"""engine.paths.keyframe: Keyframe construction, yaw/pitch/roll, accessors, edits and validation."""
from __future__ import annotations

import math

import numpy as np
import pytest

from paths_helpers import kf
from engine.errors import InputError
from engine.paths import Keyframe


# ---------------------------------------------------------------------------- Keyframe


def test_ypr_round_trip_random():
    rng = np.random.default_rng(0)
    for _ in range(200):
        y, p, r = rng.uniform(-179, 179), rng.uniform(-89, 89), rng.uniform(-179, 179)
        k = kf(rng.normal(size=3), y, p, r)
        np.testing.assert_allclose(k.yaw_pitch_roll(), (y, p, r), atol=1e-9)


def test_ypr_meaning():
    # yaw 90 looks along +x, pitch 90 looks up (world -y), roll keeps the view axis
    np.testing.assert_allclose(kf([0, 0, 0], yaw=90).forward, [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(kf([0, 0, 0], pitch=90).forward, [0, -1, 0], atol=1e-12)
    rolled = kf([0, 0, 0], roll=90)
    np.testing.assert_allclose(rolled.forward, [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(rolled.rotation[:, 0], [0, 1, 0], atol=1e-12)  # camera x turned to y
    np.testing.assert_allclose(kf([0, 0, 0]).w2c, np.eye(4), atol=1e-15)


def test_ypr_matches_the_closed_form_rotation():
    # R_c2w = Ry(yaw) Rx(pitch) Rz(roll), multiplied out by hand
    rng = np.random.default_rng(1)
    for _ in range(50):
        y, p, r = rng.uniform(-180, 180), rng.uniform(-90, 90), rng.uniform(-180, 180)
        cy, sy = math.cos(math.radians(y)), math.sin(math.radians(y))
        cp, sp = math.cos(math.radians(p)), math.sin(math.radians(p))
        cr, sr = math.cos(math.radians(r)), math.sin(math.radians(r))
        R = np.array([
            [cy * cr + sy * sp * sr, -cy * sr + sy * sp * cr, sy * cp],
            [cp * sr, cp * cr, -sp],
            [-sy * cr + cy * sp * sr, sy * sr + cy * sp * cr, cy * cp],
        ])
        pos = rng.normal(size=3)
        k = kf(pos, y, p, r)
        np.testing.assert_allclose(k.rotation, R, atol=1e-12)
        np.testing.assert_allclose(k.w2c[:3, 3], -R.T @ pos, atol=1e-12)


def test_look_at_roll_matches_the_closed_form_rotation():
    # looking down +z from the origin the look-at rotation is I, so the roll alone remains: Rz(roll)
    for roll in (-120.0, -30.0, 12.0, 90.0, 179.0):
        c, s = math.cos(math.radians(roll)), math.sin(math.radians(roll))
        k = Keyframe.from_look_at([0, 0, 0], [0, 0, 5], 50.0, roll_deg=roll)
        np.testing.assert_allclose(k.rotation, [[c, -s, 0], [s, c, 0], [0, 0, 1]], atol=1e-12)


def test_ypr_gimbal_lock_reproduces_pose():
    k = kf([1, 2, 3], 40, 90, 25)
    y, p, r = k.yaw_pitch_roll()
    assert p == pytest.approx(90) and r == 0.0
    np.testing.assert_allclose(kf([1, 2, 3], y, p, r).w2c, k.w2c, atol=1e-9)


def test_from_look_at_matches_ypr_and_accessors():
    pos, target = np.array([1.0, -0.5, -2.0]), np.array([0.0, 0.2, 1.0])
    k = Keyframe.from_look_at(pos, target, 45.0, roll_deg=12.0, time=0.5)
    np.testing.assert_allclose(k.position, pos, atol=1e-12)
    d = np.linalg.norm(target - pos)
    np.testing.assert_allclose(k.look_target(d), target, atol=1e-12)
    y, p, r = k.yaw_pitch_roll()
    assert r == pytest.approx(12.0, abs=1e-9)
    np.testing.assert_allclose(kf(pos, y, p, r, fov=45.0, time=0.5).w2c, k.w2c, atol=1e-12)
    assert k.time == 0.5 and k.fov_y_deg == 45.0
    assert not k.w2c.flags.writeable


def test_keyframe_edits_keep_other_fields():
    k = kf([1, 2, 3], 10, 20, 30, fov=70, time=0.25)
    moved = k.with_position([4, 5, 6])
    np.testing.assert_allclose(moved.position, [4, 5, 6], atol=1e-12)
    np.testing.assert_allclose(moved.rotation, k.rotation, atol=1e-15)
    turned = k.with_ypr(-5, 0, 0)
    np.testing.assert_allclose(turned.position, k.position, atol=1e-12)
    np.testing.assert_allclose(turned.yaw_pitch_roll(), (-5, 0, 0), atol=1e-9)
    looked = k.with_look_at([1, 2, 10])
    np.testing.assert_allclose(looked.forward, [0, 0, 1], atol=1e-12)
    assert k.with_fov(30).fov_y_deg == 30 and k.with_time(None).time is None
    assert k == kf([1, 2, 3], 10, 20, 30, fov=70, time=0.25) and hash(k) == hash(kf([1, 2, 3], 10, 20, 30, 70, 0.25))
    assert k != k.with_fov(71)


@pytest.mark.parametrize(
    "args,match",
    [
        ((np.diag([1.0, 1, 2, 1]), 50.0), "rigid"),
        ((np.eye(3), 50.0), "shape"),
        ((np.eye(4), 0.5), "fov"),
        ((np.eye(4), 180.0), "fov"),
        ((np.eye(4), float("nan")), "fov"),
        ((np.eye(4), 50.0, 1.5), "time"),
        ((np.eye(4), 50.0, float("inf")), "time"),
    ],
)
def test_keyframe_bad_input(args, match):
    with pytest.raises(InputError, match=match):
        Keyframe(*args)


def test_keyframe_bad_constructor_input():
    with pytest.raises(InputError, match="position"):
        Keyframe.from_position_ypr([0, 0], 0, 0, 0, 50)
    with pytest.raises(InputError, match="yaw"):
        Keyframe.from_position_ypr([0, 0, 0], float("nan"), 0, 0, 50)
    with pytest.raises(InputError, match="coincides"):
        Keyframe.from_look_at([0, 0, 0], [0, 0, 0], 50)
