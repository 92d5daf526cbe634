"""engine.validate: the one set of input rules (cameras, images, numbers, sampling options, frame counts)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine import validate
from engine.errors import InputError

K_REF = np.array([[1000.0, 0, 640], [0, 1000, 352], [0, 0, 1]])


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


# ---------------------------------------------------------------------------- cameras (moved from test_cameras)


def test_validate_intrinsics_errors():
    with pytest.raises(InputError, match="shape"):
        validate.intrinsics(np.eye(4))
    with pytest.raises(InputError, match="NaN"):
        validate.intrinsics(np.full((3, 3), np.inf))
    with pytest.raises(InputError, match="focal"):
        validate.intrinsics([[-5.0, 0, 1], [0, 5, 1], [0, 0, 1]])
    with pytest.raises(InputError, match="numeric"):
        validate.intrinsics([["a", 0, 1], [0, 5, 1], [0, 0, 1]])
    assert validate.intrinsics(K_REF).dtype == np.float64


def test_validate_w2c_errors():
    M = _pose(_rot(0, 30), [1, 2, 3])
    assert np.array_equal(validate.w2c(M), M)
    bad = M.copy()
    bad[3] = [0, 0, 1, 1]
    with pytest.raises(InputError, match="last row"):
        validate.w2c(bad)
    shear = M.copy()
    shear[0, 1] += 0.01
    with pytest.raises(InputError, match="rigid"):
        validate.w2c(shear)


def _rotation_error_pose(eps):
    M = _pose(_rot(1, 20), [0.1, 0.2, 0.3])
    M[0, 0] += eps  # breaks orthonormality by ~eps
    return M


def test_rigid_tolerance_and_position_bound_are_the_stated_ones():
    validate.w2c(_rotation_error_pose(0.5 * validate.RIGID_TOL))
    with pytest.raises(InputError, match="rigid"):
        validate.w2c(_rotation_error_pose(5 * validate.RIGID_TOL))
    near = _pose(_rot(2, 40), [0.99 * validate.MAX_CAMERA_DISTANCE, 0, 0])
    validate.w2c(near)
    far = _pose(_rot(2, 40), [0, 0, 1.01 * validate.MAX_CAMERA_DISTANCE])
    with pytest.raises(InputError, match="from the origin"):
        validate.w2c(far)
    with pytest.raises(InputError, match="single|4x4"):
        validate.w2c(np.stack([near, near]), batch=False)
    with pytest.raises(InputError, match=r"\[T,4,4\]"):
        validate.w2c(near, batch=True)


def test_camera_batch_checks_every_camera_and_the_lengths():
    w2cs = np.stack([np.eye(4)] * 3)
    Ks = np.stack([K_REF] * 3)
    W, K = validate.camera_batch(torch.from_numpy(w2cs).float(), Ks)
    assert W.dtype == np.float64 and W.shape == (3, 4, 4) and K.shape == (3, 3, 3)
    bad = Ks.copy()
    bad[2, 1, 1] = -3
    with pytest.raises(InputError, match="focal"):
        validate.camera_batch(w2cs, bad)
    with pytest.raises(InputError, match="w2cs has 3 cameras but Ks has 2"):
        validate.camera_batch(w2cs, Ks[:2])
    with pytest.raises(InputError, match="3 cameras given for 4 frames"):
        validate.camera_batch(w2cs, Ks, num_frames=4)


# ---------------------------------------------------------------------------- numbers, images, sampling


def test_integers_floats_and_vectors():
    assert validate.integer(3.0, "n") == 3 and validate.integer(np.int64(4), "n", 1, 9) == 4
    for bad in (3.5, True, "3", float("nan")):
        with pytest.raises(InputError, match="n must be an integer"):
            validate.integer(bad, "n")
    with pytest.raises(InputError, match="n must be at least 1 and at most 9, got 10"):
        validate.integer(10, "n", 1, 9)
    assert validate.finite_float("2.5", "x") == 2.5
    for bad in (True, float("inf"), "many", None):
        with pytest.raises(InputError, match="x must be"):
            validate.finite_float(bad, "x")
    np.testing.assert_array_equal(validate.finite_vec3(torch.tensor([1, 2, 3]), "p"), [1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="three numbers"):
        validate.finite_vec3([1, 2], "p")
    with pytest.raises(InputError, match="finite"):
        validate.finite_vec3([1, 2, float("nan")], "p")


def test_uint8_images_and_videos():
    img = np.zeros((4, 5, 3), np.uint8)
    assert validate.uint8_image(img) is img
    assert validate.uint8_image(torch.zeros(2, 4, 5, 3, dtype=torch.uint8), frames=True).shape == (2, 4, 5, 3)
    for bad in (img.astype(np.float32), img[..., :2], img[None], [[1, 2, 3]]):
        with pytest.raises(InputError, match="uint8"):
            validate.uint8_image(bad)
    with pytest.raises(InputError, match="empty"):
        validate.uint8_image(np.zeros((0, 5, 3), np.uint8))


def test_sampling_options_use_the_callers_names():
    opts = validate.sampling_options(35, 1.0, "official", 1)
    assert (opts.num_steps, opts.guidance, opts.cfg, opts.seed) == (35, 1.0, "official", 1)
    cli = {"num_steps": "--steps", "guidance": "--guidance", "cfg": "--cfg", "seed": "--seed"}
    for args, flag in (((0, 1.0, "official", 1), "--steps"), ((validate.MAX_STEPS + 1, 1.0, "official", 1), "--steps"),
                       ((35, validate.MAX_GUIDANCE + 1, "official", 1), "--guidance"),
                       ((35, 1.0, "legacy", 1), "--cfg"), ((35, 1.0, "official", validate.SEED_LIMIT), "--seed")):
        with pytest.raises(InputError, match=f"^{flag} "):
            validate.sampling_options(*args, names=cli)


def test_frame_count_limit_and_its_memory_budget():
    assert validate.frame_count(validate.MAX_FRAMES) == validate.MAX_FRAMES
    assert (validate.MAX_FRAMES - 1) % 120 == 0  # on the chunk grid
    with pytest.raises(InputError, match="num_frames"):
        validate.frame_count(validate.MAX_FRAMES + 1)
    # the same budget at another size: 16 GiB / (7 B x 4096 x 4096) = 146 frames
    assert validate.frame_count(146, height=4096, width=4096) == 146
    with pytest.raises(InputError, match="at most 146"):
        validate.frame_count(147, height=4096, width=4096)
    # and the model size holds MAX_FRAMES inside the budget
    assert validate.MAX_FRAMES * 7 * 704 * 1280 <= 16 * 2**30 < (validate.MAX_FRAMES + 120) * 7 * 704 * 1280
