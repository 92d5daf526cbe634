"""Fast mode (approximate): diffusers' cache hooks on the Cosmos DiT, with one cache state per CFG branch.

Nothing here caches by hand: the modes are diffusers' own hooks (``diffusers.hooks``, 0.42.1), wired for
``CosmosTransformer3DModel``, which diffusers does not do itself:

- ``"first_block"``: ``FirstBlockCacheConfig`` / ``apply_first_block_cache``. When the first block's residual changed
  by less than ``threshold`` (relative mean abs) since the last fully computed step, the other blocks are skipped
  and their last residual is reused.
- ``"mag"``: ``MagCacheConfig`` / ``apply_mag_cache``. Skips whole steps while the accumulated magnitude-ratio error
  stays under ``threshold``, at most ``max_skip_steps`` in a row, never in the first ``retention_ratio`` of the
  steps. Its ratios are model-specific and none are published for GEN3C: without ``mag_ratios`` every ratio is 1,
  which makes it a fixed pattern (after the retention steps, ``max_skip_steps`` skipped steps per computed one).
- ``"taylorseer"``: ``TaylorSeerCacheConfig`` / ``apply_taylorseer_cache``, given identifiers that match Cosmos.
  Its defaults (``^transformer_blocks.*attn`` under ``re.fullmatch``) match none of Cosmos's ``attn1`` / ``attn2``
  modules, so it would silently do nothing. Here every ``transformer_blocks.<i>`` is a "skip" module and
  ``proj_out`` a Taylor-predicted one (diffusers' "lite" layout): on predicted steps no block runs and the output
  projection is extrapolated from the last fully computed steps (first order, every ``cache_interval`` steps).

``FirstBlockCache`` and ``MagCache`` find the block's outputs through diffusers' ``TransformerBlockRegistry``, where
``CosmosTransformerBlock`` is not registered; :func:`register_cosmos_block` registers it (it returns the hidden
states only, no encoder states).

Cosmos has no ``cache_context``, so the hooks' state managers are given a context by :class:`FastCache`: its
:meth:`FastCache.branch_runner` runs each CFG branch in its own context named after the branch ("cond",
"uncond"), one forward per branch, so the two branches never share residuals or step counters.

Every mode changes the output: it is approximate, and its quality with the real GEN3C weights has not been measured.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch

from engine.errors import InputError

CACHE_MODES = ("none", "first_block", "mag", "taylorseer")
APPROXIMATE = "approximate: skips DiT work by reusing earlier results; quality with real GEN3C weights unmeasured"
# TaylorSeer on Cosmos: whole blocks skipped, the output projection Taylor-predicted (re.fullmatch on module names)
TAYLORSEER_SKIP_IDENTIFIERS = (r"transformer_blocks\.\d+",)
TAYLORSEER_CACHE_IDENTIFIERS = (r"proj_out",)

__all__ = ["APPROXIMATE", "CACHE_MODES", "CacheSettings", "FastCache", "cosmos_model", "register_cosmos_block"]


@dataclass(frozen=True)
class CacheSettings:
    """Which fast mode and its knobs (None = the diffusers default for that mode)."""

    mode: str = "none"
    threshold: float | None = None  # first_block (default 0.05) and mag (default 0.06)
    max_skip_steps: int | None = None  # mag (default 3)
    retention_ratio: float | None = None  # mag (default 0.2)
    mag_ratios: tuple[float, ...] | None = None  # mag: per-step magnitude ratios (default: all 1, uncalibrated)
    cache_interval: int | None = None  # taylorseer (default 5)
    warmup_steps: int | None = None  # taylorseer: steps always computed at the start (default 3)
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if self.mode not in CACHE_MODES:
            raise InputError(f"unknown cache mode {self.mode!r}; expected one of {', '.join(CACHE_MODES)}")
        if self.threshold is not None and not (isinstance(self.threshold, (int, float)) and self.threshold >= 0):
            raise InputError(f"cache threshold must be a number >= 0, got {self.threshold!r}")
        for name in ("max_skip_steps", "cache_interval", "warmup_steps"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0
                                      or (name == "cache_interval" and value < 1)):
                raise InputError(f"cache {name} must be a non-negative integer, got {value!r}")

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    @classmethod
    def of(cls, value) -> "CacheSettings":
        """None / a mode name / CacheSettings -> CacheSettings."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls(mode=value)
        raise InputError(f"cache must be a mode name ({', '.join(CACHE_MODES)}) or CacheSettings, got {value!r}")


