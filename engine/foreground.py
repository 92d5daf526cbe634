"""Foreground (occluder) masking for cache renders, by rasterisation instead of brute-force ray casting.

The official GEN3C option ``--foreground_masking`` hides splatted pixels that lie behind a thin
"occluder" surface built from the seed's depth-edge pixels (``boundary_mask``): without it, the
background seen through a foreground object's silhouette leaks into the warped frames.

Official meaning, reproduced here (``forward_warp_utils_pytorch.forward_warp`` + ``points_to_mesh``):

1. The world points of the cache are moved into the target camera; points and boundary mask are
   resized to (H//4, W//4) (points bilinear, ``align_corners=False``; mask nearest).
2. Every 2x2 patch of that grid with at least one masked corner gives two triangles
   (tl, tr, bl) and (tr, br, bl).
3. For each target pixel (centre at integer coordinates, no +0.5) the normalised camera ray is
   intersected with the triangles by Moller-Trumbore (eps 1e-8, both faces, hits with t > eps); the
   nearest hit distance times the ray's z gives the mesh z-depth (0 where nothing is hit).
4. A pixel is blanked (mask 0, colour -1, depth 0) where mesh depth > 0 and
   mesh depth + 0.02 < splatted depth.

Bilinear resizing is an affine combination of points, so it commutes with the rigid camera transform:
the mesh is resized once in world space and only its used vertices are moved into each camera (the
official code transforms and resizes full-resolution points per camera; the results agree to float
rounding). The official code tests every ray against every triangle. Here each triangle is tested only against
the pixels of its projected bounding box (widened by a small guard against rounding), all triangles of all cameras
batched into flat (triangle, pixel) pair lists. The per-pair test is the same Moller-Trumbore
computation, so coverage at shared edges and the depth values match the official ones up to float
rounding. Triangles that cross the camera plane have no bounded projection; they are tested against
the whole image (they are rare), and triangles entirely behind the camera are dropped (a ray with
t > 0 has z > 0 and cannot reach them).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine import validate
from engine.errors import InputError

MESH_DOWNSAMPLE = 4
# Pixels by which a projected bounding box is widened: covers the rounding difference between the
# projection and the ray test (the ray test alone decides coverage).
BOX_GUARD = 0.05
RAY_EPS = 1e-8
DEFAULT_MARGIN = 0.02
# Upper bound on (triangle, pixel) pairs tested at once; bounds peak memory (~350 bytes per pair).
DEFAULT_MAX_PAIRS = 1 << 20
# Cameras are rasterised in groups of at most this many triangles in total (bounds the [T,F,3,3] tensors).
MAX_TRIANGLES_PER_GROUP = 1 << 20


def occluder_mask(
    boundary_mask,
    points_world,
    w2cs,
    Ks,
    height: int,
    width: int,
    *,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    check_cameras: bool = True,
) -> torch.Tensor:
    """Z-depth of the occluder mesh seen from each target camera.

    Args:
        boundary_mask: ``[H,W]`` bool, the seed's depth-edge pixels (official ``boundary_mask``).
        points_world: ``[H,W,3]`` world points of the buffer being rendered.
        w2cs: ``[T,4,4]`` (or ``[4,4]``) target world-to-camera poses.
        Ks: ``[T,3,3]`` (or ``[3,3]``) target intrinsics for an image of ``height`` x ``width``.
        height, width: target image size.
        max_pairs: memory bound for the batched triangle/pixel tests.
        check_cameras: check the cameras with :func:`engine.validate.camera_batch`; Cache3D, which
            checked them, passes False with float32 tensors [T,4,4], [T,3,3].

    Returns:
        ``mesh_depth [T,height,width]`` float32 on ``points_world``'s device; 0 where no triangle
        covers the pixel. Feed it to :func:`apply_foreground_mask` with the splatted depth.
    """
    mask = _as_tensor(boundary_mask, "boundary_mask")
    points = _as_tensor(points_world, "points_world")
    if points.dim() != 3 or points.shape[-1] != 3:
        raise InputError(f"points_world must have shape [H,W,3], got {tuple(points.shape)}")
    if mask.dim() == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if tuple(mask.shape) != tuple(points.shape[:2]):
        raise InputError(
            f"boundary_mask shape {tuple(mask.shape)} does not match points_world {tuple(points.shape[:2])}"
        )
    device = points.device
    points = points.float()
    if not torch.isfinite(points).all():
        raise InputError("points_world contains NaN or infinite values")
    if check_cameras:
        w2cs, Ks = (torch.from_numpy(c) for c in validate.camera_batch(_one_or_batch(w2cs, 4),
                                                                       _one_or_batch(Ks, 3)))
    w2cs = w2cs.to(device=device, dtype=torch.float32)
    Ks = Ks.to(device=device, dtype=torch.float32)
    height, width = validate.image_size(height, width, name="occluder mask")
    max_pairs = validate.integer(max_pairs, "max_pairs", 1)

    T = w2cs.shape[0]
    # Bilinear downsampling commutes with the affine camera transform, so the mesh is built once in
    # world space and only its used vertices are moved into each camera.
    vertices, faces = occluder_mesh(mask.to(device) != 0, points)
    if faces.shape[0] == 0:
        return torch.zeros(T, height, width, device=device)
    used, faces = torch.unique(faces, return_inverse=True)
    vertices = vertices[used]
    out = torch.empty(T, height, width, device=device)
    group = max(1, MAX_TRIANGLES_PER_GROUP // faces.shape[0])
    for start in range(0, T, group):
        sl = slice(start, start + group)
        cam_vertices = torch.einsum("tij,vj->tvi", w2cs[sl, :3, :3], vertices) + w2cs[sl, None, :3, 3]
        out[sl] = rasterize_depth(cam_vertices, faces, Ks[sl], height, width, max_pairs=max_pairs)
    return out


def occluder_mesh(boundary_mask: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The official occluder mesh (points bilinear- and mask nearest-downsampled 4x).

    boundary_mask ``[H,W]`` bool, points ``[...,H,W,3]`` -> ``vertices [...,h*w,3]`` (the
    downsampled grid, row-major, h = H//4, w = W//4) and ``faces [F,3]`` long indices into it, two
    per 2x2 patch with a masked corner: (tl, tr, bl) and (tr, br, bl); empty when none.
    """
    H, W = points.shape[-3:-1]
    lead = points.shape[:-3]
    h, w = H // MESH_DOWNSAMPLE, W // MESH_DOWNSAMPLE
    device = points.device
    if h < 2 or w < 2:
        return points.new_zeros(*lead, max(h * w, 0), 3), torch.zeros(0, 3, dtype=torch.long, device=device)
    flat = points.reshape(-1, H, W, 3).permute(0, 3, 1, 2)
    grid = F.interpolate(flat, size=(h, w), mode="bilinear", align_corners=False)
    vertices = grid.permute(0, 2, 3, 1).reshape(*lead, h * w, 3)
    small = F.interpolate(boundary_mask[None, None].float(), size=(h, w), mode="nearest")[0, 0] > 0
    patches = small[:-1, :-1] | small[:-1, 1:] | small[1:, :-1] | small[1:, 1:]
    rows, cols = torch.nonzero(patches, as_tuple=True)
    tl = rows * w + cols
    tr, bl, br = tl + 1, tl + w, tl + w + 1
    faces = torch.cat([torch.stack([tl, tr, bl], 1), torch.stack([tr, br, bl], 1)], 0)
    return vertices, faces


