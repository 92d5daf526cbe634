"""engine.foreground: occluder mesh rasterisation and foreground masking.

Parity (fixture warp_scene, 9 target cameras, 88x160): applying the rasterised occluder depth to the
official non-masked render (`pixels`, `masks`, `depth_render`) reproduces the official Warp ray-cast
result exactly: masks_fg identical in all 9x88x160 pixels (2767 pixels blanked), pixels_fg to 6e-8.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reference_fixtures import load_fixture
from engine.errors import InputError
from engine.foreground import apply_foreground_mask, occluder_mask, occluder_mesh, rasterize_depth


@pytest.fixture(scope="module")
def scene():
    return load_fixture("warp_scene")


def test_masks_match_official_warp_ray_casting(scene):
    mesh_depth = occluder_mask(scene["boundary_mask_fg"].bool(), scene["points"], scene["target_w2cs"],
                               scene["target_Ks"], 88, 160)
    assert mesh_depth.shape == (9, 88, 160)
    images, masks, depth = apply_foreground_mask(scene["pixels"], scene["masks"].float(), scene["depth_render"],
                                                 mesh_depth)
    blanked = masks < scene["masks"].float()
    assert blanked.sum() > 1000  # the fixture really exercises the masking
    assert torch.equal(masks, scene["masks_fg"].float())
    torch.testing.assert_close(images, scene["pixels_fg"], rtol=0, atol=1e-5)
    assert (depth[blanked[:, 0]] == 0).all()


def test_small_batches_give_the_same_depth(scene):
    args = (scene["boundary_mask_fg"].bool(), scene["points"], scene["target_w2cs"][:3], scene["target_Ks"][:3], 88, 160)
    assert torch.equal(occluder_mask(*args), occluder_mask(*args, max_pairs=2003))


def _ray_cast(tris: np.ndarray, K: np.ndarray, H: int, W: int) -> np.ndarray:
    """Brute force: every pixel's normalised ray against every triangle (Moller-Trumbore, float64)."""
    out = np.zeros((H, W))
    K_inv = np.linalg.inv(K)
    for y in range(H):
        for x in range(W):
            d = K_inv @ np.array([x, y, 1.0])
            d /= np.linalg.norm(d)
            best = np.inf
            for v0, v1, v2 in tris:
                e1, e2 = v1 - v0, v2 - v0
                h = np.cross(d, e2)
                a = e1 @ h
                if abs(a) < 1e-8:
                    continue
                f = 1 / a
                s = -v0
                u = f * (s @ h)
                if u < 0 or u > 1:
                    continue
                q = np.cross(s, e1)
                v = f * (d @ q)
                if v < 0 or u + v > 1:
                    continue
                t = f * (e2 @ q)
                if 1e-8 < t < best:
                    best = t
            out[y, x] = best * d[2] if np.isfinite(best) else 0.0
    return out


def test_rasteriser_equals_brute_force_ray_casting():
    H, W = 20, 28
    K = np.array([[18.0, 0, 13.5], [0, 18.0, 9.5], [0, 0, 1]])
    rng = np.random.default_rng(0)
    tris = [rng.uniform([-1.5, -1, 1.0], [1.5, 1, 4.0], size=(3, 3)) for _ in range(6)]
    tris.append(np.array([[-0.4, -0.4, 2.0], [0.5, -0.3, 2.5], [0.0, 0.6, 1.5]]))  # overlaps others
    tris.append(np.array([[-0.3, 0.1, 0.5], [0.4, 0.2, -1.0], [0.1, -0.5, 0.8]]))  # crosses the camera plane
    tris.append(np.array([[-0.3, 0.1, -0.5], [0.4, 0.2, -1.0], [0.1, -0.5, -0.8]]))  # behind the camera
    tris.append(np.array([[-9.0, -9.0, 3.0], [9.0, -9.0, 3.0], [0.0, 9.0, 3.0]]))  # larger than the image
    tris = np.stack(tris)
    vertices = torch.tensor(tris.reshape(1, -1, 3), dtype=torch.float32)
    faces = torch.arange(vertices.shape[1]).reshape(-1, 3)
    ours = rasterize_depth(vertices, faces, torch.tensor(K, dtype=torch.float32)[None], H, W)[0]
    ref = _ray_cast(tris, K, H, W)
    assert ((ours > 0).numpy() == (ref > 0)).all()
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-5, atol=1e-5)
    assert (ref > 0).mean() > 0.5


