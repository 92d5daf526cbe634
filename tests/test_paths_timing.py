"""engine.paths.timing through CameraPath: holds, eases, times and constant speed, and one-keyframe paths.

Ground truth is arithmetic on the frame axis (a hold of N frames, the frames left shared evenly) and
closed forms: on a linear segment the camera is at p0 + s (p1 - p0) with s the ease curve, a cubic
with slope 0 at a slowed end (3x^2 - 2x^3 when both ends are slowed).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from paths_helpers import H, W, kf, three_keyframe_path
from engine.cameras import camera_center, intrinsics_from_fov
from engine.errors import InputError
from engine.paths import EASES, CameraPath, Keyframe
from engine.validate import MAX_FRAMES  # the densest reference sampling a path allows


@pytest.fixture
def path3():
    return three_keyframe_path()


def _centres(path, T):
    return camera_center(path.sample_numpy(T, H, W)[0])


def _on_curve(points, dense, tol):
    d = np.linalg.norm(points[:, None, :] - dense[None, :, :], axis=2).min(axis=1)
    assert d.max() < tol, d.max()


# ---------------------------------------------------------------------------- holds


@pytest.mark.parametrize("interp", ["linear", "smooth"])
def test_a_held_keyframe_is_the_same_camera_for_its_hold_frames(path3, interp):
    p = path3.with_options(interpolation=interp).with_hold(1, 10)
    # 41 frames = 40 steps: 10 held, the other 30 shared by the two segments
    np.testing.assert_array_equal(p.key_frames(41), [0, 15, 40])
    w2cs, Ks, fovs = p.sample_numpy(41, H, W)
    b = p.keyframes[1]
    for f in range(15, 26):
        np.testing.assert_array_equal(w2cs[f], b.w2c)
        assert fovs[f] == b.fov_y_deg
    assert not np.allclose(w2cs[14], b.w2c) and not np.allclose(w2cs[26], b.w2c)
    np.testing.assert_array_equal(w2cs[0], p.keyframes[0].w2c)
    np.testing.assert_array_equal(w2cs[40], p.keyframes[2].w2c)
    np.testing.assert_allclose(Ks[20], intrinsics_from_fov(b.fov_y_deg, H, W))
    # torch output too: identical float32 frames
    t, _ = p.sample(41, H, W)
    assert all(torch.equal(t[15], t[f]) for f in range(15, 26))


def test_holds_at_the_ends(path3):
    p = path3.with_hold(0, 4).with_hold(2, 6)
    # keyframe 0 is reached at frame 0 and left at 4; 30 - 10 held steps leave 10 per segment
    np.testing.assert_array_equal(p.key_frames(31), [0, 14, 24])
    w2cs, _, _ = p.sample_numpy(31, H, W)
    for f in range(5):
        np.testing.assert_array_equal(w2cs[f], p.keyframes[0].w2c)
    for f in range(24, 31):
        np.testing.assert_array_equal(w2cs[f], p.keyframes[2].w2c)
    assert not np.allclose(w2cs[5], p.keyframes[0].w2c) and not np.allclose(w2cs[23], p.keyframes[2].w2c)


def test_a_held_keyframe_lands_on_a_whole_frame(path3):
    # 8 moving steps over... 2 segments with 41 - 1 - 7 = 33 steps: 16.5 each, rounded to 17 for the hold
    p = path3.with_hold(1, 7)
    assert p.key_frames(41)[1] == 17
    w2cs, _, _ = p.sample_numpy(41, H, W)
    assert all(np.array_equal(w2cs[f], p.keyframes[1].w2c) for f in range(17, 25))


@pytest.mark.parametrize("interp", ["linear", "smooth"])
def test_holds_and_eases_change_timing_not_shape(path3, interp):
    base = path3.with_options(interpolation=interp)
    dense = _centres(base, MAX_FRAMES)
    for timed in (base.with_hold(1, 9), base.with_ease(1, "ease_in_out").with_ease(0, "ease_out"),
                  base.with_hold(0, 3).with_ease(2, "ease_in")):
        _on_curve(_centres(timed, 61), dense, 2e-3)


def test_timed_keyframe_with_a_hold(path3):
    p = path3.with_keyframe(1, path3.keyframes[1].with_time(0.5).with_hold(4))
    np.testing.assert_array_equal(p.key_frames(21), [0, 10, 20])
    w2cs, _, _ = p.sample_numpy(21, H, W)
    assert all(np.array_equal(w2cs[f], p.keyframes[1].w2c) for f in range(10, 15))
    # key_times stay the given / filled times: the path time of held frames is exactly the keyframe's
    np.testing.assert_array_equal(p.key_times(), [0, 0.5, 1])
    times = p.frame_times(21)
    np.testing.assert_array_equal(times[10:15], 0.5)
    assert np.all(np.diff(times) >= 0) and times[0] == 0 and times[-1] == 1


def test_timings_that_cannot_be_honoured_are_refused(path3):
    with pytest.raises(InputError) as err:
        path3.with_hold(1, 20).sample(21, H, W)
    assert str(err.value) == ("the holds do not fit in 21 frames (20 of its 20 frame steps are held): keyframe 1 "
                              "would be reached at frame 0, no later than keyframe 0 moves on at frame 0 (shorten "
                              "a hold, change a keyframe time or use more frames)")
    with pytest.raises(InputError, match="do not fit"):
        path3.with_hold(0, 12).with_hold(1, 9).key_frames(21)
    last = path3.with_keyframe(2, path3.keyframes[2].with_time(1.0).with_hold(3))
    with pytest.raises(InputError, match="keyframe 2 is held past the last frame"):
        last.sample(21, H, W)
    timed = path3.with_keyframe(1, path3.keyframes[1].with_time(0.2).with_hold(9))
    with pytest.raises(InputError, match="keyframe 2 would be reached at frame 10, no later than keyframe 1 moves on "
                                         "at frame 13"):
        timed.with_keyframe(2, path3.keyframes[2].with_time(0.5)).sample(21, H, W)
    # the same holds fit in a longer clip
    assert path3.with_hold(1, 20).sample(41, H, W)[0].shape == (41, 4, 4)


# ---------------------------------------------------------------------------- eases


@pytest.mark.parametrize("ease0,ease1,curve", [
    ("ease_out", "ease_in", lambda x: 3 * x**2 - 2 * x**3),
    ("ease_in_out", "ease_in_out", lambda x: 3 * x**2 - 2 * x**3),
    ("ease_out", "linear", lambda x: 2 * x**2 - x**3),
    ("linear", "ease_in", lambda x: x + x**2 - x**3),
    ("ease_in", "ease_out", lambda x: x),  # slowing into the first / out of the last keyframe: nothing to slow
])
def test_ease_on_a_linear_segment_follows_the_closed_form(ease0, ease1, curve):
    a = kf([0, 0, 0], 0, 0, 0, 40).with_ease(ease0)
    b = kf([2, -1, 4], 30, 10, 0, 60).with_ease(ease1)
    T = 31
    w2cs, _, fovs = CameraPath((a, b), interpolation="linear").sample_numpy(T, H, W)
    s = curve(np.arange(T) / (T - 1))
    np.testing.assert_allclose(camera_center(w2cs), s[:, None] * (b.position - a.position), atol=1e-12)
    np.testing.assert_allclose(fovs, 40 + 20 * s, atol=1e-12)
    np.testing.assert_array_equal(w2cs[0], a.w2c)
    np.testing.assert_array_equal(w2cs[-1], b.w2c)


def test_ease_in_out_brings_the_camera_to_rest_at_a_keyframe(path3):
    p = path3.with_ease(1, "ease_in_out")
    c = _centres(p, 41)
    plain = _centres(path3, 41)
    steps = np.linalg.norm(np.diff(c, axis=0), axis=1)
    plain_steps = np.linalg.norm(np.diff(plain, axis=0), axis=1)
    # frame 20 is keyframe 1: the steps next to it are a small fraction of the steps without ease
    np.testing.assert_array_equal(p.sample_numpy(41, H, W)[0][20], p.keyframes[1].w2c)
    # (on its 20-frame segments the first step is s(1/20) = 0.00725 of the way instead of 0.05)
    assert steps[19] < 0.2 * plain_steps[19] and steps[20] < 0.2 * plain_steps[20]
    # progress along the curve only moves forward (monotone timing)
    dense = _centres(path3, MAX_FRAMES)
    along = [np.argmin(np.linalg.norm(dense - x, axis=1)) for x in c]
    assert np.all(np.diff(along) >= 0)


def test_keyframe_timing_fields():
    k = kf([1, 2, 3], 10, 20, 30, fov=70, time=0.25)
    assert (k.hold, k.ease) == (0, "linear")
    h = k.with_hold(12).with_ease("ease_in")
    assert (h.hold, h.ease, h.time) == (12, "ease_in", 0.25) and h != k and hash(h) != hash(k)
    assert k.with_hold(12.0).hold == 12
    # camera edits keep the timing; with_timing_of copies it onto a rebuilt camera; camera_only drops it
    for edited in (h.with_position([0, 0, 0]), h.with_ypr(5, 0, 0), h.with_look_at([0, 0, 9]), h.with_fov(30)):
        assert (edited.time, edited.hold, edited.ease) == (0.25, 12, "ease_in")
    rebuilt = Keyframe.from_look_at([0, 0, 0], [0, 0, 1], 50).with_timing_of(h)
    assert (rebuilt.time, rebuilt.hold, rebuilt.ease) == (0.25, 12, "ease_in")
    assert (h.camera_only().time, h.camera_only().hold, h.camera_only().ease) == (None, 0, "linear")
    assert set(EASES) == {"linear", "ease_in", "ease_out", "ease_in_out"}
    for bad, match in ((-1, "hold"), (1.5, "hold"), (True, "hold"), ("3", "hold"), (10**9, "hold")):
        with pytest.raises(InputError, match=match):
            k.with_hold(bad)
    for bad in ("fast", 3, None, "EASE_IN"):
        with pytest.raises(InputError, match="ease must be one of linear, ease_in, ease_out, ease_in_out"):
            k.with_ease(bad)


# ---------------------------------------------------------------------------- constant speed


def test_constant_speed_with_holds_and_eases():
    ks = (kf([0, 0, 0]), kf([0.1, 0, 0]), kf([3, 0, 1]), kf([3.2, 0, 1.5]))
    for interp in ("linear", "smooth"):
        p = CameraPath(ks, interpolation=interp, constant_speed=True).with_hold(2, 10)
        a = p.key_frames(71)
        assert a[0] == 0 and a[3] == 70 and a[2] == int(a[2])
        w2cs, _, _ = p.sample_numpy(71, H, W)
        h = int(a[2])
        assert all(np.array_equal(w2cs[h], w2cs[f]) for f in range(h, h + 11))
        np.testing.assert_array_equal(w2cs[h], ks[2].w2c)
        c = camera_center(w2cs)
        steps = np.linalg.norm(np.diff(c, axis=0), axis=1)
        moving = np.r_[steps[:h - 1], steps[h + 11:]]  # the steps next to the hold end on a whole frame
        assert moving.std() / moving.mean() < 0.05
        # keyframes 1 and 2 are where the steady speed puts them: at their share of the distance (linear:
        # the straight lines' lengths; smooth: about the same) of the 60 moving frame steps; the held
        # keyframe 2 rounded to a whole frame, keyframe 1 at its share of the stretch up to it
        lengths = np.linalg.norm(np.diff([k.position for k in ks], axis=0), axis=1)
        tol = 1e-3 if interp == "linear" else 0.3
        assert a[2] == pytest.approx(60 * lengths[:2].sum() / lengths.sum(), abs=0.5 + tol)
        assert a[1] == pytest.approx(a[2] * lengths[0] / lengths[:2].sum(), abs=tol)
        # an ease at keyframe 2 slows the camera next to it
        eased = p.with_ease(2, "ease_in_out")
        c = _centres(eased, 71)
        steps = np.linalg.norm(np.diff(c, axis=0), axis=1)
        assert steps[h - 1] < 0.2 * np.median(steps[steps > 0])


def test_constant_speed_refuses_stops_the_camera_does_not_travel_between():
    a, b = kf([0, 0, 0]), kf([1, 0, 0])
    pan = (a, b.with_hold(5), kf([1, 0, 0], 40).with_hold(5), kf([2, 0, 0]))
    p = CameraPath(pan, constant_speed=True)
    with pytest.raises(InputError, match="with constant speed, keyframes 1 and 2 get no frames"):
        p.sample(61, H, W)
    assert p.with_options(constant_speed=False).sample(61, H, W)[0].shape == (61, 4, 4)


# ---------------------------------------------------------------------------- one keyframe


def test_a_one_keyframe_path_is_a_still_camera_that_needs_a_second_keyframe():
    p = CameraPath.from_input_camera(55.0)
    assert len(p) == 1 and not p.can_animate
    np.testing.assert_array_equal(p.keyframes[0].w2c, np.eye(4))
    w2cs, Ks = p.sample(1, H, W)
    torch.testing.assert_close(w2cs[0], torch.eye(4))
    np.testing.assert_allclose(Ks[0].numpy(), intrinsics_from_fov(55.0, H, W), rtol=1e-6)
    message = "a path needs at least two keyframes to preview motion or generate (it has 1): add a keyframe"
    for T in (2, 121):
        with pytest.raises(InputError) as err:
            p.sample(T, H, W)
        assert str(err.value) == message
    with pytest.raises(InputError, match="at least two keyframes"):
        p.frame_times(121)
    np.testing.assert_array_equal(p.key_times(), [0.0])
    grown = p.inserted(1, kf([0.2, 0, 0.1], fov=55.0))
    assert grown.can_animate and grown.sample(5, H, W)[0].shape == (5, 4, 4)
    assert CameraPath.single(kf([1, 2, 3])).keyframes == (kf([1, 2, 3]),)
    with pytest.raises(InputError, match="at least 1 keyframe"):
        p.removed(0)
    # a moving path still needs two frames
    with pytest.raises(InputError, match="num_frames"):
        grown.sample(1, H, W)
