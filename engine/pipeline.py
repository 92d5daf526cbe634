"""GEN3C generation: one 3D-cache-conditioned chunk, and long videos chunk after chunk.

Everything shape-related (resolution, chunk length, latent channels, compression, fps, sigma_data) comes from the
weights folder (``gen3c.json`` and the model configs), never from constants, so the tiny test models run the same
code at e.g. 64x128 with 17-frame chunks.

One chunk (official ``gen3c_single_image.py``): render the cache along the chunk's cameras; VAE-encode every
buffer's RGB warp and its mask (2m - 1, 3 channels) -> ``[rgb_0 | mask_0 | rgb_1 | mask_1]`` (absent buffers are
zero latents); encode ``[first frame, zeros ...]`` as the condition latent; run :func:`engine.sampler.sample_latents`;
decode.

Long videos: chunk k covers frames [(C-1)k, (C-1)k + C - 1]; consecutive chunks share one frame. Chunk k > 0 starts
from the last frame of chunk k-1 (after a uint8 round trip), whose depth (MoGe or the given estimator) is aligned
into the cache (``Cache3D.update``, official non-rigid alignment) at the camera of frame (C-1)k; the chunk is joined
without its duplicate first frame.

Frame counts that are not (C-1)N + 1: the camera path is sampled for exactly the requested T frames (so frame i is
where the user put it and the path ends where the user ended it), N = ceil((T-1)/(C-1)) chunks are generated, the
cameras past T hold the last pose, and the extra tail frames are dropped. The output always has T frames.

Seeding: one ``torch.Generator`` (CPU) seeded once per ``generate``; each chunk's initial noise continues it, so a
seed gives the same video on any device. The augmentation noise is the official numpy draw from the same seed.

Memory placement plan (GPU; the figures are the official model sizes and published peaks for a 121-frame 704x1280
chunk, and arithmetic on them, not this project's measurement):

- ``"low_memory"`` (target: a 121-frame 704x1280 generation within 24 GB):
  the DiT stays resident in bf16 (7.24 B params = 14.5 GB); one forward peaks at 19.6 GB, i.e. ~5 GB of
  activations at batch 1 (so cond and uncond run as two batch-1 passes, never batch 2). The text encoder
  (T5-11B encoder ~4.8 B params, ~9.6 GB bf16) runs only when a prompt is not in the embedding cache; while it
  runs the DiT is parked on the CPU (14.5 + 9.6 would not fit next to activations), then T5 is released and the
  DiT moved back; embeddings (512 x 1024 each) are kept. The VAE (~0.2 GB weights) streams in time, one latent
  frame at a time with its causal state carried (``engine.models.vae_stream``, exact): an untiled decode of
  121x704x1280 peaks at 29.8 GB, a streamed one needs ~2-5 GB (arithmetic in that module), within the ~9 GB left
  next to the resident DiT. MoGe (ViT-L, ~1.3 GB fp32) is loaded for each depth estimate and released right after.
  The chunk's cache renders (121 x 2 buffers x 704 x 1280, RGB + mask, float32 = ~3.5 GB) are moved to the
  host right after rendering and sent to the VAE one buffer video at a time (0.65 GB in bf16).
  Peak = DiT forward 19.6 GB + latents (16 x 16 x 88 x 160 fp32 = 14 MB each, a handful) -> ~20 GB, provided
  the streamed VAE encode/decode peaks below ~5 GB next to the resident DiT (``python -m engine bench gpu``
  measures it).
  ``torch.cuda.empty_cache`` runs only on cancel and at the end of a run.
- ``"resident"``: DiT, VAE (untiled), text encoder and MoGe all stay on the GPU between calls
  (14.5 + 9.6 + 1.3 + 0.2 GB weights, VAE decode peak 29.8 GB -> fits an 80 GB card, not a 24 GB one).

Validation: :meth:`Gen3CPipeline.generate` is an entry point and checks every argument with
:mod:`engine.validate` before any work; the steps after it trust those values.
"""
from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine import validate
from engine.depth import call_estimator
from engine.errors import Cancelled, InputError, WeightsMissingError
from engine.generation_inputs import check_fit, check_noise, check_scene
from engine.resumable import GenerationState, add_timing as _add, run_stages
from engine.sampler import sample_latents

