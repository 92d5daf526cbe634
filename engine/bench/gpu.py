"""`python -m engine bench gpu`: the GPU acceptance figures in one call, printed as one JSON object.

On one H100/H200 with random full-size weights, within ``--budget-s`` (default 470 s; sections that would not fit
are reported as skipped), in this order:

1. ``dit``: one DiT forward at 56,320 tokens in bf16, stock diffusers vs ours (``bench dit``), and
   ``ulysses``: the same forward split across every visible GPU (a torchrun job of ``bench dit --parallel
   ulysses``; ``--ulysses-ranks`` overrides the rank count, e.g. 2 CPU ranks with ``--tiny``);
2. ``vae``: encode and decode of 121 x 704 x 1280, untiled and streamed (and tiled, approximate), time and peak
   memory (``bench vae``);
3. ``warp``: 121 frames x 2 buffers at 704 x 1280 (``bench warp``);
4. ``low_memory_generation``: the peak memory of a whole ``low_memory`` chunk (``--gen-steps`` steps: the peak
   does not depend on the step count; random prompt embeddings stand in for T5, which runs alone in that placement);
5. ``chunk_estimate``: one 121-frame chunk = 70 forwards (tuned) + the VAE work + the warp;
6. ``fast``: the fast mode's skip ratio (``bench fast`` with ``--fast-steps`` steps, random weights).

Each figure is compared with its target (DiT forward <= 3.4 s, chunk <= 4.5 min, peak <= 24 GB, warp <= 150 ms).
Without a GPU it prints ``{"gpu_present": false, ...}`` and exits 0 (``--memory-model`` adds the VAE's meta-device
memory arithmetic, which needs no GPU). ``--tiny`` runs every section with the tiny random models on the CPU: a
smoke test of this command, not a measurement.
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from types import SimpleNamespace

import torch

TARGETS = {"dit_forward_s": 3.4, "chunk_s": 4.5 * 60, "peak_memory_gb": 24.0, "warp_ms": 150.0}
SECTIONS = ("dit", "vae", "warp", "low_memory_generation", "chunk_estimate", "fast")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine bench gpu", description=__doc__.splitlines()[0])
    p.add_argument("--budget-s", type=float, default=470.0, help="wall-clock budget; later sections are skipped")
    p.add_argument("--repeats", type=int, default=2, help="timed repeats of the DiT and VAE (after one warm-up)")
    p.add_argument("--gen-steps", type=int, default=2, help="steps of the low_memory generation (peak memory)")
    p.add_argument("--fast-steps", type=int, default=8, help="steps of the fast-mode comparison")
    p.add_argument("--cache", default="first_block", help="fast mode for the skip ratio")
    p.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument("--memory-model", action="store_true", help="add the VAE's meta-device memory arithmetic")
    p.add_argument("--ulysses-ranks", type=int, default=None,
                   help="ranks of the ulysses DiT timing (default: every visible GPU; needs 2 or more)")
    p.add_argument("--tiny", action="store_true", help="every section with tiny models on the CPU (smoke test)")
    return p


def _free() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _dit(args, device) -> dict:
    from engine.bench.models import bench_dit

    ns = SimpleNamespace(tiny=args.tiny, device=str(device), repeats=args.repeats, warmup=1, attention="auto",
                         compile=None, no_stock=False)
    out = bench_dit(ns)
    forward = out["tuned"]["seconds"]
    out["target_forward_s"] = TARGETS["dit_forward_s"]
    out["meets_target"] = None if args.tiny else forward <= TARGETS["dit_forward_s"]
    out["ulysses"] = _ulysses(args, forward)
    return out


def _ulysses(args, one_process_forward_s: float):
    from engine.bench.dit_parallel import launch

    n = args.ulysses_ranks if args.ulysses_ranks is not None else torch.cuda.device_count()
    if n < 2:
        return f"not run: {n} rank(s) (needs at least 2 GPUs, or --ulysses-ranks)"
    device = ["--tiny", "--device", "cpu"] if args.tiny else ["--device", "cuda"]
    out = launch(n, ["--parallel", "ulysses", "--repeats", str(args.repeats), *device], timeout_s=300)
    if "tuned" in out:
        out["speedup_vs_one_process"] = one_process_forward_s / out["tuned"]["seconds"]
    return out


def _vae(args, device) -> dict:
    from engine.bench.models import bench_vae

    ns = SimpleNamespace(tiny=args.tiny, device=str(device), repeats=args.repeats, warmup=1, stream=1,
                         skip_untiled=False)
    return bench_vae(ns)


def _warp(args, device) -> dict:
    from engine.bench.warp import bench_size

    row = bench_size("living_room", *((24, 40, 5) if args.tiny else (704, 1280, 121)), 2, device, 3)
    row["target_ms"] = TARGETS["warp_ms"]
    row["meets_target"] = None if args.tiny else row["fast_total_ms"] <= TARGETS["warp_ms"]
    return row


def _pipeline(args, device, keep: dict):
    """The low_memory pipeline the generation and fast sections share: random full-size (tiny with --tiny)."""
    if "pipe" not in keep:
        if args.tiny:
            import tempfile

            from engine import models
            from engine.pipeline import Gen3CPipeline

            keep["tmp"] = tmp = tempfile.TemporaryDirectory(prefix="gen3c-tiny-")
            models.make_tiny_weights(tmp.name)
            keep["pipe"] = Gen3CPipeline.from_pretrained(tmp.name, device=device, placement="low_memory",
                                                         zero_text=True)
        else:
            from engine.bench.pipeline import full_size_pipeline

            keep["pipe"] = full_size_pipeline(device, "low_memory", False)
    return keep["pipe"]


def _low_memory(args, device, keep: dict) -> dict:
    from engine.bench.pipeline import sample_inputs
    from engine.bench.timing import sync
    from engine.cameras import preset_trajectory

    pipe = _pipeline(args, device, keep)
    image, depth, K = sample_inputs("living_room", pipe.height, pipe.width)
    frames = pipe.chunk_frames
    cameras = preset_trajectory("left", torch.eye(4), K, frames, 0.3, "center_facing")
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    result = pipe.generate(image, cameras, frames, num_steps=args.gen_steps, seed=1, depth=depth)
    sync(device)
    out = {"placement": "low_memory", "vae": f"streamed, {pipe.vae.streaming} latent frame(s) per piece",
           "steps": args.gen_steps, "frames": int(len(result.frames)), "seconds": round(time.perf_counter() - t0, 2),
           "stages_s": {k: round(v, 3) for k, v in result.timings.items()},
           "note": "random prompt embeddings stand in for T5 (in low_memory T5 runs with the DiT parked on the CPU)"}
    if cuda:
        peak = torch.cuda.max_memory_allocated(device) / 1e9
        out.update(peak_memory_gb=round(peak, 3), target_gb=TARGETS["peak_memory_gb"],
                   meets_target=peak <= TARGETS["peak_memory_gb"],
                   max_memory_reserved_gb=round(torch.cuda.max_memory_reserved(device) / 1e9, 3))
    return out


def _chunk_estimate(args, report: dict) -> dict:
    dit, vae, warp = report.get("dit"), report.get("vae"), report.get("warp")
    if not isinstance(dit, dict) or "tuned" not in dit or not isinstance(vae, dict) or "encode_streamed" not in vae:
        return {"skipped": "needs the dit and vae sections"}
    forward = dit["tuned"]["seconds"]
    encode, decode = vae["encode_streamed"]["seconds"], vae["decode_streamed"]["seconds"]
    warp_s = warp["fast_total_ms"] / 1e3 if isinstance(warp, dict) and "fast_total_ms" in warp else 0.0
    # 35 steps x 2 passes; chunk 0 encodes 3 videos (2 for the seed buffer + the condition), later chunks 5
    seconds = 70 * forward + 5 * encode + decode + warp_s
    return {"formula": "70 x tuned DiT forward + 5 streamed encodes + 1 streamed decode + warp (depth/alignment "
                       "not included)", "seconds": round(seconds, 1), "minutes": round(seconds / 60, 2),
            "target_s": TARGETS["chunk_s"], "meets_target": None if args.tiny else seconds <= TARGETS["chunk_s"]}


def _fast(args, device, keep: dict) -> dict:
    from engine.bench.fast import compare
    from engine.fast_cache import CacheSettings

    out = compare(_pipeline(args, device, keep), CacheSettings.of(args.cache), steps=args.fast_steps)
    out["weights"] = ("tiny random" if args.tiny else "random full-size") + \
        ": the skip ratio shows the hooks work; quality with the real weights is not measured"
    return out


def run(args) -> dict:
    from engine.bench.models import bf16_peak_tflops
    from engine.bench.timing import environment

    started = time.perf_counter()
    device = torch.device("cpu" if args.tiny else "cuda")
    env = environment(device)
    report = {"bench": "gpu", "tiny": args.tiny, **env, "bf16_peak_tflops": bf16_peak_tflops(env["gpu"]),
              "gpu_count": torch.cuda.device_count(), "budget_s": args.budget_s, "targets": TARGETS}
    if args.tiny:
        report["note"] = "tiny random models on the CPU: a smoke test of this command, not a measurement"
    wanted = SECTIONS if args.only is None else tuple(s.strip() for s in args.only.split(","))
    keep: dict = {}
    # rough costs on one H100, to skip a section that cannot end within the budget
    cost = {"dit": 90, "vae": 40, "warp": 10, "low_memory_generation": 60, "chunk_estimate": 0,
            "fast": 30 + 4 * 4.4 * args.fast_steps}
    for name in SECTIONS:
        if name not in wanted:
            continue
        left = args.budget_s - (time.perf_counter() - started)
        if cost[name] > left:
            report[name] = {"skipped": f"time budget: ~{cost[name]:.0f} s needed, {left:.0f} s left"}
            continue
        t0 = time.perf_counter()
        try:
            if name == "dit":
                report[name] = _dit(args, device)
            elif name == "vae":
                report[name] = _vae(args, device)
            elif name == "warp":
                report[name] = _warp(args, device)
            elif name == "low_memory_generation":
                report[name] = _low_memory(args, device, keep)
            elif name == "chunk_estimate":
                report[name] = _chunk_estimate(args, report)
            else:
                report[name] = _fast(args, device, keep)
        except Exception as exc:  # one failing section must not lose the others' figures
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}
        if isinstance(report[name], dict):
            report[name]["section_s"] = round(time.perf_counter() - t0, 1)
        if name == "fast":
            keep.pop("pipe", None)
        if name in ("dit", "vae", "fast"):
            _free()
    if "tmp" in keep:
        keep.pop("tmp").cleanup()
    if args.memory_model:
        from engine.bench.memory_model import vae_memory_model

        report["vae_memory_model"] = vae_memory_model()
    report["total_s"] = round(time.perf_counter() - started, 1)
    return report


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not torch.cuda.is_available() and not args.tiny:
        from engine.bench.timing import environment

        report = {"bench": "gpu", **environment("cpu"), "gpu_present": False,
                  "note": "no GPU: nothing measured; run `python -m engine bench gpu` on one H100/H200",
                  "would_measure": list(SECTIONS), "targets": TARGETS}
        if args.memory_model:
            from engine.bench.memory_model import vae_memory_model

            report["vae_memory_model"] = vae_memory_model()
        print(json.dumps(report, indent=1))
        return 0
    print(json.dumps(run(args), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
