"""Official checkpoint conversion: parity with tensors from NVIDIA's code, strictness, round trips."""
from __future__ import annotations

import pytest
import torch

from conftest import load_fixture, load_fixture_meta
from engine.convert import dit_from_official
from engine.errors import InputError


def _dit_state(fx: dict) -> dict:
    return {k: v for k, v in fx.items() if k.startswith(("net.", "logvar."))}


def _dit_call(model, fx: dict) -> torch.Tensor:
    cond = torch.cat([fx["input/condition_video_input_mask"], fx["input/condition_video_pose"]], dim=1)
    with torch.no_grad():
        return model(hidden_states=fx["input/x"], timestep=fx["input/timesteps"],
                     encoder_hidden_states=fx["input/crossattn_emb"], fps=24, condition_mask=cond,
                     padding_mask=fx["input/padding_mask"], return_dict=False)[0]


@pytest.fixture(scope="module")
def dit_fixture():
    return load_fixture("dit_tiny")


def test_dit_from_official_matches_official_output(dit_fixture):
    meta = load_fixture_meta("dit_tiny")
    model = dit_from_official(_dit_state(dit_fixture), meta["net_config"])
    out = _dit_call(model, dit_fixture)
    assert out.shape == dit_fixture["output"].shape
    assert (out - dit_fixture["output"]).abs().max().item() <= 5e-5
    # the official per-head q/k eps is restored
    assert model.transformer_blocks[0].attn1.norm_q.eps == 1e-6
    assert model.transformer_blocks[1].attn2.norm_k.eps == 1e-6


def test_dit_config_inferred_from_shapes_and_wrapper(dit_fixture):
    meta = load_fixture_meta("dit_tiny")
    state = {"model": _dit_state(dit_fixture)}
    state["model"]["net.blocks.block0.blocks.0.block.attn.to_q.1._extra_state"] = torch.zeros(3)
    model = dit_from_official(state)
    cfg = model.config
    assert (cfg.in_channels, cfg.num_layers, cfg.num_attention_heads, cfg.attention_head_dim) == (81, 2, 4, 64)
    assert (cfg.text_embed_dim, cfg.adaln_lora_dim) == (512, 32)
    assert tuple(cfg.max_size) == (128, 240, 240) and tuple(cfg.rope_scale) == (2.0, 1.0, 1.0)
    assert meta["net_config"]["num_blocks"] == cfg.num_layers
    out = _dit_call(model, dit_fixture)
    assert (out - dit_fixture["output"]).abs().max().item() <= 5e-5


def test_dit_conversion_pops_source_and_shares_storage(dit_fixture):
    source = _dit_state(dit_fixture)
    ptr = source["net.x_embedder.proj.1.weight"].data_ptr()
    model = dit_from_official(source, load_fixture_meta("dit_tiny")["net_config"])
    assert source == {}
    assert model.patch_embed.proj.weight.data_ptr() == ptr  # assigned, not copied


def test_dit_bf16_keeps_position_tables_fp32(dit_fixture):
    model = dit_from_official(_dit_state(dit_fixture), dtype=torch.bfloat16)
    assert model.patch_embed.proj.weight.dtype == torch.bfloat16
    assert model.learnable_pos_embed.pos_emb_t.dtype == torch.float32


@pytest.mark.parametrize("mutate, message", [
    (lambda s: s.pop("net.blocks.block1.blocks.2.block.layer2.weight"), "missing keys"),
    (lambda s: s.__setitem__("net.blocks.block0.blocks.1.block.attn.to_k.0.bias", torch.zeros(256)),
     "unexpected keys"),
    (lambda s: s.__setitem__("net.some_new_module.weight", torch.zeros(1)), "unexpected keys"),
    (lambda s: s.__setitem__("net.final_layer.linear.weight", torch.zeros(64, 255)), "shape mismatch"),
])
def test_dit_conversion_rejects_bad_checkpoints(dit_fixture, mutate, message):
    source = _dit_state(dit_fixture)
    mutate(source)
    n = len(source)
    with pytest.raises(InputError, match=message):
        dit_from_official(source, load_fixture_meta("dit_tiny")["net_config"])
    assert len(source) == n  # nothing consumed on failure


def test_dit_config_rejects_unsupported_options():
    cfg = dict(load_fixture_meta("dit_tiny")["net_config"], block_config="FA-MLP")
    with pytest.raises(InputError, match="block_config"):
        dit_from_official({}, cfg)
    with pytest.raises(InputError, match="expected a state dict"):
        dit_from_official([1, 2], None)
