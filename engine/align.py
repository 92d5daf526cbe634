"""Depth alignment of a newly estimated depth map to the depth rendered from the 3D cache.

Used between chunks of a long video: the last generated frame gets a fresh (scale-ambiguous) depth
estimate, which must be brought into the cache's metric frame before it is added as a new buffer.
Reproduces the official GEN3C procedure (``camera_utils.align_depth`` as called by
``Cache3D_Buffer.update_cache``):

* ``rigid``: an affine fit on inverse depth, ``1/aligned = s/d + b``, by least squares over the pixels
  whose inverse depths lie strictly inside the 10th-90th percentile band of *both* maps.
* ``non_rigid`` (official default): the rigid result times a per-pixel scale map ``S`` optimised with
  Adam (lr 1e-3, 100 steps) on ``mean|P(S*d) - P(target)|`` over the target mask plus
  ``0.1 * mean|box3x3(S) - S|`` (zero-padded box filter), where ``P`` unprojects with ``K`` and
  ``inverse(w2c)``. The gradient is computed in closed form (no autograd; the point difference
  factors into a per-pixel depth difference times the pixel's ray), so each step is a handful of
  [H,W] tensor ops on the inputs' device.

Official quirk kept on purpose: ``update_cache`` passes ``inverse(new_w2c)`` where a w2c is expected,
so the points are built with ``new_w2c`` as a camera-to-world transform. The L1 loss is not rotation
invariant, so this changes the result; callers that want official parity pass ``inverse(new_w2c)`` as
``w2c`` here (``align_depth`` uses the ``w2c`` it is given, unchanged).

The optimisation is numerically chaotic (a 1e-7 relative change of the input moves the result by up
to ~0.5 %), so parity with the official numbers is statistical, not bitwise, for ``non_rigid``.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from engine import validate
from engine.errors import InputError
from engine.geometry import pixel_grid

METHODS = ("non_rigid", "rigid", None)

# Fewer pixels than this inside both percentile bands -> no fit (the alignment falls back).
MIN_FIT_PIXELS = 8
# Official clamp applied to the new depth before alignment (NaN -> 1e4, clamp [0, 1e4]).
MAX_DEPTH = 1e4

_ADAM_BETAS = (0.9, 0.999)
_ADAM_EPS = 1e-8


class AlignmentWarning(UserWarning):
    """Alignment was skipped (too little overlap with the cache); the depth is returned unaligned."""


@dataclass(frozen=True)
class AlignInfo:
    """What :func:`align_depth` actually did.

    ``method`` is the method applied (``None`` when the depth was returned unaligned),
    ``fallback`` the reason it fell back (``None`` when it did not), ``scale``/``shift`` the rigid
    inverse-depth fit and ``fit_pixels`` the number of pixels that fit used.
    """

    method: str | None
    fallback: str | None = None
    scale: float | None = None
    shift: float | None = None
    fit_pixels: int = 0


def align_depth(
    new_depth,
    target_depth,
    target_mask,
    K=None,
    w2c=None,
    method: str | None = "non_rigid",
    *,
    iterations: int = 100,
    lr: float = 1e-3,
    smoothness: float = 0.1,
    return_info: bool = False,
):
    """Align ``new_depth`` to ``target_depth`` (the cache's depth rendered at the same camera).

    Args:
        new_depth: z-depth ``[H,W]`` or ``[1,H,W]`` (torch or numpy). NaN becomes 1e4 and values are
            clamped to [0, 1e4] first, as the official ``update_cache`` does; the output has the
            same shape and lives on ``new_depth``'s device.
        target_depth: rendered z-depth ``[H,W]`` or ``[1,H,W]``, 0 in holes; must be finite.
        target_mask: ``[H,W]`` or ``[1,H,W]``; nonzero where the render is covered.
        K: ``[3,3]`` intrinsics of both maps (required for ``non_rigid``).
        w2c: ``[4,4]`` pose used, as given, to unproject both point sets for the non-rigid loss.
            Pass ``inverse(new_w2c)`` for official parity (see the module docstring).
        method: ``"non_rigid"`` (default), ``"rigid"`` or ``None`` (no alignment, only the clamp).
        iterations, lr, smoothness: the non-rigid optimisation (official: 100, 1e-3, 0.1).
        return_info: also return an :class:`AlignInfo`.

    Returns:
        The aligned depth (detached, float32), or ``(depth, AlignInfo)`` with ``return_info``.
        As officially, a pixel whose fitted inverse depth ``s/d + b`` is <= 0 gets a negative or
        infinite depth (the cache's reliability filter then drops it); zero depth stays zero.

    Fallback: when the mask is empty or fewer than ``MIN_FIT_PIXELS`` pixels survive the percentile
    bands (or the fit is not finite), the clamped, unaligned depth is returned, an
    :class:`AlignmentWarning` is issued and ``AlignInfo.fallback`` names the reason. Malformed input
    (shapes, non-finite target or camera, unknown method) raises :class:`InputError`.
    """
    if method not in METHODS:
        raise InputError(f"alignment method must be one of {METHODS}, got {method!r}")
    depth, out_shape = _as_map(new_depth, "new_depth")
    device = depth.device
    depth = torch.nan_to_num(depth.float(), nan=MAX_DEPTH).clamp(0.0, MAX_DEPTH)
    if method is None:
        return _result(depth.reshape(out_shape), AlignInfo(None), return_info)

    target, _ = _as_map(target_depth, "target_depth", device)
    mask, _ = _as_map(target_mask, "target_mask", device)
    if target.shape != depth.shape or mask.shape != depth.shape:
        raise InputError(
            f"depth maps disagree in size: new_depth {tuple(depth.shape)}, target_depth "
            f"{tuple(target.shape)}, target_mask {tuple(mask.shape)}"
        )
    target = target.float()
    if not torch.isfinite(target).all():
        raise InputError("target_depth contains NaN or infinite values")
    mask = mask > 0
    if method == "non_rigid":
        for name, value in (("K", K), ("w2c", w2c)):
            if value is None:
                raise InputError(f"{name} is required for non-rigid alignment")
        K_t = _float32(validate.intrinsics(K, "K", batch=False), device)
        w2c_t = _float32(validate.w2c(w2c, "w2c", batch=False), device)
        iterations = validate.integer(iterations, "iterations", 0)
        if not validate.finite_float(lr, "lr") > 0:
            raise InputError(f"lr must be a positive finite number, got {lr!r}")
        if not validate.finite_float(smoothness, "smoothness") >= 0:
            raise InputError(f"smoothness must be a non-negative finite number, got {smoothness!r}")

    inverse = 1.0 / depth
    fit = _rigid_fit(inverse, target, mask)
    if isinstance(fit, str):
        warnings.warn(f"depth alignment skipped: {fit}; using the unaligned depth", AlignmentWarning, stacklevel=2)
        return _result(depth.reshape(out_shape), AlignInfo(None, fallback=fit), return_info)
    scale, shift, n_fit = fit
    rigid = 1.0 / (inverse * scale + shift)
    info = AlignInfo(method, scale=float(scale), shift=float(shift), fit_pixels=n_fit)
    if method == "rigid":
        return _result(rigid.reshape(out_shape), info, return_info)

    scale_map = _optimise_scale_map(rigid, target, mask, K_t, w2c_t, iterations, lr, smoothness)
    return _result((rigid * scale_map).reshape(out_shape), info, return_info)


def _result(depth: torch.Tensor, info: AlignInfo, return_info: bool):
    depth = depth.detach()
    return (depth, info) if return_info else depth


def _as_map(value, name: str, device=None) -> tuple[torch.Tensor, torch.Size]:
    """A [H,W] view of a [H,W] / [1,H,W] map, and the shape to give the result back in."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise InputError(f"{name} must be a torch tensor or numpy array, got {type(value).__name__}")
    if value.dtype == torch.bool:
        value = value.to(torch.uint8)
    if not (value.dtype.is_floating_point or value.dtype in (torch.uint8, torch.int32, torch.int64)):
        raise InputError(f"{name} has unsupported dtype {value.dtype}")
    shape = value.shape
    if value.dim() == 3 and value.shape[0] == 1:
        value = value[0]
    if value.dim() != 2 or value.shape[0] < 1 or value.shape[1] < 1:
        raise InputError(f"{name} must have shape [H,W] or [1,H,W], got {tuple(shape)}")
    if device is not None:
        value = value.to(device)
    return value, shape


def _float32(checked: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(checked.astype(np.float32)).to(device)


def _rigid_fit(source_inv: torch.Tensor, target: torch.Tensor, mask: torch.Tensor):
    """Least-squares (scale, shift, n) mapping ``source_inv`` onto the target's inverse depth.

    Official selection rule, quirks included: the percentile bands are linear-interpolated
    ``torch.quantile`` values of each map's own valid pixels (source: inverse depth > 0, which keeps
    the +inf of zero depths; target: mask and depth > 0), and the final selection keeps pixels
    strictly inside both bands - the target mask itself is not applied again there.
    Returns a reason string instead when no usable fit exists.
    """
    target_inv = 1.0 / target
    source_valid = source_inv > 0
    target_valid = mask & (target > 0)
    if not bool(target_valid.any()):
        return "the target mask has no pixel with positive depth"
    if not bool(source_valid.any()):
        return "the new depth has no positive pixel"
    q = torch.tensor([0.1, 0.9], device=source_inv.device, dtype=source_inv.dtype)
    s_lo, s_hi = torch.quantile(source_inv[source_valid], q)
    t_lo, t_hi = torch.quantile(target_inv[target_valid], q)
    keep = (source_inv > s_lo) & (source_inv < s_hi) & (target_inv > t_lo) & (target_inv < t_hi)
    n = int(keep.sum())
    if n < MIN_FIT_PIXELS:
        return f"only {n} overlapping pixels for the fit (need {MIN_FIT_PIXELS})"
    x = source_inv[keep]
    A = torch.stack([x, torch.ones_like(x)], dim=1)
    solution = torch.linalg.lstsq(A, target_inv[keep].unsqueeze(1)).solution
    scale, shift = solution[0, 0], solution[1, 0]
    if not bool(torch.isfinite(solution).all()) or float(scale) == 0.0:
        return "the least-squares fit is degenerate"
    return scale, shift, n


def _box3(x: torch.Tensor) -> torch.Tensor:
    """3x3 mean with zero padding counted (the official conv with a ones/9 kernel), [H,W] -> [H,W].

    Separable sums of shifted views: several times faster than avg_pool2d / conv2d on CPU.
    """
    p = F.pad(x, (1, 1, 1, 1))
    rows = p[:, :-2] + p[:, 1:-1] + p[:, 2:]
    return (rows[:-2] + rows[1:-1] + rows[2:]) / 9


def _loss_frame(depth, K, w2c):
    """Pixel rays (z = 1 in the camera) rotated by inverse(w2c) [H,W,3], and its translation [3]."""
    H, W = depth.shape
    c2w = torch.linalg.inv(w2c)
    rays = pixel_grid(H, W, device=depth.device) @ torch.linalg.inv(K).T
    return rays @ c2w[:3, :3].T, c2w[:3, 3]


def _nonrigid_loss(scale_map, depth, target, mask, rays_world, origin, smoothness):
    """The official objective, written as officially (masked points), for tests."""
    source_points = (scale_map * depth)[mask].unsqueeze(1) * rays_world[mask] + origin
    target_points = target[mask].unsqueeze(1) * rays_world[mask] + origin
    data = (source_points - target_points).abs().mean()
    return data + smoothness * (_box3(scale_map) - scale_map).abs().mean()


def _data_weight(rays_world, mask):
    """Per-pixel weight of the data term: mask * ||ray||_1 / (3 N).

    Both point sets share a pixel's ray and the pose, so P(S d) - P(t) = (S d - t) * ray and the L1
    data term is mean over masked pixels of |S d - t| * ||ray||_1 / 3: the translation cancels and
    the (quirky) rotation only reweights pixels. This turns every step into a few [H,W] ops.
    """
    m = mask.to(rays_world.dtype)
    return m * rays_world.abs().sum(-1) / (3 * m.sum()).clamp(min=1)


def _nonrigid_grad(scale_map, depth, target, data_weight, smoothness):
    """Closed-form gradient of :func:`_nonrigid_loss` with respect to the scale map.

    d|x|/dx is taken as sign(x) (0 at 0), as autograd does; the zero-padded box filter is
    self-adjoint, so the smoothness term's gradient is box(g) - g with g = sign(box(S) - S) / HW.
    """
    grad = torch.sign(scale_map * depth - target) * depth * data_weight
    if smoothness:
        g = torch.sign(_box3(scale_map) - scale_map) * (smoothness / scale_map.numel())
        grad += _box3(g) - g
    return grad


def _optimise_scale_map(depth, target, mask, K, w2c, iterations, lr, smoothness):
    """Adam (torch defaults: betas 0.9/0.999, eps 1e-8) on the per-pixel scale map, init 1."""
    data_weight = _data_weight(_loss_frame(depth, K, w2c)[0], mask)
    scale_map = torch.ones_like(depth)
    m = torch.zeros_like(depth)
    v = torch.zeros_like(depth)
    beta1, beta2 = _ADAM_BETAS
    with torch.no_grad():
        for step in range(1, iterations + 1):
            g = _nonrigid_grad(scale_map, depth, target, data_weight, smoothness)
            m.mul_(beta1).add_(g, alpha=1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denom = (v.sqrt() / math.sqrt(1 - beta2**step)).add_(_ADAM_EPS)
            scale_map.addcdiv_(m, denom, value=-lr / (1 - beta1**step))
    return scale_map
