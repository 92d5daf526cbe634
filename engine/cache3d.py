"""The GEN3C 3D cache: per-buffer world point clouds rendered along camera paths.

Follows the official ``Cache3D_Buffer`` (``cache_3d.py``):

- Buffers are stored newest first. The seed (the input image) is created at construction; each
  :meth:`Cache3D.update` prepends a buffer while there are fewer than ``frame_buffer_max``, then
  overwrites buffer 0, so the seed stays last.
- Init depth: NaN -> 100, clamped to [0, 100]; update depth: NaN -> 1e4, clamped to [0, 1e4].
- Each buffer keeps a reliability mask (:func:`engine.geometry.reliable_depth_mask`,
  ``filter_points_threshold``; >= 1 disables it) that multiplies the splat weights.
- :meth:`Cache3D.render` warps the flattened (frame, buffer) items frame-major with the official
  chunk-of-2 log-depth normalisation (:func:`engine.warp.splat` with ``norm_group=2``): with two
  buffers a pair is both buffers of one frame, with one buffer two consecutive frames.
- Foreground masking uses the seed's depth-edge mask (never updated) to build an occluder mesh per
  buffer (:func:`engine.foreground.occluder_mask`) and blanks splatted pixels behind it.
"""
from __future__ import annotations

import numpy as np
import torch

from engine import validate
from engine.errors import InputError
from engine.geometry import reliable_depth_mask, unproject_depth
from engine.model_defaults import FILTER_THRESHOLD, FRAME_BUFFER_MAX
from engine.warp import splat

INIT_MAX_DEPTH = 100.0
UPDATE_MAX_DEPTH = 1e4
# The official boundary mask is the reliability filter at the fixed default threshold.
BOUNDARY_THRESHOLD = FILTER_THRESHOLD
ALIGNMENTS = ("non_rigid", "rigid", None)


def _tensor(x, name) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    try:
        return torch.as_tensor(x, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"{name} must be numeric, got {type(x).__name__}") from exc


def _camera(w2c, K, device) -> tuple[torch.Tensor, torch.Tensor]:
    """One camera checked by engine.validate, as float32 tensors on ``device``."""
    return (_on(validate.w2c(w2c, "w2c", batch=False), device),
            _on(validate.intrinsics(K, "K", batch=False), device))


