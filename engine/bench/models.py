"""`python -m engine bench dit|vae`: DiT forward and VAE encode/decode speed and memory, printed as JSON.

On a GPU the full-size models are built with random weights (GEN3C-7B DiT: 28 blocks, width 4096,
32 heads, in_channels 81, text 1024; CV8x8x8 VAE) in bf16. The DiT is timed as stock diffusers
(default attention, eager) and tuned (our attention choice + per-block torch.compile). `--tiny` runs
the tiny models on CPU so the path can be smoke-tested anywhere; the JSON says whether a GPU was used.
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

from engine.bench.timing import environment, measure

# Dense bf16 tensor-core peaks (TFLOP/s) by GPU name fragment; first match wins.
BF16_PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.0), ("H200", 989.0), ("H800", 989.0), ("GH200", 989.0),
                    ("B200", 2250.0), ("A100", 312.0), ("L40S", 362.0), ("A10", 125.0))


def bf16_peak_tflops(name: str | None) -> float | None:
    if not name:
        return None
    for fragment, peak in BF16_PEAK_TFLOPS:
        if fragment.lower() in name.lower():
            return peak
    return None


def dit_flops(cfg: dict, frames: int, height: int, width: int, text_tokens: int) -> float:
    """Forward FLOPs: linear layers (2 x per-token params x tokens) + self-attention + cross-attention scores."""
    pt, ph, pw = cfg["patch_size"]
    n = frames // pt * (height // ph) * (width // pw)
    d = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    layers = cfg["num_layers"]
    per_token = layers * (4 + 2 + 2 * cfg["mlp_ratio"]) * d * d  # self QKVO, cross QO, MLP
    return 2 * per_token * n + 4 * n * n * d * layers + 4 * n * text_tokens * d * layers


def _timed(fn, device, args) -> dict:
    """Median seconds of `fn()` after `--warmup` calls (the first timed), with min/p95 and peak GPU memory."""
    return measure(fn, device, warmup=args.warmup, repeats=args.repeats).as_dict()


def _random_fill(model: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and "norm" in name:
                p.fill_(1.0)
            else:
                fan_in = p[0].numel() if p.ndim >= 2 else 1
                p.normal_(0.0, fan_in ** -0.5 if p.ndim >= 2 else 0.02, generator=g)


def _environment(device) -> dict:
    env = environment(device)
    return {**env, "bf16_peak_tflops": bf16_peak_tflops(env["gpu"])}


# ---- DiT --------------------------------------------------------------------------------------------

def _build_dit(tiny: bool, device, dtype):
    from diffusers import CosmosTransformer3DModel

    from engine.models.dit import GEN3C_7B_NET_CONFIG, diffusers_config_from_official, set_qk_norm_eps
    from engine.models.tiny import tiny_transformer

    if tiny:
        model = tiny_transformer(81, 32, seed=0)
    else:
        cfg = diffusers_config_from_official(GEN3C_7B_NET_CONFIG)
        with torch.device("meta"):
            model = CosmosTransformer3DModel(**cfg)
    for name, param in model.named_parameters():
        # bf16 except the position tables, which diffusers keeps in fp32 (as from_pretrained does)
        param.data = param.data.to(torch.float32 if name.startswith("learnable_pos_embed.") else dtype)
    if tiny:
        return model.to(device), dict(model.config)
    # allocate directly in the target dtype on the GPU (no fp32 copy), then fill randomly
    model = model.to_empty(device=device)
    _random_fill(model)
    set_qk_norm_eps(model)
    return model.eval().requires_grad_(False), cfg


def _dit_forward(tiny: bool, model, cfg: dict, device, dtype):
    """(forward, frames, height, width, text_tokens): one DiT call on fixed random inputs (seed 0)."""
    frames, height, width = (3, 8, 16) if tiny else (16, 88, 160)
    text_tokens, text_dim = (32, 32) if tiny else (512, 1024)
    g = torch.Generator(device=device).manual_seed(0)
    latent = torch.randn(1, 16, frames, height, width, device=device, dtype=dtype, generator=g)
    cond = torch.randn(1, cfg["in_channels"] - 16, frames, height, width, device=device, dtype=dtype, generator=g)
    text = torch.randn(1, text_tokens, text_dim, device=device, dtype=dtype, generator=g)
    padding = torch.zeros(1, 1, height * 8, width * 8, device=device, dtype=dtype)
    timestep = torch.tensor([0.25], device=device, dtype=dtype)

    def forward():
        with torch.no_grad():
            return model(hidden_states=latent, timestep=timestep, encoder_hidden_states=text, fps=24,
                         condition_mask=cond, padding_mask=padding, return_dict=False)[0]

    return forward, frames, height, width, text_tokens


def bench_dit_on_ranks(args) -> dict | None:
    """``bench dit --parallel``: the same forward split over a torchrun job's ranks (JSON on rank 0)."""
    from engine.bench.dit_parallel import bench_dit_parallel

    return bench_dit_parallel(args, _build_dit,
                              lambda model, cfg, device, dtype: _dit_forward(args.tiny, model, cfg, device, dtype)[:4])