DEFAULT_NEGATIVE = (
    "The video captures a series of frames showing ugly scenes, static with no motion, motion blur, "
    "over-saturation, shaky footage, low resolution, grainy texture, pixelated images, poorly lit areas, "
    "underexposed and overexposed scenes, poor color balance, washed out colors, choppy sequences, "
    "jerky movements, low frame rate, artifacting, color banding, unnatural transitions, outdated special "
    "effects, fake elements, unconvincing visuals, poorly edited content, jump cuts, visual noise, and "
    "flickering. Overall, the video is of poor quality."
)
PLACEMENTS = ("auto", "low_memory", "resident")
LOW_MEMORY_VAE_STREAM = 1  # latent frames per streamed VAE piece in the low_memory placement
RESIDENT_MIN_GPU_BYTES = 60 * 1024**3  # DiT + T5 + MoGe weights and an untiled VAE decode peak (~56 GB)


def resolve_placement(placement: str, device: torch.device) -> str:
    """``"auto"``: everything resident (exact, untiled VAE) on a GPU with >= 60 GiB, else ``"low_memory"``."""
    if placement not in PLACEMENTS:
        raise InputError(f"unknown placement {placement!r}; expected one of {', '.join(PLACEMENTS)}")
    if placement != "auto":
        return placement
    if device.type == "cuda" and torch.cuda.get_device_properties(device).total_memory >= RESIDENT_MIN_GPU_BYTES:
        return "resident"
    return "low_memory" if device.type == "cuda" else "resident"

__all__ = ["DEFAULT_NEGATIVE", "PLACEMENTS", "Gen3CPipeline", "GenerationResult", "chunk_plan"]


@dataclass
class GenerationResult:
    """A finished generation: uint8 frames, the buffer-0 warps and masks the model saw, and bookkeeping."""

    frames: np.ndarray  # uint8 [T,H,W,3]
    warps: np.ndarray  # uint8 [T,H,W,3], cache buffer 0 (newest), holes black
    masks: np.ndarray  # bool [T,H,W], buffer 0 coverage
    fps: int
    seed: int
    timings: dict = field(default_factory=dict)
    latents: list | None = None  # each chunk's final latent [1,C,t,h,w] (float32, CPU)
    trace: list | None = None  # with generate(trace=True): what the model received, one dict per chunk (API.md)


def chunk_plan(num_frames: int, chunk_frames: int) -> list[tuple[int, int]]:
    """Frame ranges [start, end] (inclusive) of each chunk; the last may run past ``num_frames - 1``."""
    chunk_frames = validate.integer(chunk_frames, "chunk length", 2)
    num_frames = validate.frame_count(num_frames, "frames")
    step = chunk_frames - 1
    n = math.ceil((num_frames - 1) / step)
    return [(k * step, k * step + step) for k in range(n)]


def _release(obj) -> None:
    if obj is not None and hasattr(obj, "release"):
        obj.release()


