"""A generation as resumable stages, whose whole state can wait on the CPU between them.

A run is a :class:`GenerationState` advanced by four stages:

- ``("begin",)``: prompt embeddings, the seed scene (``engine.scene.build_scene``, unless the run was given one),
  the 3D cache built from it, the seeded noise generator;
- ``("prepare",)``: for the current chunk, the cache update from the previous chunk's last frame (chunk k > 0),
  the cache renders, the VAE-encoded cache and first frame, and the chunk's initial noise;
- ``("denoise", stop)``: denoising steps up to ``stop`` (from where the last ``denoise`` left off);
- ``("finish",)``: decode; the chunk's frames, warps, masks and final latent (and, with ``trace``, what the
  model received) join the outputs.

The official fidelity mode (the scene's fit "official", see ``engine.official``) changes three steps: the first
chunk is conditioned on the scene's official condition frame, condition latents are rounded to bf16 (the first
chunk normalised in bf16), and decoded frames are truncated to uint8.

:meth:`engine.pipeline.Gen3CPipeline.generate` runs them all in one go. :mod:`engine.gpu_calls` runs them in GPU
calls of bounded length, the state moved to the CPU (and pickled, on ZeroGPU) between calls: the noise generator's
state, the current latent, the encoded cache and condition, the 3D cache and the fast mode's hook state all travel
with it. The stages do the same work either way, so a split run gives the same video as an unsplit one.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from engine.errors import Cancelled, InputError

STAGES = ("begin", "prepare", "denoise", "finish")
OUTPUTS = ("frames", "warps", "masks", "latents", "traces")  # what take_outputs returns, in this order

__all__ = ["OUTPUTS", "STAGES", "GenerationState", "add_timing", "cancel_requested", "frames_to_uint8",
           "run_stages", "trace_buffers"]


def add_timing(timings: dict, key: str, t0: float) -> None:
    timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0


def frames_to_uint8(video: torch.Tensor) -> np.ndarray:
    """[T,3,H,W] in [-1,1] -> uint8 [T,H,W,3] (the official round((x+1)/2*255))."""
    v = ((video.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return v.permute(0, 2, 3, 1).cpu().numpy()


def trace_buffers(trace: list, frame: int) -> tuple[torch.Tensor, torch.Tensor]:
    """What the model received for output frame ``frame`` of a traced run (``result.trace``): each cache buffer's
    render as float32 [N,3,H,W] in [-1, 1] and its mask as float32 [N,1,H,W] (1 = covered), buffer 0 newest.

    The frame is looked up in the chunk whose output shows it: consecutive chunks share one frame, which the
    output takes from the earlier chunk (the later one is conditioned on it).
    """
    from engine.images import to_model_tensor

    frame = int(frame)
    for chunk in trace:
        start, end = chunk["frames"]
        first = start if chunk["chunk"] == 0 else start + 1
        if first <= frame <= end:
            i = frame - start
            images = torch.stack([to_model_tensor(r) for r in chunk["renders"][i]])
            masks = torch.from_numpy(chunk["masks"][i].astype(np.float32))[:, None]
            return images, masks
    raise InputError(f"frame {frame} is in no traced chunk")


def _move(value, device):
    if torch.is_tensor(value):
        return value.to(device)
    if isinstance(value, tuple):
        return tuple(_move(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _move(v, device) for k, v in value.items()}
    return value


@dataclass
class GenerationState:
    """Everything a run needs between stages (built by ``Gen3CPipeline.start_generation``, inputs validated)."""

    image: np.ndarray | None  # uint8 [H,W,3], the input image as given (None when a scene was given)
    w2cs: torch.Tensor  # [T',4,4], cameras past the requested end hold the last pose
    Ks: torch.Tensor
    plan: list  # chunk frame ranges [(start, end)], from chunk_plan
    num_frames: int
    prompt: str
    negative_prompt: str
    num_steps: int
    guidance: float
    seed: int
    cfg: str
    cache: object  # engine.fast_cache.CacheSettings
    foreground_masking: bool = False
    fit: str = "crop"
    scene: object = None  # the seed engine.scene.Scene (None until "begin" when the depth is estimated)
    path: object = None  # the CameraPath the cameras came from (re-sampled with the seed K in "begin")
    noise: list | None = None  # injected unit Gaussian draws, one per chunk (None: the seeded generator)
    trace: bool = False  # keep what the model received, per chunk
    # where the run is
    begun: bool = False
    chunk: int = 0
    step: int = 0  # next denoising step of the current chunk
    # carried between stages
    embeds: tuple | None = None  # (positive, negative) [1,L,D]
    cache3d: object = None  # engine.cache3d.Cache3D
    generator: torch.Tensor | None = None  # torch.Generator state
    first: torch.Tensor | None = None  # [3,H,W] first frame of the current chunk
    last_frame: np.ndarray | None = None  # uint8 [H,W,3], the previous chunk's last frame
    inputs: dict | None = None  # the current chunk's cache_latents, condition, noise, latents, warps, masks
    chunk_trace: dict | None = None  # with trace: what the model receives in the current chunk (CPU, not moved)
    fast_state: list | None = None  # FastCache.state_dict() between denoise stages
    # finished chunks not yet collected, and seconds per stage
    frames: list = field(default_factory=list)
    warps: list = field(default_factory=list)
    masks: list = field(default_factory=list)
    latents: list = field(default_factory=list)
    traces: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)

    @property
    def num_chunks(self) -> int:
        return len(self.plan)

    @property
    def done(self) -> bool:
        return self.begun and self.chunk >= len(self.plan)

    def next_stage(self) -> tuple | None:
        """The stage to run next (denoise runs to the end of the chunk), or None when the run is done."""
        if not self.begun:
            return ("begin",)
        if self.done:
            return None
        if self.inputs is None:
            return ("prepare",)
        if self.step < self.num_steps:
            return ("denoise", self.num_steps)
        return ("finish",)

    def to(self, device) -> "GenerationState":
        """Move every carried tensor (3D cache included) to ``device``, in place; returns self."""
        self.embeds = _move(self.embeds, device)
        self.first = _move(self.first, device)
        self.inputs = _move(self.inputs, device)
        if self.cache3d is not None:
            self.cache3d.to(device)
        return self

    @property
    def official(self) -> bool:
        return self.fit == "official"

    def take_outputs(self) -> tuple[list, list, list, list, list]:
        """The finished chunks' outputs since the last call (``OUTPUTS``: frames, warps, masks, latents,
        traces); they leave the state."""
        out = (self.frames, self.warps, self.masks, self.latents, self.traces)
        self.frames, self.warps, self.masks, self.latents, self.traces = [], [], [], [], []
        return out


def cancel_requested(cancel) -> bool:
    """Whether `cancel` (an Event, an object with is_set(), or a callable) asks to stop."""
    if cancel is None:
        return False
    return bool(cancel.is_set()) if hasattr(cancel, "is_set") else bool(cancel())


class _Run:
    """Progress reports and cancel checks of one stage sequence."""

    def __init__(self, state, progress, cancel):
        self.state, self.progress, self.cancel = state, progress, cancel

    def report(self, stage, chunk, step=0):
        if self.progress is not None:
            self.progress(dict(stage=stage, chunk=chunk, num_chunks=self.state.num_chunks, step=step,
                               num_steps=self.state.num_steps))

    def check(self, chunk):
        if cancel_requested(self.cancel):
            raise Cancelled(f"generation cancelled in chunk {chunk + 1} of {self.state.num_chunks}")


def _begin(pipe, st: GenerationState, run: _Run) -> None:
    if st.begun:
        raise InputError("begin stage on a run that has begun")
    run.report("text", 0)
    t0 = time.perf_counter()
    st.embeds = pipe.encode_prompts(st.prompt, st.negative_prompt)
    add_timing(st.timings, "text", t0)
    run.check(0)
    if st.scene is None:
        run.report("depth", 0)
        t0 = time.perf_counter()
        st.scene = pipe.seed_scene(st.image, None, st.fit)
        add_timing(st.timings, "depth", t0)
        run.check(0)
        if st.path is not None:  # sampled again with the seed camera's K, now known
            st.w2cs, st.Ks = pipe.cameras_for_run(st.path, st.num_frames, st.scene.K)
    st.first = st.scene.condition
    st.cache3d = st.scene.cache(pipe.frame_buffer_max, st.foreground_masking, device=pipe.device)
    st.generator = torch.Generator().manual_seed(st.seed).get_state()
    st.begun = True


def _prepare(pipe, st: GenerationState, run: _Run) -> None:
    from engine.images import to_model_tensor, to_uint8

    if not st.begun or st.done or st.inputs is not None:
        raise InputError("prepare stage out of order (run not begun, done, or the chunk already prepared)")
    k = st.chunk
    start, end = st.plan[k]
    run.check(k)
    if k > 0:
        run.report("update", k)
        t0 = time.perf_counter()
        last_uint8 = st.last_frame
        st.first = to_model_tensor(last_uint8)
        new_depth = pipe.frame_depth(last_uint8)
        st.cache3d.update(st.first, new_depth, st.w2cs[start], st.Ks[start], alignment="non_rigid")
        add_timing(st.timings, "update", t0)
        run.check(k)
    run.report("render", k)
    t0 = time.perf_counter()
    images, masks = st.cache3d.render(st.w2cs[start:end + 1].to(pipe.device), st.Ks[start:end + 1].to(pipe.device))
    if pipe.placement == "low_memory" and pipe.device.type == "cuda":
        # full-size renders are ~3.5 GB in float32; they wait on the host, buffer by buffer to the VAE
        images, masks = images.cpu(), masks.cpu()
    add_timing(st.timings, "render", t0)
    run.check(k)
    if st.noise is not None:
        noise = st.noise[k]
    else:
        generator = torch.Generator()
        generator.set_state(st.generator)
        noise = torch.randn(pipe.latent_shape(), generator=generator)
        st.generator = generator.get_state()
    run.report("denoise", k)
    t0 = time.perf_counter()
    cache_latents = pipe.encode_cache(images, masks)
    condition = pipe.encode_condition(st.first, official=st.official, first_chunk=k == 0)
    add_timing(st.timings, "encode", t0)
    keep = slice(0 if k == 0 else 1, None)
    st.inputs = dict(cache_latents=cache_latents, condition=condition, noise=noise, latents=None,
                     warps=frames_to_uint8(images[:, 0].float().cpu())[keep],
                     masks=(masks[:, 0, 0] > 0.5).cpu().numpy()[keep])
    if st.trace:
        st.chunk_trace = dict(
            chunk=k, frames=(start, end), w2cs=st.w2cs[start:end + 1].clone(), Ks=st.Ks[start:end + 1].clone(),
            renders=to_uint8(images.float().cpu()), masks=(masks[:, :, 0] > 0.5).cpu().numpy(),
            cache_latents=cache_latents.detach().float().cpu(), condition_latent=condition.detach().float().cpu(),
            condition_frame=st.first.detach().float().cpu().clone(), update_camera_index=None if k == 0 else start)
    st.step = 0
    st.fast_state = None


def _denoise(pipe, st: GenerationState, run: _Run, stop: int) -> None:
    if st.inputs is None:
        raise InputError("denoise stage before the chunk was prepared")
    if not st.step < stop <= st.num_steps:
        raise InputError(f"denoise to step {stop}: the chunk is at step {st.step} of {st.num_steps}")
    k, inp = st.chunk, st.inputs

    def step_progress(step, steps):
        run.report("denoise", k, step)

    t0 = time.perf_counter()
    latents, st.fast_state = pipe.denoise_steps(
        inp["noise"], inp["condition"], inp["cache_latents"], *st.embeds, num_steps=st.num_steps,
        guidance=st.guidance, seed=st.seed, cfg=st.cfg, start_step=st.step, stop_step=stop,
        latents=inp["latents"], cache=st.cache, cache_state=st.fast_state, progress=step_progress,
        cancel=run.cancel)
    add_timing(st.timings, "denoise", t0)
    inp["latents"] = latents
    st.step = stop


def _finish(pipe, st: GenerationState, run: _Run) -> None:
    if st.inputs is None or st.step != st.num_steps:
        raise InputError("finish stage before the chunk's denoising ended")
    k, inp = st.chunk, st.inputs
    t0 = time.perf_counter()
    video = pipe.decode_latents(inp["latents"])
    add_timing(st.timings, "decode", t0)
    keep = slice(0 if k == 0 else 1, None)
    if st.official:
        from engine.official import truncate_to_uint8

        frames = truncate_to_uint8(video)
    else:
        frames = frames_to_uint8(video)
    del video
    st.frames.append(frames[keep])
    st.warps.append(inp["warps"])
    st.masks.append(inp["masks"])
    st.latents.append(inp["latents"].detach().to("cpu"))
    if st.chunk_trace is not None:
        st.traces.append(st.chunk_trace)
        st.chunk_trace = None
    st.last_frame = frames[-1]
    st.inputs = None
    st.fast_state = None
    st.chunk += 1
    st.step = 0
    run.report("chunk_done", k, st.num_steps)
    if st.done:
        run.report("done", st.num_chunks - 1, st.num_steps)


_STAGE_FUNCTIONS = {"begin": _begin, "prepare": _prepare, "denoise": _denoise, "finish": _finish}


def run_stages(pipe, state: GenerationState, stages, progress=None, cancel=None) -> GenerationState:
    """Run ``stages`` (tuples like ``("denoise", 20)``; None = every remaining stage) on ``state``, in place."""
    run = _Run(state, progress, cancel)
    if stages is None:
        while (stage := state.next_stage()) is not None:
            _STAGE_FUNCTIONS[stage[0]](pipe, state, run, *stage[1:])
        return state
    for stage in stages:
        name, *args = stage
        if name not in _STAGE_FUNCTIONS:
            raise InputError(f"unknown generation stage {name!r}; expected one of {', '.join(STAGES)}")
        _STAGE_FUNCTIONS[name](pipe, state, run, *args)
    return state
