"""Warp benchmark: `python -m engine bench warp [options]` prints one JSON object.

Times :meth:`engine.cache3d.Cache3D.render` (the fused splat behind previews and conditioning) for
``--frames`` cameras x ``--buffers`` cache buffers at each ``--sizes`` resolution in one call, then
one camera per call (interactive preview), and the
official-style reference splat (:func:`engine.warp.splat_reference`: pairs of items, ``index_put_``)
on a few frames for comparison, with the largest difference between the two. The scene is analytic
(a slanted plane, a box and a sphere cap), so no files or weights are needed.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import torch


def make_scene(height: int, width: int):
    """(image [3,H,W] in [-1,1], depth [1,H,W], K [3,3]) of an analytic test scene."""
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float32),
                          torch.arange(width, dtype=torch.float32), indexing="ij")
    depth = 3 + 2 * u / (width - 1) + 0.2 * torch.sin(2 * math.pi * v / height)
    box = (u >= 0.19 * width) & (u < 0.37 * width) & (v >= 0.23 * height) & (v < 0.57 * height)
    depth = torch.where(box, 1.5 + 0.002 * (u - 0.19 * width) * 160 / width, depth)
    r2 = ((u - 0.69 * width) ** 2 + (v - 0.62 * height) ** 2) / (0.2 * height) ** 2
    depth = torch.where(r2 < 1, 1.6 - 0.2 * torch.sqrt((1 - r2).clamp(min=0)), depth)
    checker = ((u // 8 + v // 8) % 2) * 0.24 - 0.12
    rgb = torch.stack([u / (width - 1), v / (height - 1),
                       0.5 + 0.5 * torch.sin(2 * math.pi * (u + v) / (width + height))]) * 0.8
    image = ((rgb + checker).clamp(0, 1) * 2 - 1).contiguous()
    f = 1000.0 * width / 1280
    K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=torch.float32)
    return image, depth[None], K


def make_cameras(num_frames: int, K: torch.Tensor, distance: float = 0.3):
    """A sideways arc looking back at the scene centre: w2cs [T,4,4], Ks [T,3,3]."""
    w2cs = []
    for i in range(num_frames):
        a = (i / max(1, num_frames - 1)) * distance / 2.0  # radians around y at depth 2
        c, s = math.cos(a), math.sin(a)
        R = torch.tensor([[c, 0, -s], [0, 1, 0], [s, 0, c]], dtype=torch.float32)
        centre = torch.tensor([2 * s, 0.05 * math.sin(3 * a), 2 - 2 * c], dtype=torch.float32)
        w2c = torch.eye(4)
        w2c[:3, :3] = R
        w2c[:3, 3] = -R @ centre
        w2cs.append(w2c)
    return torch.stack(w2cs), K.expand(num_frames, 3, 3).clone()


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, device, repeat):
    """Minimum wall-clock seconds over ``repeat`` runs after a warm-up, and the process CPU seconds
    of that run (all threads; less sensitive than wall time to other processes on a shared machine)."""
    fn()  # warm-up (and JIT compilation)
    _sync(device)
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        _sync(device)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if wall < best:
            best, best_cpu = wall, cpu
    _time.last_cpu = best_cpu
    return best


def bench_size(height, width, frames, buffers, device, repeat, ref_frames):
    from engine.cache3d import Cache3D
    from engine.warp import splat_reference

    image, depth, K = make_scene(height, width)
    w2cs, Ks = make_cameras(frames, K)
    cache = Cache3D(image, depth, torch.eye(4), K, frame_buffer_max=buffers)
    for n in range(1, buffers):  # extra buffers: the same scene seen from a later camera
        cache._insert(image.clone(), depth.clone(), w2cs[-1], K)  # noqa: SLF001 (bench set-up)
    cache = cache.to(device)
    w2cs_d, Ks_d = w2cs.to(device), Ks.to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    total = _time(lambda: cache.render(w2cs_d, Ks_d), device, repeat)
    renders = frames * cache.num_buffers
    row = {
        "size": f"{height}x{width}", "points": height * width, "frames": frames,
        "buffers": cache.num_buffers, "fast_total_ms": round(total * 1e3, 2),
        "fast_ms_per_frame": round(total * 1e3 / frames, 3),
        "fast_ms_per_render": round(total * 1e3 / renders, 3),
        "fast_cpu_ms_per_render": round(_time.last_cpu * 1e3 / renders, 3),
    }
    # interactive preview: one camera per call (what the studio does while a path is edited)
    picks = list(range(0, frames, max(1, frames // 16)))[:16]
    single = _time(lambda: [cache.render(w2cs_d[i:i + 1], Ks_d[i:i + 1]) for i in picks], device, repeat)
    row["single_frame_ms_per_call"] = round(single * 1e3 / len(picks), 3)
    row["single_frame_ms_per_render"] = round(single * 1e3 / (len(picks) * cache.num_buffers), 3)
    if device.type == "cuda":
        row["peak_memory_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    if ref_frames > 0:
        k = min(ref_frames, frames)
        pts, cols, valid = cache.flat_sources()
        src = torch.arange(cache.num_buffers).repeat(k)
        cams = w2cs_d[:k].repeat_interleave(cache.num_buffers, 0)
        kk = Ks_d[:k].repeat_interleave(cache.num_buffers, 0)
        ref = None

        def run_ref():
            nonlocal ref
            ref = splat_reference(pts, cols, valid, cams, kk, height, width, source_index=src)

        t_ref = _time(run_ref, device, max(1, min(repeat, 2)))
        fast_img, fast_mask = cache.render(w2cs_d[:k], Ks_d[:k])
        ref_img = ref[0].view(k, cache.num_buffers, *ref[0].shape[1:])
        ref_mask = ref[1].view(k, cache.num_buffers, *ref[1].shape[1:])
        row.update({
            "reference_frames": k,
            "reference_ms_per_render": round(t_ref * 1e3 / (k * cache.num_buffers), 3),
            "reference_cpu_ms_per_render": round(_time.last_cpu * 1e3 / (k * cache.num_buffers), 3),
            "speedup_vs_reference": round(t_ref / (k * cache.num_buffers) / (total / renders), 2),
            "max_abs_diff_vs_reference": float((fast_img - ref_img).abs().max()),
            "mask_mismatch_vs_reference": int((fast_mask != ref_mask).sum()),
        })
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine bench warp", description=__doc__)
    parser.add_argument("--frames", type=int, default=121)
    parser.add_argument("--buffers", type=int, default=2, choices=(1, 2))
    parser.add_argument("--sizes", default="704x1280,352x640", help="comma-separated HxW list")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when present)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions (minimum is reported)")
    parser.add_argument("--reference-frames", type=int, default=4,
                        help="frames rendered by the slow official-style reference (0 = skip)")
    args = parser.parse_args(argv)
    if args.frames < 1 or args.repeat < 1:
        parser.error("--frames and --repeat must be >= 1")
    torch.set_num_threads(max(1, args.threads))
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    sizes = []
    for item in args.sizes.split(","):
        try:
            h, w = (int(x) for x in item.lower().split("x"))
        except ValueError:
            parser.error(f"bad size {item!r}: expected HxW")
        sizes.append((h, w))
    from engine import warp

    result = {
        "bench": "warp", "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "cpu_kernel": warp.cpu_kernel_name() if device.type == "cpu" else "torch",
        "repeat": args.repeat, "results": [],
    }
    for h, w in sizes:
        result["results"].append(bench_size(h, w, args.frames, args.buffers, device, args.repeat,
                                            args.reference_frames))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
