"""`python -m engine generate`: one image + a camera path -> a GEN3C video (mp4).

Everything is validated (weights, image, depth, camera path, numbers) before the models load; the mp4 is written
atomically at the model's fps, optionally side by side with the warped cache preview the model was given.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from engine.atomic import check_output_file
from engine.cli.common import add_camera_args, cameras_from_path_file, check_preset_args, run_command
from engine.errors import InputError, WeightsMissingError
from engine.model_defaults import CHUNK_FRAMES


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine generate", description=__doc__.splitlines()[0])
    p.add_argument("--image", required=True, help="input image (PNG/JPEG/WebP/...)")
    add_camera_args(p)
    p.add_argument("--prompt", default="", help="text prompt (default empty, as the official CLI)")
    p.add_argument("--negative-prompt", default=None, help="negative prompt (default: the official paragraph)")
    p.add_argument("--frames", type=int, default=CHUNK_FRAMES,
                   help=f"number of output frames (default {CHUNK_FRAMES}; limit: MAX_FRAMES in engine/validate.py)")
    p.add_argument("--steps", type=int, default=35, help="denoising steps (default 35)")
    p.add_argument("--guidance", type=float, default=1.0, help="CFG guidance g; F = F_c + g (F_c - F_u) (default 1)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--cfg", default="official", help="CFG policy: official (two passes always) or standard")
    dep = p.add_mutually_exclusive_group()
    dep.add_argument("--depth", help="depth file for --image (.npy/.npz/16-bit PNG/.exr), same size as the image")
    dep.add_argument("--moge", help="MoGe checkpoint (model.pt) for depth; default <weights>/moge/model.pt")
    p.add_argument("--fov", type=float, default=None, help="vertical FOV in degrees for a depth file without K")
    p.add_argument("--fit", choices=("crop", "pad", "official"), default="crop",
                   help="bring the image to the model size: centre crop or pad (aspect kept), or official (the "
                        "official fidelity mode: its image path, bf16 condition latents, truncating uint8 "
                        "frames; see engine/official.py)")
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
    p.add_argument("--parallel", default=None, metavar="KINDS",
                   help="under `torchrun --nproc-per-node N -m engine generate ...`: ulysses or ring (split the "
                        "DiT's tokens over the N ranks; ring only on CUDA), cfg (cond and uncond branches on 2 "
                        "ranks), or cfg,ulysses / cfg,ring (N = 2k: two groups of k); gloo on CPU, NCCL on GPU "
                        "(cuda:LOCAL_RANK); every rank loads the weights, only rank 0 writes and prints")
    p.add_argument("--save-latents", default=None, metavar="FILE",
                   help="also write each chunk's final latent (float32) to FILE.safetensors (keys chunk_0, ...)")
    return p


def _validate_args(args) -> Path:
    """Every flag checked with engine.validate before anything is read or loaded."""
    from engine import validate
    from engine.pipeline import PLACEMENTS

    validate.frame_count(args.frames, "--frames")
    validate.sampling_options(args.steps, args.guidance, args.cfg, args.seed,
                              names={"num_steps": "--steps", "guidance": "--guidance", "cfg": "--cfg",
                                     "seed": "--seed"})
    validate.one_of(args.placement, PLACEMENTS, "--placement")
    validate.prompt(args.prompt, "--prompt")
    validate.prompt(args.negative_prompt, "--negative-prompt")
    if args.fov is not None:
        validate.fov_deg(args.fov, "--fov")
    if args.preset:
        check_preset_args(args)
    _cache_settings(args)
    out = Path(args.out)
    if out.suffix.lower() != ".mp4":
        raise InputError(f"--out must end in .mp4 (got {args.out})")
    return check_output_file(out, "--out")  # a folder, under a file, missing or read-only: refused now


def _latents_path(args) -> Path | None:
    if args.save_latents is None:
        return None
    path = Path(args.save_latents)
    if path.suffix.lower() != ".safetensors":
        raise InputError(f"--save-latents must end in .safetensors (got {args.save_latents})")
    return check_output_file(path, "--save-latents")


def _save_latents(path: Path, latents) -> None:
    from safetensors.torch import save

    from engine.atomic import atomic_write_bytes

    atomic_write_bytes(path, save({f"chunk_{k}": x.float().contiguous() for k, x in enumerate(latents)}))


def _cache_settings(args):
    from engine.fast_cache import CACHE_MODES, CacheSettings

    if args.cache not in CACHE_MODES:
        raise InputError(f"--cache must be one of {', '.join(CACHE_MODES)} (got {args.cache!r})")
    if args.cache_threshold is not None and args.cache not in ("first_block", "mag"):
        raise InputError("--cache-threshold applies to --cache first_block or mag")
    return CacheSettings(args.cache, threshold=args.cache_threshold)


def _weight_parts(zero_text: bool) -> tuple[str, ...]:
    return ("config", "transformer", "vae", *(() if zero_text else ("text_encoder", "text_tokenizer")))


def _resolve_weights(weights, zero_text: bool):
    from engine.models.weights import find_weights

    status = find_weights(weights)
    status.require(*_weight_parts(zero_text))
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


def run(args, session=None) -> dict:
    """One generation; ``session``: this rank's ``engine.parallel.ParallelSession`` under ``--parallel``."""
    import numpy as np
    import torch

    from engine import cameras, depth as depth_mod, images, validate, video
    from engine.models.config import Gen3CConfig
    from engine.models.integrity import check_weights
    from engine.pipeline import DEFAULT_NEGATIVE, Gen3CPipeline, resolve_placement
    from engine.scene import build_scene

    t0 = time.perf_counter()
    out = _validate_args(args)
    latents_out = _latents_path(args)
    root = _resolve_weights(args.weights, args.no_text_encoder)
    config = Gen3CConfig.load(root)
    height, width = int(config.height), int(config.width)

    # inputs first: nothing heavy loads before they are known to be usable
    image = images.load_image(args.image)
    validate.frame_count(args.frames, "--frames", height=height, width=width)  # the weights' own size
    path = None
    if args.path:
        path, cams = cameras_from_path_file(args.path, args.frames, height, width)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if session is not None:
        device = session.device
    scene = None
    if args.depth:  # the one seed path, at the model size (MoGe below otherwise)
        scene = build_scene(image, args.depth, height, width, args.fit, fov_y_deg=args.fov)
    if session is not None:  # every rank has validated its inputs, before any of them loads a model
        from engine.cli.parallel import check_before_weights

        check_before_weights(session, root, config, preset=args.preset, frames=args.frames,
                             distance=args.distance, rotation=args.rotation)
    # the weights folder whole and agreeing with its configs: seconds, no tensor loaded, before any model loads
    check_weights(root, _weight_parts(args.no_text_encoder))
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
    if scene is None:
        if estimator is None:
            raise WeightsMissingError(depth_mod.MOGE_HELP)
        scene = build_scene(image, None, height, width, args.fit, estimator=estimator)
    if args.preset:
        cams = cameras.preset_trajectory(args.preset, torch.eye(4), scene.K, args.frames, args.distance,
                                         args.rotation)
    elif path is not None and path.intrinsics is None:  # the path zooms the seed camera's lens
        cams = path.with_intrinsics(scene.K, height, width).sample(args.frames, height, width)
    chunk_frames = int(config.chunk_frames)
    if args.frames > chunk_frames and estimator is None:
        raise WeightsMissingError(f"{args.frames} frames need more than one chunk, and later chunks need depth of "
                                  f"the generated frames: {depth_mod.MOGE_HELP}")

    pipe = Gen3CPipeline.from_pretrained(root, device=device, placement=args.placement, depth_estimator=estimator,
                                         zero_text=args.no_text_encoder, batch_cfg=args.batch_cfg,
                                         parallel=session, cache=_cache_settings(args))
    main_rank = session is None or session.is_main
    progress = _Progress(args.quiet or not main_rank)
    try:
        result = pipe.generate(
            scene, cams, args.frames, prompt=args.prompt,
            negative_prompt=DEFAULT_NEGATIVE if args.negative_prompt is None else args.negative_prompt,
            num_steps=args.steps, guidance=args.guidance, seed=args.seed, cfg=args.cfg,
            progress=progress, foreground_masking=args.foreground_masking,
        )
    finally:
        progress.close()
        if hasattr(estimator, "release"):
            estimator.release()
    frames = result.frames
    if args.side_by_side:
        frames = video.side_by_side(result.warps, result.frames)
    if main_rank:
        video.write_mp4(out, np.ascontiguousarray(frames), fps=result.fps)
        if latents_out is not None:
            _save_latents(latents_out, result.latents)
    summary = {
        "out": str(out), "frames": int(len(result.frames)), "height": height, "width": width, "fps": result.fps,
        "seed": result.seed, "steps": args.steps, "guidance": args.guidance, "cfg": args.cfg,
        "device": str(device), "cache": args.cache, "approximate": args.cache != "none",
        "timings": {k: round(v, 3) for k, v in result.timings.items()},
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if session is not None:
        summary["parallel"] = {"plan": str(session.plan), "world_size": session.world_size,
                               "cfg_degree": session.degrees.cfg, "context_degree": session.degrees.context}
    return summary


def main(argv=None) -> int:
    """CLI entry point; returns the exit status (2 for bad input or missing weights, 130 if cancelled)."""
    args = build_parser().parse_args(argv)
    if args.parallel is not None:
        from engine.cli.parallel import run_parallel_command

        return run_parallel_command(run, args, args.parallel, args.device)
    return run_command(run, args)

if __name__ == "__main__":
    sys.exit(main())
