"""GEN3C's denoising loop: EDM preconditioning, first-frame conditioning, two-branch CFG, Euler steps.

Reproduces the official ``DiffusionV2WModel.generate_samples_from_batch`` (nv-tlabs/GEN3C) on a diffusers
``CosmosTransformer3DModel``. One step at noise level sigma (sigma_d = ``sigma_data``, sigma_a =
``augment_sigma``, L = condition latent, n = augmentation noise, I = first-frame indicator):

1. I = 1 on latent frame 0 while sigma > sigma_a, else 0 (the last steps run unconditioned).
2. x_sub = I * (L + sigma_a * n) * sqrt(sigma^2 + sigma_d^2) / sqrt(sigma_a^2 + sigma_d^2) + (1 - I) * x.
3. Both branches see x_sub * c_in and timestep 0.25 ln sigma, the same input-mask channel (1 on latent frame 0 at
   every step, even when I = 0), fps and padding mask. cond = positive text + cache latents; uncond = negative text
   + zeroed cache latents.
4. F = F_c + g (F_c - F_u).
5. While I is on, frame 0 of F is replaced by (L - c_skip x_sub) / c_out, so frame 0 of D is exactly L.
6. D = c_skip x_sub + c_out F.
7. x_next = x_sub + (x_sub - D) / sigma * (sigma_next - sigma)  (Euler from x_sub, not from x).

n is numpy ``RandomState(augment_seed).standard_normal`` over the full latent shape (C order), float32, drawn once
per call and reused at every step (it is not torch RNG, on purpose: the official code does this).

CFG policies (``cfg=``):

- ``"official"``: two network passes at every step, always, whatever g is. g = 1 (the default) is *not* "no
  guidance": it gives 2 F_c - F_u.
- ``"standard"``: identical results; the uncond pass is skipped only where it cannot change the result, i.e.
  when g == 0 exactly (then F = F_c). For any other g both passes run.

The sigma schedule is diffusers' ``EDMEulerScheduler(sigma_max=80, sigma_min=0.0002, sigma_data=0.5,
final_sigmas_type="zero")`` (Karras, rho 7): ``num_steps + 1`` values ending in 0.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from functools import partial
from typing import Callable, Sequence

import numpy as np
import torch

from engine import validate
from engine.errors import Cancelled, InputError
from engine.model_defaults import AUGMENT_SIGMA, FPS, SIGMA_DATA

SIGMA_MAX = 80.0
SIGMA_MIN = 0.0002
CFG_POLICIES = ("official", "standard")

__all__ = [
    "CFG_POLICIES",
    "Branch",
    "BranchRunner",
    "Denoised",
    "augmentation_noise",
    "denoise",
    "edm_coefficients",
    "init_noise_sigma",
    "make_scheduler",
    "run_branches",
    "sample_latents",
    "scheduler_sigmas",
]


def make_scheduler(sigma_data: float = SIGMA_DATA):
    """The official EDM Euler scheduler (diffusers), as GEN3C builds it (final sigma 0)."""
    from diffusers import EDMEulerScheduler

    return EDMEulerScheduler(
        sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, sigma_data=sigma_data, sigma_schedule="karras", rho=7.0,
        prediction_type="epsilon", final_sigmas_type="zero",
    )


def scheduler_sigmas(num_steps: int, sigma_data: float = SIGMA_DATA) -> torch.Tensor:
    """float32 tensor of ``num_steps + 1`` sigmas: Karras from 80 down to 0.0002, then 0."""
    num_steps = validate.num_steps(num_steps)
    scheduler = make_scheduler(sigma_data)
    scheduler.set_timesteps(int(num_steps), device="cpu")
    return scheduler.sigmas.to(torch.float32).clone()


def init_noise_sigma() -> float:
    """sqrt(sigma_max^2 + 1): the scale of the initial Gaussian latent."""
    return (SIGMA_MAX**2 + 1) ** 0.5


def edm_coefficients(sigma: float, sigma_data: float = SIGMA_DATA) -> tuple[float, float, float]:
    """EDM preconditioning (c_in, c_skip, c_out) at noise level ``sigma``."""
    s2 = sigma * sigma + sigma_data * sigma_data
    return 1.0 / math.sqrt(s2), sigma_data * sigma_data / s2, sigma * sigma_data / math.sqrt(s2)


def augmentation_noise(shape, seed: int) -> torch.Tensor:
    """The official condition-augmentation draw: numpy RandomState(seed) over the full latent shape, float32."""
    return torch.from_numpy(np.random.RandomState(int(seed)).standard_normal(tuple(shape)).astype(np.float32))


@dataclass
class Denoised:
    """One denoiser evaluation. ``x0`` is the official denoised prediction D; ``x_sub`` the substituted input."""

    x_sub: torch.Tensor
    x0: torch.Tensor
    f_cond: torch.Tensor
    f_uncond: torch.Tensor | None  # None where the "standard" policy skipped the pass (g == 0)
    f_cfg: torch.Tensor  # F_c + g (F_c - F_u), before the frame-0 replacement
    f_final: torch.Tensor  # after the frame-0 replacement (the scheduler's model_output)
    indicator_on: bool


def _first_frame_masks(latent_shape, device, dtype):
    """(indicator [1,1,T,1,1], input mask [B,1,T,H,W]), both 1 on latent frame 0 only."""
    b, _, t, h, w = latent_shape
    indicator = torch.zeros(1, 1, t, 1, 1, device=device, dtype=dtype)
    indicator[:, :, 0] = 1
    input_mask = torch.zeros(b, 1, t, h, w, device=device, dtype=dtype)
    input_mask[:, :, 0] = 1
    return indicator, input_mask


def _cache_channels(transformer, latent_channels: int) -> int:
    """Channels of the cache latents the DiT expects: in_channels = x + input mask (1) + cache."""
    return int(transformer.config.in_channels) - latent_channels - 1


def _net_dtype(transformer) -> torch.dtype:
    dtype = getattr(transformer, "dtype", None)
    if isinstance(dtype, torch.dtype):
        return dtype
    return next(transformer.parameters()).dtype


def _run_net(transformer, net_input, timestep, text, condition_mask, padding_mask, fps):
    dtype = _net_dtype(transformer)
    out = transformer(
        hidden_states=net_input.to(dtype),
        timestep=timestep,
        encoder_hidden_states=text.to(dtype),
        fps=fps,
        condition_mask=condition_mask.to(dtype),
        padding_mask=padding_mask.to(dtype),
        return_dict=False,
    )[0]
    return out.float()


@dataclass(frozen=True, eq=False)
class Branch:
    """One CFG branch of a denoiser evaluation.

    ``name`` is ``"cond"`` (prompt + cache latents) or ``"uncond"`` (negative prompt + zeroed cache latents);
    ``text`` [B,L,D] and ``condition_mask`` [B,1+cache,T,H,W] (input-mask channel, then cache latents) are what
    the network gets for it. Every branch of one evaluation shares the net input, timestep, padding mask and fps.
    """

    name: str
    text: torch.Tensor
    condition_mask: torch.Tensor


# (transformer, net_input, timestep [B], branches, padding_mask, fps) -> one raw network output F per branch,
# in the branches' order, float32. The seam where CFG parallelism and per-branch caches plug in.
BranchRunner = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, Sequence[Branch], torch.Tensor, int],
                        list]


def run_branches(transformer, net_input, timestep, branches: Sequence[Branch], padding_mask, fps, *,
                 batch: bool = False) -> list:
    """The default :data:`BranchRunner`: one forward per branch in this process.

    With ``batch`` and texts of equal shape, all branches run as one batched forward (same math, more memory).
    """
    b = net_input.shape[0]
    if batch and len(branches) > 1 and len({tuple(br.text.shape) for br in branches}) == 1:
        n = len(branches)
        out = _run_net(transformer, net_input.repeat(n, 1, 1, 1, 1), timestep.repeat(n),
                       torch.cat([br.text for br in branches]), torch.cat([br.condition_mask for br in branches]),
                       padding_mask, fps)
        return list(out.split(b))
    return [_run_net(transformer, net_input, timestep, br.text, br.condition_mask, padding_mask, fps)
            for br in branches]


@torch.no_grad()
def denoise(
    transformer,
    x: torch.Tensor,
    sigma,
    condition_latent: torch.Tensor,
    cache_latents: torch.Tensor | None,
    prompt_embeds: torch.Tensor,
    negative_prompt_embeds: torch.Tensor | None,
    *,
    guidance: float,
    aug_noise: torch.Tensor,
    fps: int = FPS,
    padding_mask: torch.Tensor | None = None,
    cfg: str = "official",
    sigma_data: float = SIGMA_DATA,
    augment_sigma: float = AUGMENT_SIGMA,
    batch_cfg: bool = False,
    branch_runner: BranchRunner | None = None,
) -> Denoised:
    """One official GEN3C denoiser evaluation at noise level ``sigma`` (steps 1-6 of the module docstring).

    ``x`` [B,C,T,H,W] float32 is the current latent; ``aug_noise`` the fixed augmentation draw (same shape).
    ``cache_latents`` None means zeros. ``negative_prompt_embeds`` None reuses the positive embedding (as the
    official code does for an empty negative prompt). ``batch_cfg`` runs cond and uncond as one batch-2 forward
    (same math, more memory; needs equal text lengths, otherwise two passes run). ``branch_runner`` evaluates the
    branches instead of :func:`run_branches` (e.g. one branch per rank, or a cache context per branch).
    """
    validate.cfg_policy(cfg)
    sigma_t = torch.as_tensor(sigma, dtype=torch.float32).reshape(())
    sigma_f = float(sigma_t)
    device = x.device
    c_in, c_skip, c_out = edm_coefficients(sigma_f, sigma_data)
    latent_channels = x.shape[1]

    indicator, input_mask = _first_frame_masks(x.shape, device, torch.float32)
    indicator_on = sigma_f > augment_sigma
    L = condition_latent.to(device=device, dtype=torch.float32)
    if indicator_on:
        ratio = math.sqrt(sigma_f**2 + sigma_data**2) / math.sqrt(augment_sigma**2 + sigma_data**2)
        augmented = (L + augment_sigma * aug_noise.to(device)) * ratio
        x_sub = indicator * augmented + (1 - indicator) * x
        del augmented
    else:
        x_sub = x
    net_input = x_sub * c_in
    timestep = (0.25 * torch.log(sigma_t)).reshape(1).to(device)

    n_cache = _cache_channels(transformer, latent_channels)
    b, _, t, h, w = x.shape
    if cache_latents is None:
        cache = torch.zeros(b, n_cache, t, h, w, device=device)
    else:
        cache = cache_latents.to(device=device, dtype=torch.float32)
        if cache.shape != (b, n_cache, t, h, w):
            raise InputError(f"cache latents have shape {tuple(cache.shape)}, expected {(b, n_cache, t, h, w)}")
    if padding_mask is None:
        # all-zero either way; the DiT resizes it (nearest) to the latent grid, so latent size is identical
        padding_mask = torch.zeros(1, 1, h, w, device=device)
    padding_mask = padding_mask.to(device)
    negative = prompt_embeds if negative_prompt_embeds is None else negative_prompt_embeds
    cond_mask = torch.cat([input_mask, cache], dim=1)
    need_uncond = not (cfg == "standard" and guidance == 0)

    runner = branch_runner or partial(run_branches, batch=batch_cfg)
    branches = [Branch("cond", prompt_embeds.to(device), cond_mask)]
    if need_uncond:
        branches.append(Branch("uncond", negative.to(device), torch.cat([input_mask, torch.zeros_like(cache)], dim=1)))
    outputs = runner(transformer, net_input, timestep.repeat(b), branches, padding_mask, fps)
    if len(outputs) != len(branches):
        raise RuntimeError(f"branch runner returned {len(outputs)} outputs for {len(branches)} branches")
    del branches
    if need_uncond:
        f_cond, f_uncond = outputs
        f_cfg = f_cond + guidance * (f_cond - f_uncond)
    else:
        (f_cond,), f_uncond = outputs, None
        f_cfg = f_cond
    del outputs, net_input, cond_mask, cache

    if indicator_on:
        replacement = (L - c_skip * x_sub) / c_out
        f_final = indicator * replacement + (1 - indicator) * f_cfg
        del replacement
    else:
        f_final = f_cfg
    x0 = c_skip * x_sub + c_out * f_final
    return Denoised(x_sub=x_sub, x0=x0, f_cond=f_cond, f_uncond=f_uncond, f_cfg=f_cfg, f_final=f_final,
                    indicator_on=indicator_on)


def _cancel_requested(cancel) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    return bool(cancel())


def _validate_inputs(noise, condition_latent, prompt_embeds, negative_prompt_embeds, num_steps, guidance, cfg,
                     augment_seed):
    validate.cfg_policy(cfg)
    validate.num_steps(num_steps)
    g = validate.guidance(guidance)
    validate.seed(augment_seed, "augment_seed")
    if noise.ndim != 5:
        raise InputError(f"noise must be [B,C,T,H,W], got shape {tuple(noise.shape)}")
    if tuple(condition_latent.shape) != tuple(noise.shape):
        raise InputError(
            f"condition latent shape {tuple(condition_latent.shape)} does not match noise {tuple(noise.shape)}")
    if prompt_embeds.ndim != 3:
        raise InputError(f"prompt embeddings must be [B,L,D], got shape {tuple(prompt_embeds.shape)}")
    if negative_prompt_embeds is not None and negative_prompt_embeds.shape[-1] != prompt_embeds.shape[-1]:
        raise InputError("negative prompt embeddings have a different width than the prompt embeddings")
    return g


def _step_range(start_step, stop_step, total: int, latents, noise) -> tuple[int, int]:
    """Validated [start, stop) of a resumed run; ``latents`` must be given exactly when it starts past step 0."""
    stop_step = total if stop_step is None else stop_step
    for name, value in (("start_step", start_step), ("stop_step", stop_step)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise InputError(f"{name} must be an integer, got {value!r}")
    if not 0 <= start_step < stop_step <= total:
        raise InputError(f"step range [{start_step}, {stop_step}) is not inside [0, {total}) or is empty")
    if start_step > 0 and latents is None:
        raise InputError(f"resuming at step {start_step} needs the latents the earlier steps returned")
    if start_step == 0 and latents is not None:
        raise InputError("latents are only given when resuming past step 0 (step 0 starts from the noise)")
    if latents is not None and tuple(latents.shape) != tuple(noise.shape):
        raise InputError(f"latents have shape {tuple(latents.shape)}, expected {tuple(noise.shape)}")
    return int(start_step), int(stop_step)


@torch.no_grad()
def sample_latents(
    transformer,
    noise: torch.Tensor,
    condition_latent: torch.Tensor,
    cache_latents: torch.Tensor | None,
    prompt_embeds: torch.Tensor,
    negative_prompt_embeds: torch.Tensor | None,
    *,
    num_steps: int,
    guidance: float,
    fps: int = FPS,
    padding_mask: torch.Tensor | None = None,
    augment_seed: int = 1,
    cfg: str = "official",
    sigma_data: float = SIGMA_DATA,
    augment_sigma: float = AUGMENT_SIGMA,
    batch_cfg: bool = False,
    branch_runner: BranchRunner | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | Callable[[], bool] | None = None,
    callback: Callable[[int, float, Denoised, torch.Tensor], None] | None = None,
    start_step: int = 0,
    stop_step: int | None = None,
    latents: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run the official GEN3C sampler and return the final latent (float32, same shape as ``noise``).

    ``noise`` is the unit Gaussian draw [B,16,T,H,W]; it is scaled by sqrt(80^2 + 1). ``condition_latent`` is
    the encoded [first frame, zeros...] clip (x sigma_data; only latent frame 0 matters); ``cache_latents`` the
    [rgb_0|mask_0|rgb_1|mask_1] latents (None = zeros). ``progress(step, total)`` is called after every step;
    ``cancel`` (Event or callable) is checked before every step and raises ``Cancelled``. ``callback(i, sigma,
    denoised, x_next)`` sees every step (for tests and previews). ``branch_runner``: see :func:`denoise`.

    Resumable: ``start_step`` / ``stop_step`` run only steps [start_step, stop_step) (default: all) and return
    the latent after them; a run resumed at ``start_step > 0`` continues from ``latents``, the latent the earlier
    range returned (the noise and seeds stay the same). Ranges run back to back give the unsplit result.
    """
    g = _validate_inputs(noise, condition_latent, prompt_embeds, negative_prompt_embeds, num_steps, guidance, cfg,
                         augment_seed)
    total = int(num_steps)
    start, stop = _step_range(start_step, stop_step, total, latents, noise)
    sigmas = scheduler_sigmas(total, sigma_data)
    aug_noise = augmentation_noise(noise.shape, augment_seed).to(noise.device)
    x = noise.float() * init_noise_sigma() if start == 0 else latents.to(noise.device, torch.float32)
    for i in range(start, stop):
        if _cancel_requested(cancel):
            # drop every tensor this frame holds so the traceback keeps nothing alive
            del x, aug_noise
            raise Cancelled(f"generation cancelled before step {i + 1} of {total}")
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        out = denoise(
            transformer, x, sigmas[i], condition_latent, cache_latents, prompt_embeds, negative_prompt_embeds,
            guidance=g, aug_noise=aug_noise, fps=fps, padding_mask=padding_mask, cfg=cfg, sigma_data=sigma_data,
            augment_sigma=augment_sigma, batch_cfg=batch_cfg, branch_runner=branch_runner,
        )
        x = out.x_sub + (out.x_sub - out.x0) / sigma * (sigma_next - sigma)
        if callback is not None:
            callback(i, sigma, out, x)
        del out
        if progress is not None:
            progress(i + 1, total)
    del aug_noise
    return x