class Gen3CPipeline:
    """Image + camera path -> video with the GEN3C DiT. Build with :meth:`from_pretrained`."""

    def __init__(self, config, transformer, vae, *, text_encoder_loader: Callable | None = None,
                 depth_estimator=None, depth_estimator_loader: Callable | None = None,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 placement: str = "low_memory", batch_cfg: bool = False, branch_runner=None, parallel=None,
                 cache=None):
        from engine.fast_cache import CacheSettings

        placement = resolve_placement(placement, torch.device(device))
        self.cache = CacheSettings.of(cache)  # fast mode (approximate) used when generate() gets none
        self.config = config
        self.transformer = transformer
        self.vae = vae
        self.device = torch.device(device)
        self.dtype = dtype
        self.placement = placement
        self.batch_cfg = batch_cfg
        self._text_encoder_loader = text_encoder_loader
        self._text_encoder = None
        self._embeddings: dict[str, torch.Tensor] = {}
        self._depth_estimator = depth_estimator
        self._depth_estimator_loader = depth_estimator_loader
        self._owns_depth_estimator = depth_estimator is None
        self.branch_runner = branch_runner  # the sampler's BranchRunner (None: run_branches)
        self.parallel = parallel  # the engine.parallel.ParallelSession, or None in a single process

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(cls, weights_dir=None, device=None, dtype=None, placement: str = "auto",
                        depth_estimator=None, batch_cfg: bool = False, zero_text: bool = False,
                        attention: str | None = "auto", text_cache_dir="default", parallel=None,
                        cache=None) -> "Gen3CPipeline":
        """Load the weights folder (``weights_dir``, else $GEN3C_WEIGHTS, else ./weights; layout in engine/API.md).

        ``device`` defaults to CUDA when present; ``dtype`` to bf16 on CUDA and float32 on CPU.
        ``depth_estimator``: a ``MoGeEstimator``-like object (``.estimate``) or a callable
        ``image_uint8 -> DepthResult``; default: MoGe from ``<weights>/moge/model.pt``, loaded when needed.
        ``zero_text=True`` uses all-zero prompt embeddings (the official ``--disable_prompt_encoder``) and does
        not need the text encoder. ``text_cache_dir``: the text encoder's on-disk embedding cache ("default":
        the models' default folder; None: no disk cache). ``cache``: the fast mode, None / "none" (exact, default) or
        "first_block" / "mag" / "taylorseer" / an ``engine.fast_cache.CacheSettings`` (approximate: see that module).
        Missing parts raise ``WeightsMissingError`` saying what to download.
        ``parallel``: inside a torchrun job, "ulysses", "ring", "cfg", "cfg,ulysses" or "cfg,ring" (or an
        ``engine.parallel.ParallelSession``); every rank calls this, the device is ``cuda:{LOCAL_RANK}`` (or the CPU),
        and the plan is checked against the model before any weights load. See ``engine.parallel``.
        """
        from engine.fast_cache import CacheSettings

        cache = CacheSettings.of(cache)  # validate before any work
        from engine.models.config import Gen3CConfig
        from engine.models.dit import load_transformer
        from engine.models.vae import load_vae
        from engine.models.weights import find_weights

        resolve_placement(placement, torch.device("cpu"))  # validate the name before any work
        session = None
        if parallel is not None:
            from engine.parallel import ParallelSession, start_session

            session = parallel if isinstance(parallel, ParallelSession) else start_session(parallel, device)
            device = session.device
        status = find_weights(weights_dir)
        status.require("config", "transformer", "vae", *(() if zero_text else ("text_encoder", "text_tokenizer")))
        root = Path(status.root)
        device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        if dtype is None:
            dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        placement = resolve_placement(placement, device)
        config = Gen3CConfig.load(root)
        if session is not None:
            from engine.parallel import check_session_fits, read_transformer_config

            check_session_fits(session, config, read_transformer_config(root), attention or "native")
        transformer = load_transformer(root, device, dtype, attention=attention).eval()
        runner = None
        if session is not None:
            from engine.parallel import parallelize

            runner = parallelize(transformer, session, batch_cfg=batch_cfg)
        # low memory: the exact time-streamed VAE; spatial tiling (approximate) is only an explicit opt-in
        vae = load_vae(root, device, dtype, streaming=LOW_MEMORY_VAE_STREAM if placement == "low_memory" else None)

        def text_encoder_loader():
            from engine import models

            if zero_text:
                # the DiT's own text width (a folder converted without T5 cannot know it from the encoder)
                return models.ZeroTextEncoder(config.text_max_length, int(transformer.config.text_embed_dim))
            if text_cache_dir == "default":
                return models.load_text_encoder(root, device, dtype)
            return models.load_text_encoder(root, device, dtype, text_cache_dir)

        def depth_loader():
            from engine.depth import MOGE_HELP, MoGeEstimator, find_moge_weights

            path = find_moge_weights(root)
            if path is None:
                raise WeightsMissingError(MOGE_HELP)
            return MoGeEstimator(path, device=device)

        return cls(config, transformer, vae, text_encoder_loader=text_encoder_loader,
                   depth_estimator=depth_estimator, depth_estimator_loader=depth_loader, device=device,
                   dtype=dtype, placement=placement, batch_cfg=batch_cfg, branch_runner=runner, parallel=session,
                   cache=cache)

    def preload(self) -> None:
        """Load the text encoder and the depth estimator now (ZeroGPU wants every model loaded at import)."""
        if self._text_encoder is None and self._text_encoder_loader is not None:
            self._text_encoder = self._text_encoder_loader()
        if self._depth_estimator is None and self._depth_estimator_loader is not None:
            self._depth_estimator = self._depth_estimator_loader()

    # ------------------------------------------------------------------ shapes from the config
    @property
    def height(self) -> int:
        return int(self.config.height)

    @property
    def width(self) -> int:
        return int(self.config.width)

    @property
    def chunk_frames(self) -> int:
        return int(self.config.chunk_frames)

    @property
    def fps(self) -> int:
        return int(self.config.fps)

    @property
    def frame_buffer_max(self) -> int:
        return int(self.config.frame_buffer_max)

    def latent_shape(self) -> tuple[int, int, int, int, int]:
        """[1, C, t, h, w] of one chunk's latent."""
        c = int(self.config.latent_channels)
        t = 1 + (self.chunk_frames - 1) // int(self.config.temporal_compression)
        s = int(self.config.spatial_compression)
        return (1, c, t, self.height // s, self.width // s)

    # ------------------------------------------------------------------ text
    def encode_prompts(self, prompt: str, negative_prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(positive, negative) embeddings [1,L,D]; an empty negative prompt reuses the positive (official)."""
        for name, text in (("prompt", prompt), ("negative prompt", negative_prompt)):
            if not isinstance(text, str):
                raise InputError(f"{name} must be a string, got {type(text).__name__}")
        texts = [prompt] if negative_prompt == "" else [prompt, negative_prompt]
        wanted = [t for t in dict.fromkeys(texts) if t not in self._embeddings]
        if wanted:
            self._run_text_encoder(wanted)
        pos = self._embeddings[prompt]
        neg = pos if negative_prompt == "" else self._embeddings[negative_prompt]
        return pos, neg

    def _run_text_encoder(self, texts: list[str]) -> None:
        if self._text_encoder_loader is None:
            raise WeightsMissingError("no text encoder configured for this pipeline")
        park = self.placement == "low_memory" and self.device.type == "cuda"
        if park:  # T5 and the DiT together do not fit the low-memory budget
            self.transformer.to("cpu")
        try:
            if self._text_encoder is None:
                self._text_encoder = self._text_encoder_loader()
            with torch.no_grad():
                emb = self._text_encoder.encode(list(texts))
            for i, text in enumerate(texts):
                self._embeddings[text] = emb[i:i + 1].detach().to("cpu", torch.float32)
        finally:
            if self.placement == "low_memory":
                _release(self._text_encoder)
                self._text_encoder = None
            if park:
                self.transformer.to(self.device)
        while len(self._embeddings) > 8:  # keep a few recent prompts
            self._embeddings.pop(next(iter(self._embeddings)))

    # ------------------------------------------------------------------ depth
    def estimate_depth(self, image_uint8: np.ndarray):
        """DepthResult of a uint8 image at its own size (MoGe is released afterwards in low-memory mode)."""
        if self._depth_estimator is None:
            if self._depth_estimator_loader is None:
                raise WeightsMissingError("no depth estimator: pass depth= or a depth_estimator")
            self._depth_estimator = self._depth_estimator_loader()
        try:
            return call_estimator(self._depth_estimator, image_uint8)
        finally:
            if self.placement == "low_memory" and self._owns_depth_estimator:
                _release(self._depth_estimator)
                self._depth_estimator = None

    # ------------------------------------------------------------------ VAE
    def _encode(self, video: torch.Tensor) -> torch.Tensor:
        """[1,3,T,H,W] in [-1,1] -> model latents (float32) on the pipeline's device."""
        with torch.no_grad():
            return self.vae.encode(video).float().to(self.device)

    def encode_condition(self, first_frame: torch.Tensor, official: bool = False,
                         first_chunk: bool = True) -> torch.Tensor:
        """Condition latent of [first frame, zeros for the rest of the chunk].

        ``official``: as the official code makes it (``engine.official.official_condition_latent``): for the
        first chunk (bf16 clip) the normalisation runs in bf16 arithmetic, later chunks in float32, and the latent
        is rounded to bf16 either way.
        """
        clip = torch.zeros(1, 3, self.chunk_frames, self.height, self.width)
        clip[0, :, 0] = first_frame.float().cpu()
        if official:
            from engine.official import official_condition_latent

            return official_condition_latent(self.vae, clip, bf16_input=first_chunk).to(self.device)
        return self._encode(clip)

    def encode_cache(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Cache renders images [T,N,3,H,W], masks [T,N,1,H,W] -> [1, 2*C*frame_buffer_max, t, h, w]."""
        n = images.shape[1]
        if n > self.frame_buffer_max:
            raise InputError(f"cache has {n} buffers, the model takes at most {self.frame_buffer_max}")
        parts = []
        for b in range(n):
            rgb = images[:, b].permute(1, 0, 2, 3)[None].float()
            m = (masks[:, b].float() * 2 - 1).repeat(1, 3, 1, 1).permute(1, 0, 2, 3)[None]
            parts += [self._encode(rgb), self._encode(m)]
        shape = list(parts[0].shape)
        for _ in range(n, self.frame_buffer_max):
            parts += [torch.zeros(shape, device=parts[0].device), torch.zeros(shape, device=parts[0].device)]
        return torch.cat(parts, dim=1)

    # ------------------------------------------------------------------ one chunk
    def denoise_steps(self, noise: torch.Tensor, condition: torch.Tensor, cache_latents: torch.Tensor,
                      prompt_embeds: torch.Tensor, negative_embeds: torch.Tensor, *, num_steps: int,
                      guidance: float, seed: int = 1, cfg: str = "official", start_step: int = 0,
                      stop_step: int | None = None, latents: torch.Tensor | None = None, cache=None,
                      cache_state=None, progress: Callable | None = None, cancel=None):
        """Denoising steps [start_step, stop_step) of one chunk -> (latents on the device, fast-mode state).

        ``cache``: the fast mode (None: the pipeline's); ``cache_state``: the fast mode's hook state returned by
        the previous range of the same chunk (None at step 0). The state returned is None when the chunk's last
        step ran or no fast mode is on; otherwise it is on the CPU, for the next range.
        """
        from engine.fast_cache import CacheSettings, fast_cache

        settings = self.cache if cache is None else CacheSettings.of(cache)
        with fast_cache(self.transformer, settings, num_steps) as fc:
            runner = self.branch_runner  # CFG/context parallel, or None
            if fc is not None:
                fc.load_state_dict(cache_state)
                # one cache context per branch, inside whatever evaluates this rank's branches
                runner = fc.branch_runner() if runner is None else runner.with_inner(fc.branch_runner())
            stop = num_steps if stop_step is None else stop_step
            out = sample_latents(
                self.transformer, noise.to(self.device), condition.to(self.device), cache_latents.to(self.device),
                prompt_embeds.to(self.device), negative_embeds.to(self.device), num_steps=num_steps,
                guidance=guidance, fps=self.fps, augment_seed=seed, cfg=cfg, sigma_data=float(self.config.sigma_data),
                augment_sigma=float(self.config.augment_sigma), batch_cfg=self.batch_cfg,
                branch_runner=runner, progress=progress, cancel=cancel,
                start_step=start_step, stop_step=stop, latents=latents)
            state = fc.state_dict() if fc is not None and stop < num_steps else None
        return out, state

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """One chunk's final latents -> video [T,3,H,W] in [-1,1] (CPU float)."""
        with torch.no_grad():
            # float32 latents: the VAE wrapper un-normalises them before casting to its own dtype
            return self.vae.decode(latents.to(self.device)).float()[0].permute(1, 0, 2, 3).cpu()

    def generate_chunk(self, first_frame: torch.Tensor, images: torch.Tensor, masks: torch.Tensor,
                       prompt_embeds: torch.Tensor, negative_embeds: torch.Tensor, noise: torch.Tensor, *,
                       num_steps: int, guidance: float, seed: int = 1, cfg: str = "official",
                       progress: Callable | None = None, cancel=None, timings: dict | None = None,
                       cache=None, official: bool = False, first_chunk: bool = True) -> torch.Tensor:
        """One chunk: first frame [3,H,W] in [-1,1] + cache renders -> video [T,3,H,W] in [-1,1] (CPU float).

        ``official`` / ``first_chunk``: the condition latent as ``encode_condition`` makes it in the official mode.
        """
        timings = {} if timings is None else timings
        t0 = time.perf_counter()
        cache_latents = self.encode_cache(images, masks)
        condition = self.encode_condition(first_frame, official, first_chunk)
        _add(timings, "encode", t0)
        t0 = time.perf_counter()
        latents, _ = self.denoise_steps(noise, condition, cache_latents, prompt_embeds, negative_embeds,
                                        num_steps=num_steps, guidance=guidance, seed=seed, cfg=cfg, cache=cache,
                                        progress=progress, cancel=cancel)
        del cache_latents, condition
        _add(timings, "denoise", t0)
        t0 = time.perf_counter()
        video = self.decode_latents(latents)
        del latents
        _add(timings, "decode", t0)
        return video

    # ------------------------------------------------------------------ long video
    def start_generation(self, image_uint8, cameras, num_frames: int, prompt: str = "",
                         negative_prompt: str = DEFAULT_NEGATIVE, num_steps: int = 35, guidance: float = 1.0,
                         seed: int = 1, cfg: str = "official", depth=None, foreground_masking: bool = False,
                         fit: str | None = None, cache=None, noise=None, trace: bool = False) -> GenerationState:
        """A validated, not yet begun run (:class:`engine.resumable.GenerationState`); see :meth:`generate`.

        Advance it with :meth:`run_stages`; nothing heavy runs here (a seed scene from a given depth is built).
        """
        from engine.fast_cache import CacheSettings
        from engine.scene import Scene

        num_frames = validate.frame_count(num_frames, "frames", height=self.height, width=self.width)
        plan = chunk_plan(num_frames, self.chunk_frames)
        options = validate.sampling_options(num_steps, guidance, cfg, seed, names={"num_steps": "steps"})
        num_steps, guidance, seed, cfg = options.num_steps, options.guidance, options.seed, options.cfg
        prompt = validate.prompt(prompt)
        negative_prompt = "" if negative_prompt is None else validate.prompt(negative_prompt, "negative prompt")
        settings = self.cache if cache is None else CacheSettings.of(cache)
        if isinstance(image_uint8, Scene):
            scene, image_uint8 = check_scene(image_uint8, depth, fit, self.height, self.width), None
        else:
            image_uint8 = validate.uint8_image(image_uint8)
            fit = check_fit("crop" if fit is None else fit)
            # a given depth needs no model: the seed scene is built (and checked) now; MoGe runs in "begin"
            scene = None if depth is None else self.seed_scene(image_uint8, depth, fit)
        noise = check_noise(noise, len(plan), self.latent_shape())
        path = cameras if hasattr(cameras, "sample") else None
        w2cs, Ks = self.cameras_for_run(cameras, num_frames, None if scene is None else scene.K)
        return GenerationState(image=image_uint8, w2cs=w2cs, Ks=Ks, plan=plan, num_frames=int(num_frames),
                               prompt=prompt, negative_prompt=negative_prompt, num_steps=int(num_steps),
                               guidance=float(guidance), seed=int(seed), cfg=cfg, cache=settings,
                               foreground_masking=bool(foreground_masking), fit=fit if scene is None else scene.fit,
                               scene=scene, path=path, noise=noise, trace=bool(trace))

    def run_stages(self, state: GenerationState, stages=None, progress: Callable | None = None, cancel=None,
                   offload: bool = False) -> GenerationState:
        """Advance ``state`` by ``stages`` (None: to the end); see :mod:`engine.resumable`.

        ``offload=True`` moves the state to the CPU afterwards (between GPU calls).
        """
        try:
            run_stages(self, state, stages, progress=progress, cancel=cancel)
        finally:
            if offload:
                state.to("cpu")
        return state

    def result(self, state: GenerationState, outputs=None) -> GenerationResult:
        """The finished run's GenerationResult; ``outputs``: (frames, warps, masks, latents) collected earlier."""
        if not state.done:
            raise InputError(f"the run is not finished (chunk {state.chunk + 1} of {state.num_chunks})")
        frames, warps, masks, latents, traces = outputs if outputs is not None else state.take_outputs()
        n = state.num_frames
        return GenerationResult(frames=np.concatenate(frames)[:n], warps=np.concatenate(warps)[:n],
                                masks=np.concatenate(masks)[:n], fps=self.fps, seed=state.seed,
                                timings=state.timings, latents=list(latents),
                                trace=list(traces) if state.trace else None)

    def generate(self, image_uint8, cameras, num_frames: int, prompt: str = "",
                 negative_prompt: str = DEFAULT_NEGATIVE, num_steps: int = 35, guidance: float = 1.0,
                 seed: int = 1, cfg: str = "official", depth=None, progress: Callable | None = None, cancel=None,
                 foreground_masking: bool = False, fit: str | None = None, cache=None, noise=None,
                 trace: bool = False) -> GenerationResult:
        """Generate ``num_frames`` frames from one image along ``cameras``.

        ``image_uint8``: the input image (uint8 [H,W,3], as loaded), or the seed ``engine.scene.Scene`` at the
        model resolution (from ``engine.scene.build_scene``; then ``depth`` is None and ``fit`` None or the
        scene's). For an image, the seed scene is ``build_scene(image, depth, fit=fit, estimator=...)``:
        ``depth`` a ``DepthResult`` of the image (its size or the model size) or a depth file, default: the
        pipeline's depth estimator on the image as given; ``fit`` "crop" (default), "pad" or "official" (the
        official fidelity mode: the official image path and condition frame, bf16 condition latents,
        truncating uint8 conversion; see ``engine.official``). The seed camera's intrinsics come from the depth.

        ``cameras``: ``(w2cs [T,4,4], Ks [T,3,3])`` at the model resolution (world = the input image's camera,
        w2c = I), or a ``CameraPath`` (sampled for ``num_frames``; a path without intrinsics of its own zooms
        the seed camera's K, so frame 0 of a path starting at the input camera is the seed camera exactly).
        ``noise``: one unit Gaussian draw per chunk, each of ``latent_shape()`` (default: drawn from a CPU
        generator seeded with ``seed``). ``trace=True``: ``result.trace`` holds what the model received, per chunk
        (see engine/API.md). ``progress(dict(stage, chunk, num_chunks, step, num_steps))``; ``cancel`` (Event or
        callable) is checked between steps and stages and raises ``Cancelled``. ``cache``: the fast mode for this
        run (None: the pipeline's; "none" is exact; the others are approximate, see ``engine.fast_cache``).
        """
        state = self.start_generation(image_uint8, cameras, num_frames, prompt, negative_prompt, num_steps,
                                      guidance, seed, cfg, depth, foreground_masking, fit, cache, noise, trace)
        try:
            self.run_stages(state, None, progress=progress, cancel=cancel)
        except Cancelled as exc:
            message = str(exc)
        else:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return self.result(state)
        # raised outside the handler so no traceback keeps the chunk's tensors alive
        del state
        self._free()
        raise Cancelled(message)

    # ------------------------------------------------------------------ helpers
    def _free(self) -> None:
        """Drop unreferenced tensors; ``empty_cache`` only here (on cancel and at the end of a run)."""
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def cameras_for_run(self, cameras, num_frames: int, seed_K=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Checked float32 cameras for the run, cameras past the last chunk's end holding the last pose.

        A CameraPath without intrinsics of its own is sampled with ``seed_K`` (the seed camera's K) as its lens.
        """
        if hasattr(cameras, "sample"):
            if seed_K is not None and getattr(cameras, "intrinsics", None) is None:
                cameras = cameras.with_intrinsics(seed_K, self.height, self.width)
            w2cs, Ks = cameras.sample(num_frames, self.height, self.width)
        else:
            try:
                w2cs, Ks = cameras
            except (TypeError, ValueError):
                raise InputError("cameras must be (w2cs, Ks) or a CameraPath") from None
        W, K = validate.camera_batch(w2cs, Ks, num_frames=num_frames)
        w2cs, Ks = torch.from_numpy(W.astype(np.float32)), torch.from_numpy(K.astype(np.float32))
        total = chunk_plan(num_frames, self.chunk_frames)[-1][1] + 1  # cameras past the requested end hold the last pose
        if total > num_frames:
            w2cs = torch.cat([w2cs, w2cs[-1:].expand(total - num_frames, 4, 4)])
            Ks = torch.cat([Ks, Ks[-1:].expand(total - num_frames, 3, 3)])
        return w2cs, Ks

    def frame_depth(self, frame_uint8: np.ndarray) -> torch.Tensor:
        """Depth [1,H,W] of a model-resolution uint8 frame (NaN -> 1e4, clamped to [0, 1e4])."""
        d = self.estimate_depth(frame_uint8)
        return _depth_tensor(np.asarray(d.depth), self.height, self.width)

    def seed_scene(self, image_uint8: np.ndarray, depth=None, fit: str = "crop"):
        """The seed ``Scene`` at the model size: ``engine.scene.build_scene`` with this pipeline's depth estimator
        (used only when ``depth`` is None; it sees the image as given, before the fit)."""
        from engine.scene import build_scene

        return build_scene(image_uint8, depth, self.height, self.width, check_fit(fit),
                           estimator=self.estimate_depth if depth is None else None)


def _depth_tensor(depth: np.ndarray, height: int, width: int) -> torch.Tensor:
    d = np.nan_to_num(np.asarray(depth, np.float32), nan=1e4, posinf=1e4, neginf=0.0).clip(0, 1e4)
    if d.shape != (height, width):
        raise InputError(f"depth is {d.shape}, expected {(height, width)}")
    return torch.from_numpy(np.ascontiguousarray(d))[None]


