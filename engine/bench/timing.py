"""Timing shared by the benchmarks: device sync, warm-up, repeats, statistics and the environment block."""
from __future__ import annotations

import math
import os
import platform
import statistics
import time
from dataclasses import dataclass

import torch


def sync(device) -> None:
    """Wait for the device's queued work (CUDA kernels run asynchronously); nothing to do on the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timing:
    """Seconds of each timed repeat (run order) and the process CPU seconds (all threads) of the same repeats.

    ``first_call_seconds`` is the first warm-up call (compilation, caches), None without warm-up;
    ``peak_memory_bytes`` the CUDA peak allocated during the timed repeats (None on the CPU).
    """

    seconds: list[float]
    cpu_seconds: list[float]
    first_call_seconds: float | None = None
    peak_memory_bytes: int | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def min(self) -> float:
        return min(self.seconds)

    @property
    def max(self) -> float:
        return max(self.seconds)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.seconds)

    @property
    def p95(self) -> float:
        """95th percentile, nearest rank: the smallest repeat with at least 95 % of the repeats at or below it."""
        ordered = sorted(self.seconds)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]

    @property
    def cpu_at_min(self) -> float:
        """CPU seconds of the fastest repeat (less sensitive than wall time to other processes)."""
        return self.cpu_seconds[self.seconds.index(self.min)]

    def as_dict(self) -> dict:
        """The JSON form: ``seconds`` is the median; every repeat is listed in ``seconds_all``."""
        out = {"seconds": self.median, "min_seconds": self.min, "p95_seconds": self.p95, "mean_seconds": self.mean,
               "repeats": len(self.seconds), "seconds_all": list(self.seconds),
               "first_call_seconds": self.first_call_seconds}
        if self.peak_memory_bytes is not None:
            out["peak_memory_gb"] = self.peak_memory_bytes / 1e9
        return out


def _timed_call(fn, device) -> tuple[float, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0, time.process_time() - c0


def measure(fn, device, *, warmup: int = 1, repeats: int = 3) -> Timing:
    """Call ``fn()`` ``warmup`` times (the first one timed as ``first_call_seconds``), then time ``repeats`` calls.

    The device is synchronised before and after every timed call, so queued GPU work is counted where it runs.
    """
    if warmup < 0 or repeats < 1:
        raise ValueError(f"warmup must be >= 0 and repeats >= 1 (got {warmup}, {repeats})")
    device = torch.device(device)
    sync(device)
    first = _timed_call(fn, device)[0] if warmup > 0 else None
    for _ in range(warmup - 1):
        fn()
    sync(device)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = _timed_call(fn, device)
        wall.append(w)
        cpu.append(c)
    peak = torch.cuda.max_memory_allocated(device) if cuda else None
    return Timing(wall, cpu, first, peak)


def resolve_device(name: str | None, *, prefer_cuda: bool = True) -> torch.device:
    """``None``/``"auto"`` -> cuda when present (and preferred), else cpu; anything else as given."""
    if name in (None, "auto"):
        return torch.device("cuda" if prefer_cuda and torch.cuda.is_available() else "cpu")
    return torch.device(name)


def environment(device) -> dict:
    """What a reader needs to compare runs: device, GPU name, library versions, CPU threads."""
    device = torch.device(device)
    return {
        "gpu_present": torch.cuda.is_available(), "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
        "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
    }
