"""A command on every rank of a torchrun job (`--parallel`): rank 0 speaks, every rank fails together.

Every rank runs the same command. Rank 0 prints the summary, the progress and the one-line error; the other ranks
stay quiet (diffusers / transformers warnings off, no progress). Input errors found before the weights load are
agreed on collectively (:meth:`engine.parallel.ParallelSession.agree`): if any rank refuses its inputs, every rank
exits 2 and rank 0 prints the message, so no rank is left waiting in a collective.
"""
from __future__ import annotations

import json
import os
import sys
import warnings

from engine.errors import Cancelled, InputError, WeightsMissingError

__all__ = ["check_before_weights", "run_parallel_command"]


def _silence() -> None:
    """Ranks other than 0: no library warnings or progress bars (read by the libraries when they load)."""
    os.environ["DIFFUSERS_VERBOSITY"] = "error"
    os.environ["TRANSFORMERS_VERBOSITY"] = "error"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    for name in ("diffusers.utils.logging", "transformers.utils.logging"):
        lib = sys.modules.get(name)
        if lib is not None:
            lib.set_verbosity_error()
            lib.disable_progress_bar()
    warnings.filterwarnings("ignore")


def check_before_weights(session, root, config, *, preset=None, frames=None, distance=None, rotation=None,
                         attention: str = "auto") -> None:
    """The inputs-validated checkpoint: the plan must fit the model, the preset options must be valid (the
    preset is built only after the depth, which may need MoGe), then every rank agrees."""
    from engine import cameras
    from engine.parallel import check_session_fits, read_transformer_config

    if preset is not None:
        import torch

        K = cameras.intrinsics_from_fov(60.0, int(config.height), int(config.width))
        cameras.preset_trajectory(preset, torch.eye(4), K, frames, distance, rotation)
    check_session_fits(session, config, read_transformer_config(root), attention)
    session.agree()


def run_parallel_command(run, args, plan, device=None) -> int:
    """``run(args, session)`` on this rank; exit status like ``engine.cli.common.run_command`` on every rank."""
    from engine.parallel import start_session, torchrun_env

    session = None
    try:
        env = torchrun_env()
        main = env is None or env["rank"] == 0
    except InputError:
        main = True
    if not main:
        _silence()
    # diffusers 0.42's context-parallel hooks call a torch collective that torch marks deprecated
    warnings.filterwarnings("ignore", message=r".*all_gather_tensor.* is deprecated", category=FutureWarning)
    try:
        try:
            session = start_session(plan, device)
            summary = run(args, session)
        except BaseException as exc:
            if session is not None and not session.agreed:
                session.agree(exc)  # joins the other ranks at the checkpoint; raises exc here
            raise
    except (InputError, WeightsMissingError) as exc:
        if main:
            print(f"error: {str(exc).strip()}", file=sys.stderr)
        return 2
    except Cancelled as exc:
        if main:
            print(f"cancelled: {exc}", file=sys.stderr)
        return 130
    finally:
        if session is not None:
            session.close()
    if main:
        print(json.dumps(summary))
    return 0