def register_cosmos_block() -> None:
    """Tell diffusers' block registry where CosmosTransformerBlock's outputs are (idempotent)."""
    from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry
    from diffusers.models.transformers.transformer_cosmos import CosmosTransformerBlock

    try:
        TransformerBlockRegistry.get(CosmosTransformerBlock)
    except ValueError:
        TransformerBlockRegistry.register(CosmosTransformerBlock, TransformerBlockMetadata(
            return_hidden_states_index=0, return_encoder_hidden_states_index=None))


def cosmos_model(transformer):
    """The CosmosTransformer3DModel inside ``transformer`` (itself, or a wrapping module's child)."""
    from diffusers import CosmosTransformer3DModel

    if isinstance(transformer, CosmosTransformer3DModel):
        return transformer
    for module in transformer.modules():
        if isinstance(module, CosmosTransformer3DModel):
            return module
    raise InputError("fast mode needs a diffusers CosmosTransformer3DModel")


def _diffusers_config(settings: CacheSettings, num_steps: int):
    from diffusers.hooks import FirstBlockCacheConfig, MagCacheConfig, TaylorSeerCacheConfig

    def given(**kw):
        return {k: v for k, v in kw.items() if v is not None}

    if settings.mode == "first_block":
        return FirstBlockCacheConfig(**given(threshold=settings.threshold))
    if settings.mode == "mag":
        ratios = settings.mag_ratios if settings.mag_ratios is not None else (1.0,) * num_steps
        return MagCacheConfig(num_inference_steps=num_steps, mag_ratios=list(ratios),
                              **given(threshold=settings.threshold, max_skip_steps=settings.max_skip_steps,
                                      retention_ratio=settings.retention_ratio))
    return TaylorSeerCacheConfig(skip_predict_identifiers=list(TAYLORSEER_SKIP_IDENTIFIERS),
                                 cache_identifiers=list(TAYLORSEER_CACHE_IDENTIFIERS),
                                 taylor_factors_dtype=torch.float32,
                                 **given(cache_interval=settings.cache_interval,
                                         disable_cache_before_step=settings.warmup_steps))


_APPLY = {"first_block": "apply_first_block_cache", "mag": "apply_mag_cache", "taylorseer": "apply_taylorseer_cache"}


def _hook_names(mode: str) -> tuple[str, ...]:
    if mode == "first_block":
        from diffusers.hooks.first_block_cache import _FBC_BLOCK_HOOK, _FBC_LEADER_BLOCK_HOOK
        return (_FBC_LEADER_BLOCK_HOOK, _FBC_BLOCK_HOOK)
    if mode == "mag":
        from diffusers.hooks.mag_cache import _MAG_CACHE_BLOCK_HOOK, _MAG_CACHE_LEADER_BLOCK_HOOK
        return (_MAG_CACHE_LEADER_BLOCK_HOOK, _MAG_CACHE_BLOCK_HOOK)
    from diffusers.hooks.taylorseer_cache import _TAYLORSEER_CACHE_HOOK
    return (_TAYLORSEER_CACHE_HOOK,)