def _on(checked: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(checked.astype(np.float32)).to(device)


class Cache3D:
    """World point-cloud buffers of one scene, rendered with the official forward warp.

    Args:
        image: ``[3,H,W]`` float in [-1, 1].
        depth: z-depth ``[1,H,W]`` (or ``[H,W]``) of the same size; NaN -> 100, clamped to [0, 100].
        w2c: ``[4,4]`` world-to-camera pose of the image; K: ``[3,3]`` intrinsics in pixels.
        frame_buffer_max: most buffers kept (official 2).
        filter_points_threshold: reliability-filter ratio; >= 1 disables the filter.
        foreground_masking: blank splatted pixels behind the occluder mesh of the seed's depth edges.

    All tensors live on the device of ``image`` (see :meth:`to`).
    """

    def __init__(self, image, depth, w2c, K, frame_buffer_max: int = FRAME_BUFFER_MAX,
                 filter_points_threshold: float = FILTER_THRESHOLD, foreground_masking: bool = False):
        image = _tensor(image, "image")
        if image.dim() != 3 or image.shape[0] != 3 or min(image.shape[1:]) < 1:
            raise InputError(f"image must have shape [3,H,W], got {list(image.shape)}")
        if not image.is_floating_point() or not bool(torch.isfinite(image).all()):
            raise InputError("image must hold finite floating-point values in [-1, 1]")
        frame_buffer_max = validate.integer(frame_buffer_max, "frame_buffer_max", 1)
        try:
            threshold = float(filter_points_threshold)
        except (TypeError, ValueError) as exc:
            raise InputError(f"filter_points_threshold must be a number, got {filter_points_threshold!r}") from exc
        if not threshold > 0:  # also rejects NaN
            raise InputError(f"filter_points_threshold must be > 0, got {filter_points_threshold!r}")
        self.height, self.width = int(image.shape[1]), int(image.shape[2])
        self.device = image.device
        self.frame_buffer_max = frame_buffer_max
        self.filter_points_threshold = threshold
        self.foreground_masking = bool(foreground_masking)
        depth = self._check_depth(depth, "depth")
        w2c, K = _camera(w2c, K, self.device)

        depth = torch.nan_to_num(depth, nan=INIT_MAX_DEPTH).clamp(0, INIT_MAX_DEPTH)
        self._images = image.new_zeros(0, 3, self.height, self.width).float()
        self._points = image.new_zeros(0, self.height, self.width, 3).float()
        self._valid = torch.zeros(0, self.height, self.width, dtype=torch.bool, device=self.device)
        self._colors = None  # channels-last copy of the images for the splat, rebuilt on change
        self._insert(image.float(), depth, w2c, K)
        self.boundary_mask = None
        if self.foreground_masking:
            self.boundary_mask = ~reliable_depth_mask(depth[0], threshold=BOUNDARY_THRESHOLD)

    # ----------------------------------------------------------------------------------- state
    @property
    def num_buffers(self) -> int:
        return int(self._images.shape[0])

    @property
    def images(self) -> torch.Tensor:
        """Buffer images ``[N,3,H,W]``, newest first."""
        return self._images

    @property
    def valid_masks(self) -> torch.Tensor:
        """Per-buffer reliability masks ``[N,H,W]`` bool (all True when the filter is off)."""
        return self._valid

    def points(self, i: int = 0) -> torch.Tensor:
        """World points ``[H,W,3]`` of buffer ``i`` (0 = newest); (0,0,0) where depth was <= 0."""
        if not -self.num_buffers <= i < self.num_buffers:
            raise InputError(f"buffer index {i} out of range for {self.num_buffers} buffers")
        return self._points[i]

    def flat_sources(self):
        """The splat inputs: points ``[N,P,3]``, colours ``[N,P,3]``, valid ``[N,P]``."""
        n = self.num_buffers
        if self._colors is None or self._colors.device != self._images.device:
            self._colors = self._images.permute(0, 2, 3, 1).reshape(n, -1, 3).contiguous()
        return self._points.reshape(n, -1, 3), self._colors, self._valid.reshape(n, -1)

    def to(self, device) -> "Cache3D":
        """Move every buffer to ``device`` (in place); returns self."""
        self.device = torch.device(device)
        self._images = self._images.to(self.device)
        self._points = self._points.to(self.device)
        self._valid = self._valid.to(self.device)
        self._colors = None  # a cache of _images, rebuilt on the new device when needed
        if self.boundary_mask is not None:
            self.boundary_mask = self.boundary_mask.to(self.device)
        return self

    def _check_depth(self, depth, name) -> torch.Tensor:
        depth = _tensor(depth, name)
        if depth.dim() == 2:
            depth = depth[None]
        if depth.dim() != 3 or depth.shape[0] != 1:
            raise InputError(f"{name} must have shape [1,H,W], got {list(depth.shape)}")
        if tuple(depth.shape[1:]) != (self.height, self.width):
            raise InputError(f"{name} is {depth.shape[1]}x{depth.shape[2]} but the cache is "
                             f"{self.height}x{self.width}")
        if not depth.is_floating_point():
            raise InputError(f"{name} must be floating point")
        return depth.to(device=self.device, dtype=torch.float32)

    def _insert(self, image, depth, w2c, K) -> None:
        """Add a buffer from a (clamped) depth map: prepend while below the maximum, else replace 0."""
        points = unproject_depth(depth[0], K, w2c)
        if self.filter_points_threshold < 1.0:
            valid = reliable_depth_mask(depth[0], threshold=self.filter_points_threshold)
        else:
            valid = torch.ones(self.height, self.width, dtype=torch.bool, device=self.device)
        image, points, valid = image.to(self.device), points.to(self.device), valid.to(self.device)
        self._colors = None
        if self.num_buffers < self.frame_buffer_max:
            self._images = torch.cat([image[None], self._images])
            self._points = torch.cat([points[None], self._points])
            self._valid = torch.cat([valid[None], self._valid])
        else:  # new tensors, so earlier renders' views of the old state stay valid
            self._images = torch.cat([image[None], self._images[1:]])
            self._points = torch.cat([points[None], self._points[1:]])
            self._valid = torch.cat([valid[None], self._valid[1:]])

    # ---------------------------------------------------------------------------------- render
    def render(self, w2cs, Ks, *, render_depth: bool = False, frame_chunk: int | None = None):
        """Warp every buffer into every camera.

        Args:
            w2cs: ``[T,4,4]``, Ks: ``[T,3,3]`` target cameras (intrinsics for this cache's H x W).
            render_depth: also return the splatted target z-depth (0 in holes).
            frame_chunk: frames per batch of work (default: sized to a memory budget).

        Returns:
            ``images [T,N,3,H,W]`` in [-1,1] (holes -1), ``masks [T,N,1,H,W]`` float {0,1}
            (+ ``depth [T,N,1,H,W]``), buffer 0 = newest.
        """
        w2cs, Ks = (_on(c, self.device) for c in validate.camera_batch(w2cs, Ks))
        if frame_chunk is not None:
            frame_chunk = validate.integer(frame_chunk, "frame_chunk", 1)
        return self._render(w2cs, Ks, render_depth, frame_chunk)

    def _render(self, w2cs: torch.Tensor, Ks: torch.Tensor, render_depth: bool = False,
                frame_chunk: int | None = None):
        """:meth:`render` of checked float32 cameras on this cache's device."""
        T, N, H, W = len(w2cs), self.num_buffers, self.height, self.width
        points, colors, valid = self.flat_sources()
        need_depth = render_depth or self.foreground_masking
        out = splat(points, colors, valid, w2cs.repeat_interleave(N, 0), Ks.repeat_interleave(N, 0),
                    H, W, norm_group=2, render_depth=need_depth,
                    source_index=torch.arange(N).repeat(T),
                    chunk=None if frame_chunk is None else frame_chunk * N, check_inputs=False)
        images = out[0].view(T, N, 3, H, W)
        masks = out[1].view(T, N, 1, H, W)
        depth = out[2].view(T, N, 1, H, W) if need_depth else None
        if self.foreground_masking and T > 0:
            images, masks, depth = self._mask_foreground(images, masks, depth, w2cs, Ks)
        if render_depth:
            return images, masks, depth
        return images, masks

    def _mask_foreground(self, images, masks, depth, w2cs, Ks):
        from engine.foreground import apply_foreground_mask, occluder_mask

        mesh = torch.stack([occluder_mask(self.boundary_mask, self._points[n], w2cs, Ks,
                                          self.height, self.width, check_cameras=False)
                            for n in range(self.num_buffers)], dim=1)  # [T,N,H,W]
        images, masks, d = apply_foreground_mask(images, masks, depth[:, :, 0], mesh.to(depth.device))
        return images, masks, d.unsqueeze(2)

    # ---------------------------------------------------------------------------------- update
    def update(self, frame, depth, w2c, K, alignment: str | None = "non_rigid") -> None:
        """Add a new buffer from a generated frame and its (estimated) depth.

        The depth is NaN -> 1e4 and clamped to [0, 1e4]; with ``alignment`` it is aligned
        (:func:`engine.align.align_depth`) to the cache's depth rendered at the new camera (the
        newest buffer's render of a single-frame call, as the official ``update_cache``). For
        parity the alignment receives ``inverse(w2c)`` where it expects a pose, as the official code
        passes it. The aligned depth is unprojected with the true ``w2c``, its reliability mask
        recomputed, and the buffer inserted (see the module docstring). Nothing changes on error.
        """
        if alignment not in ALIGNMENTS:
            raise InputError(f"alignment must be one of {ALIGNMENTS}, got {alignment!r}")
        frame = _tensor(frame, "frame")
        if tuple(frame.shape) != (3, self.height, self.width):
            raise InputError(f"frame must have shape [3,{self.height},{self.width}], got {list(frame.shape)}")
        if not frame.is_floating_point() or not bool(torch.isfinite(frame).all()):
            raise InputError("frame must hold finite floating-point values in [-1, 1]")
        depth = self._check_depth(depth, "depth")
        w2c, K = _camera(w2c, K, self.device)
        depth = torch.nan_to_num(depth, nan=UPDATE_MAX_DEPTH).clamp(0, UPDATE_MAX_DEPTH)
        if alignment is not None:
            from engine.align import align_depth

            _, target_mask, target_depth = self._render(w2c[None], K[None], render_depth=True)
            depth = align_depth(depth[0], target_depth[0, 0, 0], target_mask[0, 0, 0], K,
                                torch.linalg.inv(w2c), method=alignment)
            depth = depth.reshape(1, self.height, self.width).to(self.device, torch.float32)
        self._insert(frame.float(), depth, w2c, K)
