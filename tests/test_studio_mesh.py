"""The 3D view's scene surface (studio.mesh) against synthetic depth maps with known geometry."""
from __future__ import annotations

import numpy as np
import pytest

from studio.mesh import depth_mesh, grid_stride


def _scene(depth: np.ndarray, f: float = 100.0):
    """World points of a depth map for a camera at the origin (pixel centres at integer coordinates)."""
    H, W = depth.shape
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    x = (u - W / 2) / f * depth
    y = (v - H / 2) / f * depth
    pts = np.stack([x, y, depth], axis=-1)
    img = np.zeros((H, W, 3), dtype=np.uint8)
    img[..., 0] = (u * 255 / W).astype(np.uint8)
    return pts, img


def test_a_step_in_depth_is_not_bridged_and_a_slanted_plane_is_whole():
    H, W = 120, 200
    depth = np.tile(np.linspace(2.0, 3.0, W), (H, 1))  # a plane slanted left to right
    depth[:, 100:] = 6.0  # a wall far behind the right half
    pts, img = _scene(depth)
    mesh = depth_mesh(pts, depth, img, np.ones((H, W), bool), vertex_budget=2_000)
    z = mesh.vertices[:, 2].astype(np.float64)[mesh.faces]
    near, far = z < 4, z > 5
    assert not (near.any(axis=1) & far.any(axis=1)).any(), "a triangle joins the plane and the wall"
    # every grid square of each side is there: 2 triangles per square on the slanted plane and on the wall
    s = mesh.stride
    cols = [c for c in np.arange(W // s) * s + s // 2]
    left = sum(c < 100 for c in cols)
    rows = H // s
    assert near.all(axis=1).sum() == 2 * (rows - 1) * (left - 1)
    assert far.all(axis=1).sum() == 2 * (rows - 1) * (len(cols) - left - 1)


def test_vertices_are_the_depth_maps_points_with_block_colours():
    H, W = 64, 96
    depth = np.full((H, W), 3.0)
    pts, img = _scene(depth)
    mesh = depth_mesh(pts, depth, img, np.ones((H, W), bool), vertex_budget=400)
    s = mesh.stride
    assert (H // s) * (W // s) <= 400 and len(mesh.vertices) == (H // s) * (W // s)
    # vertex (i, j) is the point of pixel (i s + s/2, j s + s/2); its colour the block's mean
    j = 3
    v = mesh.vertices[j]
    np.testing.assert_allclose(v, pts[s // 2, j * s + s // 2], atol=1e-5)
    np.testing.assert_allclose(mesh.colours[j, 0], img[:s, j * s:(j + 1) * s, 0].mean(), atol=0.51)


def test_pixels_without_depth_carry_no_triangles():
    H, W = 60, 80
    depth = np.full((H, W), 2.0)
    usable = np.ones((H, W), bool)
    usable[:, :40] = False
    pts, img = _scene(depth)
    mesh = depth_mesh(pts, depth, img, usable, vertex_budget=1_000)
    assert (mesh.vertices[:, 0] > pts[0, 39, 0]).all()  # only the right half is meshed
    assert mesh.faces.max() < len(mesh.vertices) and mesh.faces.min() >= 0


@pytest.mark.parametrize("budget", [500, 6_000, 60_000])
def test_grid_stride_meets_the_budget(budget):
    s = grid_stride(704, 1280, budget)
    assert (704 // s) * (1280 // s) <= budget < (704 // max(s - 1, 1)) * (1280 // max(s - 1, 1)) or s == 1
