"""The seed scene: one image with depth and camera, its point cloud, stats and PLY export.

:func:`build_scene` is the one seed path: every entry point (the studio, ``engine preview``, ``engine generate``,
``Gen3CPipeline.generate``) turns an image and a depth source into the model-resolution :class:`Scene` through it,
and every cache is built from that Scene (:meth:`Scene.cache`, :meth:`Scene.preview_cache`).
"""
from __future__ import annotations

import math
import os
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine import validate
from engine.atomic import atomic_output
from engine.cameras import scale_intrinsics
from engine.depth import INVALID_DEPTH, DepthResult
from engine.errors import InputError, OutputError
from engine.geometry import reliable_depth_mask, unproject_depth
from engine.images import fit_image, resize_depth, to_model_tensor, to_uint8
from engine.model_defaults import FILTER_THRESHOLD, FRAME_BUFFER_MAX, MODEL_HEIGHT, MODEL_WIDTH

# How build_scene brings an image to the model size: the studio's aspect-keeping fits, or the official path.
SCENE_FITS = ("crop", "pad", "official")


class Scene:
    """Image [3,H,W] in [-1,1], z-depth [1,H,W] (0 = no point), K [3,3] pixels, w2c [4,4] (default I).

    Tensors are float32 torch on CPU. Derived data (`points`, `reliable`) is computed once and cached.
    Depth >= `INVALID_DEPTH` (MoGe's "no surface" value, a far shell) is kept for the cache as the
    official code does, but left out of `valid`, the point cloud and the stats.
    `condition`: the first frame the model is conditioned on ([3,H,W]; default: `image`, the cache's image;
    the official mode's differs, see `engine.official`). `fit`: how the image was brought to this size
    (one of `SCENE_FITS`; None for a scene built by hand).
    """

    def __init__(self, image, depth, K, w2c=None, *, condition=None, fit: str | None = None):
        image = torch.as_tensor(image, dtype=torch.float32)
        depth = torch.as_tensor(depth, dtype=torch.float32)
        if depth.dim() == 2:
            depth = depth[None]
        if image.dim() != 3 or image.shape[0] != 3:
            raise InputError(f"scene image must be [3,H,W], got {tuple(image.shape)}")
        if depth.dim() != 3 or depth.shape[0] != 1 or depth.shape[1:] != image.shape[1:]:
            raise InputError(f"scene depth must be [1,H,W] matching the image {tuple(image.shape[1:])}, got {tuple(depth.shape)}")
        if not torch.isfinite(depth).all() or (depth < 0).any():
            raise InputError("scene depth must be finite and >= 0")
        K = validate.intrinsics(K, "scene K", batch=False)
        w2c = np.eye(4) if w2c is None else validate.w2c(w2c, "scene w2c", batch=False)
        if condition is not None:
            condition = torch.as_tensor(condition, dtype=torch.float32)
            if tuple(condition.shape) != tuple(image.shape) or not torch.isfinite(condition).all():
                raise InputError(f"scene condition frame must be finite [3,H,W] like the image, got {tuple(condition.shape)}")
            condition = condition.contiguous()
        if fit is not None:
            validate.one_of(fit, SCENE_FITS, "scene fit")
        self.image = image.contiguous()
        self.depth = depth.contiguous()
        self._condition = condition
        self.fit = fit
        self.K = torch.as_tensor(K, dtype=torch.float32)
        self.w2c = torch.as_tensor(w2c, dtype=torch.float32)

    @property
    def height(self) -> int:
        return int(self.image.shape[1])

    @property
    def width(self) -> int:
        return int(self.image.shape[2])

    @property
    def condition(self) -> torch.Tensor:
        """The chunk-0 condition frame [3,H,W] in [-1,1] (the image unless the fit gave another)."""
        return self.image if self._condition is None else self._condition

    @property
    def official(self) -> bool:
        """True for a scene of the official fidelity mode (``fit="official"``)."""
        return self.fit == "official"

    def cache(self, frame_buffer_max: int = FRAME_BUFFER_MAX, foreground_masking: bool = False, device=None):
        """The model-resolution 3D cache of this scene (seed buffer: image, depth, K, w2c)."""
        from engine.cache3d import Cache3D

        dev = torch.device("cpu") if device is None else torch.device(device)
        return Cache3D(self.image.to(dev), self.depth.to(dev), self.w2c.to(dev), self.K.to(dev),
                       frame_buffer_max=frame_buffer_max, foreground_masking=foreground_masking)

    def preview_cache(self, height: int, width: int, foreground_masking: bool = False, device=None):
        """The cache of this scene at a preview size, showing what the model-resolution cache shows.

        The scene is :meth:`resized`; the official depth-edge filter compares depths over a 5x5 pixel window,
        so at 1/s of the resolution the same edges look s times steeper: the threshold is scaled by s so the
        preview drops the same points the model-resolution cache drops (coverage then agrees).
        """
        from engine.cache3d import Cache3D

        small = self.resized(height, width)
        dev = torch.device("cpu") if device is None else torch.device(device)
        return Cache3D(small.image.to(dev), small.depth.to(dev), small.w2c.to(dev), small.K.to(dev),
                       filter_points_threshold=FILTER_THRESHOLD * self.height / small.height,
                       foreground_masking=foreground_masking)

    @cached_property
    def points(self) -> torch.Tensor:
        """World points [H,W,3] (depth <= 0 -> origin)."""
        return unproject_depth(self.depth[0], self.K, self.w2c)

    @cached_property
    def reliable(self) -> torch.Tensor:
        """The official depth-discontinuity filter (window 5, threshold FILTER_THRESHOLD = 0.05), bool [H,W]."""
        return reliable_depth_mask(self.depth[0], window=5, threshold=FILTER_THRESHOLD)

    @cached_property
    def valid(self) -> torch.Tensor:
        """Pixels with a real surface: 0 < depth < INVALID_DEPTH, bool [H,W]."""
        d = self.depth[0]
        return (d > 0) & (d < INVALID_DEPTH)

    def resized(self, height: int, width: int) -> "Scene":
        """The same scene at another resolution (image bilinear with antialias, depth bilinear, K rescaled)."""
        height, width = validate.image_size(height, width, name="scene")
        if (height, width) == (self.height, self.width):
            return Scene(self.image.clone(), self.depth.clone(), self.K.clone(), self.w2c.clone(),
                         condition=None if self._condition is None else self._condition.clone(), fit=self.fit)
        image = F.interpolate(self.image[None], size=(height, width), mode="bilinear", align_corners=False,
                              antialias=True)[0].clamp(-1, 1)
        depth = torch.from_numpy(resize_depth(self.depth[0].numpy(), height, width))[None]
        K = scale_intrinsics(self.K.double(), height / self.height, width / self.width)
        return Scene(image, depth, K.float(), self.w2c.clone(), fit=self.fit)

    def point_cloud(self, max_points: int | None = None, only_reliable: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(xyz float32 [P,3] world, rgb uint8 [P,3]) of valid (and reliable) pixels.

        With `max_points`, a deterministic subsample: a regular pixel stride first, then evenly spaced
        picks if still too many.
        """
        keep = self.valid & self.reliable if only_reliable else self.valid.clone()
        if max_points is not None:
            max_points = int(max_points)
            if max_points <= 0:
                raise InputError(f"max_points must be positive, got {max_points}")
            n = int(keep.sum())
            if n > max_points:
                stride = max(1, int(math.floor(math.sqrt(n / max_points))))
                grid = torch.zeros_like(keep)
                grid[::stride, ::stride] = True
                keep &= grid
        idx = torch.nonzero(keep.flatten()).squeeze(1)
        if max_points is not None and idx.numel() > max_points:
            pick = torch.linspace(0, idx.numel() - 1, max_points).round().long()
            idx = idx[pick]
        xyz = self.points.reshape(-1, 3)[idx].numpy().astype(np.float32)
        rgb = to_uint8(self.image).reshape(-1, 3)[idx.numpy()]
        return np.ascontiguousarray(xyz), np.ascontiguousarray(rgb)

    def save_ply(self, file, max_points: int | None = None, only_reliable: bool = True) -> Path:
        """Binary little-endian PLY (x, y, z float; red, green, blue uchar), written atomically."""
        xyz, rgb = self.point_cloud(max_points, only_reliable)
        return write_ply(file, xyz, rgb)

    def stats(self) -> dict:
        """Resolution, FOVs, depth range over valid pixels, point count and reliable share."""
        fx, fy = float(self.K[0, 0]), float(self.K[1, 1])
        d = self.depth[0][self.valid]
        n = int(d.numel())
        reliable = int((self.valid & self.reliable).sum())
        return {
            "resolution": [self.height, self.width],
            "fov_x_deg": math.degrees(2 * math.atan(self.width / (2 * fx))),
            "fov_y_deg": math.degrees(2 * math.atan(self.height / (2 * fy))),
            "depth_min": float(d.min()) if n else None,
            "depth_median": float(d.median()) if n else None,
            "depth_max": float(d.max()) if n else None,
            "points": n,
            "reliable_points": reliable,
            "reliable_share": reliable / n if n else 0.0,
            "no_depth_share": 1.0 - n / (self.height * self.width),
        }


def write_ply(file, xyz: np.ndarray, rgb: np.ndarray) -> Path:
    """Write a coloured point cloud as binary little-endian PLY, whole or not at all (engine.atomic)."""
    xyz = np.asarray(xyz, np.float32).reshape(-1, 3)
    rgb = np.asarray(rgb, np.uint8).reshape(-1, 3)
    if len(xyz) != len(rgb):
        raise InputError(f"point count {len(xyz)} differs from colour count {len(rgb)}")
    vertex = np.empty(len(xyz), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                                       ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    vertex["x"], vertex["y"], vertex["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    vertex["red"], vertex["green"], vertex["blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment GEN3C Studio seed point cloud (OpenCV camera frame)\n"
        f"element vertex {len(xyz)}\nproperty float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    ).encode("ascii")
    out = Path(file)
    size = len(header) + vertex.nbytes

    def whole(tmp: Path) -> None:
        if tmp.stat().st_size != size:
            raise OutputError(f"cannot write {out}: {tmp.stat().st_size} of {size} bytes reached the file")

    with atomic_output(out, suffix=".ply", check=whole) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(header)
            fh.write(vertex.view(np.uint8))
    return out


def build_scene(image: np.ndarray, depth=None, height: int = MODEL_HEIGHT, width: int = MODEL_WIDTH,
                fit: str = "crop", *, estimator=None, fov_y_deg: float | None = None) -> Scene:
    """The one seed path: an image and a depth source -> the seed `Scene` at (height, width) (w2c = I).

    ``image``: uint8 [H0,W0,3], the image as loaded (not fitted). Depth source, one of:
    ``depth`` a `DepthResult` of the image (at its size, or already at (height, width)); ``depth`` a depth file
    (read by `engine.depth.load_depth_file` at the image's size, ``fov_y_deg`` for a file without K); or
    ``depth=None`` with ``estimator`` (a `MoGeEstimator`-like object with ``.estimate`` or a callable
    ``image_uint8 -> DepthResult``).

    ``fit``: "crop" / "pad" keep the aspect ratio (`engine.images.fit_image`; one Fit for image, depth and K).
    The estimator sees the image as loaded, before the fit, in every entry point: it gets the whole picture
    (no crop) and no padding bars, and the fit then moves depth and K with the pixels. "official" follows
    the official code (`engine.official`): the image is stretched, MoGe runs on it stretched to 720x1280
    (`engine.depth.official_seed_depth`), a given depth is stretched bilinearly, and the scene keeps the
    official condition frame (`Scene.condition`).
    """
    from engine import depth as depth_mod

    image = validate.uint8_image(image)
    fit = validate.one_of(fit, SCENE_FITS, "fit")
    height, width = validate.image_size(height, width, name="scene")
    h0, w0 = image.shape[:2]
    if depth is None:
        if estimator is None:
            raise InputError("no depth for the scene: give a depth file or result, or a depth estimator")
        if fit == "official":
            result = depth_mod.official_seed_depth(estimator, image, height, width)
        else:
            result = depth_mod.call_estimator(estimator, image)
    elif isinstance(depth, DepthResult):
        result = depth
    elif isinstance(depth, (str, os.PathLike)):
        result = depth_mod.load_depth_file(depth, h0, w0, fov_y_deg=fov_y_deg)
    else:
        raise InputError(f"depth must be a DepthResult or a depth file, got {type(depth).__name__}")
    shape = np.shape(result.depth)
    fitted_already = shape == (height, width) and shape != (h0, w0)
    if shape != (h0, w0) and not fitted_already:
        raise InputError(f"depth is {'x'.join(map(str, shape))}; expected the image size {h0}x{w0} "
                         f"or {height}x{width}")
    result.validate(*shape)
    if fit == "official":
        from engine.official import official_cache_image, official_condition_frame, official_depth_to_size

        d, K = official_depth_to_size(result.depth, result.K, height, width)
        return Scene(official_cache_image(image, height, width), torch.from_numpy(d)[None], K,
                     condition=official_condition_frame(image, height, width), fit=fit)
    fitted, f = fit_image(image, height, width, fit)
    if fitted_already:
        d, K = np.asarray(result.depth, np.float32), np.asarray(result.K, np.float32)
    else:
        d, K = f.apply_to_depth(result.depth), f.apply_to_intrinsics(result.K)
    return Scene(to_model_tensor(fitted), torch.from_numpy(np.ascontiguousarray(d))[None], K, fit=fit)
