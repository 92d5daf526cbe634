"""The seed scene: one image with depth and camera, its point cloud, stats and PLY export."""
from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine import validate
from engine.atomic import atomic_output
from engine.cameras import scale_intrinsics
from engine.depth import INVALID_DEPTH, DepthResult
from engine.errors import InputError
from engine.geometry import reliable_depth_mask, unproject_depth
from engine.images import fit_image, resize_depth, to_model_tensor, to_uint8
from engine.model_defaults import FILTER_THRESHOLD, MODEL_HEIGHT, MODEL_WIDTH


class Scene:
    """Image [3,H,W] in [-1,1], z-depth [1,H,W] (0 = no point), K [3,3] pixels, w2c [4,4] (default I).

    Tensors are float32 torch on CPU. Derived data (`points`, `reliable`) is computed once and cached.
    Depth >= `INVALID_DEPTH` (MoGe's "no surface" value, a far shell) is kept for the cache as the
    official code does, but left out of `valid`, the point cloud and the stats.
    """

    def __init__(self, image, depth, K, w2c=None):
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
        self.image = image.contiguous()
        self.depth = depth.contiguous()
        self.K = torch.as_tensor(K, dtype=torch.float32)
        self.w2c = torch.as_tensor(w2c, dtype=torch.float32)

    @property
    def height(self) -> int:
        return int(self.image.shape[1])

    @property
    def width(self) -> int:
        return int(self.image.shape[2])

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
            return Scene(self.image.clone(), self.depth.clone(), self.K.clone(), self.w2c.clone())
        image = F.interpolate(self.image[None], size=(height, width), mode="bilinear", align_corners=False,
                              antialias=True)[0].clamp(-1, 1)
        depth = torch.from_numpy(resize_depth(self.depth[0].numpy(), height, width))[None]
        K = scale_intrinsics(self.K.double(), height / self.height, width / self.width)
        return Scene(image, depth, K.float(), self.w2c.clone())

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
    """Write a coloured point cloud as binary little-endian PLY (temp file, then rename)."""
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
    with atomic_output(out, suffix=".ply") as tmp:
        with open(tmp, "wb") as fh:
            fh.write(header)
            fh.write(vertex.tobytes())
    return out


def build_scene(image: np.ndarray, depth_result: DepthResult, height: int = MODEL_HEIGHT,
                width: int = MODEL_WIDTH, fit: str = "crop") -> Scene:
    """Fit image, depth and K together to (height, width) and build the seed `Scene` (w2c = I)."""
    validate.uint8_image(image)
    depth_result.validate(image.shape[0], image.shape[1])
    fitted, f = fit_image(image, height, width, fit)
    depth = f.apply_to_depth(depth_result.depth)
    K = f.apply_to_intrinsics(depth_result.K)
    return Scene(to_model_tensor(fitted), torch.from_numpy(depth)[None], K)
