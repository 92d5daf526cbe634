"""The seed camera's lens on a path: :class:`PathIntrinsics`.

A keyframe stores only a vertical FOV. A path that carries the seed camera's intrinsics (the K of the input image,
from MoGe or a depth file: any principal point, fx != fy) samples every frame with that lens, zoomed to the
frame's FOV about the principal point: fx and fy are multiplied by tan(fov0 / 2) / tan(fov / 2), where fov0 is the
seed K's own vertical FOV, and the principal point and the pixel aspect fx / fy stay. A frame at fov0 therefore has
the seed K exactly. At another image size the zoomed K is rescaled with the one rescale rule
(``engine.cameras.scale_intrinsics``), as the scene's image and depth are resized. A path without intrinsics keeps
the square-pixel, centred K of ``engine.cameras.intrinsics_from_fov``.
"""
from __future__ import annotations

import math

import numpy as np

from engine import validate
from engine.cameras import fov_y_from_intrinsics, scale_intrinsics
from engine.errors import InputError


class PathIntrinsics:
    """The seed K (float64 [3,3], pixels) for an image of (height, width); immutable, compared by value."""

    __slots__ = ("K", "height", "width", "fov_y_deg")

    def __init__(self, K, height: int, width: int):
        K = np.array(validate.intrinsics(K, "path intrinsics K", batch=False), dtype=np.float64)
        height, width = validate.image_size(height, width, name="path intrinsics")
        K.setflags(write=False)
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "height", int(height))
        object.__setattr__(self, "width", int(width))
        object.__setattr__(self, "fov_y_deg", float(fov_y_from_intrinsics(K, height)))

    def __setattr__(self, name, value):
        raise AttributeError("PathIntrinsics is immutable")

    def __eq__(self, other):
        if not isinstance(other, PathIntrinsics):
            return NotImplemented
        return (self.height, self.width) == (other.height, other.width) and bool(np.array_equal(self.K, other.K))

    def __hash__(self):
        return hash((self.height, self.width, self.K.tobytes()))

    def __repr__(self):
        return f"PathIntrinsics(K={self.K.tolist()}, height={self.height}, width={self.width})"

    def at(self, fovs_y_deg, height: int, width: int) -> np.ndarray:
        """K (float64 [T,3,3]) for each vertical FOV at an image of (height, width)."""
        fovs = np.atleast_1d(np.asarray(fovs_y_deg, dtype=np.float64))
        height, width = validate.image_size(height, width)
        half0 = math.tan(math.radians(self.fov_y_deg) / 2.0)
        Ks = np.repeat(self.K[None], len(fovs), axis=0)
        for t, fov in enumerate(fovs):
            if fov != self.fov_y_deg:  # the seed camera's own FOV keeps K bit for bit
                zoom = half0 / math.tan(math.radians(validate.fov_deg(fov)) / 2.0)
                Ks[t, 0, :2] *= zoom
                Ks[t, 1, 1] *= zoom
        if (height, width) != (self.height, self.width):
            Ks = scale_intrinsics(Ks, height / self.height, width / self.width)
        return Ks

    def to_dict(self) -> dict:
        return {"K": [float(x) for x in self.K.reshape(-1)], "height": self.height, "width": self.width}

    @classmethod
    def from_dict(cls, d) -> "PathIntrinsics":
        if not isinstance(d, dict) or not {"K", "height", "width"} <= set(d):
            raise InputError("camera path intrinsics must be an object with K (9 numbers), height and width")
        K = d["K"]
        if not isinstance(K, list) or len(K) != 9 or any(isinstance(x, bool) or not isinstance(x, (int, float))
                                                         for x in K):
            raise InputError("camera path intrinsics K must be a list of 9 numbers (row-major 3x3)")
        for key in ("height", "width"):
            if isinstance(d[key], bool) or not isinstance(d[key], int):
                raise InputError(f"camera path intrinsics {key} must be a whole number of pixels")
        return cls(np.array(K, dtype=np.float64).reshape(3, 3), d["height"], d["width"])
