"""The GEN3C video DiT hosted in diffusers' CosmosTransformer3DModel.

Official `VideoExtendGeneralDIT` names (GEN3C `model.pt`, `net.*`) map onto diffusers' module names
with the table below. Two facts diffusers' config cannot express are restored here:
the per-head q/k RMSNorm eps is 1e-6 officially (diffusers builds 1e-5), so every loader calls
:func:`set_qk_norm_eps` after building the model.
"""
from __future__ import annotations

import re

import torch

from engine.errors import InputError

QK_NORM_EPS = 1e-6

# The official GEN3C-Cosmos-7B network (faditv2_7b + GEN3C overrides), official option names.
GEN3C_7B_NET_CONFIG = {
    "max_img_h": 240, "max_img_w": 240, "max_frames": 128,
    "in_channels": 81, "out_channels": 16,
    "patch_spatial": 2, "patch_temporal": 1,
    "model_channels": 4096, "block_config": "FA-CA-MLP", "num_blocks": 28, "num_heads": 32,
    "mlp_ratio": 4.0, "crossattn_emb_channels": 1024, "concat_padding_mask": True,
    "pos_emb_cls": "rope3d", "pos_emb_learnable": False, "pos_emb_interpolation": "crop",
    "block_x_format": "THWBD", "affline_emb_norm": True, "use_adaln_lora": True, "adaln_lora_dim": 256,
    "rope_h_extrapolation_ratio": 1.0, "rope_w_extrapolation_ratio": 1.0, "rope_t_extrapolation_ratio": 2.0,
}

_REQUIRED = ("in_channels", "out_channels", "model_channels", "num_blocks", "num_heads",
             "crossattn_emb_channels", "adaln_lora_dim")


def diffusers_config_from_official(net_config: dict) -> dict:
    """Constructor arguments of CosmosTransformer3DModel for an official GEN3C `net` config."""
    if not isinstance(net_config, dict):
        raise InputError("DiT config: expected a dict of official net options")
    cfg = {**GEN3C_7B_NET_CONFIG, **net_config}
    missing = [k for k in _REQUIRED if k not in net_config]
    if missing:
        raise InputError(f"DiT config: missing options {', '.join(missing)}")
    checks = {
        "block_config": ("FA-CA-MLP",), "pos_emb_cls": ("rope3d",), "use_adaln_lora": (True,),
        "affline_emb_norm": (True,), "pos_emb_learnable": (False,),
        "extra_per_block_abs_pos_emb": (True,), "extra_per_block_abs_pos_emb_type": ("learnable",),
        "add_augment_sigma_embedding": (False,), "use_cross_attn_mask": (False,),
    }
    for key, allowed in checks.items():
        if key in cfg and cfg[key] not in allowed:
            raise InputError(f"DiT config: {key}={cfg[key]!r} is not supported (expected {allowed[0]!r})")
    channels, heads = int(cfg["model_channels"]), int(cfg["num_heads"])
    if heads <= 0 or channels % heads:
        raise InputError(f"DiT config: model_channels {channels} is not divisible by num_heads {heads}")
    return {
        "in_channels": int(cfg["in_channels"]),
        "out_channels": int(cfg["out_channels"]),
        "num_attention_heads": heads,
        "attention_head_dim": channels // heads,
        "num_layers": int(cfg["num_blocks"]),
        "mlp_ratio": float(cfg["mlp_ratio"]),
        "text_embed_dim": int(cfg["crossattn_emb_channels"]),
        "adaln_lora_dim": int(cfg["adaln_lora_dim"]),
        "max_size": (int(cfg["max_frames"]), int(cfg["max_img_h"]), int(cfg["max_img_w"])),
        "patch_size": (int(cfg["patch_temporal"]), int(cfg["patch_spatial"]), int(cfg["patch_spatial"])),
        "rope_scale": (float(cfg["rope_t_extrapolation_ratio"]), float(cfg["rope_h_extrapolation_ratio"]),
                       float(cfg["rope_w_extrapolation_ratio"])),
        "concat_padding_mask": bool(cfg["concat_padding_mask"]),
        "extra_pos_embed_type": "learnable",
    }


