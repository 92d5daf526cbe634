"""`python -m engine bench fast [--tiny]`: the fast mode (approximate) against the exact run, printed as JSON.

Generates one chunk of a bundled sample twice with the same seed, exact (``cache="none"``) and with ``--cache``
(default first_block), counting the transformer blocks that really execute (a forward pre-hook on each block's
first layer, which does not run when a cache hook skips the block), the seconds of each run, and how close the fast
result is: PSNR of the decoded uint8 frames against the exact ones and the relative L2 error of the final latents.
``--tiny``: tiny random weights on the CPU (a smoke test of the hooks; the numbers say nothing about quality).
Without ``--tiny``: random full-size weights on the GPU, or ``--weights DIR``. With random weights the similarity
figures do not predict the quality with the real GEN3C weights, which is unmeasured.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time

import numpy as np
import torch

from engine.bench.timing import environment, sync


def count_block_executions(transformer):
    """(counter dict, remove()) counting executions of every Cosmos block's body (its norm1 runs first)."""
    from engine.fast_cache import cosmos_model

    counter = {"blocks": 0}

    def hook(module, args):
        counter["blocks"] += 1

    handles = [block.norm1.register_forward_pre_hook(hook) for block in cosmos_model(transformer).transformer_blocks]

    def remove():
        for handle in handles:
            handle.remove()

    return counter, remove


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 arrays (inf when equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def compare(pipe, settings, *, steps: int, sample: str = "living_room", seed: int = 1) -> dict:
    """Exact vs fast generation of one chunk of ``sample`` on ``pipe``: block executions, seconds, similarity."""
    from engine.bench.pipeline import sample_inputs
    from engine.cameras import preset_trajectory
    from engine.fast_cache import APPROXIMATE, CacheSettings

    settings = CacheSettings.of(settings)
    image, depth, K = sample_inputs(sample, pipe.height, pipe.width)
    frames = pipe.chunk_frames
    cameras = preset_trajectory("left", torch.eye(4), K, frames, 0.3, "center_facing")
    counter, remove = count_block_executions(pipe.transformer)
    runs = {}
    try:
        for name, cache in (("exact", "none"), ("fast", settings)):
            counter["blocks"] = 0
            sync(pipe.device)
            t0 = time.perf_counter()
            result = pipe.generate(image, cameras, frames, num_steps=steps, seed=seed, depth=depth, cache=cache)
            sync(pipe.device)
            runs[name] = (result, time.perf_counter() - t0, counter["blocks"])
    finally:
        remove()
    (exact, t_exact, n_exact), (fast, t_fast, n_fast) = runs["exact"], runs["fast"]
    lat_e, lat_f = exact.latents[0].double(), fast.latents[0].double()
    return {
        "cache": settings.mode, "threshold": settings.threshold, "approximate": True, "note": APPROXIMATE,
        "steps": steps, "dit_forwards": 2 * steps, "blocks_per_forward": n_exact // max(1, 2 * steps),
        "block_calls_exact": n_exact, "block_calls_fast": n_fast,
        "skip_ratio": 1 - n_fast / n_exact if n_exact else None,
        "seconds_exact": round(t_exact, 3), "seconds_fast": round(t_fast, 3),
        "denoise_seconds_exact": round(exact.timings.get("denoise", 0.0), 3),
        "denoise_seconds_fast": round(fast.timings.get("denoise", 0.0), 3),
        "psnr_db": None if math.isinf(db := psnr(fast.frames, exact.frames)) else db,
        "frames_identical": bool(np.array_equal(fast.frames, exact.frames)),
        "latent_rel_error": float((lat_f - lat_e).norm() / lat_e.norm()),
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine bench fast", description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="tiny random weights on CPU (smoke test)")
    p.add_argument("--weights", default=None, help="a weights folder (with --tiny: a tiny one) instead of random ones")
    p.add_argument("--cache", default="first_block", help="fast mode: first_block (default), mag or taylorseer")
    p.add_argument("--threshold", type=float, default=None, help="first_block / mag threshold")
    p.add_argument("--steps", type=int, default=35, help="denoising steps (default 35)")
    p.add_argument("--sample", default="living_room", help="bundled sample scene")
    p.add_argument("--device", default=None)
    return p


def main(argv=None) -> int:
    from engine.errors import InputError
    from engine.fast_cache import CacheSettings
    from engine.pipeline import Gen3CPipeline

    args = build_parser().parse_args(argv)
    report = {"bench": "fast", "tiny": args.tiny}
    try:
        settings = CacheSettings(args.cache, threshold=args.threshold)
        if not settings.enabled:
            raise InputError("--cache must be a fast mode: first_block, mag or taylorseer")
        if args.steps < 1:
            raise InputError("--steps must be >= 1")
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tmp = None
    if args.tiny:
        device = torch.device(args.device or "cpu")
        folder = args.weights
        if folder is None:
            from engine import models

            tmp = tempfile.TemporaryDirectory(prefix="gen3c-tiny-")
            models.make_tiny_weights(tmp.name)
            folder = tmp.name
        pipe = Gen3CPipeline.from_pretrained(folder, device=device, zero_text=True)
    else:
        if not torch.cuda.is_available() and (args.device or "cuda").startswith("cuda"):
            print(json.dumps({**report, "gpu_present": False,
                              "error": "no GPU: full-size fast-mode runs need CUDA; use --tiny on the CPU"}))
            return 1
        device = torch.device(args.device or "cuda")
        if args.weights:
            pipe = Gen3CPipeline.from_pretrained(args.weights, device=device, zero_text=True)
        else:
            from engine.bench.pipeline import full_size_pipeline

            pipe = full_size_pipeline(device, "resident", False)
    report.update(environment(device))
    try:
        report.update(compare(pipe, settings, steps=args.steps, sample=args.sample))
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
