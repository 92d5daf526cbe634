"""Ground-truth renders of the bundled samples from any camera (the tests compare warps with them)."""
from __future__ import annotations

import numpy as np

from assets import procedural
from engine.cameras import validate_intrinsics, validate_w2c
from engine.errors import InputError


def render_sample_view(name: str, w2c, K, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth render of a sample from any camera: (uint8 [H,W,3], z-depth float32 [H,W], 0 = nothing hit)."""
    if name not in procedural.SCENES:
        raise InputError(f"unknown sample {name!r}; available: {', '.join(procedural.SCENES)}")
    w2c = validate_w2c(np.asarray(w2c, np.float64), "w2c")
    K = validate_intrinsics(np.asarray(K, np.float64), "K")
    if w2c.shape != (4, 4) or K.shape != (3, 3):
        raise InputError("render_sample_view takes one camera: w2c [4,4] and K [3,3]")
    if not (1 <= int(height) <= 4096 and 1 <= int(width) <= 4096):
        raise InputError(f"render size must be 1..4096 px a side, got {height}x{width}")
    return procedural.render_uint8(name, w2c, K, int(height), int(width))
