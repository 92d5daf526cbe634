"""Peak memory of a computation without running it: live-tensor bytes counted on the meta device.

:func:`live_peak_bytes` runs a function under a ``TorchDispatchMode`` that adds the bytes of every tensor an operator
creates and subtracts them when the tensor is freed; on the meta device nothing is computed, so full-size models run
in seconds on any machine. Views share their base's memory and are not counted; attention is counted as a fused
kernel (output only). What it cannot see: the caching allocator's rounding and fragmentation and cuDNN's
workspaces, so a GPU's measured peak is higher; it is arithmetic, not a measurement.
"""
from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = ["live_peak_bytes", "vae_memory_model"]


# operators that return an alias of their input without being declared views
_ALIASING = {torch.ops.aten._unsafe_view.default, torch.ops.aten.lift_fresh.default}


class _LiveBytes(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0

    def _free(self, n: int) -> None:
        self.live -= n

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.is_view or func in _ALIASING:
            return out  # views share their base's memory
        inputs = {id(t) for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)}
        for t in tree_flatten(out)[0]:
            # in-place and out= operators return an input: no new memory either
            if isinstance(t, torch.Tensor) and id(t) not in inputs and not t._is_view():
                n = t.numel() * t.element_size()
                self.live += n
                self.peak = max(self.peak, self.live)
                weakref.finalize(t, self._free, n)
        return out


def _fused_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **kw):
    """Stands in for a fused attention kernel: only the output is allocated, never the score matrix."""
    return query.new_empty(*query.shape[:-1], value.shape[-1])


def live_peak_bytes(fn, fused_attention: bool = True) -> int:
    """The most bytes of tensors alive at once while ``fn()`` runs (tensors created before it are not counted).

    ``fused_attention``: count ``scaled_dot_product_attention`` as a fused GPU kernel does (the output only; on
    the meta device it would otherwise decompose into the math path and hold the whole score matrix).
    """
    import torch.nn.functional as F

    mode = _LiveBytes()
    original = F.scaled_dot_product_attention
    if fused_attention:
        F.scaled_dot_product_attention = _fused_attention
    try:
        with torch.no_grad(), mode:
            out = fn()
        del out
    finally:
        F.scaled_dot_product_attention = original
    return mode.peak


def vae_memory_model(frames: int = 121, height: int = 704, width: int = 1280, stream: int = 1) -> dict:
    """GB of live tensors of the CV8x8x8 VAE in bf16 (meta device), untiled and streamed, encode and decode.

    Attention is counted both ways: on the math path (the score matrix held, 14,080^2 per frame in the mid
    block's spatial attention, whose single head is 512 wide) and as a fused kernel (output only).
    """
    from engine.models.vae import CV8X8X8_CONFIG, build_vae, diffusers_vae_config_from_official
    from engine.models.vae_stream import stream_decode, stream_encode

    # built on the CPU (0.2 GB) then moved: built under a meta device context its Haar constants stay on the CPU
    vae = build_vae(diffusers_vae_config_from_official(CV8X8X8_CONFIG)).eval().to("meta", torch.bfloat16)
    with torch.device("meta"):
        video = torch.empty(1, 3, frames, height, width, dtype=torch.bfloat16)
        z = torch.empty(1, vae.config.latent_channels, (frames - 1) // 8 + 1, height // 8, width // 8,
                        dtype=torch.bfloat16)
    runs = {
        "encode_untiled": lambda: vae.encode(video).latent_dist.mode(),
        "encode_streamed": lambda: stream_encode(vae, video, stream),
        "decode_untiled": lambda: vae.decode(z).sample,
        "decode_streamed": lambda: stream_decode(vae, z, stream, sink=lambda x: None),
    }
    out = {"shape": [frames, height, width], "stream_latent_frames": stream}
    for attention, fused in (("math_attention", False), ("fused_attention", True)):
        out[attention] = {f"{name}_gb": round(live_peak_bytes(fn, fused_attention=fused) / 1e9, 2)
                          for name, fn in runs.items()}
    out["note"] = ("live-tensor bytes on the meta device (no allocator overhead or cuDNN workspace): arithmetic, "
                   "not a measurement")
    return out
