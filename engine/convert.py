"""Official GEN3C / Cosmos tokenizer / T5 checkpoints -> the diffusers-based weights layout.

Library functions convert in-memory state dicts (`dit_from_official`, `vae_from_official`);
`convert_checkpoints` reads the official files and writes the weights folder described in
engine/API.md (command line: `python -m engine convert`, in `engine.cli.convert`).
"""
from __future__ import annotations

import torch

from engine.errors import InputError
from engine.model_defaults import CHUNK_FRAMES, MODEL_HEIGHT, MODEL_WIDTH


def dit_from_official(state_dict: dict, net_config: dict | None = None, *, dtype: torch.dtype | None = None):
    """Build a diffusers `CosmosTransformer3DModel` from an official GEN3C DiT state dict.

    `state_dict` holds `net.*` keys (optionally wrapped as {"model": ...}) as in GEN3C `model.pt`;
    `net_config` uses the official option names (None: read widths from the tensors, 7B defaults
    otherwise). `logvar.*`, `net.pos_embedder.seq` and Transformer Engine `_extra_state` entries are
    dropped on purpose; any other unknown or missing key raises InputError. The model is built on the
    meta device and the source tensors are assigned (popped from `state_dict`), so no second copy of
    the weights is made. q/k RMSNorm eps is set to the official 1e-6.
    """
    from engine.models.loading import load_converted, unwrap_state_dict
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
    """Build a diffusers `AutoencoderKLCosmos` (the video VAE) from an official Cosmos continuous video tokenizer.

    `state_dict` carries the official module names (`encoder.*`, `quant_conv.*`, `post_quant_conv.*`,
    `decoder.*`, as in `encoder.jit` + `decoder.jit` or `autoencoder.jit`); `config` uses the official
    option names (None: the CV8x8x8-720p config). The Haar constants (`wavelets`, `_arange`,
    `patch_size_buffer`) are dropped on purpose; anything else unknown or missing raises InputError.
    """
    from engine.models.loading import load_converted, unwrap_state_dict
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


# ---- reading the official files ------------------------------------------------------------------------

