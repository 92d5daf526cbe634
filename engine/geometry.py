"""Small geometric helpers shared by the scene, the cache and the warper.

Conventions (see README): OpenCV cameras, world-to-camera 4x4 poses, K in pixels, pixel centres
at integer coordinates (no +0.5 offset), z-depth.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.model_defaults import FILTER_THRESHOLD


def pixel_grid(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Homogeneous pixel coordinates (x, y, 1) at integer centres, shape [H, W, 3]."""
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype),
        torch.arange(width, device=device, dtype=dtype),
        indexing="ij",
    )
    return torch.stack([xs, ys, torch.ones_like(xs)], dim=-1)


def intrinsics_inverse(K: torch.Tensor) -> torch.Tensor:
    """Inverse of intrinsics ``[..., 3, 3]`` with the rounding of LAPACK's triangular inverse.

    An upper-triangular K (every pinhole K) is inverted as LAPACK ``trtri`` does (reciprocal
    diagonal, then ``-(sum of u_ik x_kj) * x_ii`` column by column), which is what the reference
    fixtures were computed with; torch's general inverse differs from it by one ulp in the
    principal-point terms (e.g. -cx/fx rounded once versus -(cx * (1/fx))). Other matrices use
    ``torch.linalg.inv``.
    """
    upper = bool((K[..., 1, 0] == 0).all() and (K[..., 2, 0] == 0).all() and (K[..., 2, 1] == 0).all())
    if not upper:
        return torch.linalg.inv(K)
    d0, d1, d2 = 1 / K[..., 0, 0], 1 / K[..., 1, 1], 1 / K[..., 2, 2]
    x01 = (d0 * K[..., 0, 1]) * -d1
    x02 = (K[..., 0, 2] * d0 + K[..., 1, 2] * x01) * -d2
    x12 = (K[..., 1, 2] * d1) * -d2
    zero = torch.zeros_like(d0)
    rows = [torch.stack([d0, x01, x02], -1), torch.stack([zero, d1, x12], -1), torch.stack([zero, zero, d2], -1)]
    return torch.stack(rows, -2)


def unproject_depth(depth: torch.Tensor, K: torch.Tensor, w2c: torch.Tensor) -> torch.Tensor:
    """World points of a z-depth map.

    depth [..., H, W] (a leading 1 channel is allowed), K [..., 3, 3], w2c [..., 4, 4] -> points [..., H, W, 3].
    Pixels with depth <= 0 map to the world origin (0, 0, 0), as the official cache does.

    The arithmetic follows the official ``unproject_points`` operation by operation (float32
    inverses, then sums of products in index order without fused multiply-add), so the points are
    bit-identical: re-projecting them into the seed camera must land exactly on integer pixels,
    where the bilinear splat puts all four taps on one pixel.
    """
    if depth.dim() >= 3 and depth.shape[-3] == 1:
        depth = depth.squeeze(-3)
    H, W = depth.shape[-2:]
    dtype = depth.dtype
    grid = pixel_grid(H, W, device=depth.device, dtype=dtype)
    x, y = grid[..., 0], grid[..., 1]
    kinv = intrinsics_inverse(K.to(device=depth.device, dtype=torch.float32)).to(dtype)[..., None, None]
    c2w = torch.linalg.inv(w2c.to(device=depth.device, dtype=torch.float32)).to(dtype)[..., None, None]
    ray = [(kinv[..., i, 0, :, :] * x + kinv[..., i, 1, :, :] * y) + kinv[..., i, 2, :, :] for i in range(3)]
    cam = [depth * r for r in ray]
    world = [((c2w[..., i, 0, :, :] * cam[0] + c2w[..., i, 1, :, :] * cam[1]) + c2w[..., i, 2, :, :] * cam[2])
             + c2w[..., i, 3, :, :] for i in range(3)]
    world = torch.stack(world, dim=-1)
    return torch.where((depth > 0).unsqueeze(-1), world, torch.zeros_like(world))


def reliable_depth_mask(depth: torch.Tensor, window: int = 5, threshold: float = FILTER_THRESHOLD) -> torch.Tensor:
    """The official depth-discontinuity filter.

    ratio = (max - min) / (mean + 1e-6) over a window x window neighbourhood; keep where
    ratio < threshold and depth > 0. Max/min use -inf padding (border windows truncated), the mean
    is zero-padded average pooling that counts the padding (official quirk: border pixels get a
    diluted mean). depth [..., H, W] -> bool mask of the same shape.
    """
    shape = depth.shape
    d = depth.reshape(-1, 1, *shape[-2:]).float()
    pad = window // 2
    dmax = F.max_pool2d(d, window, stride=1, padding=pad)
    dmin = -F.max_pool2d(-d, window, stride=1, padding=pad)
    dmean = F.avg_pool2d(d, window, stride=1, padding=pad, count_include_pad=True)
    ratio = (dmax - dmin) / (dmean + 1e-6)
    mask = (ratio < threshold) & (d > 0)
    return mask.reshape(shape)
