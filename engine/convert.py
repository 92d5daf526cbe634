"""Official GEN3C / Cosmos tokenizer / T5 checkpoints -> the diffusers-based weights layout.

Library functions convert in-memory state dicts (`dit_from_official`, `vae_from_official`);
`convert_checkpoints` / `main` read the official files and write the weights folder described in
engine/API.md (`python -m engine convert`).
"""
from __future__ import annotations

import torch

from engine.errors import InputError


def dit_from_official(state_dict: dict, net_config: dict | None = None, *, dtype: torch.dtype | None = None):
    """Build a diffusers `CosmosTransformer3DModel` from an official GEN3C DiT state dict.

    `state_dict` holds `net.*` keys (optionally wrapped as {"model": ...}) as in GEN3C `model.pt`;
    `net_config` uses the official option names (None: read widths from the tensors, 7B defaults
    otherwise). `logvar.*`, `net.pos_embedder.seq` and Transformer Engine `_extra_state` entries are
    dropped on purpose; any other unknown or missing key raises InputError. The model is built on the
    meta device and the source tensors are assigned (popped from `state_dict`), so no second copy of
    the weights is made. q/k RMSNorm eps is set to the official 1e-6.
    """
    from engine.models._loading import load_converted, unwrap_state_dict
    from engine.models.dit import (
        build_transformer_on_meta, diffusers_config_from_official, is_skipped_dit_key,
        keep_dit_param_fp32, net_config_from_state_dict, rename_dit_key,
    )

    source = unwrap_state_dict(state_dict, "DiT checkpoint")
    if net_config is None:
        net_config = net_config_from_state_dict(source)
    model = build_transformer_on_meta(diffusers_config_from_official(net_config))
    model, _ = load_converted(model, source, rename_dit_key, is_skipped_dit_key, "DiT checkpoint",
                              dtype=dtype, keep_fp32=keep_dit_param_fp32)
    return model


def vae_from_official(state_dict: dict, config: dict | None = None, *, dtype: torch.dtype | None = None):
    """Build a diffusers `AutoencoderKLCosmos` from an official Cosmos continuous video tokenizer.

    `state_dict` carries the official module names (`encoder.*`, `quant_conv.*`, `post_quant_conv.*`,
    `decoder.*`, as in `encoder.jit` + `decoder.jit` or `autoencoder.jit`); `config` uses the official
    option names (None: the CV8x8x8-720p config). The Haar constants (`wavelets`, `_arange`,
    `patch_size_buffer`) are dropped on purpose; anything else unknown or missing raises InputError.
    """
    from engine.models._loading import load_converted, unwrap_state_dict
    from engine.models.vae import (
        CV8X8X8_CONFIG, build_vae, diffusers_vae_config_from_official, is_skipped_vae_key,
        make_vae_key_renamer,
    )

    source = unwrap_state_dict(state_dict, "VAE checkpoint")
    config = CV8X8X8_CONFIG if config is None else config
    model = build_vae(diffusers_vae_config_from_official(config))
    rename = make_vae_key_renamer(len(config["channels_mult"]))
    model, _ = load_converted(model, source, rename, is_skipped_vae_key, "VAE checkpoint", dtype=dtype)
    return model
