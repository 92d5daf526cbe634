"""The numba CPU splat: one pass per item over its points, items in parallel, each on its own canvas.

Same float32 projection as the torch kernel (numba does not fuse multiply-adds without fastmath); the
z weights come from the torch kernel's :func:`~engine.warp.torch_kernel.depth_weights` (torch's
vectorised log1p/exp), so both kernels weigh points identically. Results are deterministic: each
item's points are split into fixed ranges with their own canvas, summed in a fixed order.
Optional: without numba (``AVAILABLE`` False) :func:`engine.warp.splat` uses the torch kernel.
"""
from __future__ import annotations

import threading

import torch

from engine.warp.torch_kernel import depth_weights

try:  # pragma: no cover - exercised when numba is installed
    import numba
    import numpy as np
except ImportError:  # pragma: no cover
    numba = None

AVAILABLE = numba is not None
# numba's default threading layer must not be entered from two threads at once (it aborts the
# process), so calls are serialised (the studio may render for several sessions)
_LOCK = threading.Lock()
_PARTS = 2


if numba is not None:
    @numba.njit(parallel=True, cache=True, nogil=True)
    def _nb_depth(points, src, w2c, K, out):  # pragma: no cover - compiled
        """Target-camera z of every point of every item (the torch kernel's projection arithmetic)."""
        for b in numba.prange(src.shape[0]):
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

    @numba.njit(inline="always", cache=True, nogil=True)
    def _nb_tap(canvas, idx, wt, colors, s, p, C, with_depth, z):  # pragma: no cover - compiled
        for c in range(C):
            canvas[idx, c] += colors[s, p, c] * wt
        if with_depth:
            canvas[idx, C] += z * wt
        canvas[idx, canvas.shape[1] - 1] += wt

    @numba.njit(inline="always", cache=True, nogil=True)
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

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _nb_splat(points, colors, valid, src, w2c, K, rdw_all, H, W, with_depth, out):  # pragma: no cover
        one = np.float32(1.0)
        zero = np.float32(0.0)
        eps = np.float32(1e-7)
        Wc = W + 2
        xmax = np.float32(W + 1)
        ymax = np.float32(H + 1)
        C = colors.shape[2]
        parts = out.shape[1]
        P = points.shape[1]
        for unit in numba.prange(src.shape[0] * parts):
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
                x0 = np.float32(ix0)
                y0 = np.float32(iy0)
                ix1 = ix0 + 1 if offx > x0 else ix0
                iy1 = iy0 + 1 if offy > y0 else iy0
                x1 = np.float32(ix1)
                y1 = np.float32(iy1)
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

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _nb_finish(out, H, W, C, with_depth, img, mask, depth):  # pragma: no cover - compiled
        """Canvas sums (parts added in a fixed order) -> images (holes -1, clamped), masks,
        depth (holes 0); as the torch kernel's finish."""
        Wc = W + 2
        parts = out.shape[1]
        F = out.shape[3]
        for by in numba.prange(out.shape[0] * H):
            b = by // H
            y = by % H
            acc = np.empty(F, dtype=np.float32)
            for x in range(W):
                idx = (y + 1) * Wc + x + 1
                for f in range(F):
                    acc[f] = out[b, 0, idx, f]
                for q in range(1, parts):
                    for f in range(F):
                        acc[f] += out[b, q, idx, f]
                ws = acc[F - 1]
                if ws != ws:
                    ws = np.float32(1000.0)
                if ws > 0:
                    mask[b, 0, y, x] = 1
                    for c in range(C):
                        val = acc[c] / ws
                        img[b, c, y, x] = min(max(val, np.float32(-1.0)), np.float32(1.0))
                    if with_depth:
                        depth[b, 0, y, x] = acc[C] / ws
                else:
                    mask[b, 0, y, x] = 0
                    for c in range(C):
                        img[b, c, y, x] = -1
                    if with_depth:
                        depth[b, 0, y, x] = 0


def splat_numba(points, colors, valid, src, w2cs, Ks, H, W, norm_group, render_depth, chunk, cap):
    """CPU float32 inputs as for :func:`engine.warp.torch_kernel.splat_torch` -> the same outputs."""
    with _LOCK:
        return _splat(points, colors, valid, src, w2cs, Ks, H, W, norm_group, render_depth, chunk, cap)


def _splat(points, colors, valid, src, w2cs, Ks, H, W, norm_group, render_depth, chunk, cap):
    pts = np.ascontiguousarray(points.detach().numpy(), dtype=np.float32)
    cols = np.ascontiguousarray(colors.detach().numpy(), dtype=np.float32)
    val = np.ascontiguousarray(valid.detach().numpy())
    srcn = np.ascontiguousarray(src.numpy().astype(np.int64))
    w2c = np.ascontiguousarray(w2cs.detach().numpy(), dtype=np.float32)
    K = np.ascontiguousarray(Ks.detach().numpy(), dtype=np.float32)
    threads = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(threads)
    C = cols.shape[2]
    F = C + 1 + int(render_depth)
    B, P = len(srcn), pts.shape[1]
    img = np.empty((B, C, H, W), dtype=np.float32)
    msk = np.empty((B, 1, H, W), dtype=np.float32)
    dep = np.empty((B, 1, H, W) if render_depth else (1, 1, 1, 1), dtype=np.float32)
    n = min(chunk, B)
    # each item's points are split in _PARTS fixed ranges with their own canvas (a single frame
    # still uses both threads); parts are summed in a fixed order, so results do not depend on
    # the thread count or on how items are batched
    canvas = np.empty((n, _PARTS, (H + 2) * (W + 2), F), dtype=np.float32)  # reused across chunks
    zbuf = np.empty((n, P), dtype=np.float32)
    for s in range(0, B, chunk):
        e = min(B, s + chunk)
        z = zbuf[:e - s]
        _nb_depth(pts, srcn[s:e], w2c[s:e], K[s:e], z)
        # the chunk holds whole normalisation groups
        dw = depth_weights(torch.from_numpy(z), norm_group, cap)
        rdw = dw.reciprocal_().numpy()  # x * (1/dw) is within 1 ulp of the official x / dw
        out = canvas[:e - s]
        out.fill(0)
        _nb_splat(pts, cols, val, srcn[s:e], w2c[s:e], K[s:e], rdw, H, W, bool(render_depth), out)
        _nb_finish(out, H, W, C, bool(render_depth), img[s:e], msk[s:e],
                   dep[s:e] if render_depth else dep)
    result = (torch.from_numpy(img), torch.from_numpy(msk))
    return result + ((torch.from_numpy(dep),) if render_depth else ())
