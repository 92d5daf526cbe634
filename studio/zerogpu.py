"""Hugging Face Spaces with ZeroGPU: the models load at import, generation runs as GPU calls within a budget.

Active on a ZeroGPU Space (Spaces sets ``SPACES_ZERO_GPU``) or when asked (``GEN3C_ZEROGPU=1``); elsewhere nothing
loads at import and the studio starts without weights, as usual. ``app.py`` imports this module first (``spaces``
must be imported before anything initialises CUDA) and calls :func:`load_at_import`.

Weights: ``$GEN3C_WEIGHTS`` (a converted folder, see the README), or ``$GEN3C_WEIGHTS_REPO``, a Hugging Face model
repository holding such a folder, downloaded at import. Each generation is cut into GPU calls by
``engine.gpu_calls`` (budget ``$GEN3C_GPU_BUDGET_S``, default 120 s, at most ~300 s); each call is one
``spaces.GPU`` call asking for the time its steps are estimated to take. Off Spaces, ``spaces.GPU`` passes the
function through unchanged.
"""
from __future__ import annotations

import os

from engine.gpu_calls import GpuCallSettings, generate_in_calls

try:
    import spaces

    GPU = spaces.GPU
except ImportError:  # the studio runs without the package; no GPU calls to mark then
    def GPU(task=None, **_):
        return task if task is not None else (lambda fn: fn)

ENABLE_ENV = "GEN3C_ZEROGPU"
WEIGHTS_REPO_ENV = "GEN3C_WEIGHTS_REPO"
_pipeline = None


def _truthy(value) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


def enabled(environ=None) -> bool:
    """Running on a ZeroGPU Space, or asked to behave as one."""
    env = os.environ if environ is None else environ
    return _truthy(env.get("SPACES_ZERO_GPU")) or _truthy(env.get(ENABLE_ENV))


def active() -> bool:
    """Generation goes through GPU calls: enabled, and the models are loaded."""
    return _pipeline is not None


def weights_folder(weights_dir=None, environ=None):
    """``weights_dir``, else $GEN3C_WEIGHTS_REPO downloaded from the hub, else None (the engine's default search)."""
    env = os.environ if environ is None else environ
    if weights_dir:
        return weights_dir
    repo = env.get(WEIGHTS_REPO_ENV)
    if repo:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id=repo)
    return None


def load_at_import(weights_dir=None, environ=None):
    """On ZeroGPU: load every model now (ZeroGPU moves them onto each call's GPU). Returns the pipeline, or None
    when not enabled or the weights are incomplete (the studio then says what is missing)."""
    global _pipeline
    if not enabled(environ):
        return None
    import torch

    from engine import models
    from engine.pipeline import Gen3CPipeline

    status = models.find_weights(weights_folder(weights_dir, environ))
    if not status.ok:
        return None
    if environ is None:  # the rest of the studio (weights status, --weights default) finds the same folder
        os.environ.setdefault("GEN3C_WEIGHTS", str(status.root))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    _pipeline = Gen3CPipeline.from_pretrained(status.root, device=device, placement="resident")
    try:
        _pipeline.preload()
    except FileNotFoundError:  # no MoGe weights: depth from files and samples still works
        pass
    return _pipeline


def unload() -> None:
    """Drop the import-time models (generation falls back to the studio's own pipeline)."""
    global _pipeline
    _pipeline = None


def _call_seconds(state, stages, seconds):
    return seconds


@GPU(duration=_call_seconds)
def _gpu_call(state, stages, seconds):
    """One GPU call: run ``stages`` on the import-time pipeline; the state comes back on the CPU."""
    return _pipeline.run_stages(state, stages, offload=True)


def generate(image, cameras, num_frames, *, progress=None, cancel=None, **settings):
    """``Gen3CPipeline.generate`` in GPU calls that each fit ``$GEN3C_GPU_BUDGET_S``; same arguments and result."""
    if _pipeline is None:
        raise RuntimeError("ZeroGPU generation needs load_at_import() to have loaded the models")
    return generate_in_calls(_pipeline, image, cameras, num_frames, settings=GpuCallSettings.from_env(),
                             call=_gpu_call, progress=progress, cancel=cancel, **settings)
