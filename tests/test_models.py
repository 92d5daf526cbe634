"""engine.models: gen3c.json, weight discovery and its help text, text encoders, DiT speed options, benchmarks."""
from __future__ import annotations

import json

import pytest
import torch

from engine.errors import InputError, WeightsMissingError
from engine.models import Gen3CConfig, ZeroTextEncoder, find_weights
from engine.models.weights import resolve_weights_dir


def test_config_round_trip_and_defaults(tmp_path):
    cfg = Gen3CConfig()
    assert (cfg.latent_frames, cfg.latent_height, cfg.latent_width) == (16, 88, 160)
    cfg.save(tmp_path)
    data = json.loads((tmp_path / "gen3c.json").read_text())
    assert data["format"] == "gen3c-studio-weights" and data["version"] == 1 and data["tiny"] is False
    assert Gen3CConfig.load(tmp_path) == cfg


@pytest.mark.parametrize("change, message", [
    ({"format": "other"}, "format"),
    ({"version": 2}, "version"),
    ({"height": -8}, "height"),
    ({"chunk_frames": 120}, "chunk_frames"),
    ({"width": 100}, "multiples"),
    ({"sigma_data": "0.5"}, "sigma_data"),
    ({"tiny": 1}, "tiny"),
    ({"extra": 1}, "unknown fields"),
])
def test_config_rejects_bad_files(tmp_path, change, message):
    data = {**Gen3CConfig().to_json(), **change}
    (tmp_path / "gen3c.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match=message):
        Gen3CConfig.load(tmp_path)


def test_config_rejects_non_json_and_reports_missing(tmp_path):
    (tmp_path / "gen3c.json").write_bytes(b"\xff{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        Gen3CConfig.load(tmp_path)
    with pytest.raises(WeightsMissingError, match="gen3c.json"):
        Gen3CConfig.load(tmp_path / "nowhere")


def test_find_weights_lists_missing_parts_and_what_to_fetch(tmp_path, monkeypatch):
    status = find_weights(tmp_path)
    assert not status.ok and set(status.missing) == {"config", "transformer", "vae", "text_encoder", "text_tokenizer"}
    for needle in ("nvidia/GEN3C-Cosmos-7B", "nvidia/Cosmos-Tokenize1-CV8x8x8-720p", "google-t5/t5-11b",
                   "python -m engine convert", f"--out {tmp_path}", "GEN3C_WEIGHTS"):
        assert needle in status.help
    with pytest.raises(WeightsMissingError, match="transformer"):
        status.require("transformer")
    Gen3CConfig().save(tmp_path)
    (tmp_path / "transformer").mkdir()
    (tmp_path / "transformer" / "config.json").write_text("{}")
    (tmp_path / "transformer" / "diffusion_pytorch_model.safetensors.index.json").write_text("{}")
    status = find_weights(tmp_path)
    assert status.present["transformer"] and status.present["config"] and not status.has_moge
    status.require("config", "transformer")
    assert "vae/config.json" in status.help and "transformer (" not in status.help
    monkeypatch.setenv("GEN3C_WEIGHTS", str(tmp_path))
    assert resolve_weights_dir() == tmp_path and find_weights().root == tmp_path
    monkeypatch.delenv("GEN3C_WEIGHTS")
    assert str(resolve_weights_dir()) == "weights"


def test_loaders_raise_weights_missing(tmp_path):
    from engine.models import load_text_encoder, load_transformer, load_vae

    for loader in (load_transformer, load_vae, load_text_encoder):
        with pytest.raises(WeightsMissingError, match="huggingface-cli download"):
            loader(tmp_path, "cpu", torch.float32)


def test_zero_text_encoder():
    enc = ZeroTextEncoder(max_length=12, dim=8)
    out = enc.encode(["a", "b", ""])
    assert out.shape == (3, 12, 8) and out.abs().max() == 0
    for bad in ("a", [], [1], ["x" * 30_000]):
        with pytest.raises(InputError):
            enc.encode(bad)


def test_attention_backend_and_block_compile_smoke():
    from engine.models.dit import compile_blocks, set_attention
    from engine.models.tiny import tiny_transformer

    model = tiny_transformer(81, 32, seed=0)
    x = torch.randn(1, 16, 2, 4, 8)
    kw = dict(timestep=torch.tensor([0.3]), encoder_hidden_states=torch.randn(1, 5, 32), fps=24,
              condition_mask=torch.randn(1, 65, 2, 4, 8), padding_mask=torch.zeros(1, 1, 32, 64), return_dict=False)
    with torch.no_grad():
        ref = model(x, **kw)[0]
        assert set_attention(model, "auto") == "native"
        assert set_attention(model, "math") == "_native_math"
        assert torch.allclose(model(x, **kw)[0], ref, atol=1e-5)
        with pytest.raises(InputError, match="attention backend"):
            set_attention(model, "warp-speed")
        set_attention(model, "native")
        compile_blocks(model, backend="eager")  # dynamo capture without a C++ toolchain
        assert torch.allclose(model(x, **kw)[0], ref, atol=1e-5)


@pytest.mark.parametrize("which", ["dit", "vae"])
def test_bench_tiny_prints_json(which, capsys):
    from engine.bench.models import main

    assert main([which, "--tiny", "--repeats", "1", "--warmup", "1"] + (["--no-stock"] if which == "dit" else [])) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["bench"] == which and result["tiny"] is True and result["device"] == "cpu"
    assert result["gpu_present"] == torch.cuda.is_available()
    if which == "dit":
        assert result["tokens"] == 96 and result["tuned"]["seconds"] > 0 and result["flops_per_forward"] > 0
    else:
        assert result["encode_tiled"]["seconds"] > 0 and result["decode_untiled"]["seconds"] > 0
        assert result["tiled_vs_untiled_latent_rel_mean_abs"] >= 0


def test_dit_flops_match_reference_arithmetic():
    from engine.bench.models import bf16_peak_tflops, dit_flops
    from engine.models.dit import GEN3C_7B_NET_CONFIG, diffusers_config_from_official

    flops = dit_flops(diffusers_config_from_official(GEN3C_7B_NET_CONFIG), 16, 88, 160, 512)
    assert abs(flops / 2.21e15 - 1) < 0.01  # performance.md: 2.21 PFLOP per forward at 56,320 tokens
    assert bf16_peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert bf16_peak_tflops("NVIDIA H100 PCIe") == 756.0 and bf16_peak_tflops("Quadro") is None
