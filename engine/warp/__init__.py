"""Forward warping: the official GEN3C depth-weighted bilinear splat, batched and fast.

Every item b of a batch projects a point set into its own target camera (``w2cs[b]``, ``Ks[b]``) and
splats it. The arithmetic is the official one (``forward_warp_utils_pytorch.bilinear_splatting``):

- ``X_c = w2c X_w``; ``(u, v) = (K X_c)_xy / (z + 1e-7)``; a point counts where ``valid`` and ``z > 0``.
- Four bilinear taps onto an (H+2)x(W+2) canvas offset by +1, coordinates clamped to [0, W+1]x[0, H+1]
  (off-screen points land in the discarded border ring). On an exact integer floor == ceil and all four
  taps hit one pixel.
- Soft z weight: ``e = 50 log1p(max(z,0)) / (M + 1e-7)``, capped at 80 (10 for float16), weight
  ``bilinear * valid / (exp(e) + 1e-7)``. ``M`` is the maximum of ``log1p(max(z,0))`` over the
  normalisation group: the official ``render_cache`` warps the flattened items in chunks of 2 and takes
  the maximum over the whole chunk (masked and behind-camera points included). ``norm_group`` reproduces
  this while all items are rendered in one call.
- Output ``sum(w c) / sum(w)`` where ``sum(w) > 0`` else -1, clamped to [-1, 1]; NaN weight sums become
  1000; mask = ``sum(w) > 0``; the depth render is the same splat of z with 0 in holes.

Speed: on the CPU a numba kernel (when numba is installed) splats each item in one pass over its
points, items in parallel, each with its own canvas (deterministic). The torch path (GPU, or CPU
without numba) fuses the four taps into one ``index_add_`` keyed by the top-left tap (16 values per
point for RGB + weight) and adds the three shifted corners back on the canvas. Items are processed in
chunks (a multiple of ``norm_group``) so memory stays bounded. Both paths project with the official
order of float32 operations, which keeps exact-integer landings (frame 0 = the seed camera) exact.
:func:`splat_reference` is a straightforward official-style implementation (pairs of items,
``index_put_`` per tap), kept as the semantic reference for tests and the benchmark.
"""
from __future__ import annotations

import threading

import torch

from engine.errors import InputError

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


# ----------------------------------------------------------------------------------------- checks

def _check_cameras(w2cs: torch.Tensor, Ks: torch.Tensor) -> int:
    if not isinstance(w2cs, torch.Tensor) or w2cs.dim() != 3 or tuple(w2cs.shape[1:]) != (4, 4):
        raise InputError(f"w2cs must be a [B,4,4] tensor, got {_shape(w2cs)}")
    if not isinstance(Ks, torch.Tensor) or Ks.dim() != 3 or tuple(Ks.shape[1:]) != (3, 3):
        raise InputError(f"Ks must be a [B,3,3] tensor, got {_shape(Ks)}")
    if len(w2cs) != len(Ks):
        raise InputError(f"w2cs and Ks disagree in batch size: {len(w2cs)} vs {len(Ks)}")
    if not bool(torch.isfinite(w2cs).all()):
        raise InputError("w2cs contain NaN or infinite values")
    if not bool(torch.isfinite(Ks).all()):
        raise InputError("Ks contain NaN or infinite values")
    det = torch.linalg.det(Ks.detach().double().cpu()) if len(Ks) else torch.ones(1, dtype=torch.float64)
    if bool((det.abs() < 1e-12).any()):
        raise InputError("an intrinsics matrix K is not invertible (zero focal length?)")
    return len(w2cs)


def _shape(x) -> str:
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__


