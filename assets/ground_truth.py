"""Ground-truth renders of the bundled samples from any camera (the tests compare warps with them)."""
from __future__ import annotations

import numpy as np

from assets import procedural
from engine import validate
from engine.errors import InputError


def render_sample_view(name: str, w2c, K, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth render of a sample from any camera: (uint8 [H,W,3], z-depth float32 [H,W], 0 = nothing hit)."""
    if name not in procedural.SCENES:
        raise InputError(f"unknown sample {name!r}; available: {', '.join(procedural.SCENES)}")
    w2c = validate.w2c(w2c, "w2c", batch=False)
    K = validate.intrinsics(K, "K", batch=False)
    height, width = validate.image_size(height, width, high=4096, name="render size")
    return procedural.render_uint8(name, w2c, K, height, width)
