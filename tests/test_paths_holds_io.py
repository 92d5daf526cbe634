"""Paths with holds in files: project JSON (exact, versions 1 and 2), nerfstudio (our block exactly; foreign
per-frame cameras and keyframes that hold still become holds) and GEN3C NPZ (runs of one camera become holds)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from paths_helpers import H, W, kf, three_keyframe_path
from engine.cameras import opencv_c2w_to_opengl, preset_trajectory
from engine.errors import InputError
from engine.paths import (
    CameraPath,
    load_nerfstudio,
    load_path_json,
    path_from_dict,
    path_to_dict,
    read_path_file,
    save_nerfstudio,
    save_npz,
    save_path_json,
    to_nerfstudio,
)

K_SQUARE = np.array([[600.0, 0, W / 2], [0, 600, H / 2], [0, 0, 1]])


def _timed_path() -> CameraPath:
    p = three_keyframe_path().inserted(3, kf([2.5, 0, 1.5], -10, 5, 0, 45))
    p = p.with_hold(0, 3).with_hold(2, 7).with_ease(1, "ease_in_out").with_ease(3, "ease_in")
    return p.with_keyframe(1, p.keyframes[1].with_time(0.3))


def _held_cameras():
    """Official preset cameras (25 frames) with frame 6 repeated 4 more times and the last one 3 more: 32
    per-frame cameras that hold still twice."""
    w2cs, _ = preset_trajectory("right", np.eye(4), K_SQUARE, 25, 0.4, "trajectory_aligned", corrected=True)
    return torch.cat([w2cs[:7], w2cs[6:7].repeat(4, 1, 1), w2cs[7:], w2cs[-1:].repeat(3, 1, 1)])


def _gl_entries(w2cs, fov):
    c2w = np.linalg.inv(np.asarray(w2cs, dtype=np.float64))
    return [{"camera_to_world": opencv_c2w_to_opengl(m).reshape(-1).tolist(), "fov": fov, "aspect": W / H}
            for m in c2w]


def _fov():
    return float(np.degrees(2 * np.arctan(H / 2 / K_SQUARE[1, 1])))


def _write(tmp_path, obj, name):
    f = tmp_path / name
    f.write_text(json.dumps(obj))
    return f


# ---------------------------------------------------------------------------- project JSON


def test_project_json_keeps_holds_and_eases_exactly(tmp_path):
    p = _timed_path()
    f = tmp_path / "p.json"
    save_path_json(p, f)
    d = json.loads(f.read_text())
    assert [e["hold"] for e in d["keyframes"]] == [3, 0, 7, 0]
    assert [e["ease"] for e in d["keyframes"]] == ["linear", "ease_in_out", "linear", "ease_in"]
    q = load_path_json(f)
    assert q == p and [k.hold for k in q.keyframes] == [3, 0, 7, 0]
    assert np.array_equal(q.sample_numpy(61, H, W)[0], p.sample_numpy(61, H, W)[0])


def test_project_json_version_1_files_still_read():
    a, b = kf([0, 0, 0]), kf([1, 0, 0.5], 30, 10, 5, 40)
    v1 = {"format": "gen3c-studio-path", "version": 1, "interpolation": "linear", "constant_speed": True,
          "keyframes": [{"w2c": a.w2c.reshape(-1).tolist(), "fov_y_deg": 50.0, "time": None},
                        {"w2c": b.w2c.reshape(-1).tolist(), "fov_y_deg": 40.0, "time": 1.0}]}
    p = path_from_dict(v1)
    assert p == CameraPath((a, b.with_time(1.0)), "linear", True)
    assert [(k.hold, k.ease) for k in p.keyframes] == [(0, "linear")] * 2 and p.preset is None


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda d: d["keyframes"][0].update(hold=-1), "keyframe 0: keyframe hold must be 0"),
        (lambda d: d["keyframes"][0].update(hold=1.5), "keyframe 0 hold must be a whole number"),
        (lambda d: d["keyframes"][0].update(hold="3"), "keyframe 0 hold must be a whole number"),
        (lambda d: d["keyframes"][0].update(hold=True), "keyframe 0 hold must be a whole number"),
        (lambda d: d["keyframes"][1].update(hold=10**12), "keyframe 1: keyframe hold"),
        (lambda d: d["keyframes"][2].update(ease="fast"), "keyframe 2: keyframe ease must be one of"),
        (lambda d: d["keyframes"][2].update(ease=None), "keyframe 2: keyframe ease"),
        (lambda d: d["keyframes"][2].update(ease=["linear"]), "keyframe 2: keyframe ease"),
        (lambda d: d.update(keyframes=[]), "at least 1 keyframe"),
    ],
)
def test_project_json_hostile_timing_is_refused(tmp_path, mutate, match):
    d = path_to_dict(_timed_path())
    mutate(d)
    with pytest.raises(InputError, match=match):
        load_path_json(_write(tmp_path, d, "bad.json"))


# ---------------------------------------------------------------------------- nerfstudio


def test_nerfstudio_round_trip_keeps_the_whole_path(tmp_path):
    p = _timed_path().with_options(interpolation="linear")
    f = tmp_path / "camera_path.json"
    save_nerfstudio(p, f, 61, H, W, fps=30)
    q = load_nerfstudio(f)
    assert q == p  # holds, eases, times, interpolation, exact keyframes
    # the per-frame cameras are the sampled ones, holds included
    d = json.loads(f.read_text())
    w2cs, _, _ = p.sample_numpy(61, H, W)
    gl = np.array([e["camera_to_world"] for e in d["camera_path"]]).reshape(-1, 4, 4)
    np.testing.assert_allclose(np.linalg.inv(gl @ np.diag([1.0, -1, -1, 1])), w2cs, atol=1e-9)
    # the keyframes are still the editable keys for other tools
    assert len(d["keyframes"]) == 4


def test_nerfstudio_keyframes_edited_elsewhere_win_over_our_block(tmp_path):
    p = _timed_path()
    d = to_nerfstudio(p, 61, H, W)
    m = np.reshape(d["keyframes"][3]["matrix"], (4, 4))
    m[0, 3] += 0.25  # moved in the nerfstudio viewer after export
    d["keyframes"][3]["matrix"] = m.reshape(-1).tolist()
    q = load_nerfstudio(_write(tmp_path, d, "edited.json"))
    assert q != p and q.keyframes[3].position[0] == pytest.approx(p.keyframes[3].position[0] + 0.25)
    assert [k.time for k in q.keyframes] == [k.time for k in p.keyframes]  # version-1 fields still apply
    bad = to_nerfstudio(p, 61, H, W)
    bad["gen3c_studio"]["path"]["keyframes"][0]["hold"] = -4
    with pytest.raises(InputError, match="nerfstudio gen3c_studio path: keyframe 0: keyframe hold"):
        load_nerfstudio(_write(tmp_path, bad, "bad.json"))


def test_nerfstudio_per_frame_cameras_that_hold_still_import_as_holds(tmp_path):
    cams = _held_cameras()
    d = {"camera_type": "perspective", "render_height": H, "render_width": W, "fps": 24, "seconds": 32 / 24,
         "camera_path": _gl_entries(cams, _fov())}
    f = _write(tmp_path, d, "render.json")
    for path in (load_nerfstudio(f), read_path_file(f, H).path):
        assert len(path) == 25 and [k.hold for k in path.keyframes if k.hold] == [4, 3]
        assert path.keyframes[6].hold == 4 and path.keyframes[-1].hold == 3
        w2cs, Ks = path.sample(32, H, W)
        torch.testing.assert_close(w2cs, cams, atol=1e-6, rtol=0)
        torch.testing.assert_close(Ks, torch.as_tensor(K_SQUARE, dtype=torch.float32).expand(32, 3, 3),
                                   atol=1e-4, rtol=1e-6)


def test_nerfstudio_keyframes_that_repeat_become_a_held_keyframe(tmp_path):
    a, b, c = three_keyframe_path().keyframes
    d = to_nerfstudio(CameraPath((a, b, c)), 25, H, W)
    del d["gen3c_studio"]
    entries = d["keyframes"]
    d["keyframes"] = [entries[0], entries[1], dict(entries[1]), dict(entries[1], override_transition_enabled=True,
                                                                   override_transition_sec=0.5), entries[2]]
    d.update(fps=24, default_transition_sec=1.5)
    q = load_nerfstudio(_write(tmp_path, d, "viewer.json"))
    # the two repeats of keyframe 1 lasted 1.5 s + 0.5 s = 48 frames at 24 fps
    assert len(q) == 3 and [k.hold for k in q.keyframes] == [0, 48, 0]
    np.testing.assert_allclose(q.keyframes[1].w2c, b.w2c, atol=1e-12)


def test_a_nerfstudio_file_with_one_keyframe_is_a_one_keyframe_path(tmp_path):
    d = to_nerfstudio(three_keyframe_path(), 5, H, W)
    d["keyframes"] = d["keyframes"][:1]
    del d["gen3c_studio"]
    q = load_nerfstudio(_write(tmp_path, d, "one.json"))
    assert len(q) == 1 and not q.can_animate


# ---------------------------------------------------------------------------- NPZ


def test_npz_cameras_that_hold_still_import_as_holds(tmp_path):
    cams = _held_cameras()
    f = tmp_path / "cams.npz"
    save_npz(f, cams, torch.as_tensor(K_SQUARE, dtype=torch.float32).expand(32, 3, 3))
    found = read_path_file(f, H)
    assert len(found.path) == 25 and [k.hold for k in found.path.keyframes if k.hold] == [4, 3]
    torch.testing.assert_close(found.path.sample(32, H, W)[0], cams, atol=1e-6, rtol=0)
    assert torch.equal(found.cameras[0], cams)
    # sampled for another frame count, the holds keep their length in frames
    w2cs, _ = found.path.sample(63, H, W)
    a = int(found.path.key_frames(63)[6])
    assert all(torch.equal(w2cs[a], w2cs[a + i]) for i in range(5)) and not torch.equal(w2cs[a], w2cs[a + 5])
    # and CameraPath.from_cameras is the same rule
    assert CameraPath.from_cameras(cams, K_SQUARE, H) == found.path
