"""Bundled sample scenes (assets/samples/<name>/): image, exact depth + K, metadata; ground-truth renders.

The files are made by `assets/make_samples.py` from the scene definitions in `engine.procedural`, which
can also render the same scene from any camera (`render_sample_view`), e.g. to check warps.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from engine.depth import DepthResult, load_depth_file
from engine.errors import InputError
from engine.images import load_image

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "assets" / "samples"
_NAME = re.compile(r"^[a-z0-9_]+$")


def list_samples() -> list[str]:
    """Names of the bundled samples that have image.png and depth.npz."""
    if not SAMPLES_DIR.is_dir():
        return []
    return sorted(p.name for p in SAMPLES_DIR.iterdir()
                  if p.is_dir() and (p / "image.png").is_file() and (p / "depth.npz").is_file())


def _sample_dir(name: str) -> Path:
    if not isinstance(name, str) or not _NAME.match(name) or name not in list_samples():
        raise InputError(f"unknown sample {name!r}; available: {', '.join(list_samples()) or 'none'}")
    return SAMPLES_DIR / name


def sample_meta(name: str) -> dict:
    """Title, description and suggested camera preset of a sample (from its meta.json)."""
    path = _sample_dir(name) / "meta.json"
    if not path.is_file():
        return {"title": name, "description": ""}
    return json.loads(path.read_text())


def load_sample(name: str) -> tuple[np.ndarray, DepthResult]:
    """(image uint8 [H,W,3], DepthResult with the exact depth and K) of a bundled sample."""
    d = _sample_dir(name)
    image = load_image(d / "image.png")
    result = load_depth_file(d / "depth.npz", image.shape[0], image.shape[1])
    result.notes = [f"exact depth of the procedural sample {name!r}"] + [n for n in result.notes if "no depth" in n]
    return image, result


def render_sample_view(name: str, w2c, K, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth render of a sample from any camera: (uint8 [H,W,3], z-depth float32 [H,W], 0 = nothing hit)."""
    from engine import procedural
    from engine.cameras import validate_intrinsics, validate_w2c

    if name not in procedural.SCENES:
        raise InputError(f"unknown sample {name!r}; available: {', '.join(procedural.SCENES)}")
    w2c = validate_w2c(np.asarray(w2c, np.float64), "w2c")
    K = validate_intrinsics(np.asarray(K, np.float64), "K")
    if w2c.shape != (4, 4) or K.shape != (3, 3):
        raise InputError("render_sample_view takes one camera: w2c [4,4] and K [3,3]")
    if not (1 <= int(height) <= 4096 and 1 <= int(width) <= 4096):
        raise InputError(f"render size must be 1..4096 px a side, got {height}x{width}")
    return procedural.render_uint8(name, w2c, K, int(height), int(width))