def _torch_load(path, what: str, mmap: bool = True):
    """`torch.load(weights_only=True)` (tensors and containers only, no arbitrary objects), mmap when possible."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what}: {path} is not a file")
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)
    except RuntimeError as exc:
        if mmap and "mmap" in str(exc):  # legacy (non-zip) checkpoints cannot be memory-mapped
            return _torch_load(path, what, mmap=False)
        raise InputError(f"{what}: {path} is not a readable torch checkpoint ({str(exc).splitlines()[0]})") from None
    except Exception as exc:  # pickle/zip/unpickling-policy errors
        raise InputError(f"{what}: {path} is not a readable torch checkpoint ({exc.__class__.__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def read_jit_state_dict(path) -> dict:
    """Parameters and buffers of a TorchScript archive (`encoder.jit` / `decoder.jit` / `autoencoder.jit`).

    Why this is acceptable: a TorchScript archive is a zip of tensors plus TorchScript code. Loading it
    does not unpickle arbitrary Python objects (the archive's pickles may only reference TorchScript
    classes compiled from that code, and TorchScript cannot import or call Python modules); we never
    call the module, we only read its tensors. We still require a zip archive first, so a disguised
    plain pickle is rejected before torch sees it.
    """
    import warnings
    import zipfile
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise InputError(f"Cosmos tokenizer: {path} is not a file")
    if not zipfile.is_zipfile(path):
        raise InputError(f"Cosmos tokenizer: {path} is not a TorchScript archive (not a zip file)")
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    if not any(n.endswith("/data.pkl") for n in names) or not any("/code/" in n for n in names):
        raise InputError(f"Cosmos tokenizer: {path} is not a TorchScript archive (no data.pkl / code)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise InputError(f"Cosmos tokenizer: cannot read {path} ({exc.__class__.__name__})") from None
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def read_cosmos_tokenizer_dir(cosmos_tokenizer_dir) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """(official state dict, flat mean, flat std) of a Cosmos-Tokenize1 folder (the video VAE)."""
    from pathlib import Path

    folder = Path(cosmos_tokenizer_dir)
    if not folder.is_dir():
        raise InputError(f"Cosmos tokenizer: {folder} is not a folder")
    if (folder / "encoder.jit").is_file() and (folder / "decoder.jit").is_file():
        state = read_jit_state_dict(folder / "encoder.jit")
        decoder = read_jit_state_dict(folder / "decoder.jit")
        overlap = set(state) & set(decoder)
        if overlap:
            raise InputError(f"Cosmos tokenizer: encoder.jit and decoder.jit share keys: {sorted(overlap)[:5]}")
        state.update(decoder)
    elif (folder / "autoencoder.jit").is_file():
        state = read_jit_state_dict(folder / "autoencoder.jit")
    else:
        raise InputError(f"Cosmos tokenizer: {folder} has neither encoder.jit + decoder.jit nor autoencoder.jit")
    stats = _torch_load(folder / "mean_std.pt", "Cosmos tokenizer mean_std.pt", mmap=False)
    if isinstance(stats, dict) and {"mean", "std"} <= set(stats):
        mean, std = stats["mean"], stats["std"]
    elif isinstance(stats, (tuple, list)) or (torch.is_tensor(stats) and stats.ndim >= 1 and len(stats) == 2):
        if len(stats) != 2:
            raise InputError(f"Cosmos tokenizer: mean_std.pt must hold (mean, std), got {len(stats)} items")
        mean, std = stats[0], stats[1]
    else:
        raise InputError("Cosmos tokenizer: mean_std.pt must hold (mean, std)")
    if not (torch.is_tensor(mean) and torch.is_tensor(std)) or mean.numel() != std.numel():
        raise InputError("Cosmos tokenizer: mean_std.pt mean and std must be tensors of the same size")
    return state, mean.detach().float().flatten(), std.detach().float().flatten()


# ---- the converter -------------------------------------------------------------------------------------

def convert_checkpoints(gen3c_pt, cosmos_tokenizer_dir, t5_dir, out_dir, progress=None, *, moge_pt=None,
                        dtype: torch.dtype = torch.bfloat16, height: int = MODEL_HEIGHT, width: int = MODEL_WIDTH,
                        chunk_frames: int = CHUNK_FRAMES, overwrite: bool = False):
    """Convert the official checkpoints into the weights folder `out_dir` (written atomically).

    gen3c_pt: GEN3C `model.pt`; cosmos_tokenizer_dir: Cosmos-Tokenize1-CV8x8x8-720p folder (the video
    VAE); t5_dir: a transformers T5 folder with its tokenizer (or None to skip the text encoder:
    zero-text mode); moge_pt: optional
    MoGe checkpoint copied to moge/model.pt. `progress(message)` receives status lines.
    Any missing or unexpected key raises InputError and leaves no output folder.
    """
    import shutil
    from pathlib import Path

    from engine.models.config import Gen3CConfig
    from engine.models.vae import official_vae_config_from_state_dict
    from engine.models.weights import atomic_output_dir, save_text_encoder, save_transformer, save_vae

    from engine.atomic import check_output_dir

    say = progress or (lambda message: None)
    # cheap checks of every input and of the output folder before any work
    check_output_dir(out_dir, "output folder", must_be_empty=not overwrite, parent_must_exist=True)
    if not Path(gen3c_pt).is_file():
        raise InputError(f"gen3c: {gen3c_pt} is not a file")
    tok = Path(cosmos_tokenizer_dir)
    if not tok.is_dir():
        raise InputError(f"Cosmos tokenizer: {tok} is not a folder")
    if not ((tok / "encoder.jit").is_file() and (tok / "decoder.jit").is_file()) and not (tok / "autoencoder.jit").is_file():
        raise InputError(f"Cosmos tokenizer: {tok} has neither encoder.jit + decoder.jit nor autoencoder.jit")
    if not (tok / "mean_std.pt").is_file():
        raise InputError(f"Cosmos tokenizer: {tok} has no mean_std.pt")
    if t5_dir is not None and not (Path(t5_dir) / "config.json").is_file():
        raise InputError(f"t5: {t5_dir} is not a transformers model folder (no config.json)")
    if moge_pt is not None:
        moge = _torch_load(moge_pt, "moge", mmap=False)
        if not isinstance(moge, dict) or not {"model_config", "model"} <= set(moge):
            raise InputError(f"moge: {moge_pt} must be a MoGe checkpoint with 'model_config' and 'model'")
        del moge
    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        say(f"reading the Cosmos tokenizer (video VAE) from {cosmos_tokenizer_dir}")
        vae_state, mean, std = read_cosmos_tokenizer_dir(cosmos_tokenizer_dir)
        vae = vae_from_official(vae_state, official_vae_config_from_state_dict(vae_state), dtype=dtype)
        say("writing vae/")
        save_vae(vae, mean, std, tmp)  # validates the statistics against the latent channels
        latent_channels = vae.config.latent_channels
        compression = (vae.config.spatial_compression_ratio, vae.config.temporal_compression_ratio)
        del vae, vae_state

        say(f"reading {gen3c_pt} (memory-mapped)")
        state = _torch_load(gen3c_pt, "gen3c")
        say("converting the DiT")
        transformer = dit_from_official(state, None, dtype=dtype)
        del state
        say("writing transformer/ (sharded safetensors)")
        save_transformer(transformer, tmp)
        text_dim = int(transformer.config.text_embed_dim)  # zero-text mode feeds the DiT its own width
        del transformer

        if t5_dir is not None:
            from transformers import AutoTokenizer, T5EncoderModel

            say(f"reading T5 encoder from {t5_dir}")
            try:
                t5 = T5EncoderModel.from_pretrained(str(t5_dir), dtype=dtype, local_files_only=True)
                text_tokenizer = AutoTokenizer.from_pretrained(str(t5_dir), local_files_only=True)
            except (OSError, ValueError) as exc:
                raise InputError(f"t5: cannot load {t5_dir} ({str(exc).splitlines()[0]})") from None
            text_dim = int(t5.config.d_model)
            say("writing text_encoder/ and text_tokenizer/")
            save_text_encoder(t5, text_tokenizer, tmp)
            del t5
        else:
            say("no --t5 given: the folder will work only in zero-text mode")
        if moge_pt is not None:
            (tmp / "moge").mkdir()
            shutil.copyfile(moge_pt, tmp / "moge" / "model.pt")
        Gen3CConfig(height=height, width=width, chunk_frames=chunk_frames, text_dim=text_dim,
                    latent_channels=latent_channels, spatial_compression=compression[0],
                    temporal_compression=compression[1]).save(tmp)
    say(f"done: {out_dir}")
    return Path(out_dir)
