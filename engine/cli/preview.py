"""`python -m engine preview`: warp one image along a camera path, without any diffusion model.

Writes into --out: preview.mp4 (the forward-warped renders of the newest cache buffer), masks.mp4 and
masks.npz (coverage masks, 1 = covered), camera_path.json (project format), camera_path.nerfstudio.json,
cameras.npz (GEN3C multiview keys) and pointcloud.ply. Everything is validated before any work starts, and
files appear in --out only once all of them are complete.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from engine.atomic import atomic_output, check_output_dir, output_error
from engine.cli.common import add_camera_args, cameras_from_path_file, check_preset_args, run_command
from engine.errors import OutputError, WeightsMissingError
from engine.model_defaults import CHUNK_FRAMES, FPS, MODEL_HEIGHT, MODEL_WIDTH

# Render sizes the preview accepts (a side); the frame limit scales with the size (engine.validate.frame_count).
MIN_SIDE, MAX_SIDE = 16, 4096


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine preview", description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--image", help="input image (PNG/JPEG/WebP/TIFF...)")
    src.add_argument("--sample", help="a bundled sample scene instead of --image (see `python -m engine samples`)")
    dep = p.add_mutually_exclusive_group()
    dep.add_argument("--depth", help="depth file for --image (.npy/.npz/16-bit PNG/.exr), same size as the image")
    dep.add_argument("--moge", help="MoGe checkpoint (model.pt path or hub id) to estimate depth")
    p.add_argument("--fov", type=float, default=None, help="vertical FOV in degrees for a depth file without K")
    p.add_argument("--weights", default=None, help="weights folder (looks for moge/model.pt); default $GEN3C_WEIGHTS")
    add_camera_args(p)
    p.add_argument("--corrected", action="store_true", help="preset with the official look-at quirk fixed")
    p.add_argument("--frames", type=int, default=CHUNK_FRAMES,
                   help=f"number of frames (default {CHUNK_FRAMES}; limit: MAX_FRAMES in engine/validate.py)")
    p.add_argument("--height", type=int, default=MODEL_HEIGHT,
                   help=f"render height (default {MODEL_HEIGHT}, the model's)")
    p.add_argument("--width", type=int, default=MODEL_WIDTH,
                   help=f"render width (default {MODEL_WIDTH}, the model's)")
    p.add_argument("--fit", choices=("crop", "pad", "official"), default="crop",
                   help="bring the image to HxW: centre crop or pad (aspect kept), or official (stretched through the "
                        "official image path, for parity runs; see engine/official.py)")
    p.add_argument("--foreground-masking", action="store_true", help="official foreground (occluder) masking")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--fps", type=int, default=FPS)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _scene(args):
    """The seed Scene at the render size, by the one seed path (engine.scene.build_scene)."""
    from engine import depth as depth_mod
    from engine import images, samples
    from engine.scene import build_scene

    size = dict(height=args.height, width=args.width, fit=args.fit)
    if args.sample:
        image, depth = samples.load_sample(args.sample)
        return build_scene(image, depth, **size)
    image = images.load_image(args.image)
    if args.depth:
        return build_scene(image, args.depth, fov_y_deg=args.fov, **size)
    model = args.moge or depth_mod.find_moge_weights(args.weights)
    if model is None:
        raise WeightsMissingError(depth_mod.MOGE_HELP)
    estimator = depth_mod.MoGeEstimator(str(model), device=args.device)
    try:
        return build_scene(image, estimator=estimator, **size)
    finally:
        estimator.release()


def _write_all(out: Path, write) -> list[str]:
    """``write(folder)`` into a hidden folder inside ``out``, then move every file into ``out``: files appear
    only once all of them are complete. On failure nothing is left (``out`` too, when this call created it)
    and the OutputError names the file under ``out``."""
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out, prefix=".preview-"))
    except OSError as exc:
        raise output_error(exc, out) from None
    try:
        write(staging)
        written = sorted(p.name for p in staging.iterdir())
        for name in written:
            os.replace(staging / name, out / name)
        return written
    except BaseException as exc:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        if isinstance(exc, OutputError):
            raise OutputError(str(exc).replace(str(staging), str(out))) from None
        if isinstance(exc, OSError):
            raise output_error(exc, out) from None
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def run(args) -> dict:
    import numpy as np
    import torch

    from engine import cameras, paths, validate, video

    # 0. every flag, before any file is read or camera built
    validate.image_size(args.height, args.width, low=MIN_SIDE, high=MAX_SIDE, name="render size (--height/--width):")
    validate.frame_count(args.frames, "--frames", height=args.height, width=args.width)
    validate.fps(args.fps, "--fps")
    if args.fov is not None:
        validate.fov_deg(args.fov, "--fov")
    if args.preset:
        check_preset_args(args)
    out = check_output_dir(args.out, "--out")  # a file, under a file or read-only: refused before any work
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    t0 = time.perf_counter()

    # 1. validate every input before writing anything
    if args.preset:
        path = None
        initial_K = None  # filled from the scene below
    else:
        path, cams = cameras_from_path_file(args.path, args.frames, args.height, args.width)

    scene = _scene(args)
    if args.preset:
        initial_K = scene.K
        cams = cameras.preset_trajectory(
            args.preset, torch.eye(4), initial_K, args.frames, args.distance, args.rotation,
            corrected=args.corrected,
        )
        path = paths.CameraPath.from_cameras(cams[0], cams[1], args.height, width=args.width)
    elif path is not None and path.intrinsics is None:  # the path zooms the seed camera's lens
        path = path.with_intrinsics(scene.K, args.height, args.width)
        cams = path.sample(args.frames, args.height, args.width)
    w2cs, Ks = (torch.as_tensor(c, dtype=torch.float32) for c in cams)

    # 2. render, in frame chunks so progress shows and memory stays bounded
    cache = scene.cache(foreground_masking=args.foreground_masking, device=device)
    chunk = 16 if device.type == "cpu" else CHUNK_FRAMES
    frames, masks = [], []
    from tqdm import tqdm

    with tqdm(total=len(w2cs), unit="frame", desc="warping", disable=args.quiet, file=sys.stderr) as bar:
        for start in range(0, len(w2cs), chunk):
            imgs, msk = cache.render(w2cs[start:start + chunk].to(device), Ks[start:start + chunk].to(device))
            frames.append(video.tensor_video_to_uint8(imgs[:, 0].cpu()))
            masks.append(msk[:, 0].cpu())
            bar.update(len(imgs))
    frames = np.concatenate(frames)
    masks = torch.cat(masks)

    # 3. write everything into a temp folder, then move into --out
    def write(folder: Path) -> None:
        video.write_mp4(folder / "preview.mp4", frames, fps=args.fps)
        video.write_mp4(folder / "masks.mp4", video.masks_to_uint8(masks), fps=args.fps)
        with atomic_output(folder / "masks.npz", suffix=".npz") as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, masks=masks.squeeze(1).numpy().astype(np.uint8))
        if path is not None:
            paths.save_path_json(path, folder / "camera_path.json")
            paths.save_nerfstudio(path, folder / "camera_path.nerfstudio.json", args.frames, args.height,
                                  args.width, fps=args.fps)
        paths.save_npz(folder / "cameras.npz", w2cs, Ks)
        scene.save_ply(folder / "pointcloud.ply")

    written = _write_all(out, write)
    coverage = float(masks.float().mean())
    return {
        "out": str(out), "files": written, "frames": int(len(frames)), "height": args.height,
        "width": args.width, "mean_coverage": round(coverage, 4), "seconds": round(time.perf_counter() - t0, 2),
        "device": str(device),
    }


def main(argv=None) -> int:
    return run_command(run, build_parser().parse_args(argv))

if __name__ == "__main__":
    sys.exit(main())
