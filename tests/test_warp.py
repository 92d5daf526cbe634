"""engine.warp: parity with the official GEN3C splat (fixture), batching, determinism, bad input."""
from __future__ import annotations

import pytest
import torch

from engine.errors import InputError
from engine.geometry import reliable_depth_mask, unproject_depth
from engine import warp
from engine.warp import splat
from reference_fixtures import load_fixture
from warp_reference import splat_reference

KERNELS = list(warp.cpu_kernels())


@pytest.fixture(params=KERNELS)
def kernel(request):
    """Run a test with each available CPU implementation of the fast splat."""
    warp.set_cpu_kernel(request.param)
    yield request.param
    warp.set_cpu_kernel(None)


@pytest.fixture(scope="module")
def scene():
    d = load_fixture("warp_scene")
    H, W = d["depth"].shape[-2:]
    d["H"], d["W"] = H, W
    d["P"] = d["points"].reshape(-1, 3)
    d["C"] = d["image"].permute(1, 2, 0).reshape(-1, 3)
    d["V"] = d["reliable_mask"].reshape(-1).bool()
    return d


def test_unproject_and_reliable_mask_match_official(scene):
    points = unproject_depth(scene["depth"], scene["K"], scene["w2c"])
    assert torch.equal(points, scene["points"])  # bit-exact: frame 0 relies on it
    mask = reliable_depth_mask(scene["depth"][0])
    assert torch.equal(mask, scene["reliable_mask"].bool())


def test_splat_matches_official_renders(scene, kernel):
    _check_official_render(scene, splat)


def test_reference_matches_official_renders(scene):
    _check_official_render(scene, splat_reference)


def _check_official_render(scene, fn):
    img, mask, depth = fn(scene["P"], scene["C"], scene["V"], scene["target_w2cs"], scene["target_Ks"],
                          scene["H"], scene["W"], render_depth=True)
    assert img.shape == (9, 3, scene["H"], scene["W"]) and mask.shape == (9, 1, scene["H"], scene["W"])
    torch.testing.assert_close(img, scene["pixels"], atol=1e-5, rtol=0)
    assert torch.equal(mask, scene["masks"].float())
    torch.testing.assert_close(depth[:, 0], scene["depth_render"], atol=1e-5, rtol=1e-6)


def test_pair_normalisation_matters(scene, kernel):
    """Rendering items one by one (norm_group=1) must differ from the official pairs, masks equal."""
    args = (scene["P"], scene["C"], scene["V"], scene["target_w2cs"], scene["target_Ks"], scene["H"], scene["W"])
    single_img, single_mask = splat(*args, norm_group=1)
    assert (single_img - scene["pixels"]).abs().max() > 1e-4
    assert torch.equal(single_mask, scene["masks"].float())


def test_batched_equals_per_pair(scene, kernel):
    args = (scene["P"], scene["C"], scene["V"])
    full, full_mask = splat(*args, scene["target_w2cs"], scene["target_Ks"], scene["H"], scene["W"])
    for s in range(0, 9, 2):
        img, mask = splat(*args, scene["target_w2cs"][s:s + 2], scene["target_Ks"][s:s + 2], scene["H"], scene["W"])
        assert torch.equal(img, full[s:s + 2]) and torch.equal(mask, full_mask[s:s + 2])
    chunked, _ = splat(*args, scene["target_w2cs"], scene["target_Ks"], scene["H"], scene["W"], chunk=3)
    assert torch.equal(chunked, full)  # chunk rounded up to whole pairs: same groups, same result


def test_fast_matches_reference_on_multiple_sources(scene, kernel):
    """Two point sets (S=2) mapped by source_index, odd item count (last group is a single)."""
    P2 = torch.stack([scene["P"], scene["P"] * 1.1])
    C2 = torch.stack([scene["C"], -scene["C"]])
    V2 = torch.stack([scene["V"], torch.ones_like(scene["V"])])
    src = torch.tensor([0, 1, 1, 0, 1])
    cams = scene["target_w2cs"][[1, 1, 3, 5, 8]], scene["target_Ks"][[1, 1, 3, 5, 8]]
    fast = splat(P2, C2, V2, *cams, scene["H"], scene["W"], source_index=src, render_depth=True)
    ref = splat_reference(P2, C2, V2, *cams, scene["H"], scene["W"], source_index=src, render_depth=True)
    for a, b in zip(fast, ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-6)
    assert torch.equal(fast[1], ref[1])


