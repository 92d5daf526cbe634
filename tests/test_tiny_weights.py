"""The tiny weights folder loads through the real loaders with consistent shapes."""
from __future__ import annotations

import json

import pytest
import torch

from engine.errors import InputError
from engine.models import (Gen3CConfig, find_weights, load_text_encoder, load_transformer, load_vae,
                           make_tiny_weights)
from engine.cli.make_tiny_weights import main as tiny_main
from engine.models.tiny import tiny_transformer


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return make_tiny_weights(tmp_path_factory.mktemp("w") / "tiny")


def test_folder_is_complete(tiny_dir):
    status = find_weights(tiny_dir)
    assert status.ok, status.help
    cfg = Gen3CConfig.load(tiny_dir)
    assert cfg.tiny and (cfg.height, cfg.width, cfg.chunk_frames) == (64, 128, 17)
    assert (cfg.latent_frames, cfg.latent_height, cfg.latent_width) == (3, 8, 16)
    assert not (tiny_dir.parent / "tiny.tmp").exists()


def test_transformer_and_vae_shapes_agree(tiny_dir):
    cfg = Gen3CConfig.load(tiny_dir)
    dit = load_transformer(tiny_dir, "cpu", torch.float32, attention="native")
    assert dit.transformer_blocks[0].attn1.norm_q.eps == 1e-6  # restored after from_pretrained
    assert dit.config.in_channels == cfg.latent_channels * (1 + 2 * cfg.frame_buffer_max) + 1
    assert dit.config.text_embed_dim == cfg.text_dim
    vae = load_vae(tiny_dir, "cpu", torch.float32)
    video = torch.rand(1, 3, cfg.chunk_frames, cfg.height, cfg.width) * 2 - 1
    lat = vae.encode(video)
    assert lat.shape == (1, cfg.latent_channels, cfg.latent_frames, cfg.latent_height, cfg.latent_width)
    cond = torch.randn(1, dit.config.in_channels - cfg.latent_channels, *lat.shape[2:])
    out = dit(hidden_states=lat, timestep=torch.tensor([0.1]), encoder_hidden_states=torch.randn(1, 7, cfg.text_dim),
              fps=cfg.fps, condition_mask=cond, padding_mask=torch.zeros(1, 1, cfg.height, cfg.width),
              return_dict=False)[0]
    assert out.shape == lat.shape and torch.isfinite(out).all()
    assert vae.decode(out).shape == video.shape


def test_text_encoder_zeroes_tail_and_caches(tiny_dir, tmp_path):
    enc = load_text_encoder(tiny_dir, "cpu", torch.float32, cache_dir=tmp_path / "cache")
    emb = enc.encode(["A camera moves left", ""])
    assert emb.shape == (2, 32, 32)
    # 4 words + </s> = 5 tokens; everything after is zero (official), the prompt rows are not
    assert emb[0, :5].abs().sum(-1).min() > 0 and emb[0, 5:].abs().max() == 0
    assert emb[1, :1].abs().sum() > 0 and emb[1, 1:].abs().max() == 0
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 2
    again = load_text_encoder(tiny_dir, "cpu", torch.float32, cache_dir=tmp_path / "cache")

    def boom(prompts):
        raise AssertionError("cache miss")
    again._run = boom
    assert torch.equal(again.encode(["A camera moves left"])[0], emb[0])
    enc.release()
    with pytest.raises(InputError, match="list of strings"):
        again.encode("not a list")


def test_deterministic_by_seed():
    a, b, c = tiny_transformer(81, 32, 0), tiny_transformer(81, 32, 0), tiny_transformer(81, 32, 1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["proj_out.weight"], sc["proj_out.weight"])


def test_cli_refuses_non_empty_folder_and_bad_sizes(tiny_dir, tmp_path, capsys):
    assert tiny_main([str(tiny_dir)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert tiny_main([str(tmp_path / "x"), "--chunk-frames", "20"]) == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.tmp").exists()


def test_latent_stats_layout(tiny_dir):
    config = json.loads((tiny_dir / "vae" / "config.json").read_text())
    stats = {"mean": torch.tensor(config["latents_mean"]), "std": torch.tensor(config["latents_std"])}
    assert stats["mean"].shape == stats["std"].shape == (256,) and (stats["std"] > 0).all()
    # diffusers' layout: the statistics live in the config, no side file
    assert sorted(p.name for p in (tiny_dir / "vae").iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors"]


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.pop("latents_mean"), "no latents_mean/latents_std"),  # diffusers would fill in its defaults
    (lambda c: c.update(latents_std=None), "no latents_mean/latents_std"),
    (lambda c: c.update(latents_std=c["latents_std"][:-1]), "same size, a multiple of 16"),
    (lambda c: c.update(latents_mean=c["latents_mean"][:32], latents_std=c["latents_std"][:32]),
     "cover 2 latent frames, need 3"),
    (lambda c: c.update(latents_std=[0.0] + c["latents_std"][1:]), "std > 0"),
    (lambda c: c.update(latents_mean=["x"] * 256), "lists of numbers"),
], ids=["absent", "null", "std-one-short", "two-frames-only", "zero-std", "strings"])
def test_vae_config_without_valid_latent_stats_is_a_one_line_input_error(tiny_dir, tmp_path, edit, message):
    import shutil

    folder = tmp_path / "w"
    shutil.copytree(tiny_dir, folder)
    config_file = folder / "vae" / "config.json"
    config = json.loads(config_file.read_text())
    edit(config)
    config_file.write_text(json.dumps(config))
    with pytest.raises(InputError, match=message) as caught:
        load_vae(folder, "cpu", torch.float32)
    assert str(caught.value).startswith(f"{config_file}: ") and "\n" not in str(caught.value)


def test_tiny_moge_checkpoint_loads_through_depth_loader(tmp_path):
    from engine.depth import MoGeEstimator, find_moge_weights
    from engine.models.tiny import write_tiny_moge

    write_tiny_moge(tmp_path / "moge" / "model.pt", seed=0)
    path = find_moge_weights(tmp_path)
    assert path == tmp_path / "moge" / "model.pt"
    est = MoGeEstimator(path, device="cpu")
    assert est.version == "v1"
