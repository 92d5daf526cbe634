"""engine.align: official rigid / non-rigid depth alignment.

Parity (fixture warp_scene, official update_cache inputs, 88x160): rigid matches
update_rigid/aligned_depth_z to 5.6e-7 max relative error; non-rigid matches update_non_rigid/aligned_depth_z
with max relative error 4.3e-3 and mean 1.9e-4 (the official procedure is chaotic: a 1e-7 input
perturbation moves it by up to 4.5e-3, see the fixture README; the official loop re-run with autograd here
lands at the same distance).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from reference_fixtures import load_fixture
from engine import align
from engine.align import AlignmentWarning, align_depth
from engine.errors import InputError


@pytest.fixture(scope="module")
def scene():
    f = load_fixture("warp_scene")
    return {
        "new_depth": f["update/new_depth"],
        "target_depth": f["update/target_depth"],
        "target_mask": f["update/target_mask"],
        "K": f["update/new_K"],
        # update_cache passes inverse(new_w2c) where align_depth expects a w2c (official quirk).
        "w2c": torch.linalg.inv(f["update/new_w2c"]),
        "rigid_ref": f["update_rigid/aligned_depth_z"],
        "non_rigid_ref": f["update_non_rigid/aligned_depth_z"],
    }


def _call(s, method, **kw):
    return align_depth(s["new_depth"], s["target_depth"], s["target_mask"], s["K"], s["w2c"], method, **kw)


def _rel(a, b):
    return (a - b).abs() / b.abs()


def test_rigid_matches_official(scene):
    out, info = _call(scene, "rigid", return_info=True)
    assert out.shape == scene["new_depth"].shape
    assert info.method == "rigid" and info.fallback is None and info.fit_pixels > 1000
    assert _rel(out[0], scene["rigid_ref"]).max() <= 1e-5


def test_non_rigid_matches_official(scene):
    out = _call(scene, "non_rigid")
    rel = _rel(out[0], scene["non_rigid_ref"])
    assert rel.max() <= 1e-2
    assert rel.mean() <= 1e-3
    # and it is really the non-rigid result, not the rigid one
    assert _rel(out[0], scene["rigid_ref"]).mean() > 10 * rel.mean()


def test_default_method_is_non_rigid(scene):
    default = align_depth(scene["new_depth"], scene["target_depth"], scene["target_mask"], scene["K"], scene["w2c"],
                          iterations=3)
    # two runs of the same float computation may differ in the last bits (thread-dependent reductions)
    explicit = _call(scene, "non_rigid", iterations=3)
    torch.testing.assert_close(default, explicit, rtol=1e-5, atol=0)
    assert _rel(default, _call(scene, "rigid")).max() > 1e-3


def test_none_returns_clamped_input():
    d = torch.tensor([[[1.0, float("nan")], [-2.0, 2e4]]])
    out = align_depth(d, torch.ones(2, 2), torch.ones(2, 2), method=None)
    assert out.shape == d.shape
    assert torch.equal(out, torch.tensor([[[1.0, 1e4], [0.0, 1e4]]]))


def _synthetic(H=24, W=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    target = 2.0 + xs / W + 0.5 * torch.sin(ys / 5) + 0.2 * torch.rand(H, W, generator=g)
    K = torch.tensor([[30.0, 0, W / 2], [0, 30.0, H / 2], [0, 0, 1]])
    w2c = torch.eye(4)
    w2c[:3, 3] = torch.tensor([0.1, -0.2, 0.3])
    return target, K, w2c


def test_rigid_recovers_known_scale_and_shift():
    target, K, w2c = _synthetic()
    s, b = 1.7, -0.05
    new = 1.0 / ((1.0 / target - b) / s)  # so that s/new + b = 1/target
    mask = torch.ones_like(target, dtype=torch.bool)
    mask[:3] = False
    out, info = align_depth(new, target, mask, K, w2c, "rigid", return_info=True)
    assert info.scale == pytest.approx(s, rel=1e-4)
    assert info.shift == pytest.approx(b, abs=1e-5)
    assert _rel(out, target).max() <= 1e-5


def test_non_rigid_keeps_an_exact_rigid_solution():
    target, K, w2c = _synthetic()
    new = 1.0 / ((1.0 / target + 0.02) / 0.8)
    out = align_depth(new, target, torch.ones_like(target), K, w2c, "non_rigid")
    assert _rel(out, target).max() <= 2e-3


def test_non_rigid_fixes_what_rigid_cannot():
    target, K, w2c = _synthetic()
    H, W = target.shape
    xs = torch.arange(W, dtype=torch.float32)
    warp = 1.0 + 0.04 * torch.sin(2 * math.pi * xs / W)  # smooth, non-affine distortion
    new = target * warp
    mask = torch.ones_like(target)
    rigid = align_depth(new, target, mask, K, w2c, "rigid")
    nonrigid = align_depth(new, target, mask, K, w2c, "non_rigid", iterations=150)
    assert (nonrigid - target).abs().mean() < 0.5 * (rigid - target).abs().mean()


def _problem(seed=0):
    target, K, w2c = _synthetic(seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    depth = target * (1 + 0.05 * torch.randn(target.shape, generator=g))
    mask = torch.rand(target.shape, generator=g) > 0.3
    return depth, target, mask, K, w2c


def test_closed_form_gradient_equals_autograd():
    depth, target, mask, K, w2c = _problem()
    rays_world, origin = align._loss_frame(depth, K, w2c)
    weight = align._data_weight(rays_world, mask)
    g = torch.Generator().manual_seed(5)
    S = (1 + 0.01 * torch.randn(depth.shape, generator=g)).requires_grad_(True)
    for smooth in (0.0, 0.1, 2.0):
        loss = align._nonrigid_loss(S, depth, target, mask, rays_world, origin, smooth)
        (auto,) = torch.autograd.grad(loss, S)
        ours = align._nonrigid_grad(S.detach(), depth, target, weight, smooth)
        torch.testing.assert_close(ours, auto, rtol=1e-4, atol=1e-5 * auto.abs().max().item())


def test_optimiser_equals_torch_adam_on_official_loss():
    """Our loop equals torch.optim.Adam: exactly when fed the same gradients, and with autograd on the
    official loss for almost every pixel (a gradient that is ~0 up to rounding may flip sign, and Adam
    normalises it to a full lr step: that is the chaos the fixture README describes)."""
    depth, target, mask, K, w2c = _problem(seed=3)
    rays_world, origin = align._loss_frame(depth, K, w2c)
    weight = align._data_weight(rays_world, mask)
    ours = align._optimise_scale_map(depth, target, mask, K, w2c, 5, 1e-3, 0.1)
    assert (ours - 1).abs().max() > 1e-3  # it moved

    fed = torch.ones_like(depth, requires_grad=True)
    auto = torch.ones_like(depth, requires_grad=True)
    opt_fed = torch.optim.Adam([fed], lr=1e-3)
    opt_auto = torch.optim.Adam([auto], lr=1e-3)
    for _ in range(5):
        fed.grad = align._nonrigid_grad(fed.detach(), depth, target, weight, 0.1)
        opt_fed.step()
        opt_auto.zero_grad()
        align._nonrigid_loss(auto, depth, target, mask, rays_world, origin, 0.1).backward()
        opt_auto.step()
    torch.testing.assert_close(ours, fed.detach(), rtol=0, atol=1e-6)
    close = (ours - auto.detach()).abs() <= 1e-6
    assert close.float().mean() >= 0.98


def test_box_filter_is_the_official_zero_padded_mean():
    x = torch.rand(7, 9, generator=torch.Generator().manual_seed(2))
    official = torch.nn.functional.conv2d(x[None, None], torch.ones(1, 1, 3, 3) / 9, padding=1)[0, 0]
    torch.testing.assert_close(align._box3(x), official, rtol=0, atol=1e-6)


def _roughness(S):
    return (align._box3(S) - S).abs().mean().item()


def test_smoothness_term_keeps_scale_map_smooth():
    target, K, w2c = _synthetic(H=32, W=40)
    g = torch.Generator().manual_seed(7)
    noisy_target = target * (1 + 0.05 * torch.randn(target.shape, generator=g))  # per-pixel noise
    mask = torch.ones_like(target)
    rigid = align_depth(target, noisy_target, mask, K, w2c, "rigid")
    rough = [_roughness(align_depth(target, noisy_target, mask, K, w2c, "non_rigid", smoothness=lam) / rigid)
             for lam in (0.0, 1.0, 5.0)]
    # The data term alone fits the per-pixel noise; the box-filter term pulls S towards its local mean.
    assert rough[0] > rough[1] > rough[2]
    assert rough[2] < 0.6 * rough[0]


def test_numpy_and_2d_inputs(scene):
    out = align_depth(scene["new_depth"][0].numpy(), scene["target_depth"].numpy(),
                      scene["target_mask"].numpy().astype(bool), scene["K"].numpy(), scene["w2c"].numpy(), "rigid")
    assert out.shape == scene["target_depth"].shape
    assert _rel(out, scene["rigid_ref"]).max() <= 1e-5


@pytest.mark.parametrize("method", ["rigid", "non_rigid"])
def test_empty_mask_falls_back_with_warning(method):
    target, K, w2c = _synthetic()
    new = target * 1.3
    new[0, 0] = float("nan")
    with pytest.warns(AlignmentWarning, match="target mask"):
        out, info = align_depth(new, target, torch.zeros_like(target), K, w2c, method, return_info=True)
    assert info.method is None and info.fallback
    expected = new.clone()
    expected[0, 0] = 1e4
    assert torch.equal(out, expected)


def test_too_few_overlap_pixels_falls_back():
    target, K, w2c = _synthetic()
    mask = torch.zeros_like(target, dtype=torch.bool)
    mask[5, 5:9] = True
    target_render = torch.where(mask, target, torch.zeros_like(target))  # holes of a render are 0
    with pytest.warns(AlignmentWarning, match="overlapping pixels"):
        out, info = align_depth(target * 2, target_render, mask, K, w2c, "non_rigid", return_info=True)
    assert info.fallback.startswith("only") and torch.equal(out, target * 2)


def test_enough_pixels_do_not_warn():
    target, K, w2c = _synthetic()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        align_depth(target * 2, target, torch.ones_like(target), K, w2c, "rigid")


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(method="affine"), "alignment method"),
        (dict(target_depth=torch.ones(5, 5)), "disagree in size"),
        (dict(target_mask=torch.ones(1, 24, 31)), "disagree in size"),
        (dict(new_depth=torch.ones(2, 24, 32)), "new_depth must have shape"),
        (dict(new_depth="depth.png"), "new_depth must be"),
        (dict(target_depth=torch.full((24, 32), float("inf"))), "target_depth contains NaN"),
        (dict(K=None), "K is required"),
        (dict(K=torch.eye(4)), "K must be a 3x3"),
        (dict(K=torch.zeros(3, 3)), "K is singular"),
        (dict(w2c=torch.full((4, 4), float("nan"))), "w2c contains NaN"),
        (dict(w2c=torch.zeros(4, 4)), "w2c is singular"),
        (dict(iterations=-1), "iterations"),
        (dict(iterations=2.5), "iterations"),
        (dict(lr=0.0), "lr"),
        (dict(lr="fast"), "lr"),
        (dict(smoothness=float("nan")), "smoothness"),
    ],
)
def test_bad_input(change, message):
    target, K, w2c = _synthetic()
    args = dict(new_depth=target * 2, target_depth=target, target_mask=torch.ones_like(target), K=K, w2c=w2c,
                method="non_rigid")
    args.update(change)
    with pytest.raises(InputError, match=message):
        align_depth(**args)


def test_rigid_needs_no_camera():
    target, _, _ = _synthetic()
    out = align_depth(target * 2, target, torch.ones_like(target), method="rigid")
    assert _rel(out, target).max() <= 1e-5


def test_float64_and_device_follow_new_depth(scene):
    out = _call(dict(scene, new_depth=scene["new_depth"].double()), "rigid")
    assert out.dtype == torch.float32 and out.device == scene["new_depth"].device
    assert np.isfinite(out.numpy()).all()


def test_zero_depth_stays_zero():
    target, K, w2c = _synthetic()
    new = target * 1.5
    new[4:6, 7:9] = 0.0
    for method in ("rigid", "non_rigid"):
        out = align_depth(new, target, torch.ones_like(target), K, w2c, method, iterations=5)
        assert (out[4:6, 7:9] == 0).all() and (out[new > 0] > 0).all()
