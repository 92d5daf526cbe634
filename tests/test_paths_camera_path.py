"""engine.paths.camera_path: CameraPath validation, edits, timing, interpolation and sampling."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from paths_helpers import K_REF, H, W, angle_between, kf, three_keyframe_path
from engine.cameras import camera_center, intrinsics_from_fov, preset_trajectory
from engine.errors import InputError
from engine.paths import MAX_KEYFRAMES, CameraPath, Keyframe


@pytest.fixture
def path3():
    return three_keyframe_path()


# ---------------------------------------------------------------------------- CameraPath validation and edits


def test_path_validation(path3):
    a, b, c = path3.keyframes
    # one keyframe is a path (a still camera to add to); none is not
    assert len(CameraPath((a,))) == 1 and not CameraPath((a,)).can_animate and path3.can_animate
    with pytest.raises(InputError, match="at least 1 keyframe"):
        CameraPath(())
    # two consecutive identical keyframes (a duplicate) are a segment where the camera stays still
    w2cs, _, fovs = CameraPath((a, b, b, c)).sample_numpy(13, H, W)
    for frame in range(4, 9):
        np.testing.assert_array_equal(w2cs[frame], b.w2c)
    assert not np.allclose(w2cs[3], b.w2c) and not np.allclose(w2cs[9], b.w2c)
    with pytest.raises(InputError, match="keyframe 1 is a"):
        CameraPath((a, "b"))
    with pytest.raises(InputError, match="interpolation"):
        CameraPath((a, b), interpolation="cubic")
    with pytest.raises(InputError, match="constant_speed"):
        CameraPath((a, b), constant_speed="yes")
    with pytest.raises(InputError, match="strictly increasing"):
        CameraPath((a.with_time(0.5), b.with_time(0.5)))
    with pytest.raises(InputError, match="strictly increasing"):
        CameraPath((a, b.with_time(0.0), c))
    # same pose with another fov (a pure zoom) is allowed, and non-consecutive repeats are too
    CameraPath((a, a.with_fov(20)))
    CameraPath((a, b, a))


def test_path_too_many_keyframes():
    a, b = kf([0, 0, 0]), kf([1, 0, 0])
    many = (a, b) * (MAX_KEYFRAMES // 2) + (a,)
    CameraPath(many[:MAX_KEYFRAMES])  # the limit itself is fine
    assert len(many) == MAX_KEYFRAMES + 1
    with pytest.raises(InputError, match="too many keyframes"):
        CameraPath(many)


def test_key_times_fill():
    ks = [kf([i, 0, 0]) for i in range(5)]
    np.testing.assert_allclose(CameraPath(tuple(ks)).key_times(), [0, 0.25, 0.5, 0.75, 1])
    ks[2] = ks[2].with_time(0.8)
    np.testing.assert_allclose(CameraPath(tuple(ks)).key_times(), [0, 0.4, 0.8, 0.9, 1])


def test_path_edits_return_new_paths(path3):
    a, b, c = path3.keyframes
    d = kf([5, 0, 0])
    assert path3.with_keyframe(1, d).keyframes == (a, d, c)
    assert path3.inserted(1, d).keyframes == (a, d, b, c)
    assert path3.inserted(3, d).keyframes == (a, b, c, d)
    assert path3.removed(0).keyframes == (b, c)
    assert path3.moved(0, 2).keyframes == (b, c, a)
    assert path3.moved(2, 0).keyframes == (c, a, b)
    # a duplicate goes right after the original (issue: "Duplicate inserts after the selected keyframe")
    assert path3.duplicated(0).keyframes == (a, a, b, c)
    assert path3.duplicated(2).keyframes == (a, b, c, c)
    assert path3.keyframes == (a, b, c)  # untouched
    # it copies the camera only: no time (times must increase), no hold, linear ease
    timed = path3.with_keyframe(1, b.with_time(0.4).with_hold(3).with_ease("ease_in"))
    copy = timed.duplicated(1).keyframes[2]
    assert np.array_equal(copy.w2c, b.w2c) and copy.fov_y_deg == b.fov_y_deg
    assert (copy.time, copy.hold, copy.ease) == (None, 0, "linear")
    # delete works down to one keyframe, never to none
    assert path3.removed(0).removed(0).keyframes == (c,)
    with pytest.raises(InputError, match="at least 1 keyframe"):
        path3.removed(0).removed(0).removed(0)
    with pytest.raises(InputError, match="out of range"):
        path3.with_keyframe(7, d)
    with pytest.raises(InputError, match="integer"):
        path3.removed(1.0)
    assert path3.with_options(interpolation="linear").interpolation == "linear"


# ---------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("interp", ["linear", "smooth"])
def test_sample_passes_through_keyframes(path3, interp):
    p = path3.with_options(interpolation=interp)
    w2cs, Ks = p.sample(9, H, W)
    assert w2cs.shape == (9, 4, 4) and Ks.shape == (9, 3, 3) and w2cs.dtype == torch.float32
    for frame, k in zip([0, 4, 8], p.keyframes):
        np.testing.assert_allclose(w2cs[frame].numpy(), k.w2c, atol=1e-6)
        np.testing.assert_allclose(Ks[frame].numpy(), intrinsics_from_fov(k.fov_y_deg, H, W), rtol=1e-6)
    # explicit times: keyframe 1 at t = 0.25 -> frame 2 of 9
    timed = p.with_keyframe(1, p.keyframes[1].with_time(0.25))
    w2cs, _ = timed.sample(9, H, W)
    np.testing.assert_allclose(w2cs[2].numpy(), p.keyframes[1].w2c, atol=1e-6)


def test_linear_midpoints(path3):
    p = CameraPath(path3.keyframes[:2], interpolation="linear")
    w2cs, Ks = p.sample(3, H, W)
    a, b = p.keyframes
    mid = camera_center(w2cs[1].double().numpy())
    np.testing.assert_allclose(mid, (a.position + b.position) / 2, atol=1e-6)
    R = w2cs[1, :3, :3].double().numpy().T
    total = angle_between(a.rotation, b.rotation)
    assert angle_between(a.rotation, R) == pytest.approx(total / 2, abs=1e-3)
    assert angle_between(R, b.rotation) == pytest.approx(total / 2, abs=1e-3)
    fov = math.degrees(2 * math.atan(H / 2 / Ks[1, 1, 1].item()))
    assert fov == pytest.approx(45.0, abs=1e-4)


def _rodrigues(axis, angle_deg):
    n = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    Kx = np.array([[0, -n[2], n[1]], [n[2], 0, -n[0]], [-n[1], n[0], 0]])
    a = math.radians(angle_deg)
    return np.eye(3) + math.sin(a) * Kx + (1 - math.cos(a)) * Kx @ Kx


def test_linear_rotation_is_the_closed_form_slerp():
    # From R0 to R1 = R0 Rot(n, theta), slerp at s is R0 Rot(n, s theta): a constant-speed turn about n.
    R0 = kf([0, 0, 0], 35, -20, 10).rotation
    axis, theta = [0.3, -0.8, 0.5], 150.0
    a = Keyframe.from_pose([0, 0, 0], R0, 50.0)
    b = Keyframe.from_pose([1, 2, 3], R0 @ _rodrigues(axis, theta), 50.0)
    w2cs, _, _ = CameraPath((a, b), interpolation="linear").sample_numpy(9, H, W)
    for i in range(9):
        np.testing.assert_allclose(w2cs[i, :3, :3].T, R0 @ _rodrigues(axis, theta * i / 8), atol=1e-12)
    # keys timed at 0.25 and 0.75: the camera holds each end key outside them, turns half-way at 0.5
    timed = CameraPath((a.with_time(0.25), b.with_time(0.75)), interpolation="linear")
    w2cs, _, _ = timed.sample_numpy(9, H, W)
    for i, s in enumerate([0, 0, 0, 0.25, 0.5, 0.75, 1, 1, 1]):
        np.testing.assert_allclose(w2cs[i, :3, :3].T, R0 @ _rodrigues(axis, theta * s), atol=1e-12)


def test_smooth_is_straight_on_collinear_even_keys_and_smooth_at_keys():
    ks = tuple(kf([i, 0, 0]) for i in range(4))
    w2cs, _ = CameraPath(ks).sample(31, H, W)
    c = camera_center(w2cs.double().numpy())
    np.testing.assert_allclose(c[:, 1:], 0, atol=1e-6)
    np.testing.assert_allclose(c[:, 0], np.linspace(0, 3, 31), atol=1e-5)
    # a bent path: velocity is continuous through keyframe 1 for "smooth", not for "linear"
    bent = (kf([0, 0, 0]), kf([1, 0, 0]), kf([1, 0, 1]))
    T = 401  # keyframe 1 is frame 200
    for interp, continuous in (("smooth", True), ("linear", False)):
        c = camera_center(CameraPath(bent, interpolation=interp).sample(T, H, W)[0].double().numpy())
        v_in, v_out = c[200] - c[199], c[201] - c[200]
        cos = v_in @ v_out / np.linalg.norm(v_in) / np.linalg.norm(v_out)
        assert (cos > 0.99) == continuous


def test_smooth_rotation_is_continuous():
    ks = (kf([0, 0, 0], 0), kf([1, 0, 0], 60, 10), kf([2, 0, 0], -30, -20, 15), kf([3, 0, 0], 170))
    w2cs, _ = CameraPath(ks).sample(301, H, W)
    R = w2cs[:, :3, :3].double().numpy()
    steps = [angle_between(R[i], R[i + 1]) for i in range(300)]
    assert max(steps) < 5 * np.median(steps)  # no jumps (hemisphere handled)
    np.testing.assert_allclose(np.einsum("tij,tkj->tik", R, R), np.broadcast_to(np.eye(3), R.shape), atol=1e-6)


def test_rotation_always_takes_the_short_way():
    # Pairs of nearby orientations all over the sphere; some have raw quaternions with a negative
    # dot (opposite hemispheres), which must not turn the long way round.
    for yaw in range(-180, 180, 20):
        for pitch in (-60, 0, 60):
            for roll in (-170, 0, 90):
                ks = (kf([0, 0, 0], yaw, pitch, roll), kf([1, 0, 0], yaw + 10, pitch, roll))
                total = angle_between(ks[0].rotation, ks[1].rotation)
                for interp in ("linear", "smooth"):
                    w2cs, _ = CameraPath(ks, interpolation=interp).sample(3, H, W)
                    R = w2cs[1, :3, :3].double().numpy().T
                    assert angle_between(ks[0].rotation, R) == pytest.approx(total / 2, abs=1e-3)


def test_constant_speed():
    # keys unevenly spaced: uniform timing gives uneven steps, constant_speed evens them out
    ks = (kf([0, 0, 0]), kf([0.1, 0, 0]), kf([3, 0, 1]), kf([3.2, 0, 1.5]))
    for interp in ("linear", "smooth"):
        p = CameraPath(ks, interpolation=interp)
        steps = np.linalg.norm(np.diff(camera_center(p.sample(61, H, W)[0].double().numpy()), axis=0), axis=1)
        assert steps.max() / steps.min() > 3
        cs = p.with_options(constant_speed=True)
        w2cs, _ = cs.sample(61, H, W)
        c = camera_center(w2cs.double().numpy())
        steps = np.linalg.norm(np.diff(c, axis=0), axis=1)
        assert steps.std() / steps.mean() < 0.02
        np.testing.assert_allclose(c[0], ks[0].position, atol=1e-6)
        np.testing.assert_allclose(c[-1], ks[-1].position, atol=1e-6)


def test_constant_speed_pure_rotation_is_uniform_in_time():
    ks = (kf([1, 1, 1], 0), kf([1, 1, 1], 90), kf([1, 1, 1], 120, fov=30))
    a = CameraPath(ks).sample(11, H, W)
    b = CameraPath(ks, constant_speed=True).sample(11, H, W)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.isfinite(b[0]).all()


def test_sample_bad_input(path3):
    with pytest.raises(InputError, match="num_frames"):
        path3.sample(1, H, W)
    with pytest.raises(InputError, match="width"):
        path3.sample(5, H, 0)
    with pytest.raises(InputError, match="num_frames"):
        path3.sample(10**9, H, W)


# ---------------------------------------------------------------------------- from_cameras


@pytest.mark.parametrize("kind,rotation", [("left", "center_facing"), ("clockwise", "trajectory_aligned"),
                                           ("zoom_in", "no_rotation")])
@pytest.mark.parametrize("interp", ["linear", "smooth"])
def test_from_cameras_reproduces_preset(kind, rotation, interp):
    w2cs, Ks = preset_trajectory(kind, np.eye(4), K_REF, 121, 0.3, rotation)
    p = CameraPath.from_cameras(w2cs, Ks, H, interpolation=interp)
    assert len(p) == 121
    w2, K2 = p.sample(121, H, W)
    torch.testing.assert_close(w2, w2cs, atol=1e-5, rtol=0)
    torch.testing.assert_close(K2, Ks, atol=1e-5, rtol=1e-6)


def test_from_cameras_errors():
    w2cs, Ks = preset_trajectory("left", np.eye(4), K_REF, 5, 0.3, "center_facing")
    with pytest.raises(InputError, match="frames"):
        CameraPath.from_cameras(w2cs, Ks[:3], H)
    with pytest.raises(InputError, match="shape"):
        CameraPath.from_cameras(w2cs[0], Ks, H)
