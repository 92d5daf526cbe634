"""Exact low-memory encode/decode of the causal Cosmos video VAE: streamed in time, chunk by chunk.

diffusers' ``AutoencoderKLCosmos`` is causal in time, so a video can be run through it a few latent frames at a
time if every layer that looks back in time keeps what it needs of the earlier chunks. Read from
``diffusers/models/autoencoders/autoencoder_kl_cosmos.py`` (0.42.1), layer by layer:

- ``CosmosCausalConv3d``: pads time on the left with ``temporal_pad = d (k - 1) + 1 - s`` copies of the first
  frame. Streamed, the first chunk pads the same way and later chunks are preceded by the carried tail of the
  padded input from the first not-yet-used position on (``k - 1`` frames for the stride-1 ``(3,1,1)`` convs, one
  frame for the stride-2 one in the down-sampler, none for ``k = 1``).
- ``CosmosDownsample3d`` (temporal part): prepends the first frame once (first chunk only), then a stride-2
  causal conv and a ``(2,1,1)`` average pool; the pool's odd leftover frame is carried.
- ``CosmosUpsample3d`` (temporal part): ``repeat_interleave(2)`` and drop the first frame (first chunk only). The
  factor is 2 unless the whole latent video has a single frame, decided from the whole video's length.
- ``CosmosTemporalAttentionProcessor2_0``: causal (``tril``) attention over time at each pixel. Streamed, the keys
  and values of all earlier frames are kept and each new frame attends to them and to the new frames up to itself.
- ``CosmosCausalGroupNorm`` with ``num_groups = 1`` (every norm in the model): normalises each frame on its own
  (``[B*T, C, H, W]``): no state. Spatial attention is per frame: no state. Dropout is off in eval.
- Haar patching (``CosmosPatchEmbed3d``) and unpatching (``CosmosUnpatcher3d``): size-2, stride-2 filters in time,
  i.e. independent blocks of ``patch_size`` frames once the first frame is repeated ``patch_size`` times (encode)
  or ``patch_size - 1`` frames are dropped (decode). Later chunks run the stock module with one throw-away frame in
  front and drop its block, so the first-frame handling happens only once.

Chunks are counted in latent frames: latent frame 0 is pixel frame 0, latent frame j > 0 covers pixel frames
8j-7 .. 8j (temporal compression 8), so chunk 0 is 1 + 8 (n - 1) pixel frames and every later chunk 8 n.

Peak memory for 121 x 704 x 1280 (latent 16 x 88 x 160), CV8x8x8 widths (encoder 128/256/512/512, decoder
512/512/512/256), bf16, one latent frame per chunk. Per frame, a 512-channel tensor at 88 x 160 is 7.2 M values
(14.4 MB), a 256-channel one at 176 x 320 is 14.4 M (28.8 MB), the 192-channel conv_out input 10.8 M (21.6 MB):

- Carried state of the decoder: the (3,1,1) causal convs keep 2 input frames each: 18 at 512 x 88 x 160 (conv_in,
  2 mid-block resnets x 2, 2 up blocks x 3 resnets x 2, the up-sampler) = 18 x 2 x 14.4 MB = 0.52 GB; 6 at
  256 x 176 x 320 (the last up block) = 0.35 GB; conv_out's = 0.04 GB; plus the mid block's temporal-attention
  keys and values, 2 x 16 frames x 14.4 MB = 0.46 GB by the last chunk: 1.37 GB in all (the encoder's: 1.08 GB).
- One chunk's activations are those of 1 latent frame (2 frames at 176 x 320 in the decoder, 8 pixel frames in
  the encoder) instead of 16 (31 at 176 x 320, 121 pixel frames).
- Counting live tensors of the same code on the meta device (``engine.bench.memory_model``, attention on the math
  path): streamed decode 4.0 GB, encode 3.5 GB, against 22.7 GB for either untiled (measured on an H100: 29.8 GB
  decode, 30.4 GB encode). Scaled by that measured/counted ratio, a streamed pass needs ~5 GB on a GPU besides the
  0.2 GB of weights. The 121-frame output (1.3 GB in float32) is wherever the caller keeps it.
``python -m engine bench gpu`` measures the real peaks.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.errors import InputError

__all__ = ["stream_decode", "stream_encode", "streamable"]


class _Stream:
    """What one streamed pass carries between chunks: per-module state, and whether this is the first chunk."""

    def __init__(self, total_latent_frames: int):
        self.first = True
        self.time_factor = 2 if total_latent_frames > 1 else 1
        self.state: dict[int, object] = {}


def _conv(conv, x: torch.Tensor, st: _Stream) -> torch.Tensor:
    """A CosmosCausalConv3d over the next frames of its input, carrying the unused tail of its padded input."""
    if st.first:
        pad = conv.temporal_pad
        padded = torch.cat([x[:, :, :1].repeat(1, 1, pad, 1, 1), x], dim=2) if pad else x
    else:
        carry = st.state.get(id(conv))
        padded = x if carry is None else torch.cat([carry, x], dim=2)
    span = conv.dilation[0] * (conv.kernel_size[0] - 1) + 1
    stride = conv.stride[0]
    n = (padded.shape[2] - span) // stride + 1 if padded.shape[2] >= span else 0
    st.state[id(conv)] = padded[:, :, n * stride:] if padded.shape[2] > n * stride else None
    if n == 0:
        raise InputError("VAE streaming: a chunk too short for a causal convolution (use >= 1 latent frame)")
    used = padded[:, :, :(n - 1) * stride + span]
    used = F.pad(used, (*conv.spatial_pad, 0, 0), mode=conv.pad_mode, value=0.0)
    return F.conv3d(used, conv.weight, conv.bias, conv.stride, 0, conv.dilation, conv.groups)


def _projection(proj, x, st):
    return _conv(proj.conv_t, _conv(proj.conv_s, x, st), st)


def _resnet(block, x, st):
    residual = x if isinstance(block.conv_shortcut, torch.nn.Identity) else _conv(block.conv_shortcut, x, st)
    h = _projection(block.conv1, F.silu(block.norm1(x)), st)
    h = block.dropout(F.silu(block.norm2(h)))
    return _projection(block.conv2, h, st) + residual


def _temporal_attention(attn, x, st):
    """Causal attention over time at each pixel, with the keys/values of the earlier chunks."""
    b, _, t, h, w = x.shape
    normed = attn.norm(x)
    q, k, v = (_conv(layer, normed, st) for layer in (attn.to_q, attn.to_k, attn.to_v))
    past = st.state.get(id(attn))
    if past is not None:
        k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
    st.state[id(attn)] = (k, v)
    offset = k.shape[2] - t  # frames before this chunk

    def heads(y):  # [B,C,T,H,W] -> [B*H*W, heads, T, C/heads]
        return y.permute(0, 3, 4, 2, 1).flatten(0, 2).unflatten(2, (attn.num_attention_heads, -1)).transpose(1, 2)

    mask = torch.ones(t, k.shape[2], dtype=torch.bool, device=x.device).tril(offset)
    out = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), attn_mask=mask)
    out = out.transpose(1, 2).flatten(2, 3).type_as(q).unflatten(0, (b, h, w)).permute(0, 4, 3, 1, 2)
    out = attn.to_out[1](_conv(attn.to_out[0], out, st))
    return out + x


def _spatial_attention(attn, x, st):
    return attn(x)  # per frame (B*T batches of H*W tokens): nothing crosses frames


def _attentions(x, st, attention, temp_attention):
    if attention is not None:
        x = _spatial_attention(attention, x, st)
    if temp_attention is not None:
        x = _temporal_attention(temp_attention, x, st)
    return x


def _pool_time(key, x, st):
    """avg_pool3d (2,1,1) / stride 2 over time, carrying an odd leftover frame."""
    carry = st.state.get(key)
    x = x if carry is None else torch.cat([carry, x], dim=2)
    n = x.shape[2] // 2
    st.state[key] = x[:, :, 2 * n:] if x.shape[2] > 2 * n else None
    return F.avg_pool3d(x[:, :, :2 * n], kernel_size=(2, 1, 1), stride=(2, 1, 1))


def _downsample(ds, x, st):
    if not ds.spatial_downsample and not ds.temporal_downsample:
        return x
    if ds.spatial_downsample:
        x = F.pad(x, (0, 1, 0, 1, 0, 0), mode="constant", value=0)
        x = _conv(ds.conv1, x, st) + F.avg_pool3d(x, kernel_size=(1, 2, 2), stride=(1, 2, 2))
    if ds.temporal_downsample:
        if st.first:
            x = torch.cat([x[:, :, :1], x], dim=2)
        conv_out, pool_out = _conv(ds.conv2, x, st), _pool_time((id(ds), "pool"), x, st)
        if conv_out.shape[2] != pool_out.shape[2]:
            raise InputError("VAE streaming: chunk boundaries must fall on latent frames")
        x = conv_out + pool_out
    return _conv(ds.conv3, x, st)


def _upsample(us, x, st):
    if not us.spatial_upsample and not us.temporal_upsample:
        return x
    if us.temporal_upsample:
        f = st.time_factor
        x = x.repeat_interleave(f, dim=2)
        if st.first:
            x = x[:, :, f - 1:]
        x = _conv(us.conv1, x, st) + x
    if us.spatial_upsample:
        x = x.repeat_interleave(2, dim=3).repeat_interleave(2, dim=4)
        x = _conv(us.conv2, x, st) + x
    return _conv(us.conv3, x, st)


def _resolution_block(block, x, st, samplers, resample):
    """One encoder/decoder level: resnets with their attentions, then its down- or up-samplers."""
    for resnet, attention, temp_attention in zip(block.resnets, block.attentions, block.temp_attentions):
        x = _attentions(_resnet(resnet, x, st), st, attention, temp_attention)
    for sampler in samplers or ():
        x = resample(sampler, x, st)
    return x


def _down_block(block, x, st):
    return _resolution_block(block, x, st, block.downsamplers, _downsample)


def _up_block(block, x, st):
    return _resolution_block(block, x, st, block.upsamplers, _upsample)


def _mid_block(block, x, st):
    x = _resnet(block.resnets[0], x, st)
    for attention, temp_attention, resnet in zip(block.attentions, block.temp_attentions, block.resnets[1:]):
        x = _resnet(resnet, _temporal_attention(temp_attention, _spatial_attention(attention, x, st), st), st)
    return x


def _encode_chunk(vae, x, st):
    enc = vae.encoder
    if st.first:
        h = enc.patch_embed(x)
    else:  # a throw-away frame in front takes the first-frame repeat; its patch block is dropped
        h = enc.patch_embed(torch.cat([x[:, :, :1], x], dim=2))[:, :, 1:]
    h = _projection(enc.conv_in, h, st)
    for block in enc.down_blocks:
        h = _down_block(block, h, st)
    h = _mid_block(enc.mid_block, h, st)
    h = _projection(enc.conv_out, F.silu(enc.norm_out(h)), st)
    return _conv(vae.quant_conv, h, st)


def _decode_chunk(vae, z, st):
    dec = vae.decoder
    h = _conv(vae.post_quant_conv, z, st)
    h = _mid_block(dec.mid_block, _projection(dec.conv_in, h, st), st)
    for block in dec.up_blocks:
        h = _up_block(block, h, st)
    h = _projection(dec.conv_out, F.silu(dec.norm_out(h)), st)
    if st.first:
        return dec.unpatch_embed(h)
    # a throw-away frame in front absorbs the dropped first frames; its block is dropped too
    return dec.unpatch_embed(torch.cat([torch.zeros_like(h[:, :, :1]), h], dim=2))[:, :, 1:]


def streamable(vae) -> str | None:
    """None when ``vae`` can be streamed exactly, else why not (a GroupNorm over time, an unknown patcher)."""
    for name, module in vae.named_modules():
        if type(module).__name__ == "CosmosCausalGroupNorm" and module.num_groups != 1:
            return f"{name} normalises over time (num_groups={module.num_groups})"
    if vae.encoder.patch_embed.patch_method != "haar" or vae.decoder.unpatch_embed.patch_method != "haar":
        return "only the Haar patcher is streamed"
    return None


def _check(vae, chunk: int) -> None:
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
        raise InputError(f"VAE streaming: chunk must be a positive number of latent frames, got {chunk!r}")
    why = streamable(vae)
    if why is not None:
        raise InputError(f"VAE streaming: this VAE cannot be streamed exactly: {why}")


@torch.no_grad()
def stream_encode(vae, video: torch.Tensor, chunk: int = 1) -> torch.Tensor:
    """Latents z of ``video`` [B,3,T,H,W] (T = 1 + 8k) as ``vae.encode(video).latent_dist.mode()``, computed
    ``chunk`` latent frames at a time."""
    _check(vae, chunk)
    tc = int(vae.config.temporal_compression_ratio)
    frames = video.shape[2]
    if (frames - 1) % tc:
        raise InputError(f"VAE streaming: {frames} frames is not 1 + a multiple of {tc}")
    total = (frames - 1) // tc + 1
    st = _Stream(total)
    outs = []
    start, pixel = 0, 0
    while start < total:
        n = min(chunk, total - start)
        stop_pixel = 1 + (start + n - 1) * tc
        outs.append(_encode_chunk(vae, video[:, :, pixel:stop_pixel], st))
        st.first = False
        start, pixel = start + n, stop_pixel
    return torch.cat(outs, dim=2)


@torch.no_grad()
def stream_decode(vae, z: torch.Tensor, chunk: int = 1, sink=None) -> torch.Tensor | None:
    """Pixels of latents ``z`` [B,C,t,h,w] as ``vae.decode(z).sample``, computed ``chunk`` latent frames at a time.

    ``sink(frames)``, if given, receives each chunk's pixel frames instead (e.g. to move them off the GPU at once);
    then nothing is returned.
    """
    _check(vae, chunk)
    total = z.shape[2]
    st = _Stream(total)
    outs = []
    for start in range(0, total, chunk):
        piece = _decode_chunk(vae, z[:, :, start:start + chunk], st)
        st.first = False
        if sink is None:
            outs.append(piece)
        else:
            sink(piece)
    return torch.cat(outs, dim=2) if sink is None else None
