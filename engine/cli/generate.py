"""`python -m engine generate`: one image + a camera path -> a GEN3C video (mp4).

Everything is validated (weights, image, depth, camera path, numbers) before the models load; the mp4 is written
atomically at the model's fps, optionally side by side with the warped cache preview the model was given.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from engine.cli.common import cameras_from_path_file, run_command
from engine.errors import InputError, WeightsMissingError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine generate", description=__doc__.splitlines()[0])
    p.add_argument("--image", required=True, help="input image (PNG/JPEG/WebP/...)")
    cam = p.add_mutually_exclusive_group(required=True)
    cam.add_argument("--preset", help="official trajectory: left/right/up/down/zoom_in/zoom_out/clockwise/counterclockwise")
    cam.add_argument("--path", help="camera path file: project JSON, nerfstudio camera_path.json or GEN3C NPZ")
    p.add_argument("--rotation", default="center_facing", help="preset rotation mode (default center_facing)")
    p.add_argument("--distance", type=float, default=0.3, help="preset movement distance (default 0.3)")
    p.add_argument("--prompt", default="", help="text prompt (default empty, as the official CLI)")
    p.add_argument("--negative-prompt", default=None, help="negative prompt (default: the official paragraph)")
    p.add_argument("--frames", type=int, default=121, help="number of output frames (default 121)")
    p.add_argument("--steps", type=int, default=35, help="denoising steps (default 35)")
    p.add_argument("--guidance", type=float, default=1.0, help="CFG guidance g; F = F_c + g (F_c - F_u) (default 1)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--cfg", default="official", help="CFG policy: official (two passes always) or standard")
    dep = p.add_mutually_exclusive_group()
    dep.add_argument("--depth", help="depth file for --image (.npy/.npz/16-bit PNG/.exr), same size as the image")
    dep.add_argument("--moge", help="MoGe checkpoint (model.pt) for depth; default <weights>/moge/model.pt")
    p.add_argument("--fov", type=float, default=None, help="vertical FOV in degrees for a depth file without K")
    p.add_argument("--fit", choices=("crop", "pad"), default="crop", help="bring the image to the model size")
    p.add_argument("--foreground-masking", action="store_true", help="official foreground (occluder) masking")
    p.add_argument("--weights", default=None, help="weights folder (default $GEN3C_WEIGHTS, else ./weights)")
    p.add_argument("--out", required=True, help="output .mp4 file")
    p.add_argument("--side-by-side", action="store_true", help="write [warped preview | video] side by side")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--placement", default="auto",
                   help="auto (default: resident on a GPU with >= 60 GiB, else low_memory), low_memory or resident")
    p.add_argument("--batch-cfg", action="store_true",
                   help="run cond + uncond as one batch-2 forward (same result, more GPU memory)")
    p.add_argument("--cache", default="none", metavar="MODE",
                   help="fast mode, APPROXIMATE (reuses DiT work across steps; quality with real weights unmeasured): "
                        "none (default, exact), first_block, mag or taylorseer (diffusers' cache hooks)")
    p.add_argument("--cache-threshold", type=float, default=None,
                   help="fast mode threshold for first_block (default 0.05) and mag (default 0.06)")
    p.add_argument("--no-text-encoder", action="store_true",
                   help="all-zero prompt embeddings (official --disable_prompt_encoder); no T5 needed")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _validate_args(args) -> Path:
    from engine.pipeline import PLACEMENTS
    from engine.sampler import CFG_POLICIES

    if args.frames < 2:
        raise InputError(f"--frames must be at least 2 (got {args.frames})")
    if args.steps < 1:
        raise InputError(f"--steps must be at least 1 (got {args.steps})")
    if args.seed < 0:
        raise InputError(f"--seed must be non-negative (got {args.seed})")
    if args.cfg not in CFG_POLICIES:
        raise InputError(f"--cfg must be one of {', '.join(CFG_POLICIES)} (got {args.cfg!r})")
    if args.placement not in PLACEMENTS:
        raise InputError(f"--placement must be one of {', '.join(PLACEMENTS)} (got {args.placement!r})")
    _cache_settings(args)
    out = Path(args.out)
    if out.suffix.lower() != ".mp4":
        raise InputError(f"--out must end in .mp4 (got {args.out})")
    if out.exists() and out.is_dir():
        raise InputError(f"--out {args.out} is a folder")
    if not out.parent.exists():
        raise InputError(f"--out folder {out.parent} does not exist")
    return out


def _cache_settings(args):
    from engine.fast_cache import CACHE_MODES, CacheSettings

    if args.cache not in CACHE_MODES:
        raise InputError(f"--cache must be one of {', '.join(CACHE_MODES)} (got {args.cache!r})")
    if args.cache_threshold is not None and args.cache not in ("first_block", "mag"):
        raise InputError("--cache-threshold applies to --cache first_block or mag")
    return CacheSettings(args.cache, threshold=args.cache_threshold)


def _resolve_weights(weights, zero_text: bool):
    from engine.models.weights import find_weights

    status = find_weights(weights)
    status.require("config", "transformer", "vae", *(() if zero_text else ("text_encoder", "text_tokenizer")))
    return Path(status.root)


class _Progress:
    """tqdm bars: one per chunk for the denoising steps, plus a stage line."""

    def __init__(self, quiet: bool):
        self.quiet, self.bar, self.chunk = quiet, None, None

    def __call__(self, info: dict) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        stage, chunk = info["stage"], info["chunk"]
        if stage == "denoise":
            if self.bar is None or self.chunk != chunk:
                self.close()
                self.chunk = chunk
                self.bar = tqdm(total=info["num_steps"], unit="step", file=sys.stderr,
                                desc=f"chunk {chunk + 1}/{info['num_chunks']}")
            self.bar.n = info["step"]
            self.bar.refresh()
        elif stage in ("chunk_done", "done"):
            self.close()
        else:
            print(f"[chunk {chunk + 1}/{info['num_chunks']}] {stage}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run(args) -> dict:
    import numpy as np
    import torch

    from engine import cameras, depth as depth_mod, images, video
    from engine.models.config import Gen3CConfig
    from engine.pipeline import DEFAULT_NEGATIVE, Gen3CPipeline, resolve_placement

    t0 = time.perf_counter()
    out = _validate_args(args)
    root = _resolve_weights(args.weights, args.no_text_encoder)
    config = Gen3CConfig.load(root)
    height, width = int(config.height), int(config.width)

    # inputs first: nothing heavy loads before they are known to be usable
    image = images.load_image(args.image)
    fitted, fit = images.fit_image(image, height, width, args.fit)
    if args.path:

        _, cams = cameras_from_path_file(args.path, args.frames, height, width)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    moge = args.moge or depth_mod.find_moge_weights(root)
    estimator = None
    if moge is not None:
        if resolve_placement(args.placement, device) == "resident":
            estimator = depth_mod.MoGeEstimator(str(moge), device=device)
        else:  # low memory: load MoGe for each estimate and free it right after
            def estimator(frame, _path=str(moge)):
                model = depth_mod.MoGeEstimator(_path, device=device)
                try:
                    return model.estimate(frame)
                finally:
                    model.release()
    if args.depth:
        depth = depth_mod.load_depth_file(args.depth, image.shape[0], image.shape[1], fov_y_deg=args.fov)
        K_model = fit.apply_to_intrinsics(depth.K)
    else:
        if estimator is None:
            raise WeightsMissingError(depth_mod.MOGE_HELP)
        depth = estimator.estimate(fitted) if hasattr(estimator, "estimate") else estimator(fitted)
        K_model = depth.K
    if args.preset:
        cams = cameras.preset_trajectory(args.preset, torch.eye(4), K_model, args.frames, args.distance,
                                         args.rotation)
    chunk_frames = int(config.chunk_frames)
    if args.frames > chunk_frames and estimator is None:
        raise WeightsMissingError(f"{args.frames} frames need more than one chunk, and later chunks need depth of "
                                  f"the generated frames: {depth_mod.MOGE_HELP}")

    pipe = Gen3CPipeline.from_pretrained(root, device=device, placement=args.placement, depth_estimator=estimator,
                                         zero_text=args.no_text_encoder, batch_cfg=args.batch_cfg,
                                         cache=_cache_settings(args))
    progress = _Progress(args.quiet)
    try:
        result = pipe.generate(
            image, cams, args.frames, prompt=args.prompt,
            negative_prompt=DEFAULT_NEGATIVE if args.negative_prompt is None else args.negative_prompt,
            num_steps=args.steps, guidance=args.guidance, seed=args.seed, cfg=args.cfg, depth=depth,
            progress=progress, foreground_masking=args.foreground_masking, fit=args.fit,
        )
    finally:
        progress.close()
        if hasattr(estimator, "release"):
            estimator.release()
    frames = result.frames
    if args.side_by_side:
        frames = video.side_by_side(result.warps, result.frames)
    video.write_mp4(out, np.ascontiguousarray(frames), fps=result.fps)
    return {
        "out": str(out), "frames": int(len(result.frames)), "height": height, "width": width, "fps": result.fps,
        "seed": result.seed, "steps": args.steps, "guidance": args.guidance, "cfg": args.cfg,
        "device": str(device), "cache": args.cache, "approximate": args.cache != "none",
        "timings": {k: round(v, 3) for k, v in result.timings.items()},
        "seconds": round(time.perf_counter() - t0, 2),
    }


def main(argv=None) -> int:
    """CLI entry point; returns the exit status (2 for bad input or missing weights, 130 if cancelled)."""
    return run_command(run, build_parser().parse_args(argv))

if __name__ == "__main__":
    sys.exit(main())