def test_planar_triangle_depth_is_perspective_correct():
    """A slanted planar triangle: the rasterised z equals the plane's z along each pixel ray."""
    H, W = 16, 24
    K = torch.tensor([[20.0, 0, 11.5], [0, 20.0, 7.5], [0, 0, 1]])
    n, c = np.array([0.3, -0.2, 1.0]), 2.0  # plane n.X = c
    def on_plane(x, y):
        return [x, y, (c - n[0] * x - n[1] * y) / n[2]]
    tri = torch.tensor([[on_plane(-3, -3), on_plane(3, -3), on_plane(0, 3)]], dtype=torch.float32)
    depth = rasterize_depth(tri, torch.tensor([[0, 1, 2]]), K[None], H, W)[0]
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    rays = torch.stack([(xs - 11.5) / 20, (ys - 7.5) / 20, torch.ones_like(xs)], -1)  # z = 1
    z = c / (rays @ torch.tensor(n))
    covered = depth > 0
    assert covered.float().mean() > 0.3
    torch.testing.assert_close(depth[covered].double(), z[covered], rtol=1e-5, atol=0)


def test_mesh_topology_of_one_masked_cell():
    H, W = 24, 32  # grid 6 x 8
    mask = torch.zeros(H, W, dtype=torch.bool)
    mask[8:12, 12:16] = True  # exactly grid cell (2, 3) under nearest downsampling
    pts = torch.randn(1, H, W, 3)
    vertices, faces = occluder_mesh(mask, pts)
    assert vertices.shape == (1, 48, 3)
    # the four 2x2 patches having grid vertex (2, 3) as a corner, two triangles each:
    # (tl, tr, bl) and (tr, br, bl)
    expected = []
    for tl in (1 * 8 + 2, 1 * 8 + 3, 2 * 8 + 2, 2 * 8 + 3):
        expected += [[tl, tl + 1, tl + 8], [tl + 1, tl + 9, tl + 8]]
    assert sorted(faces.tolist()) == sorted(expected)


def test_empty_boundary_mask_gives_zero_depth(scene):
    depth = occluder_mask(torch.zeros(88, 160, dtype=torch.bool), scene["points"], scene["target_w2cs"][:2],
                          scene["target_Ks"][:2], 88, 160)
    assert depth.shape == (2, 88, 160) and (depth == 0).all()


def test_single_camera_and_numpy_inputs(scene):
    ref = occluder_mask(scene["boundary_mask_fg"].bool(), scene["points"], scene["target_w2cs"][4:5],
                        scene["target_Ks"][4:5], 88, 160)
    out = occluder_mask(scene["boundary_mask_fg"].numpy(), scene["points"].numpy(), scene["target_w2cs"][4].numpy(),
                        scene["target_Ks"][4].numpy(), 88, 160)
    assert torch.equal(out, ref) and (ref > 0).any()


def test_apply_foreground_mask_rule():
    images = torch.full((1, 3, 1, 4), 0.5)
    masks = torch.ones(1, 1, 1, 4)
    splat = torch.tensor([[[2.0, 2.0, 2.0, 2.0]]])
    mesh = torch.tensor([[[0.0, 1.0, 1.99, 1.97]]])  # none, closer, within margin, just beyond margin
    out_images, out_masks, out_depth = apply_foreground_mask(images, masks, splat, mesh)
    assert out_masks.flatten().tolist() == [1.0, 0.0, 1.0, 0.0]
    assert (out_images[..., [1, 3]] == -1).all() and (out_images[..., [0, 2]] == 0.5).all()
    assert out_depth.flatten().tolist() == [2.0, 0.0, 2.0, 0.0]
    assert (images == 0.5).all() and (masks == 1).all()  # inputs untouched
    _, loose, _ = apply_foreground_mask(images, masks, splat, mesh, margin=0.5)
    assert loose.flatten().tolist() == [1.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(boundary_mask=torch.zeros(10, 10, dtype=torch.bool)), "does not match points_world"),
        (dict(points_world=torch.zeros(12, 16, 2)), "points_world must have shape"),
        (dict(points_world=torch.full((12, 16, 3), float("nan"))), "points_world contains NaN"),
        (dict(w2cs=torch.eye(4).expand(3, 4, 4)), "w2cs has 3 cameras but Ks has 2"),
        (dict(Ks=torch.eye(4)[None]), "Ks must have shape"),
        (dict(w2cs=torch.full((2, 4, 4), float("inf"))), "w2cs contains NaN"),
        (dict(height=0), "height must be a positive integer"),
        (dict(width=7.5), "width must be a positive integer"),
        (dict(boundary_mask="edges.png"), "boundary_mask must be"),
    ],
)
def test_occluder_mask_bad_input(change, message):
    args = dict(boundary_mask=torch.ones(12, 16, dtype=torch.bool), points_world=torch.rand(12, 16, 3) + 1,
                w2cs=torch.eye(4).expand(2, 4, 4), Ks=torch.eye(3).expand(2, 3, 3), height=12, width=16)
    args.update(change)
    with pytest.raises(InputError, match=message):
        occluder_mask(**args)