def rasterize_depth(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    Ks: torch.Tensor,
    height: int,
    width: int,
    *,
    max_pairs: int = DEFAULT_MAX_PAIRS,
) -> torch.Tensor:
    """Nearest-hit z-depth of camera-space triangles, per camera, 0 where nothing is hit.

    vertices ``[T,V,3]`` (camera space of camera t), faces ``[F,3]``, Ks ``[T,3,3]`` ->
    ``[T,height,width]``. Equal to casting the normalised ray of every pixel against every triangle
    with Moller-Trumbore (two-sided, eps 1e-8) and converting the nearest distance to z.
    """
    T = vertices.shape[0]
    device = vertices.device
    n_faces = faces.shape[0]
    best = torch.full((T * height * width,), float("inf"), device=device)
    if n_faces == 0 or T == 0:
        return torch.zeros(T, height, width, device=device)
    K_inv = torch.linalg.inv(Ks.float())

    tri = vertices[:, faces]  # [T,F,3 corners,3]
    z = tri[..., 2]
    in_front = (z > 0).all(-1)
    crossing = (z > 0).any(-1) & ~in_front
    proj = torch.einsum("tij,tfcj->tfci", Ks.float(), tri)
    uv = proj[..., :2] / proj[..., 2:3].where(in_front[..., None, None], torch.ones_like(proj[..., 2:3]))
    lo = torch.floor(uv.amin(2) - BOX_GUARD)
    hi = torch.ceil(uv.amax(2) + BOX_GUARD)
    limit = torch.tensor([width - 1, height - 1], device=device, dtype=lo.dtype)
    # Crossing triangles: the whole image; in front: the guarded bounding box.
    lo = torch.where(crossing[..., None], torch.zeros_like(lo), lo)
    hi = torch.where(crossing[..., None], limit.expand_as(hi), hi)
    # Clip to the image (boxes fully outside become empty) before the integer conversion, so that
    # huge projections of near-plane vertices cannot overflow.
    lo = torch.minimum(torch.maximum(lo, torch.zeros_like(lo)), limit + 1)
    hi = torch.maximum(torch.minimum(hi, limit), torch.full_like(hi, -1))
    lo = torch.nan_to_num(lo, nan=0.0).long()
    hi = torch.nan_to_num(hi, nan=-1.0).long()
    span = (hi - lo + 1).clamp(min=0)
    active = (in_front | crossing) & (span > 0).all(-1)

    cam_idx, face_idx = torch.nonzero(active, as_tuple=True)
    if cam_idx.numel() == 0:
        return torch.zeros(T, height, width, device=device)
    box_lo = lo[cam_idx, face_idx]
    box_w = span[cam_idx, face_idx, 0]
    counts = box_w * span[cam_idx, face_idx, 1]
    ends = torch.cumsum(counts, 0)
    starts = ends - counts

    # Split the triangle list so that each batch holds at most max_pairs pairs (a single larger
    # triangle gets its own batch).
    ends_cpu = ends.cpu()
    n_tri = cam_idx.numel()
    first = 0
    while first < n_tri:
        base = int(ends_cpu[first - 1]) if first else 0
        last = int(torch.searchsorted(ends_cpu, base + max_pairs, right=True))
        last = max(last, first + 1)
        sel = slice(first, last)
        _test_pairs(
            best, tri[cam_idx[sel], face_idx[sel]], cam_idx[sel], K_inv, box_lo[sel], box_w[sel],
            counts[sel], starts[sel] - base, height, width,
        )
        first = last
    best = torch.where(torch.isinf(best), torch.zeros_like(best), best)
    return best.view(T, height, width)


