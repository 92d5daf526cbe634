"""Warp benchmark: `python -m engine bench warp [options]` prints one JSON object.

Times :meth:`engine.cache3d.Cache3D.render` (the fused splat behind previews and conditioning) for
``--frames`` cameras x ``--buffers`` cache buffers at each ``--sizes`` resolution in one call, then one
camera per call (interactive preview). The scene is a bundled sample (``--sample``, exact depth) fitted
to each size, seen along the sample's suggested camera preset; a second buffer is the same image added
from the camera halfway along the path. The slow official-style reference splat is not timed here: the
parity tests compare it with the fast splat (``--reference-frames`` is accepted and ignored, so older
command lines still run).
"""
from __future__ import annotations

import argparse
import json

import torch

from engine.bench.timing import environment, measure, resolve_device
from engine.errors import InputError


def sample_cache(sample: str, height: int, width: int, frames: int, buffers: int):
    """(Cache3D on the CPU, w2cs [T,4,4], Ks [T,3,3]) of a bundled sample at height x width."""
    from engine import cameras, samples
    from engine.cache3d import Cache3D
    from engine.scene import build_scene

    image, depth = samples.load_sample(sample)
    scene = build_scene(image, depth, height=height, width=width)
    meta = samples.sample_meta(sample)
    w2cs, Ks = cameras.preset_trajectory(meta["preset"], torch.eye(4), scene.K, frames, meta["movement_distance"],
                                         meta["camera_rotation"], center_depth=float(scene.depth.median()))
    cache = Cache3D(scene.image, scene.depth, scene.w2c, scene.K, frame_buffer_max=buffers)
    mid = frames // 2  # halfway: spiral presets end where they start
    for _ in range(1, buffers):  # extra buffer: the same image seen from the camera halfway along the path
        cache.update(scene.image, scene.depth, w2cs[mid], Ks[mid], alignment=None)
    return cache, w2cs, Ks


def bench_size(sample, height, width, frames, buffers, device, repeat):
    cache, w2cs, Ks = sample_cache(sample, height, width, frames, buffers)
    cache = cache.to(device)
    w2cs_d, Ks_d = w2cs.to(device), Ks.to(device)
    total = measure(lambda: cache.render(w2cs_d, Ks_d), device, repeats=repeat)
    renders = frames * cache.num_buffers
    row = {
        "size": f"{height}x{width}", "points": height * width, "frames": frames,
        "buffers": cache.num_buffers, "fast_total_ms": round(total.min * 1e3, 2),
        "fast_total_median_ms": round(total.median * 1e3, 2), "fast_total_p95_ms": round(total.p95 * 1e3, 2),
        "fast_ms_per_frame": round(total.min * 1e3 / frames, 3),
        "fast_ms_per_render": round(total.min * 1e3 / renders, 3),
        "fast_cpu_ms_per_render": round(total.cpu_at_min * 1e3 / renders, 3),
    }
    if total.peak_memory_bytes is not None:
        row["peak_memory_gb"] = round(total.peak_memory_bytes / 1e9, 2)
    # interactive preview: one camera per call (what the studio does while a path is edited)
    picks = list(range(0, frames, max(1, frames // 16)))[:16]
    single = measure(lambda: [cache.render(w2cs_d[i:i + 1], Ks_d[i:i + 1]) for i in picks], device, repeats=repeat)
    row["single_frame_ms_per_call"] = round(single.min * 1e3 / len(picks), 3)
    row["single_frame_ms_per_render"] = round(single.min * 1e3 / (len(picks) * cache.num_buffers), 3)
    return row


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine bench warp", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=121)
    parser.add_argument("--buffers", type=int, default=2, choices=(1, 2))
    parser.add_argument("--sizes", default="704x1280,352x640", help="comma-separated HxW list")
    parser.add_argument("--sample", default="living_room", help="bundled sample scene (see `python -m engine samples`)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when present)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions (minimum, median and p95 reported)")
    parser.add_argument("--reference-frames", type=int, default=0,
                        help="ignored: the reference splat is compared by the parity tests, not timed here")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.frames < 1 or args.repeat < 1:
        parser.error("--frames and --repeat must be >= 1")
    sizes = []
    for item in args.sizes.split(","):
        try:
            h, w = (int(x) for x in item.lower().split("x"))
        except ValueError:
            parser.error(f"bad size {item!r}: expected HxW")
        sizes.append((h, w))
    from engine import samples, warp

    if args.sample not in samples.list_samples():
        parser.error(f"unknown sample {args.sample!r}; available: {', '.join(samples.list_samples())}")
    torch.set_num_threads(max(1, args.threads))
    device = resolve_device(args.device)
    result = {
        "bench": "warp", **environment(device),
        "cpu_kernel": warp.cpu_kernel_name() if device.type == "cpu" else "torch",
        "sample": args.sample, "repeat": args.repeat, "results": [],
    }
    try:
        for h, w in sizes:
            result["results"].append(bench_size(args.sample, h, w, args.frames, args.buffers, device, args.repeat))
    except InputError as exc:
        parser.error(str(exc))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
