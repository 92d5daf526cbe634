"""Strict, copy-free loading of a converted state dict into a model built on the meta device."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable

import torch

from engine.errors import InputError

_MAX_LISTED = 12


def format_keys(keys: Iterable[str]) -> str:
    """Short sorted listing of keys for one-line error messages."""
    keys = sorted(keys)
    shown = ", ".join(keys[:_MAX_LISTED])
    more = f" (+{len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else ""
    return shown + more


@contextmanager
def on_meta_device():
    """Build modules without allocating parameter storage (weights are assigned afterwards)."""
    with torch.device("meta"):
        yield


def unwrap_state_dict(obj, what: str) -> dict:
    """Accept a plain state dict or one wrapped as {"model": state_dict} / {"state_dict": ...}."""
    if not isinstance(obj, dict):
        raise InputError(f"{what}: expected a state dict (mapping of names to tensors), got {type(obj).__name__}")
    for wrapper in ("model", "state_dict"):
        inner = obj.get(wrapper)
        if isinstance(inner, dict) and not any(torch.is_tensor(v) for v in obj.values()):
            obj = inner
            break
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise InputError(f"{what}: entries that are not named tensors: {format_keys(map(str, bad))}")
    return obj


def load_converted(
    model: torch.nn.Module,
    source: dict,
    rename: Callable[[str], str | None],
    is_skipped: Callable[[str], bool],
    what: str,
    dtype: torch.dtype | None = None,
    keep_fp32: Callable[[str], bool] = lambda name: False,
) -> tuple[torch.nn.Module, list[str]]:
    """Strictly load `source` (official names) into the meta-built `model` by assignment.

    `rename(key)` gives the model's name for an official key or None for an unknown key;
    `is_skipped(key)` marks known entries we deliberately drop. Every name and shape is checked
    before anything is touched, so a bad checkpoint raises InputError and leaves `source` intact.
    On success the entries are popped from `source` one at a time (optionally cast to `dtype`,
    except names where `keep_fp32` is true), so no second full copy of the weights exists.
    Returns (model in eval mode without grads, sorted skipped keys).
    """
    unknown = [k for k in source if not is_skipped(k) and rename(k) is None]
    if unknown:
        raise InputError(f"{what}: unexpected keys: {format_keys(unknown)}")
    plan = {k: rename(k) for k in source if not is_skipped(k)}
    skipped = sorted(k for k in source if is_skipped(k))
    targets = list(plan.values())
    if len(set(targets)) != len(targets):
        dups = {t for t in targets if targets.count(t) > 1}
        raise InputError(f"{what}: several keys map to: {format_keys(dups)}")
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(targets))
    if missing:
        raise InputError(f"{what}: missing keys: {format_keys(missing)}")
    extra = [k for k, t in plan.items() if t not in expected]
    if extra:
        raise InputError(f"{what}: unexpected keys: {format_keys(extra)}")
    wrong = [f"{k} {tuple(source[k].shape)} != {expected[t]}" for k, t in plan.items()
             if tuple(source[k].shape) != expected[t]]
    if wrong:
        raise InputError(f"{what}: shape mismatch: {format_keys(wrong)}")

    state = {}
    for key in list(source):
        tensor = source.pop(key)
        if key not in plan:
            continue
        new = plan[key]
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(torch.float32 if keep_fp32(new) else dtype)
        state[new] = tensor
    model.load_state_dict(state, strict=True, assign=True)
    del state
    leftovers = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if leftovers:
        raise InputError(f"{what}: tensors left uninitialised: {format_keys(leftovers)}")
    model.eval().requires_grad_(False)
    return model, skipped
