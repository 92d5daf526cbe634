"""Generation in GPU calls of bounded length (Hugging Face ZeroGPU), split by denoising-step ranges.

ZeroGPU lends a GPU per decorated call (``spaces.GPU(duration=...)``) and refuses calls past about 300 s
(``ZEROGPU_MAX_CALL_S``); a GEN3C chunk needs far longer there. :func:`plan_gpu_calls` cuts a chunk's denoising
steps into ranges whose calls each fit a budget, and :func:`generate_in_calls` runs the generation's stages
(:mod:`engine.resumable`) call by call: the first call of a chunk also prepares it (renders, VAE encodes; chunk 0
also embeds the prompt and estimates depth), the last one also decodes it. Between calls the whole state (the
current latent, the noise generator, the encoded cache, the 3D cache, the fast mode's hook state) waits on the CPU,
so the split run gives exactly the unsplit result.

Default step time: ZeroGPU's H200 slice has 60 SMs (``spaces`` reports a "NVIDIA H200 MIG 3g.71gb" with 60
multiprocessors), about 45 % of an H100 SXM's 132. A step is 2 DiT forwards; stock diffusers measured 4.42 s per
forward on an H100 (performance reference, sec. 3), so a step there is ~8.84 s x 132 / 60 = 19.4 s, assuming time
scales with the SM count (the slice's memory bandwidth is not counted: an estimate).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from engine.errors import InputError

ZEROGPU_MAX_CALL_S = 300.0  # ZeroGPU refuses longer calls
ZEROGPU_SM_SHARE = 60 / 132  # the H200 slice's SMs / an H100 SXM's
H100_FORWARD_S = 4.42  # stock diffusers DiT forward at 56,320 tokens, bf16, one H100 (measured)
DEFAULT_BUDGET_S = 120.0
DEFAULT_OVERHEAD_S = 20.0  # per call: GPU hand-over, and in the first / last call the VAE encodes / decode
BUDGET_ENV = "GEN3C_GPU_BUDGET_S"
STEP_ENV = "GEN3C_STEP_SECONDS"
OVERHEAD_ENV = "GEN3C_GPU_OVERHEAD_S"

__all__ = ["BUDGET_ENV", "DEFAULT_BUDGET_S", "GpuCallSettings", "OVERHEAD_ENV", "STEP_ENV", "ZEROGPU_MAX_CALL_S",
           "estimate_step_seconds", "generate_in_calls", "plan_gpu_calls"]


def estimate_step_seconds(h100_forward_s: float = H100_FORWARD_S, sm_share: float = ZEROGPU_SM_SHARE,
                          passes: int = 2) -> float:
    """Seconds of one denoising step (``passes`` DiT forwards) on a GPU with ``sm_share`` of an H100's SMs."""
    return h100_forward_s * passes / sm_share


