"""engine.paths: keyframes, path edits, interpolation, and JSON / nerfstudio / NPZ I/O."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from engine.cameras import camera_center, intrinsics_from_fov, preset_trajectory
from engine.errors import InputError
from engine.paths import (
    MAX_KEYFRAMES,
    CameraPath,
    Keyframe,
    load_npz,
    load_nerfstudio,
    load_path_json,
    path_from_dict,
    path_to_dict,
    save_nerfstudio,
    save_npz,
    save_path_json,
    to_nerfstudio,
)

K_REF = np.array([[1000.0, 0, 640], [0, 1000, 352], [0, 0, 1]])
H, W = 704, 1280


def kf(pos, yaw=0.0, pitch=0.0, roll=0.0, fov=50.0, time=None):
    return Keyframe.from_position_ypr(pos, yaw, pitch, roll, fov, time)


@pytest.fixture
def path3():
    return CameraPath((kf([0, 0, 0]), kf([1, 0, 0.5], 30, 10, 5, 40), kf([2, -0.5, 1], -20, 0, 0, 60)))


def angle_between(Ra, Rb):
    c = (np.trace(Ra.T @ Rb) - 1) / 2
    return math.degrees(math.acos(np.clip(c, -1, 1)))


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


# ---------------------------------------------------------------------------- CameraPath validation and edits


def test_path_validation(path3):
    a, b, c = path3.keyframes
    with pytest.raises(InputError, match="at least 2"):
        CameraPath((a,))
    with pytest.raises(InputError, match="keyframes 1 and 2 are identical"):
        CameraPath((a, b, b))
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
    assert path3.duplicated(0).keyframes == (a, b, c, a)
    assert path3.keyframes == (a, b, c)  # untouched
    with pytest.raises(InputError, match="identical"):
        path3.duplicated(2)
    with pytest.raises(InputError, match="at least 2"):
        path3.removed(0).removed(0)
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
    with pytest.raises(InputError, match="identical"):
        CameraPath.from_cameras(torch.cat([w2cs[:1], w2cs]), K_REF, H)
    with pytest.raises(InputError, match="shape"):
        CameraPath.from_cameras(w2cs[0], Ks, H)


# ---------------------------------------------------------------------------- project JSON


def test_path_json_round_trip_exact(tmp_path, path3):
    p = path3.with_keyframe(1, path3.keyframes[1].with_time(1 / 3)).with_options(constant_speed=True)
    f = tmp_path / "path.json"
    save_path_json(p, f)
    d = json.loads(f.read_text())
    assert d["format"] == "gen3c-studio-path" and d["version"] == 1 and len(d["keyframes"][0]["w2c"]) == 16
    q = load_path_json(f)
    assert q == p
    assert all(np.array_equal(a.w2c, b.w2c) for a, b in zip(p.keyframes, q.keyframes))


def _write(tmp_path, obj, name="bad.json"):
    f = tmp_path / name
    f.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return f


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda d: d.pop("keyframes"), "missing 'keyframes'"),
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d.update(version=2), "version"),
        (lambda d: d.update(interpolation="cubic"), "interpolation"),
        (lambda d: d.update(constant_speed="no"), "constant_speed"),
        (lambda d: d.update(keyframes="many"), "list"),
        (lambda d: d["keyframes"][0].pop("fov_y_deg"), "keyframe 0 is missing 'fov_y_deg'"),
        (lambda d: d["keyframes"][1].update(fov_y_deg="wide"), "keyframe 1 fov"),
        (lambda d: d["keyframes"][1].update(fov_y_deg=True), "keyframe 1 fov"),
        (lambda d: d["keyframes"][0].update(w2c=[1, 2, 3]), "16 numbers"),
        (lambda d: d["keyframes"][0].update(w2c=[2.0] + [0.0] * 4 + [1.0] + [0.0] * 4 + [1.0] + [0.0] * 4 + [1.0]),
         "keyframe 0.*rigid"),
        (lambda d: d["keyframes"][0].update(time="soon"), "time"),
        (lambda d: d["keyframes"][1].update(w2c=d["keyframes"][0]["w2c"], fov_y_deg=d["keyframes"][0]["fov_y_deg"]),
         "identical"),
        (lambda d: d.update(keyframes=d["keyframes"] * 5001), "too many keyframes"),
    ],
)
def test_path_json_bad_files(tmp_path, path3, mutate, match):
    d = path_to_dict(path3)
    mutate(d)
    with pytest.raises(InputError, match=match):
        load_path_json(_write(tmp_path, d))


def test_path_json_hostile_files(tmp_path, path3):
    text = json.dumps(path_to_dict(path3)).replace("50.0", "NaN", 1)
    with pytest.raises(InputError, match="JSON"):
        load_path_json(_write(tmp_path, text))
    with pytest.raises(InputError, match="JSON"):
        load_path_json(_write(tmp_path, "{not json"))
    with pytest.raises(InputError, match="object"):
        load_path_json(_write(tmp_path, "[1, 2]"))
    big = tmp_path / "big.json"
    with open(big, "wb") as fh:
        fh.truncate(21 * 1024 * 1024)
    with pytest.raises(InputError, match="too large"):
        load_path_json(big)
    with pytest.raises(InputError, match="cannot be read"):
        load_path_json(tmp_path / "missing.json")
    with pytest.raises(InputError, match="object"):
        path_from_dict([1])
    with pytest.raises(InputError, match="file path"):
        load_path_json(12)


def test_save_leaves_nothing_on_error(tmp_path, path3):
    with pytest.raises(InputError, match="does not exist"):
        save_path_json(path3, tmp_path / "nope" / "p.json")
    with pytest.raises(InputError, match="CameraPath"):
        save_path_json("not a path", tmp_path / "p.json")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- nerfstudio


def test_nerfstudio_hand_example():
    # identity-rotation camera at (1,2,3) looks down world +z (OpenCV); nerfstudio stores the OpenGL c2w
    a = Keyframe(np.array([[1, 0, 0, -1], [0, 1, 0, -2], [0, 0, 1, -3], [0, 0, 0, 1.0]]), 60.0)
    b = kf([1, 2, 4], fov=60)
    d = to_nerfstudio(CameraPath((a, b), interpolation="linear"), 3, 100, 200, fps=30)
    assert d["keyframes"][0]["matrix"] == [1, 0, 0, 1, 0, -1, 0, 2, 0, 0, -1, 3, 0, 0, 0, 1]
    assert d["camera_path"][0]["camera_to_world"] == d["keyframes"][0]["matrix"]
    np.testing.assert_allclose(np.reshape(d["camera_path"][1]["camera_to_world"], (4, 4))[:3, 3], [1, 2, 3.5])
    assert d["keyframes"][0]["fov"] == 60.0 and d["keyframes"][0]["aspect"] == 2.0
    assert d["render_height"] == 100 and d["render_width"] == 200 and d["fps"] == 30
    assert d["seconds"] == pytest.approx(3 / 30) and len(d["camera_path"]) == 3
    assert d["smoothness_value"] == 0.0


def test_nerfstudio_round_trip(tmp_path, path3):
    p = path3.with_keyframe(1, path3.keyframes[1].with_time(0.6))
    f = tmp_path / "camera_path.json"
    save_nerfstudio(p, f, 25, H, W, fps=24)
    q = load_nerfstudio(f)
    assert q.interpolation == p.interpolation and [k.time for k in q.keyframes] == [None, 0.6, None]
    for a, b in zip(p.keyframes, q.keyframes):
        np.testing.assert_allclose(b.w2c, a.w2c, atol=1e-12, rtol=0)
        assert b.fov_y_deg == a.fov_y_deg
    # per-frame entries are exactly the sampled cameras (OpenGL-flipped), fov vertical degrees
    d = json.loads(f.read_text())
    w2cs, Ks = p.sample(25, H, W)
    for t in (0, 7, 24):
        gl = np.reshape(d["camera_path"][t]["camera_to_world"], (4, 4))
        cv = gl @ np.diag([1.0, -1, -1, 1])
        np.testing.assert_allclose(np.linalg.inv(cv), w2cs[t].numpy(), atol=1e-5)
        f_y = (H / 2) / math.tan(math.radians(d["camera_path"][t]["fov"]) / 2)
        assert f_y == pytest.approx(Ks[t, 1, 1].item(), rel=1e-5)


def test_nerfstudio_foreign_files(tmp_path, path3):
    # keyframe 0 at the origin with a turned camera: the string form's order is not guessable there
    path3 = path3.with_keyframe(0, kf([0, 0, 0], 25, -10, 5))
    d = to_nerfstudio(path3, 9, H, W)
    # viewer file without our block, matrices in the old string form (three.js column-major)
    old = {k: v for k, v in d.items() if k != "gen3c_studio"}
    old["keyframes"] = [dict(e, matrix=json.dumps(np.reshape(e["matrix"], (4, 4)).T.reshape(-1).tolist()))
                        for e in d["keyframes"]]
    q = load_nerfstudio(_write(tmp_path, old, "old.json"))
    assert q.interpolation == "smooth"
    for a, b in zip(path3.keyframes, q.keyframes):
        np.testing.assert_allclose(b.w2c, a.w2c, atol=1e-12)
    # only per-frame cameras (what ns-render reads): every frame becomes a keyframe
    frames = {k: v for k, v in d.items() if k not in ("keyframes", "gen3c_studio")}
    q = load_nerfstudio(_write(tmp_path, frames, "frames.json"))
    assert len(q) == 9
    np.testing.assert_allclose(q.keyframes[4].w2c, path3.keyframes[1].w2c, atol=1e-6)


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda d: (d.pop("keyframes"), d.pop("camera_path")), "no keyframes"),
        (lambda d: d["keyframes"][0].pop("matrix"), "missing 'matrix'"),
        (lambda d: d["keyframes"][0].update(matrix=[1, 0, 0]), "16 numbers"),
        (lambda d: d["keyframes"][0].update(matrix="[1, 0"), "string"),
        (lambda d: d["keyframes"][0].update(matrix=[1, 0, 0, 0, 0, 3, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]), "rigid"),
        (lambda d: d["keyframes"][1].update(fov="x"), "fov"),
        (lambda d: d["keyframes"][1].update(fov=0.1), "fov"),
        (lambda d: d.update(keyframes=[d["keyframes"][0]]), "at least 2"),
    ],
)
def test_nerfstudio_bad_files(tmp_path, path3, mutate, match):
    d = to_nerfstudio(path3, 5, H, W)
    mutate(d)
    with pytest.raises(InputError, match=match):
        load_nerfstudio(_write(tmp_path, d))


def test_to_nerfstudio_bad_args(path3):
    with pytest.raises(InputError, match="fps"):
        to_nerfstudio(path3, 5, H, W, fps=0)
    with pytest.raises(InputError, match="num_frames"):
        to_nerfstudio(path3, 0, H, W)


# ---------------------------------------------------------------------------- NPZ


def test_npz_round_trip_exact(tmp_path):
    w2cs, Ks = preset_trajectory("clockwise", np.eye(4), K_REF, 17, 0.3, "center_facing")
    f = tmp_path / "cams.npz"
    save_npz(f, w2cs, Ks)
    w2, K2 = load_npz(f)
    assert torch.equal(w2, w2cs) and torch.equal(K2, Ks)
    # leading batch dim of 1, as the official code writes it
    g = tmp_path / "batched.npz"
    np.savez(g, w2cs_all=w2cs.numpy()[None], Ks_all=Ks.numpy()[None])
    w3, K3 = load_npz(g)
    assert torch.equal(w3, w2cs) and torch.equal(K3, Ks)
    # and the path made from it reproduces the cameras
    p = CameraPath.from_cameras(w3, K3, H)
    torch.testing.assert_close(p.sample(17, H, W)[0], w2cs, atol=1e-5, rtol=0)


def test_npz_refuses_pickles(tmp_path):
    f = tmp_path / "evil.npz"
    obj = np.empty(2, dtype=object)
    obj[0], obj[1] = {"a": 1}, [2]
    np.savez(f, w2cs_all=obj, Ks_all=np.stack([K_REF] * 2))
    with pytest.raises(InputError, match="pickled"):
        load_npz(f)


def test_npz_bad_files(tmp_path):
    eye = np.stack([np.eye(4)] * 3).astype(np.float32)
    Ks = np.stack([K_REF] * 3).astype(np.float32)
    cases = {
        "missing.npz": (dict(w2cs_all=eye), "missing 'Ks_all'"),
        "count.npz": (dict(w2cs_all=eye, Ks_all=Ks[:2]), "3 frames but Ks_all has 2"),
        "shape.npz": (dict(w2cs_all=eye[:, :3], Ks_all=Ks), "shape"),
        "nan.npz": (dict(w2cs_all=eye * np.nan, Ks_all=Ks), "NaN"),
        "scale.npz": (dict(w2cs_all=eye * 2, Ks_all=Ks), "rigid|last row"),
        "text.npz": (dict(w2cs_all=np.array(["a"] * 3), Ks_all=Ks), "dtype"),
    }
    for name, (arrays, match) in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(InputError, match=match):
            load_npz(tmp_path / name)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="not a valid"):
        load_npz(tmp_path / "junk.npz")
    np.save(tmp_path / "single.npy", eye)
    with pytest.raises(InputError, match="single array"):
        load_npz(tmp_path / "single.npy")


def test_save_npz_validates(tmp_path):
    with pytest.raises(InputError, match="rigid"):
        save_npz(tmp_path / "x.npz", np.stack([np.diag([1.0, 2, 1, 1])]), K_REF[None])
    assert list(tmp_path.iterdir()) == []
