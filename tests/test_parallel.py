"""engine.parallel in one process: the --parallel plans, the refusals, the Cosmos context-parallel plan and processor.

The runs across processes (gloo, torchrun) are in tests/test_parallel_torchrun.py.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.errors import InputError
from engine.parallel import Degrees, ParallelPlan
from engine.parallel.context import (
    RING_ATTENTION,
    ULYSSES_ATTENTION,
    ContextParallelSelfAttention,
    check_context_parallel,
    cosmos_cp_plan,
    dit_tokens,
)

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # check_context_parallel only reads the device type


# ------------------------------------------------------------------------------------------ plans

@pytest.mark.parametrize("text, cfg, context", [
    ("ulysses", False, "ulysses"), ("ring", False, "ring"), ("cfg", True, None),
    ("cfg,ulysses", True, "ulysses"), ("ulysses, cfg", True, "ulysses"), ("CFG,Ring", True, "ring"),
])
def test_plan_parse(text, cfg, context):
    plan = ParallelPlan.parse(text)
    assert (plan.cfg, plan.context) == (cfg, context)
    assert ParallelPlan.parse(str(plan)) == plan


@pytest.mark.parametrize("text, message", [
    ("", "--parallel must be one of"), ("tensor", "unknown kind 'tensor'"), ("cfg,cfg", "names a kind twice"),
    ("ulysses,ring", "not both"), (None, "--parallel must be one of"),
])
def test_plan_parse_refuses(text, message):
    with pytest.raises(InputError, match=message):
        ParallelPlan.parse(text)


@pytest.mark.parametrize("text, world, degrees", [
    ("ulysses", 2, Degrees(1, 2)), ("ring", 8, Degrees(1, 8)), ("cfg", 2, Degrees(2, 1)),
    ("cfg,ulysses", 4, Degrees(2, 2)), ("cfg,ring", 8, Degrees(2, 4)),
])
def test_plan_degrees(text, world, degrees):
    got = ParallelPlan.parse(text).degrees(world)
    assert got == degrees and got.world == world


@pytest.mark.parametrize("text, world, message", [
    ("ulysses", 1, "at least 2 processes"),
    ("cfg", 3, "needs an even number of processes"),
    ("cfg,ulysses", 5, "needs an even number of processes"),
    ("cfg", 4, "cfg uses exactly 2 processes"),
    ("cfg,ulysses", 2, "2 x k processes with k >= 2"),
])
def test_plan_degrees_refuse(text, world, message):
    with pytest.raises(InputError, match=message):
        ParallelPlan.parse(text).degrees(world)


# ------------------------------------------------------------------------------------------ what splits

GRID = (3, 4, 8)  # the tiny chunk: 3x8x16 latents, 2x2 patches


def test_tiny_chunk_token_grid():
    assert dit_tokens(3, 8, 16, (1, 2, 2)) == GRID
    assert dit_tokens(16, 88, 160, (1, 2, 2)) == (16, 44, 80)  # 121x704x1280: 56,320 tokens


def test_ulysses_checks_pass_where_tokens_and_heads_split():
    check_context_parallel("ulysses", 2, grid=GRID, heads=2, device=CPU)
    check_context_parallel("ulysses", 8, grid=(16, 44, 80), heads=32, device=CPU)  # the 7B DiT on 8 ranks
    check_context_parallel("ring", 4, grid=GRID, heads=2, device=CUDA)  # ring does not split heads


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="ring", degree=2, device=CPU), "--parallel ring needs an attention kernel that returns the log-sum-exp"),
    (dict(kind="ring", degree=2, device=CUDA, attention="native"), "attention 'native' returns no log-sum-exp"),
    (dict(kind="ulysses", degree=4, device=CPU), "2 attention heads do not split over 4 ranks"),
    (dict(kind="ulysses", degree=2, device=CPU, attention="math"), "attention 'math' has no context-parallel"),
    (dict(kind="ulysses", degree=2, device=CPU, grid=(3, 3, 5)), "45 DiT tokens (3x3x5 after patching)"),
    (dict(kind="ring", degree=7, device=CUDA), "96 DiT tokens"),
])
def test_context_parallel_refusals(kwargs, message):
    kwargs = {"grid": GRID, "heads": 2, **kwargs}
    with pytest.raises(InputError) as info:
        check_context_parallel(**kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_attention_tables_agree_with_diffusers():
    """Our Ulysses list is exactly what diffusers registers as context-parallel capable; ring excludes native SDPA,
    which cannot return the log-sum-exp that ring attention merges with."""
    from diffusers.models.attention_dispatch import (
        AttentionBackendName,
        _AttentionBackendRegistry,
        _native_attention,
    )

    from engine.models.dit import ATTENTION_BACKENDS

    capable = {ours for ours, theirs in ATTENTION_BACKENDS.items()
               if _AttentionBackendRegistry._is_context_parallel_available(AttentionBackendName(theirs))}
    assert capable == set(ULYSSES_ATTENTION)
    assert set(RING_ATTENTION) == capable - {"native"}
    q = torch.zeros(1, 4, 2, 8)
    with pytest.raises(ValueError, match="return_lse"):
        _native_attention(q, q, q, return_lse=True)


# ------------------------------------------------------------------------------------------ the Cosmos plan

@pytest.fixture(scope="module")
def tiny_dit():
    from engine.models.tiny import tiny_transformer

    return tiny_transformer(in_channels=81, text_dim=32, seed=0)


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(hidden_states=torch.randn(1, 16, 3, 8, 16, generator=g), timestep=torch.tensor([0.3]),
                encoder_hidden_states=torch.randn(1, 32, 32, generator=g), fps=24,
                condition_mask=torch.randn(1, 65, 3, 8, 16, generator=g), padding_mask=torch.zeros(1, 1, 64, 128),
                return_dict=False)


def test_self_attention_processor_matches_diffusers(tiny_dit):
    """Without a parallel config our self-attention computes what diffusers' CosmosAttnProcessor2_0 computes."""
    from diffusers.models.transformers.transformer_cosmos import CosmosAttnProcessor2_0

    with torch.no_grad():
        for block in tiny_dit.transformer_blocks:
            block.attn1.set_processor(CosmosAttnProcessor2_0())
        reference = tiny_dit(**_inputs())[0]
        for block in tiny_dit.transformer_blocks:
            block.attn1.set_processor(ContextParallelSelfAttention())
            assert isinstance(block.attn2.processor, CosmosAttnProcessor2_0)  # cross-attention keeps diffusers'
        ours = tiny_dit(**_inputs())[0]
        for block in tiny_dit.transformer_blocks:
            block.attn1.set_processor(CosmosAttnProcessor2_0())
    assert float((ours - reference).abs().max()) <= 1e-6


