"""What ``--parallel`` asks for, and how the ranks of a torchrun job are split between the kinds.

A plan is a comma-separated set of kinds: ``ulysses`` or ``ring`` (context parallel: the DiT's tokens are split
between ranks) and ``cfg`` (the cond and uncond branches of classifier-free guidance run on two separate groups of
ranks). ``cfg`` always takes a factor of 2 of the world; the context kind takes the rest:

- ``ulysses`` / ``ring`` on N ranks: context degree N.
- ``cfg`` on 2 ranks: one branch per rank.
- ``cfg,ulysses`` / ``cfg,ring`` on N = 2k ranks: two groups of k ranks, each group splits one branch's tokens.

Ranks are laid out cfg-major: rank = cfg_index * k + context_index.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InputError

CONTEXT_KINDS = ("ulysses", "ring")
KINDS = ("cfg", *CONTEXT_KINDS)
CFG_DEGREE = 2  # cond + uncond

__all__ = ["CFG_DEGREE", "CONTEXT_KINDS", "KINDS", "Degrees", "ParallelPlan"]


@dataclass(frozen=True)
class Degrees:
    """How many ranks each kind uses: ``cfg * context == world``."""

    cfg: int
    context: int

    @property
    def world(self) -> int:
        return self.cfg * self.context


@dataclass(frozen=True)
class ParallelPlan:
    """``cfg``: split the CFG branches; ``context``: "ulysses", "ring" or None."""

    cfg: bool = False
    context: str | None = None

    def __post_init__(self):
        if self.context is not None and self.context not in CONTEXT_KINDS:
            raise InputError(f"unknown context parallel kind {self.context!r}; expected one of "
                             f"{', '.join(CONTEXT_KINDS)}")
        if not self.cfg and self.context is None:
            raise InputError(f"a parallel plan needs at least one of {', '.join(KINDS)}")

    @classmethod
    def parse(cls, text) -> "ParallelPlan":
        """``"ulysses"``, ``"ring"``, ``"cfg"``, ``"cfg,ulysses"`` or ``"cfg,ring"`` (order and spaces free)."""
        if isinstance(text, ParallelPlan):
            return text
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"--parallel must be one of {', '.join(KINDS)} or cfg,ulysses / cfg,ring "
                             f"(got {text!r})")
        parts = [p.strip().lower() for p in text.split(",")]
        unknown = [p for p in parts if p not in KINDS]
        if unknown:
            raise InputError(f"--parallel: unknown kind {unknown[0]!r}; expected {', '.join(KINDS)} "
                             "or cfg,ulysses / cfg,ring")
        if len(set(parts)) != len(parts):
            raise InputError(f"--parallel: {text!r} names a kind twice")
        context = [p for p in parts if p in CONTEXT_KINDS]
        if len(context) > 1:
            raise InputError("--parallel: choose one of ulysses or ring, not both")
        return cls(cfg="cfg" in parts, context=context[0] if context else None)

    def __str__(self) -> str:
        return ",".join((["cfg"] if self.cfg else []) + ([self.context] if self.context else []))

    def degrees(self, world_size: int) -> Degrees:
        """Split ``world_size`` ranks; InputError when this plan cannot use exactly that many."""
        if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 2:
            raise InputError(f"--parallel {self} needs at least 2 processes (torchrun --nproc-per-node N, N >= 2); "
                             f"got a world of {world_size!r}")
        if not self.cfg:
            return Degrees(cfg=1, context=world_size)
        if world_size % CFG_DEGREE:
            raise InputError(f"--parallel {self} needs an even number of processes (cond and uncond halves); "
                             f"got {world_size}")
        context = world_size // CFG_DEGREE
        if self.context is None and context > 1:
            raise InputError(f"--parallel cfg uses exactly 2 processes; for {world_size} add a context kind: "
                             f"--parallel cfg,ulysses or cfg,ring")
        if self.context is not None and context < 2:
            raise InputError(f"--parallel {self} needs 2 x k processes with k >= 2 (got {world_size}); "
                             f"on 2 processes use --parallel cfg or --parallel {self.context}")
        return Degrees(cfg=CFG_DEGREE, context=context)
