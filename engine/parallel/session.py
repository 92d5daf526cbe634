"""One process of a torchrun job: its rank, its device, the process group and the rank mesh.

gloo on CPU, NCCL on CUDA with one GPU per local rank (``cuda:{LOCAL_RANK}``). The mesh has dims
("cfg", "ring", "ulysses"); its "cfg" groups join the two CFG halves, its ("ring", "ulysses") sub-mesh is a rank's
context-parallel group (see :mod:`engine.parallel.plan` for the layout).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from engine.errors import Cancelled, InputError, WeightsMissingError
from engine.parallel.plan import Degrees, ParallelPlan

__all__ = ["ParallelSession", "start_session", "torchrun_env"]

_RERAISED = {cls.__name__: cls for cls in (InputError, WeightsMissingError, Cancelled)}


def torchrun_env() -> dict | None:
    """{rank, world_size, local_rank, local_world_size} from torchrun's variables, or None outside torchrun."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    except ValueError:
        raise InputError("torchrun variables RANK / WORLD_SIZE / LOCAL_RANK are not integers") from None
    return dict(rank=rank, world_size=world, local_rank=local_rank, local_world_size=local_world)


def _rank_device(requested, local_rank: int, local_world_size: int) -> torch.device:
    """cpu, or cuda:{local_rank} (the same answer, or the same error, on every rank of a node)."""
    want = torch.device(requested) if requested is not None else None
    kind = want.type if want is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cpu":
        return torch.device("cpu")
    if kind != "cuda":
        raise InputError(f"parallel generation runs on cpu (gloo) or cuda (NCCL), not {kind}")
    if not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA GPU is available")
    if want is not None and want.index is not None:
        raise InputError(f"--device {requested}: with --parallel every rank uses cuda:LOCAL_RANK; pass --device cuda")
    count = torch.cuda.device_count()
    if local_world_size > count:
        raise InputError(f"{local_world_size} processes per node but {count} visible GPUs: start at most {count} "
                         "(torchrun --nproc-per-node)")
    return torch.device("cuda", local_rank)


@dataclass
class ParallelSession:
    """This process's place in a parallel generation. Build with :func:`start_session`."""

    plan: ParallelPlan
    degrees: Degrees
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_process_group: bool = False
    agreed: bool = False  # True once `agree` has run (the inputs-validated checkpoint)
    _mesh: object = field(default=None, repr=False)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes outputs, progress and errors."""
        return self.rank == 0

    @property
    def cfg_index(self) -> int:
        """0: this rank evaluates the cond branch, 1: the uncond branch (always 0 without cfg)."""
        return self.rank // self.degrees.context

    @property
    def mesh(self):
        """DeviceMesh ("cfg", "ring", "ulysses") over every rank (built on first use, collectively)."""
        if self._mesh is None:
            from torch.distributed.device_mesh import init_device_mesh

            ring = self.degrees.context if self.plan.context == "ring" else 1
            ulysses = self.degrees.context if self.plan.context == "ulysses" else 1
            self._mesh = init_device_mesh(self.device.type, (self.degrees.cfg, ring, ulysses),
                                          mesh_dim_names=("cfg", "ring", "ulysses"))
        return self._mesh

    @property
    def context_mesh(self):
        """This rank's context-parallel group as a ("ring", "ulysses") mesh."""
        return self.mesh["ring", "ulysses"]

    @property
    def cfg_group(self):
        """The process group of the two ranks that hold the same tokens of the cond and uncond branches."""
        return self.mesh["cfg"].get_group()

    def agree(self, error: BaseException | None = None) -> None:
        """Collective checkpoint: every rank says whether it got here without an error.

        If any rank failed, every rank raises: the failing ranks their own error, the others the first failure's
        (same class for InputError / WeightsMissingError / Cancelled, so rank 0 prints the one-line message).
        Call it once on every rank: where the work succeeds up to the checkpoint, and in the error path otherwise.
        """
        report = None if error is None else (type(error).__name__, str(error))
        reports = [None] * self.world_size
        dist.all_gather_object(reports, report)
        self.agreed = True
        failed = [(r, rep) for r, rep in enumerate(reports) if rep is not None]
        if not failed:
            return
        if error is not None:
            raise error
        rank, (name, message) = failed[0]
        cls = _RERAISED.get(name)
        raise cls(message) if cls is not None else RuntimeError(f"rank {rank} failed: {name}: {message}")

    def close(self) -> None:
        """Tear down the process group if this session created it."""
        if self.owns_process_group and dist.is_initialized():
            dist.destroy_process_group()
        self.owns_process_group = False
        self._mesh = None


def _limit_numba_threads() -> None:
    """Size numba's thread pool (the CPU splat) to this process's torch threads (torchrun: OMP_NUM_THREADS).

    numba starts one thread per core in every process; with N ranks on the same cores their idle pool threads
    compete with the other ranks' work and slow a CPU run several times over. Only effective before numba's first
    parallel call; the splat's results do not depend on the thread count.
    """
    if "NUMBA_NUM_THREADS" not in os.environ and "numba" not in sys.modules:
        os.environ["NUMBA_NUM_THREADS"] = str(max(1, torch.get_num_threads()))


def start_session(plan, device=None) -> ParallelSession:
    """Join the torchrun job (initialising the process group unless the caller already did) for ``plan``.

    ``plan``: a :class:`ParallelPlan` or its text ("ulysses", "ring", "cfg", "cfg,ulysses", "cfg,ring").
    ``device``: None (CUDA when present), "cpu" or "cuda"; CUDA ranks use ``cuda:{LOCAL_RANK}``.
    Every check here gives the same answer on every rank, so a refusal is raised by all of them.
    """
    plan = ParallelPlan.parse(plan)
    if dist.is_available() and dist.is_initialized():
        env = torchrun_env() or {}
        rank, world = dist.get_rank(), dist.get_world_size()
        local_rank = env.get("local_rank", rank)
        local_world = env.get("local_world_size", world)
        owns = False
    else:
        env = torchrun_env()
        if env is None:
            raise InputError(f"--parallel {plan} runs under torchrun: torchrun --nproc-per-node N -m engine generate "
                             "... (no torchrun environment: RANK / WORLD_SIZE are not set)")
        rank, world = env["rank"], env["world_size"]
        local_rank, local_world = env["local_rank"], env["local_world_size"]
        owns = True
    degrees = plan.degrees(world)
    rank_device = _rank_device(device, local_rank, local_world)
    _limit_numba_threads()
    if owns:
        if rank_device.type == "cuda":
            torch.cuda.set_device(rank_device)
            dist.init_process_group("nccl", device_id=rank_device)
        else:
            dist.init_process_group("gloo")
    elif rank_device.type == "cuda":
        torch.cuda.set_device(rank_device)
    return ParallelSession(plan=plan, degrees=degrees, rank=rank, world_size=world, local_rank=local_rank,
                           device=rank_device, owns_process_group=owns)
