"""Paths keep the seed camera: an off-centre, non-square K survives sampling, and frame 0 of a path that starts at
the input camera is the seed camera exactly (pose and K), in the path and in what the pipeline renders."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.cameras import preset_trajectory, scale_intrinsics
from engine.errors import InputError
from engine.paths import CameraPath, Keyframe, PathIntrinsics, path_from_dict, path_to_dict

H, W = 64, 128
# principal point off centre, fx != fy (e.g. a depth file's K after a crop)
K_SEED = np.array([[112.5, 0.0, 70.25], [0.0, 97.0, 28.625], [0.0, 0.0, 1.0]], np.float32)


def _fov(K) -> float:
    return math.degrees(2 * math.atan(H / 2 / float(K[1, 1])))


def test_input_camera_path_starts_at_the_seed_camera_exactly():
    second = Keyframe.from_look_at((0.2, -0.05, 0.1), (0.0, 0.0, 3.0), 50.0)
    path = CameraPath.from_input_camera(K=K_SEED, height=H, width=W).inserted(1, second)
    w2cs, Ks = path.sample(9, H, W)
    assert torch.equal(w2cs[0], torch.eye(4))
    assert torch.equal(Ks[0], torch.from_numpy(K_SEED))
    # zooming changes fx and fy together about the principal point; fy follows the frame's FOV
    assert torch.equal(Ks[-1, :2, 2], torch.from_numpy(K_SEED[:2, 2]))
    assert Ks[-1, 0, 0] / Ks[-1, 1, 1] == pytest.approx(K_SEED[0, 0] / K_SEED[1, 1], rel=1e-6)
    assert Ks[-1, 1, 1] == pytest.approx((H / 2) / math.tan(math.radians(50.0) / 2), rel=1e-6)
    # the input camera's FOV is the seed K's own
    assert path.keyframes[0].fov_y_deg == pytest.approx(_fov(K_SEED), abs=1e-9)


def test_preset_path_keeps_the_seed_K_and_the_official_poses():
    for kind, rotation in (("left", "center_facing"), ("zoom_in", "no_rotation"), ("clockwise", "center_facing")):
        path = CameraPath.from_preset(kind, rotation, 0.3, num_frames=33, K=K_SEED, height=H, width=W)
        w2cs, Ks = path.sample(33, H, W)
        ref_w2cs, ref_Ks = preset_trajectory(kind, torch.eye(4), torch.from_numpy(K_SEED), 33, 0.3, rotation)
        assert torch.equal(Ks, torch.as_tensor(ref_Ks, dtype=torch.float32))  # the official trajectory repeats K
        torch.testing.assert_close(w2cs, torch.as_tensor(ref_w2cs, dtype=torch.float32), rtol=0, atol=2.4e-7)
        assert torch.equal(w2cs[0], torch.eye(4))


def test_seed_K_at_another_size_follows_the_scene_resize():
    path = CameraPath.from_preset("left", "center_facing", 0.3, num_frames=17, K=K_SEED, height=H, width=W)
    _, Ks = path.sample(17, H // 2, W // 2)
    expected = scale_intrinsics(K_SEED.astype(np.float64), 0.5, 0.5).astype(np.float32)
    assert torch.equal(Ks[0], torch.from_numpy(expected))


def test_cameras_of_one_K_keep_it_and_the_intrinsics_survive_the_project_file():
    w2cs, Ks = preset_trajectory("up", torch.eye(4), torch.from_numpy(K_SEED), 9, 0.2, "center_facing")
    path = CameraPath.from_cameras(w2cs, Ks, H, width=W)
    assert torch.equal(path.sample(9, H, W)[1], torch.as_tensor(Ks, dtype=torch.float32))
    again = path_from_dict(path_to_dict(path))
    assert again == path and again.intrinsics == PathIntrinsics(K_SEED, H, W)
    assert path_to_dict(path.with_intrinsics(None)).get("intrinsics") is None
    with pytest.raises(InputError, match="height and width"):
        path.with_intrinsics(K_SEED)


def test_pipeline_samples_a_path_with_the_seed_K(tiny_weights_dir):
    """A path without a lens of its own (an imported FOV-only path) zooms the seed camera's K in generate: frame 0
    of a path starting at the input camera renders from the seed camera exactly."""
    from engine.depth import DepthResult
    from engine.pipeline import Gen3CPipeline

    pipe = Gen3CPipeline.from_pretrained(tiny_weights_dir, device="cpu", placement="resident", zero_text=True)
    yy, xx = np.mgrid[0:H, 0:W]
    image = np.stack([xx * 2, yy * 4, (xx + yy) % 256], -1).astype(np.uint8)
    depth = DepthResult((2.0 + xx / W).astype(np.float32), K_SEED)
    path = CameraPath((Keyframe(np.eye(4), _fov(K_SEED)), Keyframe.from_look_at((0.1, 0, 0), (0, 0, 3), 45.0)))
    assert path.intrinsics is None
    result = pipe.generate(image, path, 5, num_steps=1, depth=depth, trace=True)
    chunk0 = result.trace[0]
    assert torch.equal(chunk0["w2cs"][0], torch.eye(4)) and torch.equal(chunk0["Ks"][0], torch.from_numpy(K_SEED))
    assert chunk0["Ks"][-1, 0, 2] == K_SEED[0, 2] and chunk0["Ks"][-1, 1, 2] == K_SEED[1, 2]
    # so the seed camera's render is the image itself wherever the depth filter keeps points
    covered = chunk0["masks"][0, 0]
    assert covered.mean() > 0.9
    assert np.abs(chunk0["renders"][0, 0].astype(int) - image.astype(int))[covered].max() <= 1
