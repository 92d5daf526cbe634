"""A slow, straightforward official-style splat: the semantic reference for the fast kernels.

Written like the official ``forward_warp_utils_pytorch.bilinear_splatting`` as ``render_cache`` calls
it: items in chunks of ``norm_group`` with the log-depth maximum over the chunk, matrix products for
the projection, one ``index_put_(accumulate=True)`` per bilinear tap. It shares no code with
``engine.warp``, so a kernel change that breaks the official semantics shows up against it.
It assumes well-formed input (``engine.warp.splat`` does the checking).
"""
from __future__ import annotations

import torch

DEPTH_WEIGHT_SCALE = 50.0  # official soft z-weight: exp(50 log1p(z) / max log1p(z))
NAN_WEIGHT = 1000.0  # official: NaN weight sums become 1000


def official_max_exponent(dtype: torch.dtype) -> float:
    return 10.0 if dtype == torch.float16 else 80.0


def _as_sets(points, colors, valid, batch, source_index):
    """[P,...] -> [1,P,...]; default item -> set map as engine.warp.splat documents it."""
    points = points if points.dim() == 3 else points[None]
    colors = colors if colors.dim() == 3 else colors[None]
    S, P = points.shape[:2]
    if valid is None:
        valid = torch.ones(S, P, dtype=torch.bool, device=points.device)
    valid = valid if valid.dim() == 2 else valid[None]
    if source_index is None:
        source_index = torch.zeros(batch, dtype=torch.long) if S == 1 else torch.arange(batch)
    return points, colors, valid, torch.as_tensor(source_index, dtype=torch.long)


def splat_reference(points, colors, valid, w2cs, Ks, height, width, *, norm_group=2,
                    render_depth=False, source_index=None):
    """Same arguments and outputs as :func:`engine.warp.splat`."""
    B = len(w2cs)
    points, colors, valid, src = _as_sets(points, colors, valid, B, source_index)
    dtype, device = points.dtype, points.device
    H, W = height, width
    C = colors.shape[-1]
    outs = []
    for s in range(0, B, norm_group):
        idx = src[s:s + norm_group].to(device)
        b = len(idx)
        pts, col, msk = points[idx], colors[idx].to(dtype), valid[idx].to(device).to(dtype)
        homo = torch.cat([pts, torch.ones_like(pts[..., :1])], -1).unsqueeze(-1)  # b,P,4,1
        cam = torch.matmul(w2cs[s:s + b, None].to(dtype), homo)[:, :, :3]
        proj = torch.matmul(Ks[s:s + b, None].to(dtype), cam)[..., 0]  # b,P,3
        z = proj[..., 2]
        msk = msk * (z > 0)
        pos = proj[..., :2] / (proj[..., 2:3] + 1e-7) + 1
        fl, ce = torch.floor(pos).long(), torch.ceil(pos).long()
        lim = torch.tensor([W + 1, H + 1], device=device)
        pos = torch.minimum(pos.clamp(min=0), lim.to(dtype))
        fl = torch.minimum(fl.clamp(min=0), lim)
        ce = torch.minimum(ce.clamp(min=0), lim)
        dx0, dy0 = pos[..., 0] - fl[..., 0], pos[..., 1] - fl[..., 1]
        dx1, dy1 = ce[..., 0] - pos[..., 0], ce[..., 1] - pos[..., 1]
        logz = torch.log1p(z.clamp(min=0))
        dw = torch.exp((logz / (logz.max() + 1e-7) * DEPTH_WEIGHT_SCALE).clamp(
            max=official_max_exponent(dtype))) + 1e-7
        taps = [
            ((1 - dy0) * (1 - dx0), fl[..., 1], fl[..., 0]),
            ((1 - dy1) * (1 - dx0), ce[..., 1], fl[..., 0]),
            ((1 - dy0) * (1 - dx1), fl[..., 1], ce[..., 0]),
            ((1 - dy1) * (1 - dx1), ce[..., 1], ce[..., 0]),
        ]
        vals = torch.cat([col, z[..., None]], -1) if render_depth else col
        canvas = torch.zeros(b, H + 2, W + 2, vals.shape[-1], dtype=dtype, device=device)
        wsum = torch.zeros(b, H + 2, W + 2, 1, dtype=dtype, device=device)
        bi = torch.arange(b, device=device)[:, None]
        for prox, yy, xx in taps:
            w = (prox * msk / dw)[..., None]
            canvas.index_put_((bi, yy, xx), vals * w, accumulate=True)
            wsum.index_put_((bi, yy, xx), w, accumulate=True)
        outs.append(torch.cat([canvas[:, 1:-1, 1:-1], wsum[:, 1:-1, 1:-1]], -1))
    out = torch.cat(outs) if outs else torch.zeros(0, H, W, C + 1 + int(render_depth), dtype=dtype)
    return _normalise(out, C, render_depth)


def _normalise(out, C, render_depth):
    """Canvas sums [B,H,W,F] -> images (sum(w c) / sum(w), holes -1, clamped), masks, depth (holes 0)."""
    wsum = torch.nan_to_num(out[..., -1:], nan=NAN_WEIGHT)
    covered = wsum > 0
    safe = torch.where(covered, wsum, torch.ones_like(wsum))
    img = torch.where(covered, out[..., :C] / safe, torch.full_like(out[..., :C], -1.0)).clamp(-1, 1)
    result = (img.permute(0, 3, 1, 2).contiguous(), covered.permute(0, 3, 1, 2).to(out.dtype))
    if render_depth:
        depth = torch.where(covered, out[..., C:C + 1] / safe, torch.zeros_like(wsum))
        result = result + (depth.permute(0, 3, 1, 2).contiguous(),)
    return result