@pytest.mark.parametrize(
    "shapes, message",
    [
        (((2, 3, 4, 5), (2, 1, 4, 5), (2, 4, 5), (2, 4, 6)), "images shape"),
        (((2, 3, 4, 5), (2, 2, 4, 5), (2, 4, 5), (2, 4, 5)), "masks shape"),
        (((2, 3, 4, 5), (2, 1, 4, 5), (1, 4, 5), (2, 4, 5)), "splat_depth shape"),
    ],
)
def test_apply_foreground_mask_bad_shapes(shapes, message):
    with pytest.raises(InputError, match=message):
        apply_foreground_mask(*(torch.zeros(s) for s in shapes))


def test_edges_through_pixel_centres():
    """A fronto-parallel grid mesh whose vertices project exactly onto pixel centres, so many pixels lie
    exactly on shared edges. Covered pixels carry the plane's z; like the official float32
    Moller-Trumbore test (not watertight), a pixel exactly on a shared diagonal may be rejected by both
    triangles, but never a pixel off the diagonals, and never more than a few."""
    H, W, z = 20, 30, 2.0
    K = torch.tensor([[10.0, 0, 0], [0, 10.0, 0], [0, 0, 1]])
    xs, ys = torch.arange(3.0, 27.0, 4.0), torch.arange(2.0, 19.0, 4.0)  # pixel coordinates of the vertices
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    verts = torch.stack([gx / 10 * z, gy / 10 * z, torch.full_like(gx, z)], -1).reshape(1, -1, 3)
    h, w = gy.shape
    tl = (torch.arange(h - 1)[:, None] * w + torch.arange(w - 1)[None]).flatten()
    faces = torch.cat([torch.stack([tl, tl + 1, tl + w], 1), torch.stack([tl + 1, tl + w + 1, tl + w], 1)])
    depth = rasterize_depth(verts, faces, K[None], H, W)[0]
    y0, y1, x0, x1 = int(ys[0]), int(ys[-1]), int(xs[0]), int(xs[-1])
    covered = depth > 0
    torch.testing.assert_close(depth[covered], torch.full_like(depth[covered], z), rtol=1e-6, atol=0)
    interior = ~covered[y0 + 1:y1, x0 + 1:x1]  # the outer border lies on single edges: either way
    py, px = torch.nonzero(interior, as_tuple=True)
    dx, dy = (px + x0 + 1 - x0) % 4, (py + y0 + 1 - y0) % 4
    on_diagonal = (dx + dy) == 4  # local offsets summing to the cell size: the tr-bl diagonal
    assert on_diagonal.all() and len(py) <= 0.02 * interior.numel()
    outside = torch.ones_like(depth, dtype=torch.bool)
    outside[y0:y1 + 1, x0:x1 + 1] = False
    assert (depth[outside] == 0).all()


def test_near_plane_and_off_screen_triangles():
    """Vertices just in front of the camera project to huge coordinates; they must neither overflow
    nor produce hits off the triangle; triangles fully off screen give nothing."""
    H, W = 12, 16
    K = torch.tensor([[10.0, 0, 8], [0, 10.0, 6], [0, 0, 1]])
    tris = torch.tensor([
        [[0.013, -0.5, 1e-30], [1.03, 1.07, 2.0], [-0.97, 1.11, 2.1]],  # a vertex ~on the camera plane
        [[50.0, 50.0, 1.0], [60.0, 50.0, 1.0], [50.0, 60.0, 1.0]],  # off screen
    ])
    faces = torch.arange(6).reshape(2, 3)
    depth = rasterize_depth(tris.reshape(1, 6, 3), faces, K[None], H, W)[0]
    ref = _ray_cast(tris.double().numpy(), K.double().numpy(), H, W)
    assert ((depth > 0).numpy() == (ref > 0)).all() and (ref > 0).any()
    np.testing.assert_allclose(depth.numpy(), ref, rtol=1e-5, atol=1e-5)
