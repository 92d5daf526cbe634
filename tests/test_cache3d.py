"""engine.cache3d: official Cache3D_Buffer parity (fixture), buffers, update, bad input."""
from __future__ import annotations

import pytest
import torch

from engine.cache3d import Cache3D
from engine.errors import InputError
from reference_fixtures import load_fixture
from warp_reference import splat_reference


@pytest.fixture(scope="module")
def d():
    return load_fixture("warp_scene")


def make(d, **kw):
    return Cache3D(d["image"], d["depth"], d["w2c"], d["K"], **kw)


def test_seed_state(d):
    c = make(d)
    assert c.num_buffers == 1 and (c.height, c.width) == tuple(d["depth"].shape[-2:])
    assert torch.equal(c.points(0), d["points"])
    assert torch.equal(c.valid_masks[0], d["reliable_mask"].bool())
    assert torch.equal(c.images[0], d["image"])
    assert c.boundary_mask is None


def test_render_matches_official(d):
    c = make(d)
    img, mask, depth = c.render(d["target_w2cs"], d["target_Ks"], render_depth=True)
    assert img.shape == (9, 1, 3, 88, 160) and mask.shape == (9, 1, 1, 88, 160) and depth.shape == mask.shape
    torch.testing.assert_close(img[:, 0], d["pixels"], atol=1e-5, rtol=0)
    assert torch.equal(mask[:, 0], d["masks"].float())
    torch.testing.assert_close(depth[:, 0, 0], d["depth_render"], atol=1e-5, rtol=1e-6)
    # frame chunking keeps the official pairs (N=1: two consecutive frames)
    img2, mask2 = c.render(d["target_w2cs"], d["target_Ks"], frame_chunk=3)
    assert torch.equal(img2, img) and torch.equal(mask2, mask)


def test_threshold_one_disables_filter(d):
    c = make(d, filter_points_threshold=1.0)
    assert bool(c.valid_masks.all())
    img, mask = c.render(d["target_w2cs"][:2], d["target_Ks"][:2])
    assert mask.sum() > torch.as_tensor(d["masks"][:2]).sum()  # unfiltered edge points fill more


def test_update_target_is_single_frame_depth_render(d):
    c = make(d)
    _, mask, depth = c.render(d["update/new_w2c"][None], d["update/new_K"][None], render_depth=True)
    torch.testing.assert_close(depth[0, 0, 0], d["update/target_depth"], atol=1e-5, rtol=1e-6)
    assert torch.equal(mask[0, 0, 0], d["update/target_mask"].float())


def test_update_without_alignment_matches_official(d):
    c = make(d)
    c.update(d["update/new_image"], d["update/new_depth"], d["update/new_w2c"], d["update/new_K"], alignment=None)
    assert c.num_buffers == 2
    torch.testing.assert_close(c.points(0), d["update_none/buffer0_points"], atol=1e-5, rtol=0)
    assert torch.equal(c.valid_masks[0], d["update_none/buffer0_mask"].bool())
    assert torch.equal(c.points(1), d["points"]) and torch.equal(c.images[1], d["image"])
    img, mask = c.render(d["target_w2cs"][:2], d["target_Ks"][:2])
    assert img.shape == (2, 2, 3, 88, 160)
    torch.testing.assert_close(img, d["update_none/render_pixels"], atol=1e-5, rtol=0)
    assert torch.equal(mask, d["update_none/render_masks"].float())


def test_render_two_buffers_equals_reference_pairs(d):
    """N=2: items (frame, buffer) frame-major, a normalisation pair = both buffers of one frame."""
    c = make(d)
    c.update(d["update/new_image"], d["update/new_depth"], d["update/new_w2c"], d["update/new_K"], alignment=None)
    img, mask = c.render(d["target_w2cs"][2:5], d["target_Ks"][2:5])
    pts, cols, valid = c.flat_sources()
    ref = splat_reference(pts, cols, valid, d["target_w2cs"][2:5].repeat_interleave(2, 0),
                          d["target_Ks"][2:5].repeat_interleave(2, 0), 88, 160,
                          source_index=torch.tensor([0, 1] * 3))
    torch.testing.assert_close(img.reshape(6, 3, 88, 160), ref[0], atol=1e-5, rtol=0)
    assert torch.equal(mask.reshape(6, 1, 88, 160), ref[1])


