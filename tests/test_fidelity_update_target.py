"""The cache update aligns a new depth to the newest buffer's render (official `update_cache`: buffer 0 of the
single-frame depth render at the new camera), not to the seed's.

The two-chunk official run cannot tell these apart (its cache holds only the seed at the update), so the ground
truth here is analytic: two tilted planes, the seed on one and the newest buffer on the other, and a new depth
that is exactly half of the newest plane's depth. A rigid inverse-depth fit to the newest buffer recovers that
plane; a fit to the seed's plane would not.
"""
from __future__ import annotations

import numpy as np
import torch

from engine.cache3d import Cache3D

H, W = 48, 64
K = torch.tensor([[60.0, 0.0, 32.0], [0.0, 60.0, 24.0], [0.0, 0.0, 1.0]])


def _plane_depth(normal, offset, centre) -> torch.Tensor:
    """z-depth [1,H,W] of the plane normal . p = offset seen from a camera at `centre` with identity rotation."""
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    rays = torch.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], torch.ones_like(u)], -1)
    n, c = torch.tensor(normal, dtype=torch.float64), torch.tensor(centre, dtype=torch.float64)
    return ((offset - n @ c) / (rays @ n))[None].float()


def _w2c(centre) -> torch.Tensor:
    w2c = torch.eye(4)
    w2c[:3, 3] = -torch.tensor(centre)
    return w2c


def test_update_aligns_to_the_newest_buffer():
    g = torch.Generator().manual_seed(3)
    seed_plane, newest_plane = ((0.0, -0.2, 1.0), 2.0), ((-0.5, 0.0, 1.0), 4.0)
    cache = Cache3D(torch.rand(3, H, W, generator=g) * 2 - 1, _plane_depth(*seed_plane, (0, 0, 0)), torch.eye(4), K)
    c1, c2 = (0.1, 0.0, 0.0), (0.05, 0.02, 0.0)
    cache.update(torch.rand(3, H, W, generator=g) * 2 - 1, _plane_depth(*newest_plane, c1), _w2c(c1), K,
                 alignment=None)
    truth = _plane_depth(*newest_plane, c2)[0]
    cache.update(torch.rand(3, H, W, generator=g) * 2 - 1, 0.5 * truth[None], _w2c(c2), K, alignment="rigid")
    assert cache.num_buffers == 2
    z = cache.points(0)[..., 2] - c2[2]  # camera-space z of the new buffer (identity rotation)
    rel = ((z - truth).abs() / truth).numpy()
    assert np.median(rel) <= 1e-3 and rel.mean() <= 1e-2
