"""Fast mode (engine.fast_cache): diffusers' cache hooks really skip Cosmos block executions, the cond and uncond
branches keep separate cache state, TaylorSeer gets identifiers that match Cosmos, hooks come off cleanly, and the
option reaches the pipeline, the CLI and `bench fast`.

Block executions are counted independently of the hooks: a forward pre-hook on each block's first layer (norm1),
which runs only when the block's own forward runs (a skipped block is never entered).
"""
from __future__ import annotations

import json

import pytest
import torch

from engine.errors import InputError
from engine.fast_cache import CACHE_MODES, CacheSettings, FastCache
from engine.sampler import Branch, run_branches, sample_latents

STEPS = 12


@pytest.fixture(scope="module")
def dit():
    from engine.models.tiny import tiny_transformer

    return tiny_transformer(81, 32, seed=0)


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(0)
    shape = (1, 16, 3, 8, 16)
    return dict(noise=torch.randn(shape, generator=g), condition_latent=0.5 * torch.randn(shape, generator=g),
                cache_latents=0.5 * torch.randn(1, 64, 3, 8, 16, generator=g),
                prompt_embeds=torch.randn(1, 32, 32, generator=g),
                negative_prompt_embeds=torch.randn(1, 32, 32, generator=g))


def _count(dit):
    counter = [0]
    handles = [b.norm1.register_forward_pre_hook(lambda m, a: counter.__setitem__(0, counter[0] + 1))
               for b in dit.transformer_blocks]
    return counter, handles


def _sample(dit, inputs, settings=None, steps=STEPS):
    counter, handles = _count(dit)
    try:
        if settings is None:
            x = sample_latents(dit, **inputs, num_steps=steps, guidance=1.5)
        else:
            with FastCache(dit, settings, steps) as fc:
                x = sample_latents(dit, **inputs, num_steps=steps, guidance=1.5, branch_runner=fc.branch_runner())
    finally:
        for h in handles:
            h.remove()
    return x, counter[0]


def test_every_mode_skips_block_executions(dit, inputs):
    layers = len(dit.transformer_blocks)
    exact, n_exact = _sample(dit, inputs)
    assert n_exact == STEPS * 2 * layers  # 2 branches per step
    # TaylorSeer (documented schedule): steps 0..2 computed, then every 5th from step 4 -> 0,1,2,4,9
    x, n = _sample(dit, inputs, CacheSettings("taylorseer"))
    assert n == 5 * 2 * layers
    # MagCache with unit ratios: int(0.2 * 12 + 0.5) = 2 retention steps, then 3 skipped per computed -> 0,1,5,9
    x, n = _sample(dit, inputs, CacheSettings("mag"))
    assert n == 4 * 2 * layers
    # FirstBlockCache: the first block always runs; the rest only when its residual changed enough
    x, n = _sample(dit, inputs, CacheSettings("first_block", threshold=0.2))
    assert STEPS * 2 <= n < n_exact
    rel = ((x - exact).norm() / exact.norm()).item()
    assert 0 < rel < 0.5  # approximate: different, not garbage


def test_taylorseer_identifiers_match_cosmos_and_the_defaults_do_not(dit):
    from diffusers.hooks import TaylorSeerCacheConfig, apply_taylorseer_cache
    from diffusers.hooks.taylorseer_cache import _TAYLORSEER_CACHE_HOOK

    with FastCache(dit, "taylorseer", STEPS) as fc:
        assert fc.hooked == [f"transformer_blocks.{i}" for i in range(len(dit.transformer_blocks))] + ["proj_out"]
    # the diffusers defaults hook nothing on Cosmos (attn1/attn2 never fullmatch "^transformer_blocks.*attn")
    model = __import__("engine.models.tiny", fromlist=["tiny_transformer"]).tiny_transformer(81, 32, seed=1)
    apply_taylorseer_cache(model, TaylorSeerCacheConfig())
    hooked = [n for n, m in model.named_modules()
              if getattr(m, "_diffusers_hook", None) is not None and m._diffusers_hook.get_hook(_TAYLORSEER_CACHE_HOOK)]
    assert hooked == []


class _Recorder:
    """A base BranchRunner recording every call (inputs and output) it runs."""

    def __init__(self):
        self.calls = []

    def __call__(self, transformer, net_input, timestep, branches, padding_mask, fps):
        out = run_branches(transformer, net_input, timestep, branches, padding_mask, fps)
        self.calls.append((branches[0], net_input, timestep, padding_mask, out[0]))
        return out


