"""Context parallelism (Ulysses or ring) for the Cosmos DiT, on diffusers' own machinery.

diffusers 0.42 declares no ``_cp_plan`` for ``CosmosTransformer3DModel``; :func:`cosmos_cp_plan` is ours and goes to
``model.enable_parallelism(config=ParallelConfig(context_parallel_config=...), cp_plan=...)``:

- the outputs of ``rope`` (cos, sin: [tokens, head_dim]) are split on dim 0 and the output of
  ``learnable_pos_embed`` ([B, tokens, D]) on dim 1, after they are computed for the whole chunk;
- the ``hidden_states`` entering ``transformer_blocks.0`` ([B, tokens, D]) are split on dim 1, so every block runs
  on this rank's tokens;
- the output of ``proj_out`` is gathered on dim 1: every rank gets the whole prediction back.

Self-attention (``attn1``) gets :class:`ContextParallelSelfAttention`, which hands the parallel config to diffusers'
attention dispatcher (Ulysses all-to-all over heads, or ring over key/value blocks). Cross-attention to the T5 text
(``attn2``) keeps diffusers' processor: its queries are this rank's tokens, its keys the whole prompt, so it stays
local. Everything else in a block is per token.

Token counts that do not split evenly are refused (:func:`check_context_parallel`), not padded: padded tokens would
take part in every rank's attention unless masked, and masking changes the kernel. Ulysses also needs the head count
to split evenly. Ring attention merges partial results with their log-sum-exp, which only the CUDA kernels
(cuDNN, flash) return.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager

import torch

from engine.errors import InputError

# Our attention names (engine.models.dit.ATTENTION_BACKENDS) -> what each supports under context parallelism.
# diffusers registers these as context-parallel capable; ring also needs the kernel to return the log-sum-exp.
ULYSSES_ATTENTION = ("native", "cudnn", "flash", "flash_attn", "sage")
RING_ATTENTION = ("cudnn", "flash", "flash_attn", "sage")

__all__ = ["RING_ATTENTION", "ULYSSES_ATTENTION", "ContextParallelSelfAttention", "check_context_parallel",
           "cosmos_cp_plan", "dit_tokens", "enable_context_parallel"]


def dit_tokens(latent_frames: int, latent_height: int, latent_width: int, patch_size) -> tuple[int, int, int]:
    """(t, h, w) token grid of one chunk after the DiT's patching."""
    pt, ph, pw = (int(p) for p in patch_size)
    return latent_frames // pt, latent_height // ph, latent_width // pw


def _our_attention_name(attention: str, device: torch.device) -> str:
    from engine.models.dit import ATTENTION_BACKENDS, attention_backend_name

    diffusers_name = attention_backend_name(attention, device)
    return next(ours for ours, theirs in ATTENTION_BACKENDS.items() if theirs == diffusers_name)


def check_context_parallel(kind: str, degree: int, *, grid: tuple[int, int, int], heads: int,
                           device: torch.device, attention: str = "auto") -> None:
    """InputError unless ``kind`` ("ulysses"/"ring") can split this DiT over ``degree`` ranks on ``device``."""
    device = torch.device(device)
    name = _our_attention_name(attention, device)
    if kind == "ring":
        if device.type != "cuda":
            raise InputError("--parallel ring needs an attention kernel that returns the log-sum-exp (cudnn, flash, "
                             f"flash_attn or sage), which run only on CUDA GPUs; on {device.type} use --parallel ulysses")
        if name not in RING_ATTENTION:
            raise InputError(f"--parallel ring: attention {name!r} returns no log-sum-exp; use one of "
                             f"{', '.join(RING_ATTENTION)} (or --parallel ulysses)")
    elif kind == "ulysses":
        if name not in ULYSSES_ATTENTION:
            raise InputError(f"--parallel ulysses: attention {name!r} has no context-parallel support in diffusers; "
                             f"use one of {', '.join(ULYSSES_ATTENTION)}")
        if heads % degree:
            raise InputError(f"--parallel ulysses: the DiT's {heads} attention heads do not split over {degree} "
                             f"ranks; use a number of ranks that divides {heads}")
    else:
        raise InputError(f"unknown context parallel kind {kind!r}")
    tokens = grid[0] * grid[1] * grid[2]
    if tokens % degree:
        raise InputError(f"--parallel {kind}: a chunk is {tokens} DiT tokens ({grid[0]}x{grid[1]}x{grid[2]} after "
                         f"patching), which do not split evenly over {degree} ranks (not padded: padding would change "
                         f"the attention); use a number of ranks that divides {tokens}")


