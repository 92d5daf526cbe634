"""Small geometric helpers shared by the scene, the cache and the warper.

Conventions (see README): OpenCV cameras, world-to-camera 4x4 poses, K in pixels, pixel centres
at integer coordinates (no +0.5 offset), z-depth.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def pixel_grid(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Homogeneous pixel coordinates (x, y, 1) at integer centres, shape [H, W, 3]."""
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype),
        torch.arange(width, device=device, dtype=dtype),
        indexing="ij",
    )
    return torch.stack([xs, ys, torch.ones_like(xs)], dim=-1)


def unproject_depth(depth: torch.Tensor, K: torch.Tensor, w2c: torch.Tensor) -> torch.Tensor:
    """World points of a z-depth map.

    depth [..., H, W] (a leading 1 channel is allowed), K [..., 3, 3], w2c [..., 4, 4] -> points [..., H, W, 3].
    Pixels with depth <= 0 map to the world origin (0, 0, 0), as the official cache does.
    """
    if depth.dim() >= 3 and depth.shape[-3] == 1:
        depth = depth.squeeze(-3)
    H, W = depth.shape[-2:]
    grid = pixel_grid(H, W, device=depth.device, dtype=depth.dtype)
    rays = torch.einsum("...ij,hwj->...hwi", torch.linalg.inv(K.to(depth.dtype)), grid)
    cam = rays * depth.unsqueeze(-1)
    c2w = torch.linalg.inv(w2c.to(depth.dtype))
    world = torch.einsum("...ij,...hwj->...hwi", c2w[..., :3, :3], cam) + c2w[..., None, None, :3, 3]
    return torch.where((depth > 0).unsqueeze(-1), world, torch.zeros_like(world))


def reliable_depth_mask(depth: torch.Tensor, window: int = 5, threshold: float = 0.05) -> torch.Tensor:
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