def test_exact_integer_lands_all_taps_on_one_pixel(kernel):
    """A point on an exact pixel centre puts weight 4 on it (official floor == ceil quirk).

    z = 4 so that z + 1e-7 rounds to z in float32 and the projection is exactly (2, 2); the second
    point lands at (2.5, 2): x taps 0.5/0.5, both y taps on row 2 (weight 2 each side).
    """
    K = torch.tensor([[10.0, 0, 2], [0, 10, 2], [0, 0, 1]])
    pts = torch.tensor([[0.0, 0.0, 4.0], [0.2, 0.0, 4.0]])
    cols = torch.tensor([[1.0], [-1.0]])
    for fn in (splat, splat_reference):
        img, mask = fn(pts, cols, None, torch.eye(4)[None], K[None], 5, 5)
        torch.testing.assert_close(img[0, 0, 2, 2], torch.tensor((4 * 1.0 + 1 * -1.0) / 5))
        torch.testing.assert_close(img[0, 0, 2, 3], torch.tensor(-1.0))
        assert mask[0, 0].sum() == 2 and mask[0, 0, 2, 2] == 1 and mask[0, 0, 2, 3] == 1


def test_near_points_dominate_and_behind_camera_ignored(kernel):
    K = torch.tensor([[10.0, 0, 2.5], [0, 10, 2.5], [0, 0, 1]])
    pts = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 3.0], [0.0, 0.0, -1.0]])
    cols = torch.tensor([[0.8], [-0.8], [0.0]])
    img, mask, depth = splat(pts, cols, None, torch.eye(4)[None], K[None], 6, 6, render_depth=True)
    assert img[0, 0, 2, 2] > 0.79  # the near point wins (soft z-weighting)
    assert depth[0, 0, 2, 2] < 1.01
    assert mask.sum() == 4  # four bilinear taps of 2.5+1 offsets; the behind-camera point adds nothing
    assert torch.all(img[mask == 0] == -1) and torch.all(depth[mask == 0] == 0)


def test_cpu_deterministic(scene, kernel):
    args = (scene["P"], scene["C"], scene["V"], scene["target_w2cs"], scene["target_Ks"], scene["H"], scene["W"])
    a = splat(*args)
    b = splat(*args)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_bad_inputs(scene):
    H, W = scene["H"], scene["W"]
    P, C, V, w2cs, Ks = scene["P"], scene["C"], scene["V"], scene["target_w2cs"], scene["target_Ks"]
    with pytest.raises(InputError, match="points"):
        splat(P[:, :2], C, V, w2cs, Ks, H, W)
    with pytest.raises(InputError, match="colors"):
        splat(P, C[:-1], V, w2cs, Ks, H, W)
    with pytest.raises(InputError, match="valid"):
        splat(P, C, V[:-1], w2cs, Ks, H, W)
    with pytest.raises(InputError, match="w2cs"):
        splat(P, C, V, w2cs[:, :3], Ks, H, W)
    with pytest.raises(InputError, match="disagree"):
        splat(P, C, V, w2cs[:2], Ks[:3], H, W)
    bad = Ks.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        splat(P, C, V, w2cs, bad, H, W)
    singular = Ks.clone()
    singular[1, 0, 0] = 0
    with pytest.raises(InputError, match="invertible"):
        splat(P, C, V, w2cs, singular, H, W)
    nan_pts = P.clone()
    nan_pts[5, 1] = float("inf")
    with pytest.raises(InputError, match="finite"):
        splat(nan_pts, C, V, w2cs, Ks, H, W)
    with pytest.raises(InputError, match="height"):
        splat(P, C, V, w2cs, Ks, 0, W)
    with pytest.raises(InputError, match="source_index"):
        splat(torch.stack([P, P]), torch.stack([C, C]), None, w2cs[:2], Ks[:2], H, W, source_index=[0, 2])
    with pytest.raises(InputError, match="cpu kernel"):
        warp.set_cpu_kernel("cuda")
    with pytest.raises(InputError, match="norm_group"):
        splat(P, C, V, w2cs, Ks, H, W, norm_group=0)


def test_concurrent_calls_from_threads(scene, kernel):
    """The studio renders for several sessions at once: concurrent calls must be safe and equal."""
    from concurrent.futures import ThreadPoolExecutor

    args = (scene["P"], scene["C"], scene["V"], scene["target_w2cs"][:4], scene["target_Ks"][:4], scene["H"], scene["W"])
    serial = splat(*args)[0]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: splat(*args)[0], range(3)))
    assert all(torch.equal(r, serial) for r in results)