def test_update_rigid_matches_official(d):
    c = make(d)
    c.update(d["update/new_image"], d["update/new_depth"], d["update/new_w2c"], d["update/new_K"], alignment="rigid")
    torch.testing.assert_close(c.points(0), d["update_rigid/buffer0_points"], atol=1e-4, rtol=1e-5)
    assert (c.valid_masks[0] != d["update_rigid/buffer0_mask"].bool()).sum() <= 2


def test_update_replaces_newest_and_keeps_seed(d):
    c = make(d)
    new = (d["update/new_image"], d["update/new_depth"], d["update/new_w2c"], d["update/new_K"])
    c.update(*new, alignment=None)
    c.update(-new[0], new[1] * 1.5, new[2], new[3], alignment=None)
    assert c.num_buffers == 2
    assert torch.equal(c.images[0], -new[0]) and torch.equal(c.images[1], d["image"])
    single = make(d, frame_buffer_max=1)
    single.update(*new, alignment=None)
    assert single.num_buffers == 1 and torch.equal(single.images[0], new[0])


def test_update_clamps_depth_to_1e4(d):
    c = make(d)
    depth = d["update/new_depth"].clone()
    depth[0, 0, 0] = float("nan")
    depth[0, 0, 1] = 5e5
    c.update(d["update/new_image"], depth, d["update/new_w2c"], d["update/new_K"], alignment=None)
    w2c = d["update/new_w2c"]
    z = c.points(0)[0, :2] @ w2c[2, :3] + w2c[2, 3]  # camera-space z of the two pixels
    torch.testing.assert_close(z, torch.tensor([1e4, 1e4]), rtol=1e-5, atol=0)


def test_init_depth_nan_and_clamp(d):
    depth = d["depth"].clone()
    depth[0, 3, 4] = float("nan")
    depth[0, 3, 5] = 1e6
    depth[0, 3, 6] = -2.0
    c = Cache3D(d["image"], depth, d["w2c"], d["K"])
    assert torch.isclose(c.points(0)[3, 4, 2], torch.tensor(100.0))
    assert torch.isclose(c.points(0)[3, 5, 2], torch.tensor(100.0))
    assert torch.equal(c.points(0)[3, 6], torch.zeros(3))


def test_foreground_masking_matches_official(d):
    c = make(d, foreground_masking=True)
    assert torch.equal(c.boundary_mask, d["boundary_mask_fg"].bool())
    img, mask = c.render(d["target_w2cs"], d["target_Ks"])
    agree = (mask[:, 0] == d["masks_fg"].float()).float().mean()
    assert agree > 0.999
    close = ((img[:, 0] - d["pixels_fg"]).abs() < 1e-4).float().mean()
    assert close > 0.999
    assert (mask[:, 0] < d["masks"].float()).any()  # masking removed some splatted pixels


def test_to_device_roundtrip(d):
    c = make(d).to("cpu")
    assert c.points(0).device.type == "cpu" and c.images.device.type == "cpu"


def test_bad_inputs(d):
    img, depth, w2c, K = d["image"], d["depth"], d["w2c"], d["K"]
    with pytest.raises(InputError, match="image"):
        Cache3D(img[:2], depth, w2c, K)
    with pytest.raises(InputError, match="depth"):
        Cache3D(img, depth[:, :40], w2c, K)
    nan_K = K.clone()
    nan_K[0, 2] = float("nan")
    with pytest.raises(InputError, match="K"):
        Cache3D(img, depth, w2c, nan_K)
    with pytest.raises(InputError, match="invertible"):
        Cache3D(img, depth, w2c, torch.zeros(3, 3))
    with pytest.raises(InputError, match="w2c"):
        Cache3D(img, depth, w2c[:3], K)
    with pytest.raises(InputError, match="frame_buffer_max"):
        Cache3D(img, depth, w2c, K, frame_buffer_max=0)
    c = make(d)
    with pytest.raises(InputError, match="w2cs"):
        c.render(d["target_w2cs"][:, :3], d["target_Ks"])
    with pytest.raises(InputError, match="disagree"):
        c.render(d["target_w2cs"][:2], d["target_Ks"][:3])
    with pytest.raises(InputError, match="frame_chunk"):
        c.render(d["target_w2cs"], d["target_Ks"], frame_chunk=0)
    with pytest.raises(InputError, match="alignment"):
        c.update(img, depth, w2c, K, alignment="affine")
    with pytest.raises(InputError, match="depth"):
        c.update(img, depth[:, :, :100], w2c, K, alignment=None)
    with pytest.raises(InputError, match="frame"):
        c.update(img[:, :10], depth, w2c, K, alignment=None)
    assert c.num_buffers == 1  # nothing changed by the failed updates
