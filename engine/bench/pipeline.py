"""`python -m engine bench pipeline`: time one full GEN3C chunk and print JSON (stage timings, peak memory).

Default: full-size models with random weights on the GPU (DiT 7.24 B in bf16 built from the official GEN3C-7B
config, the default CV8x8x8 VAE, random 512x1024 prompt embeddings in place of T5), a bundled sample scene
(`--sample`, exact depth, fitted to the model resolution), one 121-frame chunk with 35 steps x 2 DiT passes.
``--weights DIR`` times a real weights folder instead. ``--tiny`` runs the tiny random weights on the CPU as a
smoke test (numbers are not meaningful) and says whether a GPU was present. Speed is only measured here, never
asserted in tests.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import numpy as np
import torch

from engine.bench.timing import environment, measure


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine bench pipeline", description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="tiny random weights on CPU (smoke test)")
    p.add_argument("--weights", default=None,
                   help="time a real weights folder instead of random full-size models (with --tiny: a tiny folder)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default 35; 2 with --tiny)")
    p.add_argument("--frames", type=int, default=None, help="frames (default: one chunk)")
    p.add_argument("--guidance", type=float, default=1.0)
    p.add_argument("--cfg", default="official")
    p.add_argument("--placement", default="low_memory", choices=("low_memory", "resident"))
    p.add_argument("--batch-cfg", action="store_true", help="cond + uncond as one batch-2 forward")
    p.add_argument("--sample", default="living_room", help="bundled sample scene (see `python -m engine samples`)")
    p.add_argument("--device", default=None)
    return p


class _RandomText:
    """Stands in for T5: random embeddings of the configured shape (T5-11B is not part of the timing)."""

    def __init__(self, length: int, dim: int, device):
        self.length, self.dim, self.device = length, dim, device

    def encode(self, texts):
        g = torch.Generator().manual_seed(0)
        return torch.randn(len(texts), self.length, self.dim, generator=g).to(self.device)

    def release(self):
        pass


def sample_inputs(sample: str, height: int, width: int):
    """(image uint8, DepthResult, K at height x width) of a bundled sample, for the pipeline at that size."""
    from engine import samples
    from engine.scene import build_scene

    image, depth = samples.load_sample(sample)
    return image, depth, build_scene(image, depth, height=height, width=width).K


def full_size_pipeline(device, placement, batch_cfg):
    from diffusers import AutoencoderKLCosmos, CosmosTransformer3DModel

    from engine.models.config import Gen3CConfig
    from engine.models.dit import GEN3C_7B_NET_CONFIG, diffusers_config_from_official, set_attention, \
        set_qk_norm_eps
    from engine.models.vae import VideoVAE
    from engine.pipeline import LOW_MEMORY_VAE_STREAM, Gen3CPipeline

    config = Gen3CConfig()
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            dit = CosmosTransformer3DModel(**diffusers_config_from_official(GEN3C_7B_NET_CONFIG))
    finally:
        torch.set_default_dtype(default_dtype)
    set_qk_norm_eps(dit)
    set_attention(dit, "auto")
    dit.eval().requires_grad_(False)
    # built on CPU then moved: built inside a CUDA device context its encode mixes devices (performance.md)
    vae = AutoencoderKLCosmos().to(device=device, dtype=torch.bfloat16).eval().requires_grad_(False)
    n = config.latent_channels * 16
    streaming = LOW_MEMORY_VAE_STREAM if placement == "low_memory" else None
    tokenizer = VideoVAE(vae, torch.zeros(n), torch.ones(n), sigma_data=config.sigma_data,
                         pixel_chunk=config.chunk_frames, streaming=streaming)
    text = _RandomText(config.text_max_length, config.text_dim, device)
    return Gen3CPipeline(config, dit, tokenizer, text_encoder_loader=lambda: text, device=device,
                         dtype=torch.bfloat16, placement=placement, batch_cfg=batch_cfg)


def run(args) -> dict:
    from engine.cameras import preset_trajectory
    from engine.pipeline import Gen3CPipeline

    has_gpu = torch.cuda.is_available()
    report = {"bench": "pipeline", "gpu_present": has_gpu, "torch": torch.__version__}
    tmp = None
    t0 = time.perf_counter()
    if args.tiny:
        from engine import models

        device = torch.device(args.device or "cpu")
        folder = args.weights  # an existing tiny folder, else a fresh one
        if folder is None:
            tmp = tempfile.TemporaryDirectory(prefix="gen3c-tiny-")
            models.make_tiny_weights(tmp.name)
            folder = tmp.name
        pipe = Gen3CPipeline.from_pretrained(folder, device=device, placement=args.placement,
                                             batch_cfg=args.batch_cfg, text_cache_dir=None)
        report["mode"] = "tiny"
        if not has_gpu:
            report["note"] = "no GPU present: tiny random weights on CPU, a smoke test, not a measurement"
    else:
        if not has_gpu and (args.device or "cuda").startswith("cuda"):
            raise SystemExit(json.dumps({**report, "error": "no GPU present; full-size timing needs CUDA "
                                                           "(use --tiny for a CPU smoke test)"}))
        device = torch.device(args.device or "cuda")
        if args.weights:
            pipe = Gen3CPipeline.from_pretrained(args.weights, device=device, placement=args.placement,
                                                 batch_cfg=args.batch_cfg)
            report["mode"] = "weights"
        else:
            pipe = full_size_pipeline(device, args.placement, args.batch_cfg)
            report["mode"] = "random-full-size"
    report.update(environment(device))
    report["load_s"] = round(time.perf_counter() - t0, 3)

    steps = args.steps or (2 if args.tiny else 35)
    frames = args.frames or pipe.chunk_frames
    image, depth, K = sample_inputs(args.sample, pipe.height, pipe.width)
    w2cs, Ks = preset_trajectory("left", torch.eye(4), K, frames, 0.3, "center_facing")
    stage_peaks: dict = {}
    cuda = device.type == "cuda"
    state = {"stage": None}

    def progress(info):
        stage = info["stage"]
        if stage != state["stage"]:
            if cuda and state["stage"] is not None:
                peak = torch.cuda.max_memory_allocated(device) / 2**30
                stage_peaks[state["stage"]] = round(max(peak, stage_peaks.get(state["stage"], 0.0)), 3)
                torch.cuda.reset_peak_memory_stats(device)
            state["stage"] = stage

    out = {}

    def generate():
        out["result"] = pipe.generate(image, (w2cs, Ks), frames, num_steps=steps, guidance=args.guidance,
                                      cfg=args.cfg, depth=depth, progress=progress, seed=1)

    # one timed run without warm-up, like a first generate call (a full-size chunk takes minutes)
    total = measure(generate, device, warmup=0, repeats=1).min
    result = out["result"]
    if cuda:
        progress({"stage": "end"})  # closes the last stage's peak
    passes = 2 if not (args.cfg == "standard" and args.guidance == 0) else 1
    report.update({
        "device": str(device), "height": pipe.height, "width": pipe.width, "frames": int(len(result.frames)),
        "chunks": int(np.ceil((frames - 1) / (pipe.chunk_frames - 1))), "steps": steps, "dit_passes_per_step": passes,
        "placement": args.placement, "batch_cfg": args.batch_cfg, "total_s": round(total, 3),
        "stages_s": {k: round(v, 3) for k, v in result.timings.items()},
        "denoise_per_step_s": round(result.timings.get("denoise", 0.0) / steps, 4),
    })
    if cuda:
        report["peak_memory_gib"] = round(max(stage_peaks.values(), default=0.0), 3)
        report["stage_peak_memory_gib"] = stage_peaks
        report["max_memory_reserved_gib"] = round(torch.cuda.max_memory_reserved(device) / 2**30, 3)
    if tmp is not None:
        tmp.cleanup()
    return report


def main(argv=None) -> int:
    """Print one JSON line with the measurement; returns 0 (2 when no GPU is present without --tiny)."""
    args = build_parser().parse_args(argv)
    try:
        report = run(args)
    except SystemExit as exc:
        print(exc.code, file=sys.stderr)
        return 2
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