def _positive(name: str, value, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise InputError(f"{name} must be a finite number {'>=' if allow_zero else '>'} 0, got {value!r}")
    return v


def plan_gpu_calls(num_steps: int, step_seconds: float, budget_s: float, overhead_s: float = 0.0) -> list:
    """Step ranges ``[(start, stop), ...]`` covering ``range(num_steps)``, one per GPU call, each call fitting
    ``budget_s`` = ``overhead_s`` + steps x ``step_seconds``; as few calls as possible, sizes balanced.

    A single step that does not fit the budget is refused with an InputError saying what to change.
    """
    if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 1:
        raise InputError(f"steps must be a positive integer, got {num_steps!r}")
    step = _positive("step seconds", step_seconds)
    budget = _positive("GPU budget", budget_s)
    overhead = _positive("call overhead", overhead_s, allow_zero=True)
    per_call = math.floor((budget - overhead) / step + 1e-9)  # tolerance: exact fits stay fits
    if per_call < 1:
        raise InputError(f"one denoising step ({step:.1f} s) plus the call overhead ({overhead:.1f} s) does not fit "
                         f"the GPU budget of {budget:.1f} s per call: raise {BUDGET_ENV} (ZeroGPU allows up to "
                         f"~{ZEROGPU_MAX_CALL_S:.0f} s) or lower {STEP_ENV} / {OVERHEAD_ENV}")
    calls = math.ceil(num_steps / per_call)
    base, extra = divmod(num_steps, calls)
    ranges, start = [], 0
    for i in range(calls):
        stop = start + base + (1 if i < extra else 0)
        ranges.append((start, stop))
        start = stop
    return ranges


@dataclass(frozen=True)
class GpuCallSettings:
    """Budget per GPU call, estimated seconds per denoising step and per-call overhead."""

    budget_s: float = DEFAULT_BUDGET_S
    step_seconds: float = estimate_step_seconds()
    overhead_s: float = DEFAULT_OVERHEAD_S

    @classmethod
    def from_env(cls, environ=None, max_call_s: float | None = ZEROGPU_MAX_CALL_S) -> "GpuCallSettings":
        """From $GEN3C_GPU_BUDGET_S, $GEN3C_STEP_SECONDS, $GEN3C_GPU_OVERHEAD_S (defaults where unset)."""
        env = os.environ if environ is None else environ
        budget = _positive(BUDGET_ENV, env.get(BUDGET_ENV) or DEFAULT_BUDGET_S)
        if max_call_s is not None and budget > max_call_s:
            raise InputError(f"{BUDGET_ENV}={budget:g} s: ZeroGPU refuses calls past about {max_call_s:.0f} s")
        return cls(budget_s=budget, step_seconds=_positive(STEP_ENV, env.get(STEP_ENV) or estimate_step_seconds()),
                   overhead_s=_positive(OVERHEAD_ENV, env.get(OVERHEAD_ENV) or DEFAULT_OVERHEAD_S, allow_zero=True))

    def plan(self, num_steps: int) -> list:
        return plan_gpu_calls(num_steps, self.step_seconds, self.budget_s, self.overhead_s)

    def call_seconds(self, steps: int) -> float:
        """The duration to ask for a call of ``steps`` steps (within the budget by construction)."""
        return min(self.budget_s, self.overhead_s + steps * self.step_seconds)


def call_plan(num_chunks: int, ranges: list) -> list:
    """The stages of each GPU call of a run: ``[(stages, steps), ...]`` in order (see engine.resumable)."""
    calls = []
    for k in range(num_chunks):
        for i, (start, stop) in enumerate(ranges):
            stages = [("begin",)] if k == 0 and i == 0 else []
            if i == 0:
                stages.append(("prepare",))
            stages.append(("denoise", stop))
            if i == len(ranges) - 1:
                stages.append(("finish",))
            calls.append((stages, stop - start))
    return calls


def generate_in_calls(pipe, image_uint8, cameras, num_frames: int, *, settings: GpuCallSettings | None = None,
                      call=None, progress=None, cancel=None, **generate_kwargs):
    """``pipe.generate(...)`` as a sequence of GPU calls, each within ``settings.budget_s``.

    ``call(state, stages, seconds) -> state`` runs one GPU call (e.g. a ``spaces.GPU``-decorated function, with
    ``seconds`` as its duration); it must return the state with every tensor on the CPU. Default: in this
    process, ``pipe.run_stages(state, stages, offload=True)``. ``progress(dict(stage, chunk, num_chunks, step,
    num_steps, call, num_calls))`` after each call (stage "denoise", "done" after the last); ``cancel`` is checked
    between calls.
    """
    from engine.errors import Cancelled
    from engine.resumable import OUTPUTS, cancel_requested

    settings = settings or GpuCallSettings()
    state = pipe.start_generation(image_uint8, cameras, num_frames, **generate_kwargs)
    calls = call_plan(state.num_chunks, settings.plan(state.num_steps))
    if call is None:
        def call(st, stages, seconds):
            return pipe.run_stages(st, stages, offload=True)
    outputs = tuple([] for _ in OUTPUTS)  # frames, warps, masks, latents, traces
    for i, (stages, steps) in enumerate(calls):
        if cancel_requested(cancel):
            raise Cancelled(f"generation cancelled before GPU call {i + 1} of {len(calls)}")
        state = call(state, stages, settings.call_seconds(steps))
        for collected, new in zip(outputs, state.take_outputs()):
            collected.extend(new)
        if progress is not None:
            last = i + 1 == len(calls)
            progress(dict(stage="done" if last else "denoise", call=i + 1, num_calls=len(calls),
                          chunk=min(state.chunk, state.num_chunks - 1), num_chunks=state.num_chunks,
                          step=state.num_steps if last else state.step, num_steps=state.num_steps))
    return pipe.result(state, outputs)