@pytest.mark.parametrize("mode", ["first_block", "mag", "taylorseer"])
def test_cond_and_uncond_keep_separate_cache_state(dit, inputs, mode):
    """Replaying the cond branch's calls alone on a fresh cache gives the outputs it had next to uncond."""
    settings = CacheSettings(mode, threshold=0.2) if mode == "first_block" else CacheSettings(mode)
    recorder = _Recorder()
    with FastCache(dit, settings, STEPS) as fc:
        sample_latents(dit, **inputs, num_steps=STEPS, guidance=1.5, branch_runner=fc.branch_runner(recorder))
        names = [sorted(m._state_cache) for m in fc.managers]
        assert all(n == ["cond", "uncond"] for n in names)
        states = fc.managers[0]._state_cache
        assert states["cond"] is not states["uncond"]
    cond_calls = [c for c in recorder.calls if c[0].name == "cond"]
    assert len(cond_calls) == STEPS
    counter, handles = _count(dit)
    try:
        with FastCache(dit, settings, STEPS) as fresh:
            for branch, net_input, timestep, padding_mask, expected in cond_calls:
                with fresh.context("cond"):
                    out = run_branches(dit, net_input, timestep, [branch], padding_mask, 24)[0]
                torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    finally:
        for h in handles:
            h.remove()
    assert counter[0] < STEPS * len(dit.transformer_blocks)  # the replay skipped blocks too


def test_state_dict_round_trip_resumes_a_run(dit, inputs):
    """Steps 0-5 then 6-11 with the hook state carried (through the CPU) equal one 12-step run."""
    settings = CacheSettings("taylorseer")
    whole, _ = _sample(dit, inputs, settings)
    with FastCache(dit, settings, STEPS) as fc:
        x = sample_latents(dit, **inputs, num_steps=STEPS, guidance=1.5, branch_runner=fc.branch_runner(),
                           stop_step=6)
        saved = fc.state_dict()
    with FastCache(dit, settings, STEPS) as fc:
        fc.load_state_dict(saved)
        x = sample_latents(dit, **inputs, num_steps=STEPS, guidance=1.5, branch_runner=fc.branch_runner(),
                           start_step=6, latents=x)
    torch.testing.assert_close(x, whole, rtol=0, atol=1e-6)


def test_hooks_come_off_and_bad_settings_are_refused(dit, inputs):
    exact, _ = _sample(dit, inputs, steps=3)
    with FastCache(dit, "first_block", 3):
        with pytest.raises(InputError, match="already applied"):
            FastCache(dit, "mag", 3)
    again, n = _sample(dit, inputs, steps=3)
    assert n == 3 * 2 * len(dit.transformer_blocks)
    torch.testing.assert_close(again, exact, rtol=0, atol=0)
    assert not any(getattr(m, "_diffusers_hook", None) is not None and m._diffusers_hook.hooks
                   for m in dit.modules())
    for bad in ("fastest", 3):
        with pytest.raises(InputError):
            CacheSettings.of(bad)
    with pytest.raises(InputError, match="threshold"):
        CacheSettings("first_block", threshold=-1)
    with pytest.raises(InputError, match="other than 'none'"):
        FastCache(dit, "none", 3)
    assert CACHE_MODES == ("none", "first_block", "mag", "taylorseer")


def test_pipeline_cli_and_bench_options(tiny_weights_dir, tmp_path, capsys):
    from engine.bench import fast as bench_fast
    from engine.cli import generate as cli_generate
    from engine.pipeline import Gen3CPipeline

    pipe = Gen3CPipeline.from_pretrained(tiny_weights_dir, device="cpu", zero_text=True, cache="mag")
    assert pipe.cache.mode == "mag"
    with pytest.raises(InputError, match="unknown cache mode"):
        Gen3CPipeline.from_pretrained(tiny_weights_dir, device="cpu", zero_text=True, cache="turbo")
    with pytest.raises(InputError, match="unknown cache mode"):
        pipe.start_generation(torch.zeros(8, 8, 3, dtype=torch.uint8).numpy(), (torch.eye(4).repeat(17, 1, 1),
                              torch.eye(3).repeat(17, 1, 1)), 17, cache="turbo")
    rc = cli_generate.main(["--image", "x.png", "--preset", "left", "--out", str(tmp_path / "v.mp4"),
                            "--weights", str(tiny_weights_dir), "--cache", "turbo"])
    err = capsys.readouterr().err
    assert rc == 2 and "--cache must be one of none, first_block, mag, taylorseer" in err
    assert "APPROXIMATE" in cli_generate.build_parser().format_help()

    assert bench_fast.main(["--tiny", "--weights", str(tiny_weights_dir), "--cache", "taylorseer", "--steps", "6"]) == 0
    report = json.loads(capsys.readouterr().out)
    # taylorseer at 6 steps computes steps 0, 1, 2, 4: 4 of 6 steps, 2 branches, every block
    blocks = report["blocks_per_forward"]
    assert report["block_calls_exact"] == 6 * 2 * blocks and report["block_calls_fast"] == 4 * 2 * blocks
    assert report["approximate"] is True and "unmeasured" in report["note"]
    assert report["seconds_exact"] > 0 and report["seconds_fast"] > 0
    assert report["psnr_db"] is None or report["psnr_db"] > 0
    assert 0 <= report["latent_rel_error"] < 1