def cosmos_cp_plan() -> dict:
    """The split/gather plan of ``CosmosTransformer3DModel`` (module name -> diffusers plan entry)."""
    from diffusers.models._modeling_parallel import ContextParallelInput, ContextParallelOutput

    def split_output(dim, dims):
        return ContextParallelInput(split_dim=dim, expected_dims=dims, split_output=True)

    return {
        "rope": {0: split_output(0, 2), 1: split_output(0, 2)},
        "learnable_pos_embed": {0: split_output(1, 3)},
        "transformer_blocks.0": {"hidden_states": ContextParallelInput(split_dim=1, expected_dims=3)},
        "proj_out": ContextParallelOutput(gather_dim=1, expected_dims=3),
    }


class ContextParallelSelfAttention:
    """Cosmos self-attention (q/k/v, per-head RMSNorm, RoPE, attention, output projection) whose attention call
    carries the model's parallel config. diffusers' ``enable_parallelism`` sets ``_parallel_config`` on every
    processor that has the attribute, so only self-attention gets this class.

    Without a parallel config it computes what diffusers' ``CosmosAttnProcessor2_0`` computes for self-attention.
    """

    def __init__(self):
        self._attention_backend = None  # None: diffusers' active backend (set_attention sets it)
        self._parallel_config = None

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None,
                 image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        from diffusers.models.attention_dispatch import dispatch_attention_fn
        from diffusers.models.embeddings import apply_rotary_emb

        if encoder_hidden_states is not None or attention_mask is not None:
            raise RuntimeError("ContextParallelSelfAttention is for the DiT's self-attention only")

        def heads_first(x):  # [B, S, H*D] -> [B, H, S, D]
            return x.unflatten(2, (attn.heads, -1)).transpose(1, 2)

        query = attn.norm_q(heads_first(attn.to_q(hidden_states)))
        key = attn.norm_k(heads_first(attn.to_k(hidden_states)))
        value = heads_first(attn.to_v(hidden_states))
        if image_rotary_emb is not None:
            query = apply_rotary_emb(query, image_rotary_emb, use_real=True, use_real_unbind_dim=-2)
            key = apply_rotary_emb(key, image_rotary_emb, use_real=True, use_real_unbind_dim=-2)
        out = dispatch_attention_fn(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2),
                                    backend=self._attention_backend, parallel_config=self._parallel_config)
        out = out.flatten(2, 3).type_as(query)
        return attn.to_out[1](attn.to_out[0](out))


@contextmanager
def _quiet_diffusers():
    """Hide diffusers' "experimental feature" warning: the user asked for --parallel knowingly."""
    log = logging.getLogger("diffusers")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def enable_context_parallel(transformer, *, kind: str, degree: int, rank: int, world_size: int,
                            device: torch.device, mesh) -> None:
    """Split ``transformer``'s tokens over ``degree`` ranks with diffusers' ``enable_parallelism``.

    ``mesh`` is a DeviceMesh with dims ("ring", "ulysses") holding this rank's context group.
    """
    from diffusers import ContextParallelConfig, ParallelConfig

    cp_config = ContextParallelConfig(ulysses_degree=degree if kind == "ulysses" else 1,
                                      ring_degree=degree if kind == "ring" else 1, mesh=mesh)
    for block in transformer.transformer_blocks:
        block.attn1.set_processor(ContextParallelSelfAttention())

    def resolve(config):
        # diffusers' own resolver places the rank on device `rank % torch.accelerator.device_count()`, which
        # divides by zero on CPU; our device and mesh are known, so record them the way it would.
        config.setup(rank, world_size, torch.device(device), mesh=mesh)
        transformer._parallel_config = config
        return config

    transformer._resolve_parallel_config = resolve  # instance attribute: shadows the method for this call only
    try:
        with _quiet_diffusers():
            transformer.enable_parallelism(config=ParallelConfig(context_parallel_config=cp_config),
                                           cp_plan=cosmos_cp_plan())
    finally:
        del transformer._resolve_parallel_config