def bench_dit(args) -> dict:
    from engine.models.dit import compile_blocks, set_attention

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() and not args.tiny else "cpu"))
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    model, cfg = _build_dit(args.tiny, device, dtype)
    forward, frames, height, width, text_tokens = _dit_forward(args.tiny, model, cfg, device, dtype)

    flops = dit_flops(cfg, frames, height, width, text_tokens)
    env = _environment(device)
    result = {"bench": "dit", "tiny": args.tiny, **env, "dtype": str(dtype).replace("torch.", ""),
              "latent_shape": [16, frames, height, width], "tokens": frames * height // 2 * width // 2,
              "params": sum(p.numel() for p in model.parameters()), "flops_per_forward": flops}

    def summarize(timing):
        timing["tflops_per_s"] = flops / timing["seconds"] / 1e12
        if env["bf16_peak_tflops"]:
            timing["share_of_bf16_peak"] = timing["tflops_per_s"] / env["bf16_peak_tflops"]
        return timing

    reference = None
    if not args.no_stock:
        result["stock"] = summarize(_timed(forward, device, args))
        result["stock"]["variant"] = "diffusers default attention dispatch, eager"
        reference = forward().float()
    use_compile = args.compile if args.compile is not None else device.type == "cuda"
    backend = set_attention(model, args.attention)
    if use_compile:
        compile_blocks(model)
    result["tuned"] = summarize(_timed(forward, device, args))
    result["tuned"]["variant"] = f"attention {backend}" + (", torch.compile per block" if use_compile else "")
    if reference is not None:
        result["speedup_tuned_vs_stock"] = result["stock"]["seconds"] / result["tuned"]["seconds"]
        out = forward().float()
        result["tuned_vs_stock_max_abs_diff"] = (out - reference).abs().max().item()
    return result


# ---- VAE --------------------------------------------------------------------------------------------

def _build_vae(tiny: bool, device, dtype):
    from engine.models.tiny import tiny_vae
    from engine.models.vae import build_vae, diffusers_vae_config_from_official, CV8X8X8_CONFIG

    vae = tiny_vae(0) if tiny else build_vae(diffusers_vae_config_from_official(CV8X8X8_CONFIG))
    # built on CPU and moved: building inside a CUDA device context breaks its encode (measured)
    return vae.to(device=device, dtype=dtype).eval().requires_grad_(False)


def bench_vae(args) -> dict:
    from engine.models.vae import VaeTiling, VideoVAE

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() and not args.tiny else "cpu"))
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    frames, height, width = (9, 32, 48) if args.tiny else (121, 704, 1280)
    vae = _build_vae(args.tiny, device, dtype)
    channels = vae.config.latent_channels
    stats = torch.zeros(channels * 16), torch.ones(channels * 16)
    tiling = VaeTiling(32, 32, 16) if args.tiny else VaeTiling()
    g = torch.Generator(device=device).manual_seed(0)
    video = (torch.rand(1, 3, frames, height, width, device=device, generator=g) * 2 - 1).to(dtype)
    result = {"bench": "vae", "tiny": args.tiny, **_environment(device), "dtype": str(dtype).replace("torch.", ""),
              "video_shape": [3, frames, height, width], "stream_latent_frames": args.stream,
              "tiling": {"tile_height": tiling.tile_height, "tile_width": tiling.tile_width,
                         "overlap": tiling.overlap, "note": "approximate (tiles do not see each other)"}}
    latents = {}
    variants = (("untiled", {}), ("streamed", {"streaming": args.stream}), ("tiled", {"tiling": tiling}))
    for name, option in variants:
        if name == "untiled" and args.skip_untiled:
            continue
        tok = VideoVAE(vae, *stats, **option)
        result[f"encode_{name}"] = _timed(lambda: latents.__setitem__(name, tok.encode(video)), device, args)
        lat = latents[name]
        result[f"decode_{name}"] = _timed(lambda: tok.decode(lat), device, args)
    if "untiled" in latents:
        ref = latents["untiled"]
        for name in ("tiled", "streamed"):
            result[f"{name}_vs_untiled_latent_rel_mean_abs"] = ((latents[name] - ref).abs().mean()
                                                               / ref.abs().mean()).item()
    return result


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m engine bench", description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=("dit", "vae"))
    parser.add_argument("--tiny", action="store_true", help="tiny models (CPU unless --device)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--attention", default="auto", help="tuned DiT attention backend (see set_attention)")
    parser.add_argument("--compile", dest="compile", action="store_true", default=None)
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--no-stock", action="store_true", help="DiT: skip the stock-diffusers timing")
    parser.add_argument("--skip-untiled", action="store_true", help="VAE: only the streamed and tiled paths")
    parser.add_argument("--stream", type=int, default=1, help="VAE: latent frames per streamed piece (default 1)")
    parser.add_argument("--parallel", default=None, choices=("ulysses", "ring"),
                        help="DiT: split the forward over the ranks of a torchrun job (run under torchrun)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 1:
        parser.error("--repeats and --warmup must be >= 1")
    if not args.tiny and not torch.cuda.is_available() and args.device in (None, "cpu"):
        result = {"bench": args.which, "gpu_present": False,
                  "error": "no GPU: full-size benchmarks need CUDA; run with --tiny for a CPU smoke test"}
        print(json.dumps(result, indent=1))
        return 1
    if args.parallel is not None:
        if args.which != "dit":
            parser.error("--parallel applies to bench dit only")
        from engine.errors import InputError

        try:
            result = bench_dit_on_ranks(args)
        except InputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if result is not None:  # rank 0
            print(json.dumps(result, indent=1))
        return 0
    result = bench_dit(args) if args.which == "dit" else bench_vae(args)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
