"""The sampler's :data:`engine.sampler.BranchRunner` for a parallel session.

Before each evaluation, every rank takes rank 0's net input and branch tensors (a broadcast): the sampler runs on
every rank, and on GPUs the steps before the DiT (splatting with atomic adds, VAE kernels) need not agree to the
last bit between processes; this makes rank 0's run the one every rank computes, whatever the others' state.

With CFG parallelism the two halves of the world evaluate one branch each (cond on the first half, uncond on the
second; official semantics, both at every step) and swap their outputs F with an all-gather inside each cfg group;
every rank then combines F_c + g (F_c - F_u) itself, exactly as one process would. A single branch (the "standard"
policy at g = 0) runs on every rank. Without CFG parallelism the branches run one after the other (or batched), and
the context-parallel hooks split each forward.
"""
from __future__ import annotations

import torch
import torch.distributed as dist

from engine.sampler import Branch, run_branches

__all__ = ["ParallelBranchRunner"]


class ParallelBranchRunner:
    """``runner(transformer, net_input, timestep, branches, padding_mask, fps) -> [F per branch]``."""

    def __init__(self, session, *, batch: bool = False, inner=None):
        self.session = session
        self.batch = batch
        self.inner = inner  # the BranchRunner for this rank's own branches (default: run_branches)

    def with_inner(self, inner) -> "ParallelBranchRunner":
        """The same runner evaluating this rank's branches with ``inner`` (e.g. the fast mode's per-branch
        cache contexts)."""
        return ParallelBranchRunner(self.session, batch=self.batch, inner=inner)

    def _run(self, transformer, net_input, timestep, branches, padding_mask, fps) -> list:
        if self.inner is not None:
            return list(self.inner(transformer, net_input, timestep, branches, padding_mask, fps))
        return run_branches(transformer, net_input, timestep, branches, padding_mask, fps, batch=self.batch)

    def _from_main(self, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.contiguous() if self.session.is_main else tensor.clone(memory_format=torch.contiguous_format)
        dist.broadcast(out, src=0)
        return out

    def __call__(self, transformer, net_input, timestep, branches, padding_mask, fps) -> list:
        net_input = self._from_main(net_input)
        branches = [Branch(b.name, self._from_main(b.text), self._from_main(b.condition_mask)) for b in branches]
        cfg = self.session.degrees.cfg
        if cfg == 1 or len(branches) == 1:
            return self._run(transformer, net_input, timestep, branches, padding_mask, fps)
        if len(branches) != cfg:
            raise RuntimeError(f"CFG parallel runs {cfg} branches, the sampler asked for {len(branches)}")
        (mine,) = self._run(transformer, net_input, timestep, [branches[self.session.cfg_index]], padding_mask, fps)
        mine = mine.contiguous()
        outputs = [torch.empty_like(mine) for _ in range(cfg)]
        dist.all_gather(outputs, mine, group=self.session.cfg_group)
        return outputs