def net_config_from_state_dict(state_dict: dict) -> dict:
    """Official net config of a GEN3C checkpoint, widths read from tensor shapes, the rest 7B defaults."""
    def shape(name):
        for prefix in ("net.", ""):
            if prefix + name in state_dict:
                return tuple(state_dict[prefix + name].shape)
        raise InputError(f"DiT checkpoint: missing key net.{name}")

    channels, patch_in = shape("x_embedder.proj.1.weight")
    head_dim = shape("blocks.block0.blocks.0.block.attn.to_q.1.weight")[0]
    blocks = {int(m.group(1)) for k in state_dict if (m := re.match(r"(?:net\.)?blocks\.block(\d+)\.", k))}
    cfg = dict(GEN3C_7B_NET_CONFIG)
    p = cfg["patch_spatial"] ** 2 * cfg["patch_temporal"]
    if patch_in % p:
        raise InputError(f"DiT checkpoint: patch embedding width {patch_in} is not a multiple of {p}")
    cfg.update(
        model_channels=channels,
        num_heads=channels // head_dim,
        num_blocks=len(blocks),
        in_channels=patch_in // p - (1 if cfg["concat_padding_mask"] else 0),
        out_channels=shape("final_layer.linear.weight")[0] // p,
        crossattn_emb_channels=shape("blocks.block0.blocks.1.block.attn.to_k.0.weight")[1],
        adaln_lora_dim=shape("blocks.block0.blocks.0.adaLN_modulation.1.weight")[0],
        max_frames=shape("extra_pos_embedder.pos_emb_t")[0] * cfg["patch_temporal"],
        max_img_h=shape("extra_pos_embedder.pos_emb_h")[0] * cfg["patch_spatial"],
        max_img_w=shape("extra_pos_embedder.pos_emb_w")[0] * cfg["patch_spatial"],
    )
    if blocks != set(range(len(blocks))):
        raise InputError(f"DiT checkpoint: block indices are not contiguous: {sorted(blocks)}")
    return cfg


# ---- key names ------------------------------------------------------------------------------------
# Our own table, not diffusers' `convert_cosmos_transformer_checkpoint_to_diffusers` (0.42): that function
# empties its input before testing it for the Cosmos 1.0 marker key, so it always applies its Cosmos 2.0
# table and gets 569 of the 574 GEN3C 7B names wrong. Its Cosmos 1.0 table (a local, not importable) gives
# exactly this table (tests/test_convert.py checks every 7B key against it) except that it does not drop
# Transformer Engine `_extra_state` entries.

_FIXED = {
    "x_embedder.proj.1.weight": "patch_embed.proj.weight",
    "extra_pos_embedder.pos_emb_t": "learnable_pos_embed.pos_emb_t",
    "extra_pos_embedder.pos_emb_h": "learnable_pos_embed.pos_emb_h",
    "extra_pos_embedder.pos_emb_w": "learnable_pos_embed.pos_emb_w",
    "t_embedder.1.linear_1.weight": "time_embed.t_embedder.linear_1.weight",
    "t_embedder.1.linear_2.weight": "time_embed.t_embedder.linear_2.weight",
    "affline_norm.weight": "time_embed.norm.weight",
    "final_layer.linear.weight": "proj_out.weight",
    "final_layer.adaLN_modulation.1.weight": "norm_out.linear_1.weight",
    "final_layer.adaLN_modulation.2.weight": "norm_out.linear_2.weight",
}
# Sub-block K of "FA-CA-MLP": 0 self-attention, 1 cross-attention, 2 MLP.
_ATTN_PARTS = {"to_q.0": "to_q", "to_q.1": "norm_q", "to_k.0": "to_k", "to_k.1": "norm_k",
               "to_v.0": "to_v", "to_out.0": "to_out.0"}
_MLP_PARTS = {"layer1": "ff.net.0.proj", "layer2": "ff.net.2"}
_BLOCK = re.compile(r"blocks\.block(\d+)\.blocks\.([012])\.(.+)\.weight")

# Entries of an official checkpoint that inference does not use, dropped on purpose.
_SKIPPED = (
    re.compile(r"logvar\..*"),            # EDM loss weighting head (training only)
    re.compile(r"(net\.)?pos_embedder\.seq"),  # arange buffer; diffusers recomputes RoPE positions
    re.compile(r".*\._extra_state"),      # Transformer Engine serialisation state (fp8 metadata)
)


def is_skipped_dit_key(key: str) -> bool:
    return any(p.fullmatch(key) for p in _SKIPPED)


def rename_dit_key(key: str) -> str | None:
    """diffusers name of an official GEN3C DiT key (with or without `net.`), or None if unknown."""
    name = key[4:] if key.startswith("net.") else key
    if name in _FIXED:
        return _FIXED[name]
    m = _BLOCK.fullmatch(name)
    if not m:
        return None
    block, sub, rest = int(m.group(1)), int(m.group(2)), m.group(3)
    prefix = f"transformer_blocks.{block}"
    if rest in ("adaLN_modulation.1", "adaLN_modulation.2"):
        return f"{prefix}.norm{sub + 1}.linear_{rest[-1]}.weight"
    if sub in (0, 1) and rest.startswith("block.attn."):
        part = _ATTN_PARTS.get(rest[len("block.attn."):])
        return f"{prefix}.attn{sub + 1}.{part}.weight" if part else None
    if sub == 2 and rest.startswith("block."):
        part = _MLP_PARTS.get(rest[len("block."):])
        return f"{prefix}.{part}.weight" if part else None
    return None


