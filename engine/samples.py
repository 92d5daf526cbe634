"""Bundled sample scenes (assets/samples/<name>/): image, exact depth + K, metadata.

The files are made by `assets/make_samples.py` from the procedural scene definitions in
`assets/procedural.py` (outside the engine), which also render any other camera as ground truth.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from engine.depth import DepthResult, load_depth_file
from engine.errors import InputError
from engine.images import load_image
from engine.json_input import MAX_CONFIG_BYTES, read_json_file

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
    meta = read_json_file(path, f"sample {name} meta.json", max_bytes=MAX_CONFIG_BYTES)
    if not isinstance(meta, dict):
        raise InputError(f"sample {name} meta.json must hold a JSON object")
    return meta


def load_sample(name: str) -> tuple[np.ndarray, DepthResult]:
    """(image uint8 [H,W,3], DepthResult with the exact depth and K) of a bundled sample."""
    d = _sample_dir(name)
    image = load_image(d / "image.png")
    result = load_depth_file(d / "depth.npz", image.shape[0], image.shape[1])
    result.notes = [f"exact depth of the procedural sample {name!r}"] + [n for n in result.notes if "no depth" in n]
    return image, result
