"""The scene as a coloured surface for the 3D view: the depth map as a grid mesh with vertex colours.

One vertex per `stride` x `stride` pixel block (the block centre's 3D point, the block's mean colour);
two triangles per grid square, dropped where a vertex has no reliable depth or where the square spans a
depth edge (the relative depth spread of its corners exceeds EDGE_SPREAD_PER_PIXEL per pixel of grid
spacing), so foreground objects do not smear into the background behind them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EDGE_SPREAD_PER_PIXEL = 0.012  # 8 px grid spacing: corners may differ by 9.6 % of the nearest depth
MAX_EDGE_SPREAD = 0.25


@dataclass(frozen=True)
class SceneMesh:
    vertices: np.ndarray  # float32 [V, 3] world points
    colours: np.ndarray  # uint8 [V, 3]
    faces: np.ndarray  # int32 [F, 3] vertex indices
    stride: int  # pixels between neighbouring vertices


def grid_stride(height: int, width: int, vertex_budget: int) -> int:
    """The smallest block size whose grid has at most `vertex_budget` vertices."""
    if vertex_budget <= 0:
        raise ValueError(f"vertex budget must be positive, got {vertex_budget}")
    stride = max(1, math.floor(math.sqrt(height * width / vertex_budget)) - 2)  # whole blocks only: may fit below
    while (height // stride) * (width // stride) > vertex_budget:
        stride += 1
    return stride


def edge_tolerance(stride: int) -> float:
    """Largest relative depth spread (max - min) / min of a triangle's corners that is not an edge."""
    return min(EDGE_SPREAD_PER_PIXEL * stride, MAX_EDGE_SPREAD)


def depth_mesh(points: np.ndarray, depth: np.ndarray, image: np.ndarray, usable: np.ndarray,
               vertex_budget: int) -> SceneMesh:
    """A grid mesh of a depth map.

    points [H, W, 3] world points of every pixel, depth [H, W] z-depth, image uint8 [H, W, 3], usable [H, W]
    bool (pixels whose depth may carry a vertex). Unused vertices are removed.
    """
    points = np.asarray(points, dtype=np.float64)
    depth = np.asarray(depth, dtype=np.float64)
    image = np.asarray(image)
    usable = np.asarray(usable, dtype=bool)
    H, W = depth.shape
    s = grid_stride(H, W, vertex_budget)
    nr, nc = H // s, W // s
    rows = np.arange(nr) * s + s // 2
    cols = np.arange(nc) * s + s // 2
    verts = points[rows][:, cols].reshape(-1, 3)
    d = depth[rows][:, cols].reshape(-1)
    ok = usable[rows][:, cols].reshape(-1) & np.isfinite(d) & (d > 0) & np.isfinite(verts).all(axis=1)
    blocks = image[:nr * s, :nc * s].reshape(nr, s, nc, s, 3).astype(np.float64)
    colours = np.rint(blocks.mean(axis=(1, 3))).reshape(-1, 3).astype(np.uint8)

    idx = np.arange(nr * nc).reshape(nr, nc)
    a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()
    c, e = idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    # winding: both triangles turn the same way when seen from the camera
    faces = np.concatenate([np.stack([a, c, b], axis=1), np.stack([b, c, e], axis=1)])
    corner = d[faces]
    spread = (corner.max(axis=1) - corner.min(axis=1)) / np.maximum(corner.min(axis=1), 1e-12)
    keep = ok[faces].all(axis=1) & (spread <= edge_tolerance(s))
    faces = faces[keep]

    used = np.zeros(len(verts), dtype=bool)
    used[faces.ravel()] = True
    remap = np.cumsum(used) - 1
    return SceneMesh(vertices=verts[used].astype(np.float32), colours=colours[used],
                     faces=remap[faces].astype(np.int32), stride=s)


def scene_mesh(scene, vertex_budget: int) -> SceneMesh:
    """The mesh of an `engine.scene.Scene` (its valid and reliable depth)."""
    from engine.images import to_uint8

    usable = (scene.valid & scene.reliable).cpu().numpy()
    return depth_mesh(scene.points.cpu().numpy(), scene.depth[0].cpu().numpy(), to_uint8(scene.image), usable,
                      vertex_budget)
