"""engine.cameras: official preset parity, corrected presets, look-at, intrinsics and pose helpers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from reference_fixtures import load_fixture

from engine.cameras import (
    PRESETS,
    ROTATION_MODES,
    camera_center,
    fov_y_from_intrinsics,
    intrinsics_from_fov,
    invert_pose,
    look_at_w2c,
    opencv_c2w_to_opengl,
    opengl_c2w_to_opencv,
    preset_trajectory,
    scale_intrinsics,
)
from engine.errors import InputError

K_REF = np.array([[1000.0, 0, 640], [0, 1000, 352], [0, 0, 1]])


@pytest.fixture(scope="module")
def ref():
    return load_fixture("trajectories")


def _rot(axis, deg):
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    R = np.eye(3)
    R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
    return R


def _pose(R, t):
    M = np.eye(4)
    M[:3, :3], M[:3, 3] = R, t
    return M


# ---------------------------------------------------------------------------- parity


@pytest.mark.parametrize("kind", PRESETS)
@pytest.mark.parametrize("rotation", ROTATION_MODES)
def test_preset_matches_official(ref, kind, rotation):
    w2cs, Ks = preset_trajectory(kind, ref["initial_w2c"], ref["initial_K"], 121, 0.3, rotation)
    assert w2cs.dtype == torch.float32 and w2cs.shape == (121, 4, 4) and Ks.shape == (121, 3, 3)
    torch.testing.assert_close(w2cs, ref[f"{kind}/{rotation}/w2cs"], atol=1e-6, rtol=0)
    torch.testing.assert_close(Ks, ref[f"{kind}/{rotation}/Ks"], atol=0, rtol=0)


def test_extra_spiral_case_matches_official(ref):
    w2cs, Ks = preset_trajectory("clockwise", np.eye(4), K_REF, 25, 0.7, "center_facing")
    torch.testing.assert_close(w2cs, ref["extra/clockwise_d0.7_n25/center_facing/w2cs"], atol=1e-6, rtol=0)
    torch.testing.assert_close(Ks, ref["extra/clockwise_d0.7_n25/center_facing/Ks"], atol=0, rtol=0)


def test_official_quirk_is_present(ref):
    """Default mode keeps the -p translation: the left/center_facing end centre is not at -d(T-1)/T x."""
    w2cs, _ = preset_trajectory("left", np.eye(4), K_REF, 121, 0.3, "center_facing")
    c = camera_center(w2cs[-1].double().numpy())
    assert c[0] == pytest.approx(-0.285, abs=2e-3) and c[2] == pytest.approx(0.085, abs=2e-3)
    # the translation column is exactly -p
    np.testing.assert_allclose(w2cs[-1, :3, 3].numpy(), [0.3 * 120 / 121, 0, 0], atol=1e-7)


def test_per_frame_initial_w2c_left_multiplies():
    T = 6
    W0 = np.stack([_pose(_rot(1, 5 * t), [0.1 * t, 0, 0]) for t in range(T)])
    w2cs, Ks = preset_trajectory("up", W0, K_REF, T, 0.3, "trajectory_aligned")
    single, _ = preset_trajectory("up", np.eye(4), K_REF, T, 0.3, "trajectory_aligned")
    expect = single.double().numpy() @ W0
    np.testing.assert_allclose(w2cs.numpy(), expect, atol=1e-6)
    # a per-frame K passes through
    Kt = np.stack([K_REF * [[1 + t, 1, 1], [1, 1 + t, 1], [1, 1, 1]] for t in range(T)])
    _, Ks = preset_trajectory("up", np.eye(4), Kt, T, 0.3, "no_rotation")
    np.testing.assert_allclose(Ks.numpy(), Kt, atol=1e-4)


# ---------------------------------------------------------------------------- corrected


@pytest.mark.parametrize("kind,axis,sign", [("left", 0, -1), ("right", 0, 1), ("up", 1, -1),
                                            ("down", 1, 1), ("zoom_in", 2, 1), ("zoom_out", 2, -1)])
@pytest.mark.parametrize("rotation", ROTATION_MODES)
def test_corrected_linear_centre_reaches_full_distance(kind, axis, sign, rotation):
    T, d = 11, 0.4
    w2cs, _ = preset_trajectory(kind, np.eye(4), K_REF, T, d, rotation, corrected=True)
    centres = camera_center(w2cs.double().numpy())
    expect = np.zeros((T, 3))
    expect[:, axis] = sign * d * np.arange(T) / (T - 1)
    np.testing.assert_allclose(centres, expect, atol=1e-6)


@pytest.mark.parametrize("rotation", ROTATION_MODES)
def test_corrected_center_facing_looks_at_base_point(rotation):
    T, d = 9, 0.5
    w2cs, _ = preset_trajectory("clockwise", np.eye(4), K_REF, T, d, rotation, corrected=True)
    w = w2cs.double().numpy()
    centres = camera_center(w)
    theta = 2 * np.pi * np.arange(T) / (T - 1)
    np.testing.assert_allclose(centres[:, 0], d * (np.cos(theta) - 1), atol=1e-6)
    np.testing.assert_allclose(centres[:, 1], d * np.sin(theta), atol=1e-6)
    factor = {"center_facing": 0, "no_rotation": 1, "trajectory_aligned": 2}[rotation]
    targets = np.array([0, 0, 1.0]) + factor * centres
    for t in range(T):
        cam = w[t, :3, :3] @ targets[t] + w[t, :3, 3]  # target in camera coordinates
        assert cam[2] > 0
        np.testing.assert_allclose(cam[:2], 0, atol=1e-6)


def test_corrected_differs_from_official_only_by_translation_and_spacing():
    W0 = _pose(_rot(1, 10), [0.2, 0, 0])
    off, _ = preset_trajectory("clockwise", W0, K_REF, 13, 0.3, "center_facing")
    cor, _ = preset_trajectory("clockwise", W0, K_REF, 13, 0.3, "center_facing", corrected=True)
    torch.testing.assert_close(cor[0], torch.tensor(W0, dtype=torch.float32), atol=1e-7, rtol=0)
    # spirals: same rotations (same positions and targets), translations differ where the camera turns
    torch.testing.assert_close(cor[:, :3, :3], off[:, :3, :3], atol=1e-7, rtol=0)
    assert (cor[:, :3, 3] - off[:, :3, 3]).abs().max() > 1e-3


# ---------------------------------------------------------------------------- preset errors


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(kind="sideways"), "unknown trajectory.*left"),
        (dict(camera_rotation="spin"), "unknown camera rotation.*center_facing"),
        (dict(num_frames=1), "num_frames"),
        (dict(num_frames=2.5), "num_frames"),
        (dict(movement_distance=float("nan")), "movement_distance"),
        (dict(movement_distance=float("inf")), "movement_distance"),
        (dict(K=np.zeros((3, 3))), "K"),
        (dict(K=np.array([[1.0, 0, 1], [0, 1, 1], [0, 0, 0]])), "K"),
        (dict(initial_w2c=np.diag([2.0, 1, 1, 1])), "rigid"),
        (dict(initial_w2c=np.diag([-1.0, 1, 1, 1])), "rigid"),
        (dict(initial_w2c=np.full((4, 4), np.nan)), "NaN"),
        (dict(initial_w2c=np.eye(3)), "shape"),
        (dict(initial_w2c=np.stack([np.eye(4)] * 3)), "frames"),
    ],
)
def test_preset_bad_input(kwargs, match):
    args = dict(kind="left", initial_w2c=np.eye(4), K=K_REF, num_frames=5, movement_distance=0.3,
                camera_rotation="center_facing")
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        preset_trajectory(**args)


# ---------------------------------------------------------------------------- look-at


def test_look_at_properties():
    pos, target = np.array([0.5, -0.2, -1.0]), np.array([0.1, 0.3, 2.0])
    w2c = look_at_w2c(pos, target)
    R = w2c[:3, :3]
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(camera_center(w2c), pos, atol=1e-12)
    cam = R @ target + w2c[:3, 3]
    np.testing.assert_allclose(cam[:2], 0, atol=1e-12)
    assert cam[2] == pytest.approx(np.linalg.norm(target - pos))
    # image up (camera -y) has a positive component along world up (0,-1,0); camera x is horizontal
    assert (-R[1]) @ np.array([0, -1, 0]) > 0
    assert R[0, 1] == pytest.approx(0, abs=1e-12)


def test_look_at_identity_and_custom_up():
    np.testing.assert_allclose(look_at_w2c([0, 0, 0], [0, 0, 5]), np.eye(4), atol=1e-15)
    # with a world up of +z, looking along +x: camera y (down) is -z
    w2c = look_at_w2c([0, 0, 0], [1, 0, 0], up=(0, 0, 1))
    np.testing.assert_allclose(w2c[1, :3], [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(w2c[2, :3], [1, 0, 0], atol=1e-12)


def test_look_at_errors():
    with pytest.raises(InputError, match="coincides"):
        look_at_w2c([1, 2, 3], [1, 2, 3])
    with pytest.raises(InputError, match="parallel"):
        look_at_w2c([0, 0, 0], [0, -3, 0])
    with pytest.raises(InputError, match="finite"):
        look_at_w2c([0, np.nan, 0], [0, 0, 1])


# ---------------------------------------------------------------------------- intrinsics and poses


def test_intrinsics_from_fov_matches_official_layout():
    fov = math.degrees(2 * math.atan(352 / 1000))
    K = intrinsics_from_fov(fov, 704, 1280)
    np.testing.assert_allclose(K, K_REF, atol=1e-9)
    assert fov_y_from_intrinsics(K, 704) == pytest.approx(fov, abs=1e-12)
    assert fov_y_from_intrinsics(torch.tensor(K_REF, dtype=torch.float32), 704) == pytest.approx(fov, abs=1e-5)
    # 90 degrees: f = H/2
    assert intrinsics_from_fov(90.0, 100, 200)[1, 1] == pytest.approx(50.0)


@pytest.mark.parametrize("fov", [0.5, 1.0, 179.0, 200.0, float("nan"), True, "wide"])
def test_intrinsics_from_fov_bad(fov):
    with pytest.raises(InputError, match="fov"):
        intrinsics_from_fov(fov, 704, 1280)


def test_intrinsics_bad_size():
    with pytest.raises(InputError, match="height"):
        intrinsics_from_fov(60.0, 0, 1280)


def test_scale_intrinsics():
    # pixel-centre-exact: f' = s f, c' = s (c + 0.5) - 0.5
    K = scale_intrinsics(K_REF, 0.5, 0.25)
    np.testing.assert_allclose(K, [[250, 0, 159.625], [0, 500, 175.75], [0, 0, 1]])
    Kt = scale_intrinsics(torch.tensor(K_REF).repeat(2, 1, 1), 2.0, 2.0)
    assert isinstance(Kt, torch.Tensor) and Kt[1, 0, 2] == 1280.5 and Kt[1, 2, 2] == 1
    with pytest.raises(InputError, match="sx"):
        scale_intrinsics(K_REF, 1.0, -1.0)


@pytest.mark.parametrize("size", [(44, 80), (176, 320), (29, 53), (301, 517)])
def test_scale_intrinsics_keeps_each_pixel_centre_on_its_scene_point(size):
    """Independent rule: torch's resize (align_corners=False, as images, depth maps and the preview caches
    are resized) decides which source position each new pixel centre shows; the rescaled K must put that
    pixel on the same camera ray as the source K puts the source position."""
    import torch.nn.functional as F

    H, W = 88, 160
    K = np.array([[123.0, 0, 81.3], [0, 119.0, 40.7], [0, 0, 1]])
    h, w = size
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64),
                            indexing="ij")
    # a ramp image holds its own pixel coordinates; bilinear resampling reproduces a linear function exactly
    ramp = torch.stack([xs, ys])[None]
    seen = F.interpolate(ramp, size=(h, w), mode="bilinear", align_corners=False)[0].numpy()
    # pixels near the border whose source position is clamped to the edge show no scene point of their own
    inner = (seen[0] > 0) & (seen[0] < W - 1) & (seen[1] > 0) & (seen[1] < H - 1)
    assert inner.mean() > 0.9
    src = np.stack([seen[0][inner], seen[1][inner], np.ones(int(inner.sum()))], -1)
    yy, xx = np.mgrid[0:h, 0:w]
    dst = np.stack([xx[inner], yy[inner], np.ones(int(inner.sum()))], -1).astype(np.float64)
    K2 = scale_intrinsics(K, h / H, w / W)
    np.testing.assert_allclose(dst @ np.linalg.inv(K2).T, src @ np.linalg.inv(K).T, rtol=0, atol=1e-9)


def test_invert_pose_and_center():
    M = _pose(_rot(0, 20) @ _rot(1, -35), [0.3, -1.0, 2.0])
    inv = invert_pose(M)
    np.testing.assert_allclose(inv @ M, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(camera_center(M), inv[:3, 3], atol=1e-12)
    Mt = torch.tensor(np.stack([M, np.eye(4)]))
    np.testing.assert_allclose(invert_pose(Mt).numpy(), np.stack([inv, np.eye(4)]), atol=1e-12)
    np.testing.assert_allclose(camera_center(Mt).numpy()[0], inv[:3, 3], atol=1e-12)


def test_opengl_flip_hand_example():
    # An OpenCV camera at (1,2,3) with identity rotation looks down world +z with image-down = +y.
    c2w = _pose(np.eye(3), [1, 2, 3])
    gl = opencv_c2w_to_opengl(c2w)
    expect = np.array([[1, 0, 0, 1], [0, -1, 0, 2], [0, 0, -1, 3], [0, 0, 0, 1.0]])
    np.testing.assert_array_equal(gl, expect)
    # OpenGL looks down its -z axis: that is world +z here
    np.testing.assert_array_equal(gl[:3, :3] @ [0, 0, -1], [0, 0, 1])
    np.testing.assert_array_equal(opengl_c2w_to_opencv(gl), c2w)
    t = torch.tensor(c2w, dtype=torch.float32)
    assert torch.equal(opengl_c2w_to_opencv(opencv_c2w_to_opengl(t)), t)
