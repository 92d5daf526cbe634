"""Generation across the processes of a torchrun job: context parallel (Ulysses, ring) and CFG parallel.

``torchrun --nproc-per-node N -m engine generate ... --parallel ulysses`` or, from Python inside a torchrun
process, ``Gen3CPipeline.from_pretrained(..., parallel="ulysses")``. Every rank loads the weights and runs the same
program; only rank 0 (``pipe.parallel.is_main``) should write outputs. Modules:

- :mod:`engine.parallel.plan`: the ``--parallel`` text and how the ranks are split (:class:`ParallelPlan`).
- :mod:`engine.parallel.session`: the process group, device and rank mesh (:func:`start_session`).
- :mod:`engine.parallel.context`: the Cosmos context-parallel plan on diffusers' ``enable_parallelism``.
- :mod:`engine.parallel.runner`: the sampler's branch runner (CFG branches on separate ranks).
- :mod:`engine.parallel.model`: the checks before weights load, and :func:`parallelize`.
"""
from engine.parallel.model import check_session_fits, parallelize, read_transformer_config
from engine.parallel.plan import CONTEXT_KINDS, KINDS, Degrees, ParallelPlan
from engine.parallel.session import ParallelSession, start_session, torchrun_env

__all__ = ["CONTEXT_KINDS", "KINDS", "Degrees", "ParallelPlan", "ParallelSession", "check_session_fits",
           "parallelize", "read_transformer_config", "start_session", "torchrun_env"]