def _move(value, device):
    """``value`` with every tensor (also inside tuples, lists, dicts and plain objects) on ``device``."""
    if torch.is_tensor(value):
        return value.to(device)
    if isinstance(value, torch.device):
        return torch.device(device)
    if isinstance(value, (list, tuple)):
        return type(value)(_move(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _move(v, device) for k, v in value.items()}
    if hasattr(value, "__dict__") and not isinstance(value, type):
        for k, v in vars(value).items():
            setattr(value, k, _move(v, device))
    return value


class FastCache:
    """A fast mode applied to a Cosmos DiT for one sampling run of ``num_steps`` steps (approximate).

    Use as a context manager (the hooks are removed on exit). ``branch_runner()`` is the sampler's
    ``branch_runner=``; ``state_dict()`` / ``load_state_dict()`` carry the hooks' state (on the CPU) from one
    process to another, e.g. between GPU calls that each run a range of the steps.
    """

    def __init__(self, transformer, settings, num_steps: int):
        from diffusers import hooks
        from diffusers.hooks.hooks import StateManager

        self.settings = CacheSettings.of(settings)
        if not self.settings.enabled:
            raise InputError("FastCache needs a cache mode other than 'none'")
        self.model = cosmos_model(transformer)
        if getattr(self.model, "_gen3c_fast_cache", None) is not None:
            raise InputError("a fast mode is already applied to this transformer")
        register_cosmos_block()
        getattr(hooks, _APPLY[self.settings.mode])(self.model, _diffusers_config(self.settings, int(num_steps)))
        self._registry = hooks.HookRegistry.check_if_exists_or_initialize(self.model)
        self._registry.invalidate_child_registries_cache()
        self.model._gen3c_fast_cache = self
        self.managers: list[StateManager] = []
        self.hooked: list[str] = []
        names = _hook_names(self.settings.mode)
        for name, module in self.model.named_modules():
            registry = getattr(module, "_diffusers_hook", None)
            if registry is None:
                continue
            for hook_name in names:
                hook = registry.get_hook(hook_name)
                if hook is None:
                    continue
                self.hooked.append(name)
                if hook._is_stateful:
                    self.managers += [v for v in vars(hook).values() if isinstance(v, StateManager)]
        if not self.hooked:
            self.remove()
            raise InputError(f"cache mode {self.settings.mode!r} hooked no module of this transformer")

    # ---------------------------------------------------------------- contexts
    @contextlib.contextmanager
    def context(self, name: str):
        """Run the enclosed forwards in cache context ``name`` (one state per name)."""
        from diffusers.hooks.hooks import CacheContext

        ctx = CacheContext(name)
        for manager in self.managers:
            manager.set_context(ctx)
        try:
            yield
        finally:
            for manager in self.managers:
                manager.set_context(None)

    def branch_runner(self, base=None):
        """A sampler BranchRunner running each branch alone, in the context named after it."""
        from engine.sampler import run_branches

        inner = base or run_branches

        def runner(transformer, net_input, timestep, branches, padding_mask, fps):
            outputs = []
            for branch in branches:
                with self.context(branch.name):
                    outputs += list(inner(transformer, net_input, timestep, [branch], padding_mask, fps))
            return outputs

        return runner

    # ---------------------------------------------------------------- state across processes
    def state_dict(self) -> list[dict]:
        """Every state manager's per-context states, tensors copied to the CPU."""
        import copy

        out = []
        for manager in self.managers:
            states = {}
            for name, state in manager._state_cache.items():  # diffusers keeps one state per context name
                states[name] = _move(copy.copy(state), "cpu")
            out.append(states)
        return out

    def load_state_dict(self, states: list[dict] | None, device=None) -> None:
        """Restore :meth:`state_dict` output (tensors moved to ``device``, default the model's)."""
        import copy

        if states is None:
            return
        if len(states) != len(self.managers):
            raise InputError(f"fast-mode state has {len(states)} entries for {len(self.managers)} hooks")
        device = device or next(self.model.parameters()).device
        for manager, saved in zip(self.managers, states):
            manager._state_cache.clear()
            for name, state in saved.items():
                manager._state_cache[name] = _move(copy.copy(state), device)

    # ---------------------------------------------------------------- lifetime
    def reset(self) -> None:
        """Forget every branch's state (a new sampling run)."""
        for manager in self.managers:
            manager.reset()

    def remove(self) -> None:
        for hook_name in _hook_names(self.settings.mode):
            self._registry.remove_hook(hook_name, recurse=True)
        self._registry.invalidate_child_registries_cache()
        self.model._gen3c_fast_cache = None

    def __enter__(self) -> "FastCache":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def fast_cache(transformer, settings, num_steps: int):
    """A :class:`FastCache` context for an enabled mode, else a do-nothing context yielding None."""
    settings = CacheSettings.of(settings)
    if not settings.enabled:
        return contextlib.nullcontext(None)
    return FastCache(transformer, settings, num_steps)
