"""engine.scene: seed scene construction, fitting, resizing, point cloud and PLY export."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from reference_fixtures import load_fixture
from engine.depth import DepthResult
from engine.errors import InputError
from engine.scene import Scene, build_scene, write_ply


def _scene_from_fixture():
    ref = load_fixture("warp_scene")
    return Scene(ref["image"], ref["depth"], ref["K"], ref["w2c"]), ref


def test_points_and_reliable_match_official_fixture():
    scene, ref = _scene_from_fixture()
    assert (scene.height, scene.width) == (88, 160)
    torch.testing.assert_close(scene.points, ref["points"], atol=1e-5, rtol=1e-5)
    assert torch.equal(scene.reliable, ref["reliable_mask"].bool())


def test_stats():
    scene, ref = _scene_from_fixture()
    s = scene.stats()
    d = ref["depth"].flatten()
    assert s["resolution"] == [88, 160]
    assert s["fov_y_deg"] == pytest.approx(math.degrees(2 * math.atan(44 / 125)))
    assert s["fov_x_deg"] == pytest.approx(math.degrees(2 * math.atan(80 / 125)))
    assert s["depth_min"] == pytest.approx(float(d.min())) and s["depth_max"] == pytest.approx(float(d.max()))
    assert s["points"] == 88 * 160
    assert s["reliable_share"] == pytest.approx(float(ref["reliable_mask"].float().mean()))


def test_point_cloud_subsample_is_deterministic_and_bounded():
    scene, ref = _scene_from_fixture()
    xyz, rgb = scene.point_cloud()
    assert len(xyz) == int(ref["reliable_mask"].sum()) and xyz.dtype == np.float32 and rgb.dtype == np.uint8
    keep = ref["reliable_mask"].bool().flatten()
    np.testing.assert_allclose(xyz, ref["points"].reshape(-1, 3)[keep].numpy(), atol=1e-5)
    expect_rgb = ((ref["image"].permute(1, 2, 0).reshape(-1, 3)[keep] + 1) * 127.5).round().clamp(0, 255)
    np.testing.assert_array_equal(rgb, expect_rgb.to(torch.uint8).numpy())
    a, _ = scene.point_cloud(max_points=1000)
    b, _ = scene.point_cloud(max_points=1000)
    assert 0 < len(a) <= 1000 and np.array_equal(a, b)
    allpts, _ = scene.point_cloud(only_reliable=False)
    assert len(allpts) == 88 * 160
    with pytest.raises(InputError):
        scene.point_cloud(max_points=0)


def test_invalid_depth_excluded_from_cloud_and_stats():
    depth = torch.full((1, 20, 30), 2.0)
    depth[:, :5] = 1000.0  # MoGe "no surface"
    depth[:, 15:, :3] = 0.0  # no data
    scene = Scene(torch.zeros(3, 20, 30), depth, [[20, 0, 15], [0, 20, 10], [0, 0, 1]])
    xyz, _ = scene.point_cloud(only_reliable=False)
    assert len(xyz) == 20 * 30 - 5 * 30 - 5 * 3
    s = scene.stats()
    assert s["depth_max"] == 2.0 and s["points"] == len(xyz)


def test_save_ply_readable_by_open3d(tmp_path):
    o3d = pytest.importorskip("open3d")
    scene, _ = _scene_from_fixture()
    xyz, rgb = scene.point_cloud(max_points=500)
    path = scene.save_ply(tmp_path / "cloud.ply", max_points=500)
    pcd = o3d.io.read_point_cloud(str(path))
    np.testing.assert_allclose(np.asarray(pcd.points), xyz, atol=1e-6)
    np.testing.assert_allclose(np.asarray(pcd.colors), rgb / 255.0, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["cloud.ply"]
    with pytest.raises(InputError):
        write_ply(tmp_path / "x.ply", np.zeros((3, 3)), np.zeros((2, 3)))


def test_resized_preview_scene():
    scene, _ = _scene_from_fixture()
    small = scene.resized(44, 80)
    assert (small.height, small.width) == (44, 80) and small.depth.shape == (1, 44, 80)
    ref = torch.nn.functional.interpolate(scene.depth[None], size=(44, 80), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(small.depth, ref, atol=1e-5, rtol=1e-6)
    # The same 3D surface point: the centre of a 2x2 block in full res = one pixel in half res.
    K2 = small.K.double()
    np.testing.assert_allclose(K2[0, 0], scene.K[0, 0] / 2, rtol=1e-6)
    np.testing.assert_allclose(K2[0, 2], (scene.K[0, 2] + 0.5) / 2 - 0.5, rtol=1e-6)
    assert small.image.min() >= -1 and small.image.max() <= 1
    assert scene.resized(88, 160).depth.equal(scene.depth)
    with pytest.raises(InputError):
        scene.resized(0, 10)


def test_build_scene_fits_everything_together():
    h, w = 90, 120
    img = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    K = np.array([[100.0, 0, 59.5], [0, 100.0, 44.5], [0, 0, 1]], np.float32)
    res = DepthResult(np.full((h, w), 3.0, np.float32), K, None)
    scene = build_scene(img, res, height=48, width=96, fit="crop")
    assert scene.image.shape == (3, 48, 96) and scene.depth.shape == (1, 48, 96)
    assert torch.allclose(scene.depth, torch.tensor(3.0))
    s = 96 / 120
    np.testing.assert_allclose(scene.K[0, 0], 100 * s, rtol=1e-5)
    np.testing.assert_allclose(scene.K[0, 2], 47.5, atol=1e-4)  # optical centre stays centred
    np.testing.assert_allclose(scene.K[1, 2], 23.5, atol=1e-4)
    assert scene.w2c.equal(torch.eye(4))
    padded = build_scene(img, res, height=48, width=96, fit="pad")
    assert (padded.depth[0, :, :10] == 0).all() and scene.stats()["points"] == 48 * 96
    assert padded.stats()["no_depth_share"] > 0.3
    with pytest.raises(InputError, match="depth is"):
        build_scene(img[:50], res)


def test_scene_validation():
    with pytest.raises(InputError, match="image"):
        Scene(torch.zeros(4, 5, 5), torch.ones(1, 5, 5), np.eye(3))
    with pytest.raises(InputError, match="depth"):
        Scene(torch.zeros(3, 5, 5), torch.ones(1, 4, 5), np.eye(3))
    with pytest.raises(InputError, match="finite"):
        Scene(torch.zeros(3, 5, 5), torch.full((1, 5, 5), float("nan")), np.eye(3))
    with pytest.raises(InputError):
        Scene(torch.zeros(3, 5, 5), torch.ones(1, 5, 5), np.zeros((3, 3)))