def test_cp_plan_names_modules_whose_tensors_have_the_planned_shape(tiny_dit):
    """diffusers skips a split, with only a warning, when a tensor's rank differs from `expected_dims`: every planned
    tensor must really have that rank and carry the tokens on the planned dim."""
    from diffusers.models._modeling_parallel import ContextParallelInput, ContextParallelOutput

    tokens = GRID[0] * GRID[1] * GRID[2]
    seen = {}
    hooks = []
    for name in cosmos_cp_plan():
        module = tiny_dit.get_submodule(name)

        def grab(mod, args, kwargs, output, _name=name):
            seen[_name] = (args, kwargs, output)

        hooks.append(module.register_forward_hook(grab, with_kwargs=True))
    try:
        with torch.no_grad():
            tiny_dit(**_inputs())
    finally:
        for h in hooks:
            h.remove()
    for name, entry in cosmos_cp_plan().items():
        args, kwargs, output = seen[name]
        if isinstance(entry, ContextParallelOutput):
            planned = [(output, entry.gather_dim, entry.expected_dims)]
        else:
            planned = []
            for key, spec in entry.items():
                assert isinstance(spec, ContextParallelInput)
                if spec.split_output:
                    tensor = ((output,) if torch.is_tensor(output) else tuple(output))[key]
                else:
                    assert key == "hidden_states"  # CosmosTransformerBlock.forward's first argument
                    tensor = kwargs[key] if key in kwargs else args[0]
                planned.append((tensor, spec.split_dim, spec.expected_dims))
        for tensor, dim, dims in planned:
            assert tensor.ndim == dims, name
            assert tensor.shape[dim] == tokens, name


# ------------------------------------------------------------------------------------------ pipeline seams

def test_kept_latents_are_the_ones_the_frames_were_decoded_from(tiny_weights_dir):
    """`result.latents` holds each chunk's final latent; decoding it gives the returned frames."""
    from engine import cameras, depth as depth_mod
    from engine.pipeline import Gen3CPipeline

    pipe = Gen3CPipeline.from_pretrained(tiny_weights_dir, device="cpu", zero_text=True)
    assert pipe.parallel is None and pipe.branch_runner is None
    h, w = pipe.height, pipe.width
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) % 256], -1).astype(np.uint8)
    K = cameras.intrinsics_from_fov(60.0, h, w).astype(np.float32)
    depth = depth_mod.DepthResult(depth=(2 + xx / w).astype(np.float32), K=K, mask=None, notes=[])
    cams = cameras.preset_trajectory("right", torch.eye(4), K, pipe.chunk_frames, 0.2, "center_facing")
    result = pipe.generate(image, cams, pipe.chunk_frames, num_steps=1, depth=depth)
    assert len(result.latents) == 1 and tuple(result.latents[0].shape) == pipe.latent_shape()
    with torch.no_grad():
        video = pipe.vae.decode(result.latents[0]).float()[0].permute(1, 0, 2, 3)
    frames = ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(frames, result.frames)


@pytest.mark.parametrize("value, message", [("x.pt", "must end in .safetensors"), ("nowhere/x.safetensors",
                                                                                    "does not exist")])
def test_save_latents_refused_before_any_work(value, message, tmp_path, capsys, monkeypatch):
    from engine.cli import generate as cli_generate

    monkeypatch.chdir(tmp_path)
    rc = cli_generate.main(["--image", "missing.png", "--preset", "left", "--out", str(tmp_path / "v.mp4"),
                            "--weights", str(tmp_path / "no_weights"), "--save-latents", value])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: --save-latents") and message in err and len(err.splitlines()) == 1


def test_tiny_dit_heads_keep_the_width():
    from engine.models.tiny import tiny_transformer

    model = tiny_transformer(81, 32, seed=0, heads=4)
    assert model.config.num_attention_heads == 4 and model.config.attention_head_dim == 16
    with pytest.raises(InputError, match="heads must divide"):
        tiny_transformer(81, 32, seed=0, heads=3)
