"""Process settings for the running studio app (called by app.py's main, not on import)."""
from __future__ import annotations

import os

THREADS_ENV = "GEN3C_STUDIO_TORCH_THREADS"


def limit_cpu_threads() -> int | None:
    """Run the app's torch work on $GEN3C_STUDIO_TORCH_THREADS intra-op threads; without that variable, on one
    thread when there is no GPU (returns the count set, None when left alone).

    The CPU work of a GPU-less studio is many small preview renders: with torch's default of one thread per core
    they wait on each other and on whatever else the cores run (measured on a shared 2-core machine: a preview
    frame with foreground masking 0.7-1.9 s median on 2 threads, 0.05-0.1 s on 1; the path video 12-17 s vs
    2-5 s). CPU-heavy work that gains from threads (MoGe depth without a GPU) is slower on one thread; set the
    variable to use more."""
    import torch

    n = positive_int_env(THREADS_ENV)
    if n is None:
        if torch.cuda.is_available():
            return None
        n = 1
    torch.set_num_threads(n)
    return n


def positive_int_env(name: str) -> int | None:
    """The whole number >= 1 in environment variable ``name``; None when unset or empty (ValueError otherwise)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if n < 1:
        raise ValueError(f"{name} must be at least 1, got {n}")
    return n
