"""Time-streamed VAE (engine.models.vae_stream): equals the untiled encode/decode of the official tiny tokenizer.

References: the official Cosmos tokenizer's own outputs in the `tokenizer_tiny` fixture (17 frames -> 3 latent
frames), and, for longer videos, diffusers' untiled `AutoencoderKLCosmos` on the same converted weights (itself
pinned to the fixture in test_convert.py).
"""
from __future__ import annotations

import pytest
import torch

from reference_fixtures import load_fixture, load_fixture_meta
from engine.errors import InputError
from engine.models.vae import VaeTiling, VideoVAE
from engine.models.vae_stream import stream_decode, stream_encode, streamable


@pytest.fixture(scope="module")
def fx():
    return load_fixture("tokenizer_tiny")


@pytest.fixture(scope="module")
def vae(fx):
    from engine.convert import vae_from_official

    state = {k: v for k, v in fx.items() if k.startswith(("encoder.", "decoder.", "quant_conv.", "post_quant_conv."))}
    return vae_from_official(state, load_fixture_meta("tokenizer_tiny")["config"]).eval()


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_stream_matches_the_official_tokenizer(vae, fx, chunk):
    z = stream_encode(vae, fx["input/video"], chunk)
    assert z.shape == fx["latent/raw"].shape
    assert (z - fx["latent/raw"]).abs().max().item() <= 1e-4
    x = stream_decode(vae, fx["latent/raw"], chunk)
    assert x.shape == fx["output/decoded_raw"].shape
    assert (x - fx["output/decoded_raw"]).abs().max().item() <= 1e-4


@pytest.fixture(scope="module")
def long_video():
    g = torch.Generator().manual_seed(3)
    return torch.rand(1, 3, 41, 32, 48, generator=g) * 2 - 1  # 6 latent frames


@pytest.fixture(scope="module")
def untiled(vae, long_video):
    with torch.no_grad():
        z = vae.encode(long_video).latent_dist.mode()
        return z, vae.decode(z).sample


@pytest.mark.parametrize("chunk", [1, 2, 4, 5])  # 4 and 5 leave a shorter last piece
def test_stream_matches_untiled_on_a_longer_video(vae, long_video, untiled, chunk):
    z_ref, x_ref = untiled
    z = stream_encode(vae, long_video, chunk)
    assert (z - z_ref).abs().max().item() <= 1e-4
    pieces = []
    assert stream_decode(vae, z_ref, chunk, sink=pieces.append) is None
    assert pieces[0].shape[2] == 1 + 8 * (min(chunk, 6) - 1) and sum(p.shape[2] for p in pieces) == 41
    x = torch.cat(pieces, dim=2)
    assert x.shape == x_ref.shape
    assert (x - x_ref).abs().max().item() <= 1e-4


def test_carried_state_is_what_makes_it_exact(vae, long_video, untiled):
    """Encoding the pieces independently (no carried state) is far off: the state does real work."""
    z_ref, x_ref = untiled
    independent = torch.cat([stream_encode(vae, long_video[:, :, :9], 2),
                             stream_encode(vae, long_video[:, :, 8:25], 2)[:, :, 1:],
                             stream_encode(vae, long_video[:, :, 24:41], 2)[:, :, 1:]], dim=2)
    assert (independent - z_ref).abs().max().item() > 1e-2
    assert (stream_encode(vae, long_video, 2) - z_ref).abs().max().item() <= 1e-4


def test_video_vae_streaming_option(vae, fx):
    mean, std = fx["mean_std/mean"], fx["mean_std/std"]
    streamed = VideoVAE(vae, mean, std, sigma_data=0.5, pixel_chunk=17, streaming=1)
    lat = streamed.encode(fx["input/video"])
    assert (lat - fx["latent/model_latent"]).abs().max().item() <= 1e-4
    assert (streamed.decode(fx["latent/model_latent"]) - fx["output/decoded_wrapper"]).abs().max().item() <= 1e-4
    with pytest.raises(InputError, match="not both"):
        VideoVAE(vae, mean, std, streaming=1, tiling=VaeTiling())
    with pytest.raises(InputError, match="positive"):
        VideoVAE(vae, mean, std, streaming=0)


def test_bad_lengths_and_unstreamable_vaes(vae, fx):
    with pytest.raises(InputError, match="1 \\+ a multiple of 8"):
        stream_encode(vae, fx["input/video"][:, :, :12])
    with pytest.raises(InputError, match="positive"):
        stream_decode(vae, fx["latent/raw"], 0)
    assert streamable(vae) is None
    norm = vae.decoder.norm_out
    norm.num_groups = 2  # a GroupNorm over time couples every frame: refused, not silently wrong
    try:
        assert "num_groups=2" in streamable(vae)
        with pytest.raises(InputError, match="cannot be streamed"):
            stream_decode(vae, fx["latent/raw"])
    finally:
        norm.num_groups = 1


def test_low_memory_pipeline_streams_the_vae(tiny_weights_dir):
    from engine.pipeline import Gen3CPipeline

    pipe = Gen3CPipeline.from_pretrained(tiny_weights_dir, device="cpu", placement="low_memory", zero_text=True)
    assert pipe.vae.streaming is not None and pipe.vae.tiling is None
    resident = Gen3CPipeline.from_pretrained(tiny_weights_dir, device="cpu", placement="resident", zero_text=True)
    assert resident.vae.streaming is None and resident.vae.tiling is None
