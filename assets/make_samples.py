"""Render the bundled sample scenes into assets/samples/<name>/ (image.png, depth.npz, meta.json).

Usage: python assets/make_samples.py [--check]
The scenes are defined in assets/procedural.py; renders are deterministic, so re-running reproduces the
committed files. `--check` compares a fresh render with the committed files instead of writing.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assets import procedural  # noqa: E402

OUT = Path(__file__).resolve().parent / "samples"


def make(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    sdef = procedural.scene_def(name)
    H, W = procedural.SAMPLE_HEIGHT, procedural.SAMPLE_WIDTH
    K = procedural.seed_intrinsics(H, W)
    image, depth = procedural.render_uint8(name, np.eye(4), K, H, W)
    meta = {"title": sdef.title, "description": sdef.description, **sdef.preset,
            "fov_y_deg": procedural.SAMPLE_FOV_Y_DEG, "height": H, "width": W,
            "depth": "exact z-depth (metres) ray-cast from the seed camera, w2c = I"}
    return image, depth, K.astype(np.float32), meta


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    args = p.parse_args(argv)
    ok = True
    for name in procedural.SCENES:
        image, depth, K, meta = make(name)
        d = OUT / name
        if args.check:
            old = np.asarray(Image.open(d / "image.png"))
            with np.load(d / "depth.npz") as z:
                same = np.array_equal(old, image) and np.allclose(z["depth"], depth, rtol=1e-6) and np.allclose(z["K"], K)
            print(f"{name}: {'same' if same else 'DIFFERENT'}")
            ok &= same
            continue
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(d / "image.png", optimize=True)
        np.savez_compressed(d / "depth.npz", depth=depth, K=K)
        (d / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(f"{name}: {(d / 'image.png').stat().st_size // 1024} kB png, {(d / 'depth.npz').stat().st_size // 1024} kB depth")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
