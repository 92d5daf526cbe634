"""engine.paths.preset: an official preset as a few editable keyframes that stay official until edited.

Ground truth: the official GEN3C trajectories (fixture ``trajectories.safetensors``, 121 frames) and
``engine.cameras.preset_trajectory``, which tests/test_cameras.py pins to that fixture, for other
frame counts and the corrected mode.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from reference_fixtures import load_fixture

from paths_helpers import K_REF, H, W
from engine.cameras import PRESETS, ROTATION_MODES, camera_center, preset_poses, preset_trajectory
from engine.errors import InputError
from engine.paths import (
    MAX_PRESET_KEYFRAMES,
    CameraPath,
    load_nerfstudio,
    load_path_json,
    path_from_dict,
    path_to_dict,
    save_nerfstudio,
    save_path_json,
)

OTHER_FRAME_COUNTS = (57, 241)


@pytest.fixture(scope="module")
def ref():
    return load_fixture("trajectories")


def _preset(kind, rotation, frames=121, corrected=False, distance=0.3, **kw):
    return CameraPath.from_preset(kind, rotation, distance, num_frames=frames, K=K_REF, height=H,
                                  corrected=corrected, **kw)


def _official(kind, rotation, frames, corrected=False, distance=0.3):
    return preset_trajectory(kind, np.eye(4), K_REF, frames, distance, rotation, corrected=corrected)


# ---------------------------------------------------------------------------- parity


@pytest.mark.parametrize("kind", PRESETS)
@pytest.mark.parametrize("rotation", ROTATION_MODES)
def test_a_preset_path_is_the_official_preset_with_few_keyframes(ref, kind, rotation):
    path = CameraPath.from_preset(kind, rotation, 0.3, num_frames=121, K=ref["initial_K"], height=H)
    assert 2 <= len(path) <= 12 and all(path.preset_segments())
    w2cs, Ks = path.sample(121, H, W)
    torch.testing.assert_close(w2cs, ref[f"{kind}/{rotation}/w2cs"], atol=1e-5, rtol=0)
    torch.testing.assert_close(Ks, ref[f"{kind}/{rotation}/Ks"], atol=1e-5, rtol=1e-6)
    for corrected in (False, True):
        made_for_121 = _preset(kind, rotation, 121, corrected)
        for T in (121,) + OTHER_FRAME_COUNTS:
            expect_w2cs, expect_Ks = _official(kind, rotation, T, corrected)
            # made for T frames, and made for 121 then sampled at T: both official at T
            for p in (_preset(kind, rotation, T, corrected), made_for_121):
                assert len(p) <= 12
                got_w2cs, got_Ks = p.sample(T, H, W)
                torch.testing.assert_close(got_w2cs, expect_w2cs, atol=1e-5, rtol=0)
                torch.testing.assert_close(got_Ks, expect_Ks, atol=1e-5, rtol=1e-6)


def test_the_extra_official_case(ref):
    p = CameraPath.from_preset("clockwise", "center_facing", 0.7, num_frames=25, fov_y_deg=2 * np.degrees(
        np.arctan(352 / 1000)))
    torch.testing.assert_close(p.sample(25, H, W)[0], ref["extra/clockwise_d0.7_n25/center_facing/w2cs"],
                               atol=1e-5, rtol=0)


def test_preset_keyframes_are_official_cameras_at_evenly_spaced_frames(ref):
    path = CameraPath.from_preset("left", "center_facing", 0.3, num_frames=121, K=ref["initial_K"], height=H)
    assert len(path) == 9
    official = ref["left/center_facing/w2cs"].double().numpy()
    for j, kf in enumerate(path.keyframes):
        np.testing.assert_allclose(kf.w2c, official[15 * j], atol=1e-6)
        assert (kf.time, kf.hold, kf.ease) == (None, 0, "linear")
    np.testing.assert_allclose(path.key_frames(121), np.arange(0, 121, 15))
    # any count from 2 to 12; the cameras stay official
    for n in (2, 5, MAX_PRESET_KEYFRAMES):
        p = _preset("up", "trajectory_aligned", keyframes=n)
        assert len(p) == n
        torch.testing.assert_close(p.sample(121, H, W)[0], ref["up/trajectory_aligned/w2cs"], atol=1e-5, rtol=0)
    for bad in (1, MAX_PRESET_KEYFRAMES + 1, 2.0):
        with pytest.raises(InputError, match="num_keyframes"):
            _preset("up", "trajectory_aligned", keyframes=bad)


def test_from_preset_bad_input():
    with pytest.raises(InputError, match="either fov_y_deg or K"):
        CameraPath.from_preset("left", "center_facing", 0.3, num_frames=121)
    with pytest.raises(InputError, match="either fov_y_deg or K"):
        CameraPath.from_preset("left", "center_facing", 0.3, num_frames=121, fov_y_deg=50, K=K_REF, height=H)
    with pytest.raises(InputError, match="height"):
        CameraPath.from_preset("left", "center_facing", 0.3, num_frames=121, K=K_REF)
    with pytest.raises(InputError, match="unknown preset"):
        _preset("sideways", "center_facing")
    with pytest.raises(InputError, match="unknown camera rotation"):
        _preset("left", "spin")
    with pytest.raises(InputError, match="num_frames"):
        _preset("left", "center_facing", frames=1)
    with pytest.raises(InputError, match="movement_distance"):
        _preset("left", "center_facing", distance=float("nan"))
    # corrected zoom_in by 2 puts keyframe 4 (frame 60 of 121) exactly on the look-at point (0, 0, 1)
    with pytest.raises(InputError, match="look-at point"):
        _preset("zoom_in", "center_facing", corrected=True, distance=2.0)


# ---------------------------------------------------------------------------- edits


def _on_curve(points, dense, tol):
    d = np.linalg.norm(points[:, None, :] - dense[None, :, :], axis=2).min(axis=1)
    assert d.max() < tol, d.max()


def test_an_edited_keyframe_makes_its_two_segments_interpolated_and_keeps_the_rest_official():
    p = _preset("clockwise", "center_facing")
    official = _official("clockwise", "center_facing", 121)[0]
    kf4 = p.keyframes[4]
    edited = p.with_keyframe(4, kf4.with_position(kf4.position + [0.0, 0.05, 0.02]))
    assert edited.preset_segments() == (True, True, True, False, False, True, True, True)
    assert p.preset_segments() == (True,) * 8  # the original is untouched
    w2cs, _ = edited.sample(121, H, W)
    # keyframe j sits on frame 15 j: segments 3 and 4 are frames 45..75
    keep = np.r_[0:46, 75:121]
    torch.testing.assert_close(w2cs[keep], official[keep], atol=1e-5, rtol=0)
    np.testing.assert_allclose(w2cs[60].double().numpy(), edited.keyframes[4].w2c, atol=1e-6)
    # ...and the edited segments interpolate as an ordinary path through the same keyframes does
    plain = CameraPath(edited.keyframes, edited.interpolation)
    torch.testing.assert_close(w2cs[46:75], plain.sample(121, H, W)[0][46:75], atol=1e-6, rtol=0)
    assert (w2cs[50] - official[50]).abs().max() > 1e-3
    # editing it back to the preset's own camera brings the formula back
    assert edited.with_keyframe(4, kf4).preset_segments() == (True,) * 8


def test_inserting_deleting_or_moving_keyframes_breaks_only_the_segments_involved():
    p = _preset("right", "trajectory_aligned")
    extra = p.keyframes[2].with_position(p.keyframes[2].position + [0, -0.1, 0])
    assert p.inserted(3, extra).preset_segments() == (True, True, False, False) + (True,) * 5
    assert p.removed(3).preset_segments() == (True, True, False) + (True,) * 4
    assert p.moved(0, 8).preset_segments() == (True,) * 7 + (False,)
    # a duplicate is a still segment; the segments on either side keep the formula
    assert p.duplicated(5).preset_segments() == (True,) * 5 + (False,) + (True,) * 3
    # options do not touch it, a path without the preset interpolates everywhere
    assert p.with_options(interpolation="linear", constant_speed=True).preset_segments() == (True,) * 8
    assert CameraPath(p.keyframes).preset_segments() == (False,) * 8


def test_timing_edits_keep_the_official_shape():
    p = _preset("counterclockwise", "no_rotation")
    retimed = p.with_hold(3, 12).with_ease(6, "ease_in_out").with_keyframe(5, p.keyframes[5].with_time(0.55))
    assert all(retimed.preset_segments())
    w2cs, _ = retimed.sample(121, H, W)
    # every camera of the retimed path is on the official trajectory (densely sampled), only later or earlier
    # (the official formula at 40 fractional positions per frame; more frames than MAX_FRAMES as a trajectory)
    dense = preset_poses("counterclockwise", np.linspace(0, 120, 121 * 40 - 39), 121, 0.3, "no_rotation")
    ours = camera_center(w2cs.double().numpy())
    _on_curve(ours, camera_center(dense), 2e-4)
    # the held keyframe: 13 identical frames
    a = int(retimed.key_frames(121)[3])
    assert all(torch.equal(w2cs[a], w2cs[a + i]) for i in range(13)) and not torch.equal(w2cs[a], w2cs[a + 13])


# ---------------------------------------------------------------------------- files


def test_project_json_round_trips_the_preset_exactly(tmp_path):
    p = _preset("zoom_out", "center_facing", frames=241, corrected=True)
    p = p.with_keyframe(2, p.keyframes[2].with_fov(40.0)).with_hold(6, 5)
    f = tmp_path / "preset.json"
    save_path_json(p, f)
    d = json.loads(f.read_text())
    assert d["preset"]["kind"] == "zoom_out" and d["preset"]["num_frames"] == 241 and d["preset"]["corrected"]
    q = load_path_json(f)
    assert q == p and q.preset_segments() == p.preset_segments() == (True, False, False) + (True,) * 5
    assert torch.equal(q.sample(241, H, W)[0], p.sample(241, H, W)[0])


def test_nerfstudio_round_trips_the_preset_and_writes_the_official_cameras(tmp_path):
    p = _preset("down", "trajectory_aligned").with_ease(2, "ease_out")
    f = tmp_path / "camera_path.json"
    save_nerfstudio(p, f, 121, H, W)
    q = load_nerfstudio(f)
    assert q == p and q.preset_segments() == (True,) * 8
    d = json.loads(f.read_text())
    gl = np.array([e["camera_to_world"] for e in d["camera_path"]]).reshape(-1, 4, 4)
    w2cs = np.linalg.inv(gl @ np.diag([1.0, -1, -1, 1]))
    np.testing.assert_allclose(w2cs, p.sample_numpy(121, H, W)[0], atol=1e-9)


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda d: d.update(preset="left"), "preset must be a JSON object"),
        (lambda d: d["preset"].pop("kind"), "preset is missing 'kind'"),
        (lambda d: d["preset"].update(kind="sideways"), "unknown preset"),
        (lambda d: d["preset"].update(kind=3), "kind must be a string"),
        (lambda d: d["preset"].update(rotation="spin"), "unknown camera rotation"),
        (lambda d: d["preset"].update(movement_distance="far"), "movement_distance"),
        (lambda d: d["preset"].update(center_depth=-1), "center_depth"),
        (lambda d: d["preset"].update(num_frames=10**9), "num_frames"),
        (lambda d: d["preset"].update(num_keyframes=500), "num_keyframes"),
        (lambda d: d["preset"].update(corrected="yes"), "corrected"),
        (lambda d: d["preset"].update(fov_y_deg=500), "fov"),
        (lambda d: d["preset"].update(fov_y_deg=True), "fov_y_deg"),
        (lambda d: d["preset"].update(initial_w2c=[2.0] + [0.0] * 4 + [1.0] + [0.0] * 4 + [1.0] + [0.0] * 4 + [1.0]),
         "rigid"),
        (lambda d: d["preset"].update(initial_w2c=[1, 2]), "16 numbers"),
    ],
)
def test_hostile_preset_blocks_are_refused(mutate, match):
    d = path_to_dict(_preset("left", "center_facing"))
    mutate(d)
    with pytest.raises(InputError, match=match):
        path_from_dict(d)
