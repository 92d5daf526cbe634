"""The Cosmos CV8x8x8 video VAE (diffusers AutoencoderKLCosmos) and GEN3C's latent scaling.

`VideoVAE` wraps the VAE exactly as the official `VideoJITTokenizer` + `DiffusionT2WModel` do:
model latent = ((z - mu) / s) * sigma_data with mu/s the flat 256-value statistics of the Cosmos
tokenizer's `mean_std.pt`, read channel-major (`view(C, -1)[:, :latent_T]`), and decode =
vae.decode(latent / sigma_data * s + mu). The weights folder keeps the statistics where diffusers does:
`latents_mean` / `latents_std` of `vae/config.json`, the same flat channel-major lists (diffusers'
Cosmos video2world pipeline reads them as `view(1, latent_channels, -1, 1, 1)[:, :, :latent_T]`).
Low memory: `streaming` (exact; `engine.models.vae_stream`) runs the causal VAE a few latent frames at a time with
its temporal state carried over; spatial tiling (`VaeTiling`: overlapping tiles blended with linear ramps) is an
approximation kept as an explicit opt-in (the VAE's GroupNorm and mid-block attention see the whole frame).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

from engine.errors import InputError
from engine.models.vae_stream import stream_decode, stream_encode

# ---- config and key names --------------------------------------------------------------------------

_VAE_FIXED_OPTIONS = {"patch_method": ("haar",), "formulation": ("AE",), "encoder": ("FACTORIZED",),
                      "decoder": ("FACTORIZED",), "legacy_mode": (False,), "z_factor": (1,), "num_groups": (1,)}
_VAE_REQUIRED = ("channels", "channels_mult", "num_res_blocks", "attn_resolutions", "resolution",
                 "patch_size", "latent_channels", "spatial_compression", "temporal_compression")

# The Cosmos-Tokenize1-CV8x8x8-720p config (official option names).
CV8X8X8_CONFIG = {
    "attn_resolutions": [32], "channels": 128, "channels_mult": [2, 4, 4], "dropout": 0.0, "in_channels": 3,
    "num_res_blocks": 2, "out_channels": 3, "resolution": 1024, "patch_size": 4, "patch_method": "haar",
    "latent_channels": 16, "z_channels": 16, "z_factor": 1, "num_groups": 1, "legacy_mode": False,
    "spatial_compression": 8, "temporal_compression": 8, "formulation": "AE",
    "encoder": "FACTORIZED", "decoder": "FACTORIZED", "name": "CV",
}


def diffusers_vae_config_from_official(config: dict) -> dict:
    """AutoencoderKLCosmos constructor arguments for an official Cosmos (continuous video) tokenizer config."""
    if not isinstance(config, dict):
        raise InputError("VAE config: expected a dict of official Cosmos tokenizer options")
    missing = [k for k in _VAE_REQUIRED if k not in config]
    if missing:
        raise InputError(f"VAE config: missing options {', '.join(missing)}")
    for key, allowed in _VAE_FIXED_OPTIONS.items():
        if key in config and config[key] not in allowed:
            raise InputError(f"VAE config: {key}={config[key]!r} is not supported (expected {allowed[0]!r})")
    if config.get("z_channels", config["latent_channels"]) != config["latent_channels"]:
        raise InputError("VAE config: z_channels must equal latent_channels")
    c, mult = int(config["channels"]), [int(m) for m in config["channels_mult"]]
    if c <= 0 or not mult:
        raise InputError("VAE config: channels and channels_mult must be positive")
    return {
        "in_channels": int(config.get("in_channels", 3)),
        "out_channels": int(config.get("out_channels", 3)),
        "latent_channels": int(config["latent_channels"]),
        # official widths: encoder c then c*mult; the decoder list is given in encoder order
        "encoder_block_out_channels": tuple([c] + [c * m for m in mult]),
        "decode_block_out_channels": tuple([c * m for m in mult] + [c * mult[-1]]),
        "attention_resolutions": tuple(int(r) for r in config["attn_resolutions"]),
        "resolution": int(config["resolution"]),
        "num_layers": int(config["num_res_blocks"]),
        "patch_size": int(config["patch_size"]),
        "patch_type": "haar",
        "spatial_compression_ratio": int(config["spatial_compression"]),
        "temporal_compression_ratio": int(config["temporal_compression"]),
        "latents_mean": None,
        "latents_std": None,
    }


def official_vae_config_from_state_dict(state_dict: dict) -> dict:
    """Official Cosmos tokenizer config of a CV-style checkpoint: widths, depth and compression read from the
    tensors, every other option as in CV8x8x8-720p."""
    def shape(key):
        if key not in state_dict:
            raise InputError(f"VAE checkpoint: missing key {key}")
        return tuple(state_dict[key].shape)

    c = shape("encoder.conv_in.0.conv3d.weight")[0]
    levels = sorted({int(m.group(1)) for k in state_dict if (m := re.match(r"encoder\.down\.(\d+)\.", k))})
    if not levels or levels != list(range(len(levels))):
        raise InputError(f"VAE checkpoint: encoder levels are not 0..n-1: {levels}")
    widths = [shape(f"encoder.down.{i}.block.0.conv1.0.conv3d.weight")[0] for i in levels]
    if any(w % c for w in widths):
        raise InputError(f"VAE checkpoint: level widths {widths} are not multiples of {c}")
    blocks = {int(m.group(1)) for k in state_dict if (m := re.match(r"encoder\.down\.0\.block\.(\d+)\.", k))}
    samplers = sum(1 for i in levels if f"encoder.down.{i}.downsample.conv1.conv3d.weight" in state_dict)
    patch = CV8X8X8_CONFIG["patch_size"]
    if "encoder.patcher3d.patch_size_buffer" in state_dict:
        patch = int(state_dict["encoder.patcher3d.patch_size_buffer"].flatten()[0])
    latent = shape("quant_conv.conv3d.weight")[0]
    return dict(CV8X8X8_CONFIG, channels=c, channels_mult=[w // c for w in widths], num_res_blocks=len(blocks),
                patch_size=patch, latent_channels=latent, z_channels=latent,
                spatial_compression=patch * 2 ** samplers, temporal_compression=patch * 2 ** samplers)


# Wavelet constants of the Haar patcher; diffusers rebuilds them as non-persistent buffers.
_VAE_SKIPPED = re.compile(r"(encoder\.patcher3d|decoder\.unpatcher3d)\.(wavelets|_arange|patch_size_buffer)")

_CONV_PARTS = {"0.conv3d": "conv_s", "1.conv3d": "conv_t"}


def is_skipped_vae_key(key: str) -> bool:
    return _VAE_SKIPPED.fullmatch(key) is not None


def _resnet_part(rest: str) -> str | None:
    m = re.fullmatch(r"(norm[12])\.norm\.(weight|bias)", rest)
    if m:
        return rest
    m = re.fullmatch(r"(conv[12])\.([01]\.conv3d)\.(weight|bias)", rest)
    if m:
        return f"{m.group(1)}.{_CONV_PARTS[m.group(2)]}.{m.group(3)}"
    m = re.fullmatch(r"nin_shortcut\.conv3d\.(weight|bias)", rest)
    return f"conv_shortcut.{m.group(1)}" if m else None


def _attn_part(rest: str) -> str | None:
    m = re.fullmatch(r"norm\.norm\.(weight|bias)", rest)
    if m:
        return rest
    m = re.fullmatch(r"(q|k|v|proj_out)\.conv3d\.(weight|bias)", rest)
    if not m:
        return None
    name = {"q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}[m.group(1)]
    return f"{name}.{m.group(2)}"


def _mid_part(side: str, rest: str) -> str | None:
    m = re.fullmatch(r"block_([12])\.(.+)", rest)
    if m:
        part = _resnet_part(m.group(2))
        return f"{side}.mid_block.resnets.{int(m.group(1)) - 1}.{part}" if part else None
    m = re.fullmatch(r"attn_1\.([01])\.(.+)", rest)  # 0 spatial, 1 causal temporal attention
    if m:
        part = _attn_part(m.group(2))
        kind = "attentions" if m.group(1) == "0" else "temp_attentions"
        return f"{side}.mid_block.{kind}.0.{part}" if part else None
    return None


def make_vae_key_renamer(num_levels: int):
    """Official Cosmos tokenizer key -> AutoencoderKLCosmos key (None if unknown) for `num_levels` resolutions."""

    def rename(key: str) -> str | None:
        m = re.fullmatch(r"(quant_conv|post_quant_conv)\.conv3d\.(weight|bias)", key)
        if m:
            return f"{m.group(1)}.{m.group(2)}"
        m = re.fullmatch(r"(encoder|decoder)\.(.+)", key)
        if not m:
            return None
        side, rest = m.groups()
        m = re.fullmatch(r"(conv_in|conv_out)\.([01]\.conv3d)\.(weight|bias)", rest)
        if m:
            return f"{side}.{m.group(1)}.{_CONV_PARTS[m.group(2)]}.{m.group(3)}"
        if re.fullmatch(r"norm_out\.norm\.(weight|bias)", rest):
            return f"{side}.{rest}"
        if rest.startswith("mid."):
            return _mid_part(side, rest[4:])
        level_word, block_word, sampler = (("down", "down_blocks", "downsample") if side == "encoder"
                                           else ("up", "up_blocks", "upsample"))
        m = re.fullmatch(rf"{level_word}\.(\d+)\.(.+)", rest)
        if not m:
            return None
        level, rest = int(m.group(1)), m.group(2)
        if level >= num_levels:
            return None
        # the official decoder indexes levels from the output end; diffusers in execution order
        index = level if side == "encoder" else num_levels - 1 - level
        m = re.fullmatch(r"block\.(\d+)\.(.+)", rest)
        if m:
            part = _resnet_part(m.group(2))
            return f"{side}.{block_word}.{index}.resnets.{m.group(1)}.{part}" if part else None
        m = re.fullmatch(rf"{sampler}\.(conv[123])\.conv3d\.(weight|bias)", rest)
        if m:
            return f"{side}.{block_word}.{index}.{sampler}rs.0.{m.group(1)}.{m.group(2)}"
        return None

    return rename


def build_vae(diffusers_config: dict):
    """A freshly initialised AutoencoderKLCosmos on CPU (its Haar constants are non-persistent buffers,
    so it is built normally rather than on the meta device; the VAE is small)."""
    from diffusers import AutoencoderKLCosmos

    return AutoencoderKLCosmos(**diffusers_config)


# ---- tiling ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VaeTiling:
    """Spatial tiling in pixels (approximate: tiles do not see each other): tiles of `tile_height` x `tile_width`
    overlapping by at least `overlap`. Exact low memory is `VideoVAE(streaming=...)` instead.

    The defaults cover 704x1280 with 2x2 tiles of about a third of the frame each, bounding the ~30 GB untiled
    peak to roughly a third.
    Overlaps are blended with linear ramps. Sizes are rounded to multiples of the VAE's spatial
    compression. Encode and decode use the same pixel geometry (decode works on latent tiles of
    size / compression).
    """
    tile_height: int = 384
    tile_width: int = 704
    overlap: int = 64

    def __post_init__(self):
        if min(self.tile_height, self.tile_width) <= 0 or self.overlap < 0:
            raise InputError("VAE tiling: tile sizes must be positive and overlap >= 0")
        if self.overlap >= min(self.tile_height, self.tile_width):
            raise InputError("VAE tiling: overlap must be smaller than the tile size")


def tile_starts(size: int, tile: int, overlap: int, step: int = 1) -> list[int]:
    """Evenly spread tile starts (multiples of `step`) covering [0, size) with >= `overlap` shared."""
    if tile >= size:
        return [0]
    count = math.ceil((size - overlap) / (tile - overlap))
    starts = [round(i * (size - tile) / (count - 1) / step) * step for i in range(count)]
    starts[-1] = size - tile
    return starts


def _ramp(tile_start: int, tile_len: int, prev_end: int | None, next_start: int | None,
          device, dtype) -> torch.Tensor:
    """1-D blend weight of one tile: rises over the overlap with the previous tile, falls over the next."""
    pos = torch.arange(tile_start, tile_start + tile_len, device=device, dtype=dtype) + 0.5
    w = torch.ones(tile_len, device=device, dtype=dtype)
    if prev_end is not None and prev_end > tile_start:
        w = torch.minimum(w, ((pos - tile_start) / (prev_end - tile_start)).clamp(0, 1))
    if next_start is not None and next_start < tile_start + tile_len:
        end = tile_start + tile_len
        w = torch.minimum(w, ((end - pos) / (end - next_start)).clamp(0, 1))
    return w


def run_tiled(fn, x: torch.Tensor, in_tile: tuple[int, int], in_overlap: int, scale: float,
              in_step: int) -> torch.Tensor:
    """Apply a spatially-equivariant `fn` ([B,C,T,h,w] -> [B,C',T',h*scale,w*scale]) over overlapping tiles."""
    H, W = x.shape[-2:]
    ys = tile_starts(H, min(in_tile[0], H), in_overlap, in_step)
    xs = tile_starts(W, min(in_tile[1], W), in_overlap, in_step)
    th, tw = min(in_tile[0], H), min(in_tile[1], W)
    out = weight = None
    for iy, y0 in enumerate(ys):
        for ix, x0 in enumerate(xs):
            piece = fn(x[..., y0:y0 + th, x0:x0 + tw]).float()
            if out is None:
                oh, ow = round(H * scale), round(W * scale)
                out = piece.new_zeros(*piece.shape[:-2], oh, ow)
                weight = piece.new_zeros(oh, ow)
            ph, pw = piece.shape[-2:]
            oy, ox = round(y0 * scale), round(x0 * scale)
            wy = _ramp(oy, ph, round((ys[iy - 1] + th) * scale) if iy else None,
                       round(ys[iy + 1] * scale) if iy + 1 < len(ys) else None, piece.device, piece.dtype)
            wx = _ramp(ox, pw, round((xs[ix - 1] + tw) * scale) if ix else None,
                       round(xs[ix + 1] * scale) if ix + 1 < len(xs) else None, piece.device, piece.dtype)
            w2 = wy[:, None] * wx[None, :]
            out[..., oy:oy + ph, ox:ox + pw] += piece * w2
            weight[oy:oy + ph, ox:ox + pw] += w2
            del piece
    return out / weight


# ---- latent statistics -----------------------------------------------------------------------------

def check_latent_stats(mean, std, latent_channels: int, what: str = "VAE latent stats",
                       min_frames: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat float32 (mean, std): same size, latent_channels x (>= min_frames) values, finite, std > 0."""
    try:
        mean = torch.as_tensor(mean, dtype=torch.float32).flatten()
        std = torch.as_tensor(std, dtype=torch.float32).flatten()
    except (TypeError, ValueError, RuntimeError):
        raise InputError(f"{what}: mean/std must be lists of numbers") from None
    if mean.shape != std.shape or mean.numel() == 0 or mean.numel() % latent_channels:
        raise InputError(f"{what}: mean/std must have the same size, a multiple of {latent_channels} "
                         f"(got {mean.numel()} and {std.numel()})")
    if mean.numel() // latent_channels < min_frames:
        raise InputError(f"{what}: {mean.numel()} values cover {mean.numel() // latent_channels} latent frames, "
                         f"need {min_frames} ({latent_channels} channels x {min_frames})")
    if not torch.isfinite(mean).all() or not torch.isfinite(std).all() or (std <= 0).any():
        raise InputError(f"{what}: values must be finite and std > 0")
    return mean, std


