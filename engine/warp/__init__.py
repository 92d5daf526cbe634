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

This module checks the arguments and picks a kernel: on the CPU (float32) the numba kernel
(:mod:`engine.warp.numba_kernel`) when numba is installed, else (and on the GPU) the fused torch
kernel (:mod:`engine.warp.torch_kernel`). Both give the same results; CPU results are deterministic.
"""
from __future__ import annotations

import os

import torch

from engine import validate
from engine.errors import InputError
from engine.warp import numba_kernel, torch_kernel
from engine.warp.torch_kernel import DEPTH_WEIGHT_SCALE, NAN_WEIGHT, max_exponent

__all__ = ["splat", "set_cpu_kernel", "cpu_kernel_name", "cpu_kernels", "max_exponent",
           "DEPTH_WEIGHT_SCALE", "NAN_WEIGHT"]

_KERNEL_CHOICE = {"value": None}


# ---------------------------------------------------------------------------------- kernel choice

def cpu_kernels() -> tuple[str, ...]:
    """The CPU implementations available here: ("torch",) or ("torch", "numba")."""
    return ("torch", "numba") if numba_kernel.AVAILABLE else ("torch",)


def set_cpu_kernel(name: str | None) -> None:
    """Force the CPU implementation: "numba", "torch", or None for automatic (numba when present)."""
    if name not in (None, "numba", "torch"):
        raise InputError(f"cpu kernel must be 'numba', 'torch' or None, got {name!r}")
    if name == "numba" and not numba_kernel.AVAILABLE:
        raise InputError("the numba CPU kernel needs the numba package (pip install numba)")
    _KERNEL_CHOICE["value"] = name


def cpu_kernel_name() -> str:
    """Which CPU implementation :func:`splat` uses (reported by the benchmark)."""
    choice = _KERNEL_CHOICE["value"] or os.environ.get("GEN3C_WARP_KERNEL") or None
    if choice == "torch" or not numba_kernel.AVAILABLE:
        return "torch"
    return "numba"


# ----------------------------------------------------------------------------------------- checks

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


# ------------------------------------------------------------------------------------------ splat

def splat(points, colors, valid, w2cs, Ks, height, width, *, norm_group=2, render_depth=False,
          source_index=None, chunk=None, check_inputs=True):
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
        check_inputs: check the cameras (:func:`engine.validate.camera_batch`: rigid w2c, pinhole K) and
            that the points are finite; callers that built and checked them (Cache3D) pass False and
            give float tensors.

    Returns:
        ``images [B,C,H,W]`` (holes -1), ``masks [B,1,H,W]`` float {0,1} (+ ``depth [B,1,H,W]``),
        on the device of ``points``.
    """
    height, width = validate.image_size(height, width, name="splat")
    norm_group = validate.integer(norm_group, "norm_group", 1)
    if check_inputs:
        w2cs, Ks = (torch.from_numpy(c) for c in validate.camera_batch(w2cs, Ks))
    B = len(w2cs)
    points, colors, valid, src = _prepare_sources(points, colors, valid, B, source_index, check_inputs)
    device, dtype = points.device, points.dtype
    w2cs = w2cs.to(device=device, dtype=dtype)
    Ks = Ks.to(device=device, dtype=dtype)
    colors = colors.to(dtype)
    valid = valid.to(device) != 0
    cap = max_exponent(dtype)

    if chunk is None:
        chunk = torch_kernel.items_per_chunk(points.shape[1], device)
    chunk = max(norm_group, -(-int(chunk) // norm_group) * norm_group) if B else 1
    if B and device.type == "cpu" and dtype == torch.float32 and cpu_kernel_name() == "numba":
        kernel = numba_kernel.splat_numba
    else:
        kernel = torch_kernel.splat_torch
    return kernel(points, colors, valid, src, w2cs, Ks, height, width, norm_group, render_depth, chunk, cap)
