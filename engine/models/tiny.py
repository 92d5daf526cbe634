"""Tiny random models in the real weights layout, for tests and smoke runs (`python -m engine make-tiny-weights`).

Every part the pipeline loads is written (DiT with in_channels 81, CV8x8x8-structured VAE with 16
base channels and latent statistics in its config, T5 encoder + an offline word-level text tokenizer,
gen3c.json with "tiny": true), deterministically from a seed. Weights are random: the output is noise,
the code paths are the real ones.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from engine.errors import InputError

TINY_TEXT_DIM = 32
TINY_TEXT_LENGTH = 32
TINY_DIT = dict(num_attention_heads=2, attention_head_dim=32, num_layers=2, mlp_ratio=4.0, adaln_lora_dim=16,
                max_size=(128, 240, 240), patch_size=(1, 2, 2), rope_scale=(2.0, 1.0, 1.0),
                concat_padding_mask=True, extra_pos_embed_type="learnable")
TINY_VAE_CHANNELS = 16
# A small closed vocabulary; unknown words map to <unk>.
_WORDS = """a an the and of in on at to with from by for over under near into through across along around
camera moves left right up down forward backward zoom rotates slowly quickly smoothly static scene view shot
image video photo frame light dark bright sunny cloudy night day morning evening sky sun moon cloud clouds rain
snow fog tree trees forest grass field flower flowers mountain mountains hill river lake sea ocean beach water
wave waves rock rocks sand desert road street city building buildings house houses room window door wall floor
table chair car cars bus train bridge tower church castle garden park path person people man woman child dog cat
bird horse red green blue yellow white black gray brown orange purple pink golden colorful old new small large
tall wide long high low beautiful detailed realistic cinematic ugly blurry noisy distorted static low quality
""".split()


def _randomize(model: torch.nn.Module, generator: torch.Generator) -> None:
    """O(1) random weights (like the reference fixtures) so that every path contributes."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and p.ndim == 1:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=generator))
            elif "pos_emb" in name:
                p.copy_(torch.randn(p.shape, generator=generator))
            elif p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=generator) / math.sqrt(p[0].numel()))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=generator))


def tiny_transformer(in_channels: int, text_dim: int, seed: int, heads: int = 2):
    """The tiny DiT; ``heads`` splits its width of 64 into that many attention heads."""
    from diffusers import CosmosTransformer3DModel

    from engine.models.dit import set_qk_norm_eps

    width = TINY_DIT["num_attention_heads"] * TINY_DIT["attention_head_dim"]
    if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1 or width % heads:
        raise InputError(f"tiny DiT heads must divide its width {width}, got {heads!r}")
    shape = dict(TINY_DIT, num_attention_heads=heads, attention_head_dim=width // heads)
    model = CosmosTransformer3DModel(in_channels=in_channels, out_channels=16, text_embed_dim=text_dim, **shape)
    _randomize(model, torch.Generator().manual_seed(seed))
    set_qk_norm_eps(model)
    return model.eval()


def tiny_vae_official_config() -> dict:
    from engine.models.vae import CV8X8X8_CONFIG

    return dict(CV8X8X8_CONFIG, channels=TINY_VAE_CHANNELS)


def tiny_vae(seed: int):
    from engine.models.vae import build_vae, diffusers_vae_config_from_official

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_vae(diffusers_vae_config_from_official(tiny_vae_official_config())).eval()


def tiny_text_tokenizer(max_length: int = TINY_TEXT_LENGTH):
    """An offline word-level text tokenizer with T5's special tokens (<pad>=0, </s>=1, <unk>=2) and EOS appended."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in _WORDS:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=max_length)


def tiny_t5(vocab_size: int, dim: int, seed: int):
    from transformers import T5Config, T5EncoderModel

    config = T5Config(vocab_size=vocab_size, d_model=dim, d_kv=8, d_ff=2 * dim, num_layers=2, num_heads=4,
                      relative_attention_num_buckets=8, relative_attention_max_distance=16, dropout_rate=0.0,
                      feed_forward_proj="relu", pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                      use_cache=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return T5EncoderModel(config).eval()


# MoGe v1 with the smallest stock backbone (DINOv2 ViT-S/14, 22 M parameters: MoGe builds its backbone
# by name, so a narrower one would not load without patching) and minimal heads. Stored in fp16 (~44 MB).
TINY_MOGE_CONFIG = dict(encoder="dinov2_vits14", intermediate_layers=4, dim_proj=16, dim_upsample=[8, 8, 8],
                        num_res_blocks=1, remap_output="exp", res_block_norm="layer_norm", last_conv_channels=8)


def write_tiny_moge(path, seed: int) -> None:
    """A random MoGe v1 checkpoint ({'model_config', 'model'}) loadable by engine.depth.MoGeEstimator."""
    from moge.model import import_model_class_by_version

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = import_model_class_by_version("v1")(**TINY_MOGE_CONFIG)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model_config": TINY_MOGE_CONFIG, "model": state}, str(path))


def make_tiny_weights(out_dir, height: int = 64, width: int = 128, chunk_frames: int = 17, seed: int = 0,
                      overwrite: bool = False, moge: bool = False, dit_heads: int = 2) -> Path:
    """Write a complete tiny weights folder at `out_dir` (atomically) and return its path.

    `moge=True` adds a random MoGe v1 (ViT-S backbone, ~44 MB) at moge/model.pt; off by default
    because it is the one part that is not tiny. `dit_heads`: attention heads of the DiT (same width).
    """
    from engine.models.config import Gen3CConfig
    from engine.models.weights import atomic_output_dir, save_text_encoder, save_transformer, save_vae

    cfg = Gen3CConfig(height=height, width=width, chunk_frames=chunk_frames, text_max_length=TINY_TEXT_LENGTH,
                      text_dim=TINY_TEXT_DIM, tiny=True)
    if cfg.latent_frames > 16:
        raise InputError(f"chunk_frames {chunk_frames}: at most 121 (16 latent frames of statistics)")
    in_channels = cfg.latent_channels * (1 + 2 * cfg.frame_buffer_max) + 1
    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        save_transformer(tiny_transformer(in_channels, cfg.text_dim, seed, heads=dit_heads), tmp)
        g = torch.Generator().manual_seed(seed + 1)
        n = cfg.latent_channels * 16
        mean, std = 0.2 * torch.randn(n, generator=g), 0.5 + torch.rand(n, generator=g)
        save_vae(tiny_vae(seed + 2), mean, std, tmp)
        text_tokenizer = tiny_text_tokenizer(cfg.text_max_length)
        save_text_encoder(tiny_t5(len(text_tokenizer), cfg.text_dim, seed + 3), text_tokenizer, tmp)
        if moge:
            write_tiny_moge(tmp / "moge" / "model.pt", seed + 4)
        cfg.save(tmp)
    return Path(out_dir)