def set_latent_stats(vae, mean, std) -> None:
    """Store the flat channel-major statistics in the VAE's config (`latents_mean` / `latents_std`)."""
    mean, std = check_latent_stats(mean, std, vae.config.latent_channels)
    vae.register_to_config(latents_mean=mean.tolist(), latents_std=std.tolist())


def read_latent_stats(config_file, latent_channels: int, min_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) from a VAE `config.json`, read from the file itself: diffusers would silently fill in
    its own default statistics where the entries are absent."""
    from engine.json_input import MAX_CONFIG_BYTES, read_json_file

    config = read_json_file(config_file, str(config_file), max_bytes=MAX_CONFIG_BYTES)
    if not isinstance(config, dict) or not isinstance(config.get("latents_mean"), list) \
            or not isinstance(config.get("latents_std"), list):
        raise InputError(f"{config_file}: no latents_mean/latents_std lists (a folder from an older version: "
                         "run `python -m engine convert` again)")
    return check_latent_stats(config["latents_mean"], config["latents_std"], latent_channels, str(config_file),
                              min_frames)


# ---- the GEN3C wrapper -------------------------------------------------------------------------------

class VideoVAE:
    """Encode pixels to GEN3C model latents and back, with the official normalisation.

    `mean`/`std` are the flat statistics of the Cosmos tokenizer's `mean_std.pt` (latent_channels x 16
    latent frames, channel-major). `pixel_chunk` (e.g. 121) splits longer videos into independently
    encoded chunks as the official wrapper does (None: the whole video is one chunk). `streaming` (latent frames
    per streamed piece, or None) runs the VAE in time pieces with its causal state carried over: same result as
    untiled (to float rounding), a fraction of the memory. `tiling` (a VaeTiling or None) enables spatial tiling,
    an approximation. Batch items are encoded one at a time. Latents are returned in float32.
    """

    def __init__(self, vae, mean: torch.Tensor, std: torch.Tensor, sigma_data: float = 0.5,
                 pixel_chunk: int | None = None, tiling: VaeTiling | None = None, streaming: int | None = None):
        channels = vae.config.latent_channels
        mean, std = check_latent_stats(mean, std, channels)
        if streaming is not None and tiling is not None:
            raise InputError("VAE: choose streaming (exact) or tiling (approximate), not both")
        if streaming is not None and (not isinstance(streaming, int) or isinstance(streaming, bool) or streaming < 1):
            raise InputError(f"VAE streaming must be a positive number of latent frames, got {streaming!r}")
        if pixel_chunk is not None and (pixel_chunk < 1 or (pixel_chunk - 1) % vae.config.temporal_compression_ratio):
            raise InputError(f"VAE pixel_chunk {pixel_chunk} must be 1 + a multiple of "
                             f"{vae.config.temporal_compression_ratio}")
        self.vae = vae
        self.mean = mean.view(channels, -1)
        self.std = std.view(channels, -1)
        self.sigma_data = float(sigma_data)
        self.pixel_chunk = pixel_chunk
        self.tiling = tiling
        self.streaming = streaming

    @property
    def spatial_compression(self) -> int:
        return int(self.vae.config.spatial_compression_ratio)

    @property
    def temporal_compression(self) -> int:
        return int(self.vae.config.temporal_compression_ratio)

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    def latent_frames(self, frames: int) -> int:
        return (frames - 1) // self.temporal_compression + 1

    def _stats(self, latent_t: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        if latent_t > self.mean.shape[1]:
            raise InputError(f"VAE: {latent_t} latent frames per chunk but the statistics cover "
                             f"{self.mean.shape[1]}")
        shape = (1, self.mean.shape[0], latent_t, 1, 1)
        return (self.mean[:, :latent_t].reshape(shape).to(device),
                self.std[:, :latent_t].reshape(shape).to(device))

    def _chunks(self, frames: int) -> int:
        if self.pixel_chunk is None or frames == self.pixel_chunk:
            return 1
        if frames % self.pixel_chunk:
            raise InputError(f"VAE: {frames} frames is not a multiple of the pixel chunk {self.pixel_chunk}")
        return frames // self.pixel_chunk

    def _check_video(self, video: torch.Tensor) -> None:
        if not torch.is_tensor(video) or video.ndim != 5 or video.shape[1] != self.vae.config.in_channels:
            raise InputError(f"VAE encode: expected video [B,{self.vae.config.in_channels},T,H,W], got "
                             f"{tuple(video.shape) if torch.is_tensor(video) else type(video).__name__}")
        T, H, W = video.shape[2:]
        s = self.spatial_compression
        chunk = T // self._chunks(T)
        if (chunk - 1) % self.temporal_compression or H % s or W % s:
            raise InputError(f"VAE encode: frames per chunk must be 1 + k*{self.temporal_compression} and "
                             f"height/width multiples of {s}, got T={T}, H={H}, W={W}")

    def _tile_latent_geometry(self) -> tuple[tuple[int, int], int]:
        """Tile size and overlap in latent pixels (the pixel settings rounded down to the compression)."""
        s, t = self.spatial_compression, self.tiling
        th, tw = max(2, t.tile_height // s), max(2, t.tile_width // s)
        return (th, tw), min(t.overlap // s, min(th, tw) - 1)

    def encode_raw(self, video: torch.Tensor) -> torch.Tensor:
        """Unnormalised VAE latents z of one pixel chunk [B,3,T,H,W] (float32)."""
        vae = self.vae
        outs = []
        for item in video.split(1):
            item = item.to(self.device, self.dtype)
            fn = lambda x: vae.encode(x).latent_dist.mode()  # noqa: E731
            if self.streaming is not None:
                outs.append(stream_encode(vae, item, self.streaming).float())
            elif self.tiling is None:
                outs.append(fn(item).float())
            else:
                (th, tw), overlap = self._tile_latent_geometry()
                s = self.spatial_compression
                outs.append(run_tiled(fn, item, (th * s, tw * s), overlap * s, 1 / s, s))
        return torch.cat(outs)

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """Pixels [B,3,T,H,W] (float32, not clamped) of unnormalised latents of one chunk."""
        vae = self.vae
        outs = []
        s = self.spatial_compression
        for item in z.split(1):
            item = item.to(self.device, self.dtype)
            fn = lambda x: vae.decode(x).sample  # noqa: E731
            if self.streaming is not None:
                outs.append(stream_decode(vae, item, self.streaming).float())
            elif self.tiling is None:
                outs.append(fn(item).float())
            else:
                tile, overlap = self._tile_latent_geometry()
                outs.append(run_tiled(fn, item, tile, overlap, s, 1))
        return torch.cat(outs)

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Pixels [B,3,T,H,W] in [-1,1] -> model latents [B,C,T',H/8,W/8] = ((z - mu)/s) * sigma_data."""
        self._check_video(video)
        pieces = []
        for chunk in video.chunk(self._chunks(video.shape[2]), dim=2):
            z = self.encode_raw(chunk)
            mu, s = self._stats(z.shape[2], z.device)
            pieces.append((z - mu) / s * self.sigma_data)
        return torch.cat(pieces, dim=2)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Model latents [B,C,T',h,w] -> pixels [B,3,T,8h,8w] (float32, unclamped): vae.decode(x/sigma_data*s + mu)."""
        if not torch.is_tensor(latents) or latents.ndim != 5 or latents.shape[1] != self.mean.shape[0]:
            raise InputError(f"VAE decode: expected latents [B,{self.mean.shape[0]},T,H,W], got "
                             f"{tuple(latents.shape) if torch.is_tensor(latents) else type(latents).__name__}")
        latent_chunk = None if self.pixel_chunk is None else self.latent_frames(self.pixel_chunk)
        lt = latents.shape[2]
        if latent_chunk is None or lt == latent_chunk:
            n = 1
        elif lt % latent_chunk:
            raise InputError(f"VAE decode: {lt} latent frames is not a multiple of the chunk {latent_chunk}")
        else:
            n = lt // latent_chunk
        pieces = []
        for chunk in latents.chunk(n, dim=2):
            mu, s = self._stats(chunk.shape[2], chunk.device)
            z = chunk.float() / self.sigma_data * s + mu
            pieces.append(self.decode_raw(z))
        return torch.cat(pieces, dim=2)

    def to(self, device=None, dtype=None) -> "VideoVAE":
        self.vae.to(device=device, dtype=dtype)
        return self

    def release(self) -> None:
        """Drop the VAE weights (the object is unusable afterwards)."""
        self.vae = None


# ---- loading ---------------------------------------------------------------------------------------------

def load_vae(weights_dir=None, device=None, dtype=None, tiling: VaeTiling | None = None,
             streaming: int | None = None) -> VideoVAE:
    """The VideoVAE of `<weights>/vae` (statistics from its config.json), with sigma_data and pixel chunk
    from gen3c.json.

    The VAE runs in `dtype` (bf16 on CUDA, fp32 on CPU by default); at bf16 the statistics are rounded
    to bf16 as the official wrapper stores them (`is_bf16=True`).
    """
    from engine.models.config import Gen3CConfig
    from engine.models.dit import default_device, default_dtype
    from engine.models.weights import find_weights

    status = find_weights(weights_dir)
    status.require("config", "vae")
    cfg = Gen3CConfig.load(status.root)
    mean, std = read_latent_stats(status.root / "vae" / "config.json", cfg.latent_channels, cfg.latent_frames)
    from diffusers import AutoencoderKLCosmos

    from engine.models.integrity import check_model_part, load_checked

    check_model_part(status.root, "vae")  # configs agree with the tensors, files whole
    device = torch.device(device) if device is not None else default_device()
    dtype = dtype or default_dtype(device)
    folder = status.root / "vae"
    vae = load_checked(lambda: AutoencoderKLCosmos.from_pretrained(str(folder), torch_dtype=dtype), folder, "VAE")
    vae.to(device).eval().requires_grad_(False)
    if vae.config.latent_channels != cfg.latent_channels:
        raise InputError(f"{status.root}: vae latent_channels {vae.config.latent_channels} != gen3c.json "
                         f"{cfg.latent_channels}")
    if dtype == torch.bfloat16:
        mean, std = mean.bfloat16().float(), std.bfloat16().float()
    return VideoVAE(vae, mean, std, sigma_data=cfg.sigma_data, pixel_chunk=cfg.chunk_frames, tiling=tiling,
                    streaming=streaming)

