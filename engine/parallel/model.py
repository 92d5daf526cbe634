"""A parallel session applied to the GEN3C DiT: the checks that run before any weights load, then the wiring."""
from __future__ import annotations

import json
from pathlib import Path

from engine.errors import InputError
from engine.parallel.context import check_context_parallel, dit_tokens, enable_context_parallel
from engine.parallel.runner import ParallelBranchRunner

__all__ = ["check_session_fits", "parallelize", "read_transformer_config"]


def read_transformer_config(weights_root) -> dict:
    """``<weights>/transformer/config.json`` as a dict (no weights are read)."""
    path = Path(weights_root) / "transformer" / "config.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path} not found") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or "num_attention_heads" not in data or "patch_size" not in data:
        raise InputError(f"{path}: not a CosmosTransformer3DModel config (num_attention_heads, patch_size)")
    return data


def check_session_fits(session, config, transformer_config: dict, attention: str = "auto") -> None:
    """InputError unless ``session``'s plan can split this model (``config``: the weights' Gen3CConfig)."""
    if session.plan.context is None:
        return
    grid = dit_tokens(config.latent_frames, config.latent_height, config.latent_width,
                      transformer_config["patch_size"])
    check_context_parallel(session.plan.context, session.degrees.context, grid=grid,
                           heads=int(transformer_config["num_attention_heads"]), device=session.device,
                           attention=attention)


def parallelize(transformer, session, *, batch_cfg: bool = False) -> ParallelBranchRunner:
    """Install context parallelism on ``transformer`` (if the plan has it) and return the sampler's runner.

    Collective: every rank of the session calls it, after loading the same weights.
    """
    session.mesh  # noqa: B018 - builds the mesh's process groups now, on every rank together
    if session.plan.context is not None:
        enable_context_parallel(transformer, kind=session.plan.context, degree=session.degrees.context,
                                rank=session.rank, world_size=session.world_size, device=session.device,
                                mesh=session.context_mesh)
    return ParallelBranchRunner(session, batch=batch_cfg)
