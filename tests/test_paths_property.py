"""Property: any path of random keyframes, holds and eases samples to finite rigid cameras, as many as
asked for, showing each keyframe exactly on the frame it is reached and for every frame it is held."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cameras import fov_y_from_intrinsics
from engine.paths import EASES, CameraPath, Keyframe

H, W = 36, 64


@st.composite
def paths(draw):
    n = draw(st.integers(2, 7))
    # a random walk with steps of 0.5..1.5: no segment is much shorter than another, so with constant
    # speed every segment still gets a few frames (two stops with no travel between them are refused)
    steps = draw(st.lists(st.tuples(*[st.floats(-1, 1)] * 3), min_size=n - 1, max_size=n - 1))
    pos = [np.zeros(3)]
    for step in steps:
        v = np.array(step)
        v = v / np.linalg.norm(v) if np.linalg.norm(v) > 1e-3 else np.array([1.0, 0, 0])
        pos.append(pos[-1] + v * draw(st.floats(0.5, 1.5)))
    kfs = []
    for p in pos:
        yaw, pitch, roll = draw(st.floats(-180, 180)), draw(st.floats(-80, 80)), draw(st.floats(-45, 45))
        kfs.append(Keyframe.from_position_ypr(p, yaw, pitch, roll, draw(st.floats(20, 100)))
                   .with_hold(draw(st.sampled_from([0, 0, 1, 3, 8])))
                   .with_ease(draw(st.sampled_from(EASES))))
    path = CameraPath(tuple(kfs), draw(st.sampled_from(["linear", "smooth"])), draw(st.booleans()))
    # enough frames for every segment to move over several frames; for uniform timing the frames left
    # after the holds are a multiple of the segments, so every keyframe lands on a whole frame
    held = sum(k.hold for k in kfs)
    T = held + 1 + (n - 1) * draw(st.integers(12, 30))
    if n > 2 and draw(st.booleans()):
        # pin an interior keyframe to a time a few whole frames off where the even spacing puts it
        k = draw(st.integers(1, n - 2))
        frame = round(path.key_frames(T)[k]) + draw(st.integers(-3, 3))
        path = path.with_keyframe(k, path.keyframes[k].with_time(frame / (T - 1)))
    return path, T


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(paths())
def test_random_paths_sample_to_rigid_cameras_through_their_keyframes(case):
    path, T = case
    w2cs, Ks, fovs = path.sample_numpy(T, H, W)
    assert w2cs.shape == (T, 4, 4) and Ks.shape == (T, 3, 3) and fovs.shape == (T,)
    assert np.all(np.isfinite(w2cs)) and np.all(np.isfinite(Ks))
    R = w2cs[:, :3, :3]
    np.testing.assert_allclose(np.einsum("tji,tjk->tik", R, R), np.broadcast_to(np.eye(3), R.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-9)
    np.testing.assert_array_equal(w2cs[:, 3], np.broadcast_to([0, 0, 0, 1.0], (T, 4)))
    lo, hi = min(k.fov_y_deg for k in path.keyframes), max(k.fov_y_deg for k in path.keyframes)
    assert np.all((fovs >= lo - 1e-9) & (fovs <= hi + 1e-9))
    np.testing.assert_allclose([fov_y_from_intrinsics(K, H) for K in Ks], fovs, atol=1e-9)

    arrivals = path.key_frames(T)
    assert arrivals[0] == 0 and arrivals[-1] + path.keyframes[-1].hold == T - 1
    assert np.all(np.diff(arrivals) > 0)
    checked = 0
    for k, (kf, a) in enumerate(zip(path.keyframes, arrivals)):
        if a != int(a):
            # uniform timing puts every keyframe on a frame here, unless a time moved the others
            assert path.constant_speed or any(k.time is not None for k in path.keyframes)
            continue
        for f in range(int(a), int(a) + kf.hold + 1):
            np.testing.assert_array_equal(w2cs[f], kf.w2c)
            assert fovs[f] == kf.fov_y_deg
        checked += 1
    # always the two ends and the held or timed keyframes; every keyframe with plain even spacing
    pinned = sum(1 for k in path.keyframes[1:-1] if k.hold or k.time is not None)
    uneven = path.constant_speed or pinned and any(k.time is not None for k in path.keyframes)
    assert checked >= 2 + pinned and (uneven or checked == len(path))
    # and the float32 cameras the generator gets are the same
    t_w2cs, t_Ks = path.sample(T, H, W)
    np.testing.assert_allclose(t_w2cs.numpy(), w2cs, atol=1e-5)