def keep_dit_param_fp32(name: str) -> bool:
    """diffusers keeps the learnable position tables in fp32 (its `_keep_in_fp32_modules`)."""
    return name.startswith("learnable_pos_embed.")


# ---- model-level helpers ------------------------------------------------------------------------

def set_qk_norm_eps(transformer: torch.nn.Module, eps: float = QK_NORM_EPS) -> None:
    """Use the official eps for every per-head q/k RMSNorm (diffusers' Attention default is 1e-5)."""
    for block in transformer.transformer_blocks:
        for attn in (block.attn1, block.attn2):
            attn.norm_q.eps = eps
            attn.norm_k.eps = eps


def build_transformer_on_meta(diffusers_config: dict):
    """An uninitialised CosmosTransformer3DModel (meta tensors), ready for `load_state_dict(assign=True)`."""
    from diffusers import CosmosTransformer3DModel

    from engine.models.loading import on_meta_device

    with on_meta_device():
        model = CosmosTransformer3DModel(**diffusers_config)
    set_qk_norm_eps(model)
    return model


# ---- loading and speed options ---------------------------------------------------------------------

# Attention implementations we allow (local kernels only: no hub downloads).
ATTENTION_BACKENDS = {
    "native": "native", "cudnn": "_native_cudnn", "flash": "_native_flash", "efficient": "_native_efficient",
    "math": "_native_math", "flash_attn": "flash", "flash_attn_3": "_flash_3", "sage": "sage",
    "xformers": "xformers", "flex": "flex",
}


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device) -> torch.dtype:
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32


def attention_backend_name(backend: str, device) -> str:
    """The diffusers backend name ``set_attention`` uses for ``backend`` on ``device`` (InputError if unknown)."""
    if backend == "auto":
        backend = "cudnn" if torch.device(device).type == "cuda" else "native"
    if backend not in ATTENTION_BACKENDS:
        raise InputError(f"attention backend {backend!r} is not one of auto, {', '.join(ATTENTION_BACKENDS)}")
    return ATTENTION_BACKENDS[backend]


def set_attention(transformer: torch.nn.Module, backend: str = "auto") -> str:
    """Choose the attention kernel. "auto": cuDNN SDPA on CUDA (fastest measured on H100), native otherwise.

    Returns the diffusers backend name used. Unknown names raise InputError.
    """
    name = attention_backend_name(backend, next(transformer.parameters()).device)
    transformer.set_attention_backend(name)
    return name


def compile_blocks(transformer: torch.nn.Module, **compile_kwargs) -> torch.nn.Module:
    """`torch.compile` each transformer block in place (regional compilation: 28 identical blocks compile
    once and the rest of the forward stays eager). kwargs go to `torch.compile` (e.g. mode, backend)."""
    for block in transformer.transformer_blocks:
        block.compile(**compile_kwargs)
    return transformer


def load_transformer(weights_dir=None, device=None, dtype=None, *, attention: str | None = "auto",
                     compile: bool = False):
    """The GEN3C DiT from `<weights>/transformer` (diffusers layout), with the official q/k eps.

    device defaults to CUDA when available; dtype to bf16 on CUDA, fp32 on CPU. `attention` picks the
    kernel (see set_attention; None leaves diffusers' default); `compile` wraps each block in torch.compile.
    Missing files raise WeightsMissingError with what to download; broken ones (a config that disagrees with
    the tensors, a truncated file) a one-line InputError naming the file (engine.models.integrity).
    """
    from engine.models.weights import find_weights

    status = find_weights(weights_dir)
    status.require("config", "transformer")
    from diffusers import CosmosTransformer3DModel

    from engine.models.integrity import check_model_part, load_checked

    check_model_part(status.root, "transformer")  # configs agree with the tensors, files whole
    device = torch.device(device) if device is not None else default_device()
    dtype = dtype or default_dtype(device)
    folder = status.root / "transformer"
    model = load_checked(lambda: CosmosTransformer3DModel.from_pretrained(str(folder), torch_dtype=dtype),
                         folder, "transformer")
    set_qk_norm_eps(model)
    model.to(device).eval().requires_grad_(False)
    if attention is not None:
        set_attention(model, attention)
    if compile:
        compile_blocks(model)
    return model