def _prepare_sources(points, colors, valid, batch, source_index, check_finite=True):
    """Bring points/colors/valid to [S,P,...] and the item -> source map to [B] (no copies)."""
    if not isinstance(points, torch.Tensor) or points.dim() not in (2, 3) or points.shape[-1] != 3:
        raise InputError(f"points must be [P,3] or [S,P,3], got {_shape(points)}")
    if points.dim() == 2:
        points = points.unsqueeze(0)
    S, P = points.shape[:2]
    if not isinstance(colors, torch.Tensor) or colors.dim() not in (2, 3):
        raise InputError(f"colors must be [P,C] or [S,P,C], got {_shape(colors)}")
    if colors.dim() == 2:
        colors = colors.unsqueeze(0)
    if tuple(colors.shape[:2]) != (S, P):
        raise InputError(f"colors {tuple(colors.shape)} do not match points {tuple(points.shape)}")
    if valid is None:
        valid = torch.ones(S, P, dtype=torch.bool, device=points.device)
    if not isinstance(valid, torch.Tensor) or valid.dim() not in (1, 2):
        raise InputError(f"valid must be [P] or [S,P], got {_shape(valid)}")
    if valid.dim() == 1:
        valid = valid.unsqueeze(0)
    if tuple(valid.shape) != (S, P):
        raise InputError(f"valid {tuple(valid.shape)} does not match points {tuple(points.shape)}")
    if not points.is_floating_point() or (check_finite and not bool(torch.isfinite(points).all())):
        raise InputError("points must be finite floating-point values")
    if source_index is None:
        if S == 1:
            source_index = torch.zeros(batch, dtype=torch.long)
        elif S == batch:
            source_index = torch.arange(batch)
        else:
            raise InputError(f"{S} point sets for {batch} cameras: pass source_index to map them")
    else:
        source_index = torch.as_tensor(source_index, dtype=torch.long).cpu()
        if tuple(source_index.shape) != (batch,) or (batch and (
                int(source_index.min()) < 0 or int(source_index.max()) >= S)):
            raise InputError(f"source_index must be [{batch}] with values in [0,{S})")
    return points, colors, valid, source_index


def _check_size(height, width):
    if not (isinstance(height, int) and isinstance(width, int)) or height < 1 or width < 1:
        raise InputError(f"height and width must be positive integers, got {height!r} x {width!r}")


# ------------------------------------------------------------------------------------ projection

def _project(points: torch.Tensor, w2cs: torch.Tensor, Ks: torch.Tensor, standard_k: bool | None = None):
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
    if standard_k is None:
        standard_k = _standard_last_row(Ks)
    if standard_k:
        z = cam[2]  # (0*x + 0*y) + 1*z is exactly z
    else:
        z = (cam[0] * k[:, 2, 0] + cam[1] * k[:, 2, 1]) + cam[2] * k[:, 2, 2]
    denom = z + 1e-7
    return pix[0] / denom, pix[1] / denom, z


def _standard_last_row(Ks: torch.Tensor) -> bool:
    return bool((Ks[:, 2] == Ks.new_tensor([0.0, 0.0, 1.0])).all())


def _group_max(per_item: torch.Tensor, group: int) -> torch.Tensor:
    """Maximum over consecutive groups of ``group`` items, broadcast back to the items."""
    n = per_item.shape[0]
    pad = (-n) % group
    padded = torch.cat([per_item, per_item.new_full((pad,), float("-inf"))]) if pad else per_item
    return padded.view(-1, group).amax(1).repeat_interleave(group)[:n]


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


# --------------------------------------------------------------------------------------- fast path

def _splat_chunk(points, colors, valid, src, shared, w2cs, Ks, standard_k, H, W, cap, render_depth,
                 norm_group):
    """Fused splat of one chunk of whole normalisation groups -> canvas sums [b,H,W,F].

    F = C colour channels (+ depth) + the weight sum. Each point adds 4 corner weights x F values
    into one row keyed by its top-left tap; the other three corners are shifted back afterwards.
    """
    b = len(w2cs)
    pts = points[src[:1]] if shared else points[src]
    u, v, z = _project(pts, w2cs, Ks, standard_k)
    logz = torch.log1p(z.clamp(min=0))
    M = _group_max(logz.amax(1), norm_group)
    ok = (valid[src[:1]] if shared else valid[src]) & (z > 0)
    dw = (logz / (M[:, None] + 1e-7)).mul_(DEPTH_WEIGHT_SCALE).clamp_(max=cap).exp_().add_(1e-7)
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