def _test_pairs(best, tri, cam, K_inv, box_lo, box_w, counts, starts, height, width):
    """Moller-Trumbore for every (triangle, pixel-in-its-box) pair; scatter-min the hit z into best."""
    owner = torch.repeat_interleave(torch.arange(tri.shape[0], device=tri.device), counts)
    local = torch.arange(owner.numel(), device=tri.device) - starts[owner]
    width_o = box_w[owner]
    px = box_lo[owner, 0] + local % width_o
    py = box_lo[owner, 1] + local // width_o
    cam_o = cam[owner]
    pix = torch.stack([px, py, torch.ones_like(px)], -1).float()
    ray = torch.einsum("pij,pj->pi", K_inv[cam_o], pix)
    norm = ray.norm(dim=-1, keepdim=True)
    ray = ray / torch.where(norm == 0, torch.ones_like(norm), norm)

    v0, v1, v2 = tri[owner].unbind(1)
    e1, e2 = v1 - v0, v2 - v0
    h = torch.cross(ray, e2, dim=-1)
    a = (e1 * h).sum(-1)
    ok = a.abs() >= RAY_EPS
    f = 1.0 / torch.where(ok, a, torch.ones_like(a))
    s = -v0  # rays start at the camera centre
    u = f * (s * h).sum(-1)
    q = torch.cross(s, e1, dim=-1)
    v = f * (ray * q).sum(-1)
    t = f * (e2 * q).sum(-1)
    hit = ok & (u >= 0) & (u <= 1) & (v >= 0) & (u + v <= 1) & (t > RAY_EPS)
    depth = t * ray[:, 2]
    flat = (cam_o * height + py) * width + px
    best.scatter_reduce_(0, flat[hit], depth[hit], reduce="amin")


def apply_foreground_mask(images, masks, splat_depth, mesh_depth, margin: float = DEFAULT_MARGIN):
    """Blank the splatted pixels that lie behind the occluder mesh.

    images ``[...,3,H,W]`` in [-1,1], masks ``[...,1,H,W]``, splat_depth and mesh_depth ``[...,H,W]``
    (same leading dims). A pixel is blanked where ``mesh_depth > 0`` and
    ``mesh_depth + margin < splat_depth``: colour -1, mask 0, depth 0 (the official values).
    Returns new ``(images, masks, depth)``; the inputs are not modified.
    """
    for name, value in (("images", images), ("masks", masks), ("splat_depth", splat_depth), ("mesh_depth", mesh_depth)):
        if not isinstance(value, torch.Tensor):
            raise InputError(f"{name} must be a torch tensor, got {type(value).__name__}")
    lead = mesh_depth.shape
    if images.shape[:-3] + images.shape[-2:] != lead or images.shape[-3] < 1:
        raise InputError(f"images shape {tuple(images.shape)} does not match mesh_depth {tuple(lead)}")
    if masks.shape[:-3] + masks.shape[-2:] != lead or masks.shape[-3] != 1:
        raise InputError(f"masks shape {tuple(masks.shape)} does not match mesh_depth {tuple(lead)}")
    if splat_depth.shape != lead:
        raise InputError(f"splat_depth shape {tuple(splat_depth.shape)} does not match mesh_depth {tuple(lead)}")
    if not np.isfinite(margin):
        raise InputError(f"margin must be finite, got {margin!r}")
    closer = (mesh_depth > 0) & (mesh_depth + margin < splat_depth)
    keep = ~closer
    images = torch.where(keep.unsqueeze(-3), images, torch.full_like(images, -1.0))
    masks = masks * keep.unsqueeze(-3).to(masks.dtype)
    depth = torch.where(keep, splat_depth, torch.zeros_like(splat_depth))
    return images, masks, depth


def _as_tensor(value, name: str) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise InputError(f"{name} must be a torch tensor or numpy array, got {type(value).__name__}")
    return value


def _one_or_batch(value, size: int):
    """A single [size,size] matrix as a batch of one (the documented convenience); anything else as given."""
    if isinstance(value, (torch.Tensor, np.ndarray)) and tuple(value.shape) == (size, size):
        return value[None]
    return value
