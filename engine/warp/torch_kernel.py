"""The torch splat (GPU, or CPU without numba): the four bilinear taps fused into one ``index_add_``.

Each point adds its 4 corner weights x F values (colour channels, optional depth, weight) into one
canvas row keyed by its top-left tap; the three other corners are shifted back on the canvas
afterwards. Items are processed in chunks of whole normalisation groups so memory stays bounded.
The projection follows the official order of float32 operations, which keeps exact-integer
landings (frame 0 = the seed camera) exact. The z weights (:func:`depth_weights`) are shared with
the numba kernel.
"""
from __future__ import annotations

import torch

DEPTH_WEIGHT_SCALE = 50.0
NAN_WEIGHT = 1000.0
# bytes of scratch memory per (item, point) in the fused path, used to size item chunks
_BYTES_PER_POINT_ITEM = 256
_DEFAULT_BUDGET = {"cpu": 64 << 20, "cuda": 4 << 30}


def max_exponent(dtype: torch.dtype) -> float:
    """The official cap on the z-weight exponent for a dtype."""
    if dtype == torch.float16:
        return 10.0
    if dtype == torch.float64:
        return 700.0
    return 80.0


def items_per_chunk(num_points: int, device: torch.device) -> int:
    """Items per batch of work that keep the fused path's scratch memory within its budget."""
    budget = _DEFAULT_BUDGET["cuda" if device.type == "cuda" else "cpu"]
    return max(1, budget // max(1, num_points * _BYTES_PER_POINT_ITEM))


def group_max(per_item: torch.Tensor, group: int) -> torch.Tensor:
    """Maximum over consecutive groups of ``group`` items, broadcast back to the items."""
    n = per_item.shape[0]
    pad = (-n) % group
    padded = torch.cat([per_item, per_item.new_full((pad,), float("-inf"))]) if pad else per_item
    return padded.view(-1, group).amax(1).repeat_interleave(group)[:n]


def depth_weights(z: torch.Tensor, norm_group: int, cap: float) -> torch.Tensor:
    """Official z weight divisor ``exp(min(50 log1p(z+) / (M + 1e-7), cap)) + 1e-7`` of z [b,P],
    ``M`` the maximum of ``log1p(z+)`` over each normalisation group (all points counted)."""
    logz = torch.log1p(z.clamp(min=0))
    M = group_max(logz.amax(1), norm_group)
    return (logz / (M[:, None] + 1e-7)).mul_(DEPTH_WEIGHT_SCALE).clamp_(max=cap).exp_().add_(1e-7)


def standard_last_row(Ks: torch.Tensor) -> bool:
    """True when every K has the last row (0, 0, 1) (then the projected z is the camera z)."""
    return bool((Ks[:, 2] == Ks.new_tensor([0.0, 0.0, 1.0])).all())


def _project(points: torch.Tensor, w2cs: torch.Tensor, Ks: torch.Tensor, standard_k: bool):
    """Points [b|1,P,3] into cameras [b] -> (u, v, z) each [b,P].

    Written as separate elementwise multiplies and adds in the order of the official small-matrix
    product (sum over k of a_k * b_k from k = 0, no fused multiply-add), so that projected
    coordinates are bit-identical: a point landing exactly on an integer gets all four taps on one
    pixel, so one rounding step of difference would change the image, not just its last bit.
    """
    X, Y, Z = points[..., 0], points[..., 1], points[..., 2]
    w = w2cs.to(points.dtype)[:, :3, :, None]  # [b,3,4,1]
    cam = [((X * w[:, i, 0] + Y * w[:, i, 1]) + Z * w[:, i, 2]) + w[:, i, 3] for i in range(3)]
    k = Ks.to(points.dtype)[:, :, :, None]  # [b,3,3,1]
    pix = [(cam[0] * k[:, i, 0] + cam[1] * k[:, i, 1]) + cam[2] * k[:, i, 2] for i in range(2)]
    if standard_k:
        z = cam[2]  # (0*x + 0*y) + 1*z is exactly z
    else:
        z = (cam[0] * k[:, 2, 0] + cam[1] * k[:, 2, 1]) + cam[2] * k[:, 2, 2]
    denom = z + 1e-7
    return pix[0] / denom, pix[1] / denom, z


def _axis_taps(coord: torch.Tensor, size: int):
    """Clamped floor index and the two official bilinear weights along one axis.

    Returns (index of the low tap, weight of the low tap, weight of the high tap). Clamping the
    offset coordinate before floor/ceil equals the official clamping of each (the bounds are
    integers). When the two taps coincide (exact integer or clamped) both weights are 1 and are
    merged into the low tap, so the high tap is always ``index + 1``.
    """
    off = (coord + 1).nan_to_num_(nan=-1.0).clamp_(0, size + 1)  # NaN (overflow) -> border ring
    lo = torch.floor(off)
    hi = torch.ceil(off)
    w_lo = (off - lo).neg_().add_(1)
    w_hi = (hi - off).neg_().add_(1)
    same = hi == lo
    return lo, w_lo.masked_fill_(same, 2.0), w_hi.masked_fill_(same, 0.0)


def _splat_chunk(points, colors, valid, src, shared, w2cs, Ks, standard_k, H, W, cap, render_depth,
                 norm_group):
    """Fused splat of one chunk of whole normalisation groups -> canvas sums [b,H,W,F].

    F = C colour channels (+ depth) + the weight sum.
    """
    b = len(w2cs)
    pts = points[src[:1]] if shared else points[src]
    u, v, z = _project(pts, w2cs, Ks, standard_k)
    ok = (valid[src[:1]] if shared else valid[src]) & (z > 0)
    dw = depth_weights(z, norm_group, cap)
    weight = ok.to(dw.dtype).div_(dw)

    x0, ax0, ax1 = _axis_taps(u, W)
    y0, ay0, ay1 = _axis_taps(v, H)
    Wc = W + 2
    base = (y0 * Wc).add_(x0).long()
    base += (torch.arange(b, device=base.device) * ((H + 2) * Wc))[:, None]

    cols = colors[src[:1]] if shared else colors[src]
    C = cols.shape[-1]
    F_ = C + 1 + int(render_depth)
    ay0 *= weight
    ay1 *= weight
    corners = torch.stack([ay0 * ax0, ay0 * ax1, ay1 * ax0, ay1 * ax1], dim=-1)  # [b,P,4]
    vals = torch.empty(b, corners.shape[1], 4, F_, dtype=corners.dtype, device=corners.device)
    torch.mul(corners[..., None], cols[:, :, None, :], out=vals[..., :C])
    if render_depth:
        torch.mul(corners, z[..., None], out=vals[..., C])
    vals[..., -1] = corners
    acc = torch.zeros(b * (H + 2) * Wc, 4 * F_, dtype=vals.dtype, device=vals.device)
    acc.index_add_(0, base.reshape(-1), vals.view(-1, 4 * F_))
    acc = acc.view(b, H + 2, Wc, 4, F_)
    # corner k of the point keyed at (y, x) lands at (y + dy_k, x + dx_k)
    out = acc[:, 1:H + 1, 1:W + 1, 0] + acc[:, 1:H + 1, 0:W, 1]
    out += acc[:, 0:H, 1:W + 1, 2]
    out += acc[:, 0:H, 0:W, 3]
    return out


def _finish(out: torch.Tensor, C: int, render_depth: bool):
    """Canvas sums [b,H,W,F] -> images [b,C,H,W], masks [b,1,H,W], depth [b,1,H,W] | None."""
    wsum = torch.nan_to_num(out[..., -1], nan=NAN_WEIGHT)
    mask = wsum > 0
    safe = torch.where(mask, wsum, torch.ones_like(wsum))[..., None]
    img = torch.where(mask[..., None], out[..., :C] / safe, torch.full_like(out[..., :C], -1.0))
    img = img.clamp_(-1, 1).permute(0, 3, 1, 2).contiguous()
    depth = None
    if render_depth:
        depth = torch.where(mask, out[..., C] / safe[..., 0], torch.zeros_like(wsum)).unsqueeze(1)
    return img, mask.unsqueeze(1).to(img.dtype), depth


def splat_torch(points, colors, valid, src, w2cs, Ks, H, W, norm_group, render_depth, chunk, cap):
    """Checked, device- and dtype-matched inputs (``points [S,P,3]``, ``colors [S,P,C]``, ``valid``
    bool ``[S,P]``, ``src [B]`` on the CPU, ``chunk`` a multiple of ``norm_group``) ->
    (images, masks[, depth]) as :func:`engine.warp.splat`."""
    device, dtype = points.device, points.dtype
    C, B = colors.shape[-1], len(w2cs)
    images, masks, depths = [], [], []
    src_dev = src.to(device)
    standard_k = standard_last_row(Ks)
    for s in range(0, B, chunk):
        e = min(B, s + chunk)
        shared = bool((src[s:e] == src[s]).all())  # host copy: no device sync
        out = _splat_chunk(points, colors, valid, src_dev[s:e], shared, w2cs[s:e], Ks[s:e], standard_k,
                           H, W, cap, render_depth, norm_group)
        img, msk, dep = _finish(out, C, render_depth)
        images.append(img)
        masks.append(msk)
        if render_depth:
            depths.append(dep)
    if B == 0:
        images = [torch.empty(0, C, H, W, dtype=dtype, device=device)]
        masks = [torch.empty(0, 1, H, W, dtype=dtype, device=device)]
        depths = [torch.empty(0, 1, H, W, dtype=dtype, device=device)]
    result = (torch.cat(images), torch.cat(masks))
    if render_depth:
        result = result + (torch.cat(depths),)
    return result