def splat(points, colors, valid, w2cs, Ks, height, width, *, norm_group=2, render_depth=False,
          source_index=None, chunk=None, check_points=True):
    """Official GEN3C depth-weighted bilinear splat of B items in one call.

    Args:
        points: world points ``[P,3]`` (shared by every item) or ``[S,P,3]``.
        colors: ``[P,C]`` or ``[S,P,C]`` values to splat (images in [-1,1]; the output is clamped).
        valid: ``[P]`` / ``[S,P]`` bool or {0,1} (None = all valid); multiplies the weights.
        w2cs, Ks: target cameras ``[B,4,4]``, ``[B,3,3]``.
        height, width: output size.
        norm_group: number of consecutive items sharing the log-depth maximum (official: 2).
        render_depth: also return the splatted target-camera z (0 in holes).
        source_index: ``[B]`` point set used by each item (default: all share set 0 when S == 1,
            item b uses set b when S == B).
        chunk: items per batch of work (rounded up to a multiple of ``norm_group``); default sized
            to a memory budget.
        check_points: verify the points are finite (callers that built them, like Cache3D, skip it).

    Returns:
        ``images [B,C,H,W]`` (holes -1), ``masks [B,1,H,W]`` float {0,1} (+ ``depth [B,1,H,W]``),
        on the device of ``points``.
    """
    _check_size(height, width)
    if not isinstance(norm_group, int) or norm_group < 1:
        raise InputError(f"norm_group must be a positive integer, got {norm_group!r}")
    B = _check_cameras(w2cs, Ks)
    points, colors, valid, src = _prepare_sources(points, colors, valid, B, source_index, check_points)
    device, dtype = points.device, points.dtype
    w2cs = w2cs.to(device=device, dtype=dtype)
    Ks = Ks.to(device=device, dtype=dtype)
    colors = colors.to(dtype)
    valid = valid.to(device) != 0
    C, P = colors.shape[-1], points.shape[1]
    cap = max_exponent(dtype)

    if chunk is None:
        chunk = _chunk_items(P, device)
    chunk = max(norm_group, -(-int(chunk) // norm_group) * norm_group) if B else 1
    if B and device.type == "cpu" and dtype == torch.float32 and cpu_kernel_name() == "numba":
        with _NUMBA_LOCK:
            return _splat_numba(points, colors, valid, src, w2cs, Ks, height, width, norm_group,
                                render_depth, chunk, cap)

    images, masks, depths = [], [], []
    src_dev = src.to(device)
    standard_k = _standard_last_row(Ks)
    for s in range(0, B, chunk):
        e = min(B, s + chunk)
        shared = bool((src[s:e] == src[s]).all())  # host copy: no device sync
        out = _splat_chunk(points, colors, valid, src_dev[s:e], shared, w2cs[s:e], Ks[s:e], standard_k,
                           height, width, cap, render_depth, norm_group)
        img, msk, dep = _finish(out, C, render_depth)
        images.append(img)
        masks.append(msk)
        if render_depth:
            depths.append(dep)
    if B == 0:
        images = [torch.empty(0, C, height, width, dtype=dtype, device=device)]
        masks = [torch.empty(0, 1, height, width, dtype=dtype, device=device)]
        depths = [torch.empty(0, 1, height, width, dtype=dtype, device=device)]
    result = (torch.cat(images), torch.cat(masks))
    if render_depth:
        result = result + (torch.cat(depths),)
    return result


def _chunk_items(P: int, device: torch.device) -> int:
    budget = _DEFAULT_BUDGET["cuda" if device.type == "cuda" else "cpu"]
    return max(1, budget // max(1, P * _BYTES_PER_POINT_ITEM))


# ------------------------------------------------------------------------------ semantic reference

def splat_reference(points, colors, valid, w2cs, Ks, height, width, *, norm_group=2,
                    render_depth=False, source_index=None):
    """Straightforward official-style splat: items in chunks of ``norm_group``, one
    ``index_put_(accumulate=True)`` per tap, the log-depth maximum over the chunk. Slow; used as the
    semantic reference in tests and in the benchmark. Same arguments and outputs as :func:`splat`.
    """
    _check_size(height, width)
    B = _check_cameras(w2cs, Ks)
    points, colors, valid, src = _prepare_sources(points, colors, valid, B, source_index)
    dtype, device = points.dtype, points.device
    H, W = height, width
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
        dw = torch.exp((logz / (logz.max() + 1e-7) * DEPTH_WEIGHT_SCALE).clamp(max=max_exponent(dtype))) + 1e-7
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
        canvas, wsum = canvas[:, 1:-1, 1:-1], wsum[:, 1:-1, 1:-1]
        outs.append(torch.cat([canvas, wsum], -1))
    out = torch.cat(outs) if outs else torch.zeros(0, H, W, colors.shape[-1] + 1 + render_depth)
    return _finish(out, colors.shape[-1], render_depth)[: 2 + int(render_depth)]



# ------------------------------------------------------------------------------- CPU JIT kernel
# A numba kernel for the CPU: one pass per item over the points with the same float32 projection
# as the torch path (numba does not fuse multiply-adds without fastmath); the z weights come from
# torch's vectorised log1p/exp. Items run in parallel, each on its own canvas, so results are
# deterministic. Optional: without numba, or with GEN3C_WARP_KERNEL=torch, the torch path is used.
# numba's default threading layer must not be entered from two threads at once (it aborts the
# process), so calls are serialised with a lock (the studio may render for several sessions).
try:  # pragma: no cover - exercised when numba is installed
    import numba as _nb
    import numpy as _np
except ImportError:  # pragma: no cover
    _nb = None

_KERNEL_CHOICE = {"value": None}
_NUMBA_LOCK = threading.Lock()
_PARTS = 2


def set_cpu_kernel(name: str | None) -> None:
    """Force the CPU implementation: "numba", "torch", or None for automatic (numba when present)."""
    if name not in (None, "numba", "torch"):
        raise InputError(f"cpu kernel must be 'numba', 'torch' or None, got {name!r}")
    if name == "numba" and _nb is None:
        raise InputError("the numba CPU kernel needs the numba package (pip install numba)")
    _KERNEL_CHOICE["value"] = name


def cpu_kernel_name() -> str:
    """Which CPU implementation :func:`splat` uses (reported by the benchmark)."""
    import os

    choice = _KERNEL_CHOICE["value"] or os.environ.get("GEN3C_WARP_KERNEL") or None
    if choice == "torch" or _nb is None:
        return "torch"
    return "numba"


if _nb is not None:
    @_nb.njit(parallel=True, cache=True, nogil=True)
    def _nb_depth(points, src, w2c, K, out):  # pragma: no cover - compiled
        """Target-camera z of every point of every item, same arithmetic as ``_project``."""
        for b in _nb.prange(src.shape[0]):
            s = src[b]
            w = w2c[b]
            k = K[b]
            kz = k[2, 0] == 0 and k[2, 1] == 0 and k[2, 2] == 1
            for p in range(points.shape[1]):
                X = points[s, p, 0]
                Y = points[s, p, 1]
                Z = points[s, p, 2]
                z = ((w[2, 0] * X + w[2, 1] * Y) + w[2, 2] * Z) + w[2, 3]
                if not kz:
                    cx = ((w[0, 0] * X + w[0, 1] * Y) + w[0, 2] * Z) + w[0, 3]
                    cy = ((w[1, 0] * X + w[1, 1] * Y) + w[1, 2] * Z) + w[1, 3]
                    z = (k[2, 0] * cx + k[2, 1] * cy) + k[2, 2] * z
                out[b, p] = z

    @_nb.njit(inline="always", cache=True, nogil=True)
    def _nb_tap(canvas, idx, wt, colors, s, p, C, with_depth, z):  # pragma: no cover - compiled
        for c in range(C):
            canvas[idx, c] += colors[s, p, c] * wt
        if with_depth:
            canvas[idx, C] += z * wt
        canvas[idx, canvas.shape[1] - 1] += wt

    @_nb.njit(inline="always", cache=True, nogil=True)
    def _nb_tap3(canvas, idx, wt, c0, c1, c2, with_depth, z):  # pragma: no cover - compiled
        row = canvas[idx]
        row[0] += c0 * wt
        row[1] += c1 * wt
        row[2] += c2 * wt
        if with_depth:
            row[3] += z * wt
            row[4] += wt
        else:
            row[3] += wt

    @_nb.njit(parallel=True, cache=True, nogil=True)
    def _nb_splat(points, colors, valid, src, w2c, K, rdw_all, H, W, with_depth, out):  # pragma: no cover
        one = _np.float32(1.0)
        zero = _np.float32(0.0)
        eps = _np.float32(1e-7)
        Wc = W + 2
        xmax = _np.float32(W + 1)
        ymax = _np.float32(H + 1)
        C = colors.shape[2]
        parts = out.shape[1]
        P = points.shape[1]
        for unit in _nb.prange(src.shape[0] * parts):
            b = unit // parts
            part = unit % parts
            s = src[b]
            w = w2c[b]
            k = K[b]
            kz = k[2, 0] == 0 and k[2, 1] == 0 and k[2, 2] == 1
            canvas = out[b, part]
            # matrix entries in locals: the canvas writes could alias them otherwise (reloads)
            w00, w01, w02, w03 = w[0, 0], w[0, 1], w[0, 2], w[0, 3]
            w10, w11, w12, w13 = w[1, 0], w[1, 1], w[1, 2], w[1, 3]
            w20, w21, w22, w23 = w[2, 0], w[2, 1], w[2, 2], w[2, 3]
            k00, k01, k02 = k[0, 0], k[0, 1], k[0, 2]
            k10, k11, k12 = k[1, 0], k[1, 1], k[1, 2]
            k20, k21, k22 = k[2, 0], k[2, 1], k[2, 2]
            for p in range(part * P // parts, (part + 1) * P // parts):
                if not valid[s, p]:
                    continue
                X = points[s, p, 0]
                Y = points[s, p, 1]
                Z = points[s, p, 2]
                cx = ((w00 * X + w01 * Y) + w02 * Z) + w03
                cy = ((w10 * X + w11 * Y) + w12 * Z) + w13
                cz = ((w20 * X + w21 * Y) + w22 * Z) + w23
                z = cz if kz else (k20 * cx + k21 * cy) + k22 * cz
                if not z > 0:
                    continue
                px = (k00 * cx + k01 * cy) + k02 * cz
                py = (k10 * cx + k11 * cy) + k12 * cz
                den = z + eps
                offx = px / den + one
                offy = py / den + one
                if not (offx == offx and offy == offy):
                    continue  # NaN coordinates (overflow): the official code drops them in the ring
                offx = min(max(offx, zero), xmax)
                offy = min(max(offy, zero), ymax)
                # offsets are clamped to >= 0, so truncation is floor and ceil is floor + (frac > 0)
                ix0 = int(offx)
                iy0 = int(offy)
                x0 = _np.float32(ix0)
                y0 = _np.float32(iy0)
                ix1 = ix0 + 1 if offx > x0 else ix0
                iy1 = iy0 + 1 if offy > y0 else iy0
                x1 = _np.float32(ix1)
                y1 = _np.float32(iy1)
                ax0 = one - (offx - x0)
                ax1 = one - (x1 - offx)
                ay0 = one - (offy - y0)
                ay1 = one - (y1 - offy)
                rdw = rdw_all[b, p]
                row0 = iy0 * Wc
                row1 = iy1 * Wc
                if C == 3:  # RGB: colours loaded once, fixed offsets
                    c0 = colors[s, p, 0]
                    c1 = colors[s, p, 1]
                    c2 = colors[s, p, 2]
                    _nb_tap3(canvas, row0 + ix0, (ay0 * ax0) * rdw, c0, c1, c2, with_depth, z)
                    _nb_tap3(canvas, row1 + ix0, (ay1 * ax0) * rdw, c0, c1, c2, with_depth, z)
                    _nb_tap3(canvas, row0 + ix1, (ay0 * ax1) * rdw, c0, c1, c2, with_depth, z)
                    _nb_tap3(canvas, row1 + ix1, (ay1 * ax1) * rdw, c0, c1, c2, with_depth, z)
                else:
                    _nb_tap(canvas, row0 + ix0, (ay0 * ax0) * rdw, colors, s, p, C, with_depth, z)
                    _nb_tap(canvas, row1 + ix0, (ay1 * ax0) * rdw, colors, s, p, C, with_depth, z)
                    _nb_tap(canvas, row0 + ix1, (ay0 * ax1) * rdw, colors, s, p, C, with_depth, z)
                    _nb_tap(canvas, row1 + ix1, (ay1 * ax1) * rdw, colors, s, p, C, with_depth, z)


if _nb is not None:
    @_nb.njit(parallel=True, cache=True, nogil=True)
    def _nb_finish(out, H, W, C, with_depth, img, mask, depth):  # pragma: no cover - compiled
        """Canvas sums (parts added in a fixed order) -> images (holes -1, clamped), masks,
        depth (holes 0); as :func:`_finish`."""
        Wc = W + 2
        parts = out.shape[1]
        F = out.shape[3]
        for by in _nb.prange(out.shape[0] * H):
            b = by // H
            y = by % H
            acc = _np.empty(F, dtype=_np.float32)
            for x in range(W):
                idx = (y + 1) * Wc + x + 1
                for f in range(F):
                    acc[f] = out[b, 0, idx, f]
                for q in range(1, parts):
                    for f in range(F):
                        acc[f] += out[b, q, idx, f]
                ws = acc[F - 1]
                if ws != ws:
                    ws = _np.float32(1000.0)
                if ws > 0:
                    mask[b, 0, y, x] = 1
                    for c in range(C):
                        val = acc[c] / ws
                        img[b, c, y, x] = min(max(val, _np.float32(-1.0)), _np.float32(1.0))
                    if with_depth:
                        depth[b, 0, y, x] = acc[C] / ws
                else:
                    mask[b, 0, y, x] = 0
                    for c in range(C):
                        img[b, c, y, x] = -1
                    if with_depth:
                        depth[b, 0, y, x] = 0


def _splat_numba(points, colors, valid, src, w2cs, Ks, H, W, norm_group, render_depth, chunk, cap):
    """CPU path with the numba kernel; same outputs as the torch path."""
    pts = _np.ascontiguousarray(points.detach().numpy(), dtype=_np.float32)
    cols = _np.ascontiguousarray(colors.detach().numpy(), dtype=_np.float32)
    val = _np.ascontiguousarray(valid.detach().numpy())
    srcn = _np.ascontiguousarray(src.numpy().astype(_np.int64))
    w2c = _np.ascontiguousarray(w2cs.detach().numpy(), dtype=_np.float32)
    K = _np.ascontiguousarray(Ks.detach().numpy(), dtype=_np.float32)
    threads = max(1, min(torch.get_num_threads(), _nb.config.NUMBA_NUM_THREADS))
    _nb.set_num_threads(threads)
    C = cols.shape[2]
    F = C + 1 + int(render_depth)
    B, P = len(srcn), pts.shape[1]
    img = _np.empty((B, C, H, W), dtype=_np.float32)
    msk = _np.empty((B, 1, H, W), dtype=_np.float32)
    dep = _np.empty((B, 1, H, W) if render_depth else (1, 1, 1, 1), dtype=_np.float32)
    n = min(chunk, B)
    # each item's points are split in _PARTS fixed ranges with their own canvas (a single frame
    # still uses both threads); parts are summed in a fixed order, so results do not depend on
    # the thread count or on how items are batched
    canvas = _np.empty((n, _PARTS, (H + 2) * (W + 2), F), dtype=_np.float32)  # reused across chunks
    zbuf = _np.empty((n, P), dtype=_np.float32)
    for s in range(0, B, chunk):
        e = min(B, s + chunk)
        z = zbuf[:e - s]
        _nb_depth(pts, srcn[s:e], w2c[s:e], K[s:e], z)
        # the z weights with torch's vectorised log1p/exp (the values of the torch path); the
        # chunk holds whole normalisation groups
        logz = torch.from_numpy(z).clamp(min=0).log1p_()
        M = _group_max(logz.amax(1), norm_group)
        rdw = (logz / (M[:, None] + 1e-7)).mul_(DEPTH_WEIGHT_SCALE).clamp_(max=cap).exp_().add_(1e-7)
        rdw = rdw.reciprocal_().numpy()  # x * (1/dw) is within 1 ulp of the official x / dw
        out = canvas[:e - s]
        out.fill(0)
        _nb_splat(pts, cols, val, srcn[s:e], w2c[s:e], K[s:e], rdw, H, W, bool(render_depth), out)
        _nb_finish(out, H, W, C, bool(render_depth), img[s:e], msk[s:e],
                   dep[s:e] if render_depth else dep)
    result = (torch.from_numpy(img), torch.from_numpy(msk))
    return result + ((torch.from_numpy(dep),) if render_depth else ())
