"""The DiT forward split over the ranks of a torchrun job (``bench dit --parallel ulysses|ring``), and its launcher.

Every rank builds the same random DiT and inputs (same seed), runs one forward alone as the reference, then
installs context parallelism (:mod:`engine.parallel`) and times the split forward. Rank 0 prints the JSON, with
the largest difference of the split output from the one-process output. :func:`launch` starts such a job from a
plain process (``bench gpu`` uses it for the ulysses figure across every visible GPU).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import torch

from engine.errors import InputError

__all__ = ["bench_dit_parallel", "launch"]


def bench_dit_parallel(args, build_dit, dit_inputs) -> dict | None:
    """One rank's part; returns the JSON dict on rank 0 and None elsewhere.

    ``build_dit(tiny, device, dtype) -> (model, config)`` and ``dit_inputs(model, config, device, dtype) ->
    (forward, frames, height, width)`` are ``bench dit``'s own, so both benchmarks time the same forward.
    """
    from engine.bench.timing import environment, measure
    from engine.models.dit import compile_blocks, set_attention
    from engine.parallel import parallelize, start_session
    from engine.parallel.context import check_context_parallel, dit_tokens

    session = start_session(args.parallel, args.device)
    try:
        if session.plan.cfg:
            raise InputError("bench dit --parallel times one forward: use ulysses or ring (cfg splits the two "
                             "guidance branches, which a single forward does not have)")
        device = session.device
        dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
        model, cfg = build_dit(args.tiny, device, dtype)
        forward, frames, height, width = dit_inputs(model, cfg, device, dtype)
        check_context_parallel(session.plan.context, session.degrees.context,
                               grid=dit_tokens(frames, height, width, cfg["patch_size"]),
                               heads=int(cfg["num_attention_heads"]), device=device, attention=args.attention)
        backend = set_attention(model, args.attention)
        reference = forward().float()
        parallelize(model, session)
        use_compile = args.compile if args.compile is not None else device.type == "cuda"
        if use_compile:
            compile_blocks(model)
        timing = measure(forward, device, warmup=args.warmup, repeats=args.repeats).as_dict()
        seen = []  # the tokens this rank's blocks run on: the split's evidence
        hook = model.transformer_blocks[0].register_forward_hook(  # its output: after the plan's split
            lambda _module, _inputs, out: seen.append(int((out[0] if isinstance(out, tuple) else out).shape[1])))
        diff = (forward().float() - reference).abs().max().item()
        hook.remove()
        if not session.is_main:
            return None
        timing["variant"] = f"attention {backend}" + (", torch.compile per block" if use_compile else "")
        return {"bench": "dit", "tiny": args.tiny, **environment(device), "parallel": str(session.plan),
                "world_size": session.world_size, "dtype": str(dtype).replace("torch.", ""),
                "latent_shape": [16, frames, height, width], "tuned": timing,
                "tokens": math.prod(dit_tokens(frames, height, width, cfg["patch_size"])), "tokens_per_rank": seen[0],
                "max_abs_diff_vs_one_process": diff}
    finally:
        session.close()


def launch(nproc: int, options: list[str], *, timeout_s: float, attempts: int = 2) -> dict:
    """Run ``bench dit --parallel ...`` under torchrun on ``nproc`` local ranks; rank 0's JSON, or {"error": ...}.

    A job that fails is started once more (``attempts``): a torchrun job on a busy machine can fail to gather its
    ranks; a fault of the benchmark itself fails both times, and the first failure is kept in the answer.
    """
    first = None
    for _ in range(max(1, attempts)):
        out = _launch_once(nproc, options, timeout_s)
        if "error" not in out:
            if first is not None:
                out["earlier_attempt_error"] = first["error"]
            return out
        first = first or out
    return first


def _launch_once(nproc: int, options: list[str], timeout_s: float) -> dict:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "engine", "bench", "dit", *options]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"torchrun with {nproc} ranks did not finish within {timeout_s:.0f} s"}
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        # torchrun ends with a banner of '=' lines: the first error line says what went wrong
        cause = next((line for line in lines if "Error" in line or "error" in line), lines[-1] if lines else "")
        return {"error": f"torchrun with {nproc} ranks exited {done.returncode}: {cause or '(no output)'}",
                "stderr_tail": lines[-40:]}
    start = done.stdout.find("{")
    try:
        return json.loads(done.stdout[start:]) if start >= 0 else {"error": "torchrun printed no JSON"}
    except json.JSONDecodeError:
        return {"error": "torchrun printed something other than one JSON object"}
