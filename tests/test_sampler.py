"""The GEN3C sampler against the official reference run (sampler_tiny) and its CFG/cancel/input contracts."""
from __future__ import annotations

import threading

import pytest
import torch

from reference_fixtures import load_fixture, load_fixture_meta
from engine import sampler as S
from engine.errors import Cancelled, InputError


@pytest.fixture(scope="module")
def ref():
    return load_fixture("sampler_tiny")


@pytest.fixture(scope="module")
def tiny_dit():
    from engine.convert import dit_from_official

    weights = load_fixture("dit_tiny")
    state = {k: v for k, v in weights.items() if k.startswith(("net.", "logvar."))}
    model = dit_from_official(state, load_fixture_meta("dit_tiny")["net_config"])
    return model.eval().float()


def _inputs(ref):
    return (ref["input/condition_latent"], ref["input/cache_latents"], ref["input/t5_pos"], ref["input/t5_neg"])


class FakeDiT(torch.nn.Module):
    """Stands in for the DiT: returns a controlled output per branch and records every call."""

    def __init__(self, in_channels=81, cond_value=2.0, uncond_value=-1.0):
        super().__init__()
        self.config = type("Cfg", (), {"in_channels": in_channels})()
        self.anchor = torch.nn.Parameter(torch.zeros(()))
        self.cond_value, self.uncond_value = cond_value, uncond_value
        self.calls = []

    def forward(self, hidden_states, timestep, encoder_hidden_states, fps=None, condition_mask=None,
                padding_mask=None, return_dict=True):
        self.calls.append(dict(hidden_states=hidden_states.clone(), timestep=timestep.clone(),
                               text=encoder_hidden_states.clone(), condition_mask=condition_mask.clone(), fps=fps))
        # a branch is "cond" when it carries non-zero cache latents (channel 1 onwards)
        is_cond = condition_mask[:, 1:].flatten(1).abs().amax(1) > 0
        values = torch.where(is_cond, torch.tensor(self.cond_value), torch.tensor(self.uncond_value))
        out = values.view(-1, 1, 1, 1, 1) * torch.ones_like(hidden_states)
        return (out,)


def _small_case(b=1, t=3, h=4, w=6):
    gen = torch.Generator().manual_seed(5)
    noise = torch.randn(b, 16, t, h, w, generator=gen)
    cond = torch.randn(b, 16, t, h, w, generator=gen)
    cache = torch.randn(b, 64, t, h, w, generator=gen)
    pos, neg = torch.randn(b, 7, 32, generator=gen), torch.randn(b, 7, 32, generator=gen)
    return noise, cond, cache, pos, neg


# ---------------------------------------------------------------- schedule and fixed noise

def test_sigmas_match_official_schedule(ref):
    sig = S.scheduler_sigmas(4)
    assert sig.dtype == torch.float32 and sig.shape == (5,)
    torch.testing.assert_close(sig, ref["sample/sigmas"], rtol=1e-6, atol=0)
    assert sig[-1] == 0
    sig35 = S.scheduler_sigmas(35)
    assert sig35.shape == (36,) and sig35[0] == pytest.approx(80.0) and sig35[-2] == pytest.approx(0.0002)
    # the last two non-zero sigmas of the official 35-step run have the first-frame indicator off
    assert int((sig35[:-1] <= S.AUGMENT_SIGMA).sum()) == 2
    assert S.init_noise_sigma() == pytest.approx(80.00624975587844, rel=1e-12)


def test_augmentation_noise_is_the_official_numpy_draw(ref):
    n = S.augmentation_noise(ref["aug/noise"].shape, 1)
    assert torch.equal(n, ref["aug/noise"])
    assert not torch.equal(S.augmentation_noise(n.shape, 2), n)


# ---------------------------------------------------------------- parity with the official run

def test_single_denoise_matches_reference(ref, tiny_dit):
    L, cache, pos, neg = _inputs(ref)
    out = S.denoise(tiny_dit, ref["x0/xt"], ref["x0/sigma"], L, cache, pos, neg, guidance=float(ref["input/guidance"]),
                    aug_noise=ref["aug/noise"], fps=24, padding_mask=ref["input/padding_mask"])
    assert out.indicator_on
    checks = {"x_substituted": out.x_sub, "F_cond": out.f_cond, "F_uncond": out.f_uncond, "F_cfg": out.f_cfg,
              "x0_cfg": out.x0}
    for key, value in checks.items():
        torch.testing.assert_close(value, ref[f"x0/{key}"], rtol=0, atol=3e-5, msg=key)
    torch.testing.assert_close(out.x_sub * S.edm_coefficients(2.5)[0], ref["x0/net_input"], rtol=0, atol=3e-5)
    # frame 0 of the denoised prediction is the condition latent while the indicator is on
    torch.testing.assert_close(out.x0[:, :, 0], L[:, :, 0], rtol=0, atol=1e-5)


def test_full_loop_matches_reference_every_step(ref, tiny_dit):
    L, cache, pos, neg = _inputs(ref)
    seen = []
    final = S.sample_latents(
        tiny_dit, ref["sample/init_randn"], L, cache, pos, neg, num_steps=4, guidance=1.0, fps=24,
        padding_mask=ref["input/padding_mask"], augment_seed=1,
        callback=lambda i, sigma, d, x: seen.append((d, x)),
    )
    assert len(seen) == 4
    for i, (d, x_next) in enumerate(seen):
        p = f"sample/step{i}/"
        assert d.indicator_on == bool(ref[p + "indicator"].max() > 0)
        torch.testing.assert_close(d.x_sub, ref[p + "x_substituted"], rtol=1e-5, atol=3e-5)
        torch.testing.assert_close(d.f_final, ref[p + "F_final"], rtol=1e-5, atol=3e-5)
        torch.testing.assert_close(d.x0, ref[p + "x0"], rtol=1e-5, atol=3e-5)
        torch.testing.assert_close(x_next, ref[p + "x_next"], rtol=1e-5, atol=3e-5)
    torch.testing.assert_close(final, ref["sample/final"], rtol=0, atol=3e-5)
    # quirk kept: the last step runs with the indicator off, so frame 0 of the result is not exactly L
    assert (final[:, :, 0] - L[:, :, 0]).abs().max() > 1e-4


def test_batched_cfg_matches_two_passes(ref, tiny_dit):
    L, cache, pos, neg = _inputs(ref)
    kw = dict(guidance=1.0, aug_noise=ref["aug/noise"])
    two = S.denoise(tiny_dit, ref["x0/xt"], 2.5, L, cache, pos, neg, **kw)
    one = S.denoise(tiny_dit, ref["x0/xt"], 2.5, L, cache, pos, neg, batch_cfg=True, **kw)
    torch.testing.assert_close(one.x0, two.x0, rtol=0, atol=1e-5)
    torch.testing.assert_close(one.x0, ref["x0/x0_cfg"], rtol=0, atol=3e-5)


# ---------------------------------------------------------------- CFG semantics on the loop

@pytest.mark.parametrize("guidance", [0.0, 1.0, 2.5])
def test_cfg_formula_and_branches_on_the_loop(guidance):
    noise, L, cache, pos, neg = _small_case()
    fake = FakeDiT(cond_value=2.0, uncond_value=-1.0)
    steps = []
    S.sample_latents(fake, noise, L, cache, pos, neg, num_steps=3, guidance=guidance,
                     callback=lambda i, s, d, x: steps.append((s, d, x)))
    assert len(fake.calls) == 6  # official: two passes at every step, also at g = 0
    for k, call in enumerate(fake.calls):
        cm = call["condition_mask"]
        assert torch.all(cm[:, 0, 0] == 1) and torch.all(cm[:, 0, 1:] == 0)  # input mask: frame 0, both branches
        if k % 2 == 0:  # cond
            torch.testing.assert_close(cm[:, 1:], cache)
            torch.testing.assert_close(call["text"], pos)
        else:  # uncond: negative text, zeroed cache
            assert torch.all(cm[:, 1:] == 0)
            torch.testing.assert_close(call["text"], neg)
    expected_f = 2.0 + guidance * (2.0 - (-1.0))
    sigmas = S.scheduler_sigmas(3)
    for i, (sigma, d, x_next) in enumerate(steps):
        assert torch.all(d.f_cfg == expected_f)
        _, c_skip, c_out = S.edm_coefficients(sigma)
        # frames >= 1 use the guided output; frame 0 is replaced so that D equals L there
        torch.testing.assert_close(d.x0[:, :, 1:], c_skip * d.x_sub[:, :, 1:] + c_out * expected_f)
        if d.indicator_on:
            torch.testing.assert_close(d.x0[:, :, 0], L[:, :, 0], rtol=1e-5, atol=1e-5)
        expected_next = d.x_sub + (d.x_sub - d.x0) / sigma * (float(sigmas[i + 1]) - sigma)
        torch.testing.assert_close(x_next, expected_next)
        # the net sees x_sub * c_in and timestep 0.25 ln sigma
        c_in = S.edm_coefficients(sigma)[0]
        torch.testing.assert_close(fake.calls[2 * i]["hidden_states"], d.x_sub * c_in)
        torch.testing.assert_close(fake.calls[2 * i]["timestep"], torch.full((1,), 0.25 * float(torch.log(sigmas[i]))))


def test_standard_policy_skips_uncond_only_when_it_cannot_matter():
    noise, L, cache, pos, neg = _small_case()
    results = {}
    for cfg, g in [("official", 0.0), ("standard", 0.0), ("official", 1.0), ("standard", 1.0)]:
        fake = FakeDiT()
        results[cfg, g] = (S.sample_latents(fake, noise, L, cache, pos, neg, num_steps=2, guidance=g, cfg=cfg),
                           len(fake.calls))
    assert results["standard", 0.0][1] == 2 and results["official", 0.0][1] == 4
    assert results["standard", 1.0][1] == 4
    torch.testing.assert_close(results["standard", 0.0][0], results["official", 0.0][0])
    torch.testing.assert_close(results["standard", 1.0][0], results["official", 1.0][0])
    assert not torch.allclose(results["official", 0.0][0], results["official", 1.0][0])


def test_missing_negative_reuses_positive_and_missing_cache_is_zero():
    noise, L, cache, pos, _ = _small_case()
    fake = FakeDiT()
    S.sample_latents(fake, noise, L, None, pos, None, num_steps=1, guidance=1.0)
    assert all(torch.equal(c["text"], pos) for c in fake.calls)
    assert all(torch.all(c["condition_mask"][:, 1:] == 0) for c in fake.calls)


# ---------------------------------------------------------------- reproducibility, progress, cancel

def test_deterministic_and_seed_sensitive(ref, tiny_dit):
    L, cache, pos, neg = _inputs(ref)
    noise = ref["sample/init_randn"]
    kw = dict(num_steps=2, guidance=1.0)
    a = S.sample_latents(tiny_dit, noise, L, cache, pos, neg, augment_seed=1, **kw)
    b = S.sample_latents(tiny_dit, noise, L, cache, pos, neg, augment_seed=1, **kw)
    c = S.sample_latents(tiny_dit, noise, L, cache, pos, neg, augment_seed=7, **kw)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_progress_reports_every_step():
    noise, L, cache, pos, neg = _small_case()
    seen = []
    S.sample_latents(FakeDiT(), noise, L, cache, pos, neg, num_steps=3, guidance=1.0,
                     progress=lambda s, t: seen.append((s, t)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize("kind", ["event", "callable"])
def test_cancel_between_steps_raises_and_keeps_nothing(kind):
    noise, L, cache, pos, neg = _small_case()
    event = threading.Event()
    cancel = event if kind == "event" else event.is_set
    fake = FakeDiT()

    def progress(step, total):
        if step == 1:
            event.set()

    with pytest.raises(Cancelled) as info:
        S.sample_latents(fake, noise, L, cache, pos, neg, num_steps=4, guidance=1.0, progress=progress,
                         cancel=cancel)
    assert len(fake.calls) == 2  # exactly one step ran
    tb = info.value.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    assert tb.tb_frame.f_code.co_name == "sample_latents"
    held = [k for k, v in tb.tb_frame.f_locals.items() if isinstance(v, torch.Tensor) and v.shape == noise.shape
            and k not in ("noise", "condition_latent")]
    assert held == []


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("change, match", [
    (dict(cfg="legacy"), "cfg policy"),
    (dict(num_steps=0), "num_steps"),
    (dict(num_steps=2.5), "num_steps"),
    (dict(guidance=float("nan")), "guidance"),
    (dict(guidance="a lot"), "guidance"),
])
def test_bad_arguments_raise_input_error(change, match):
    noise, L, cache, pos, neg = _small_case()
    kw = {"num_steps": 2, "guidance": 1.0, **change}
    fake = FakeDiT()
    with pytest.raises(InputError, match=match):
        S.sample_latents(fake, noise, L, cache, pos, neg, **kw)
    assert fake.calls == []


def test_bad_shapes_raise_input_error():
    noise, L, cache, pos, neg = _small_case()
    with pytest.raises(InputError, match="condition latent"):
        S.sample_latents(FakeDiT(), noise, L[:, :, :2], cache, pos, neg, num_steps=1, guidance=1.0)
    with pytest.raises(InputError, match="cache latents"):
        S.sample_latents(FakeDiT(), noise, L, cache[:, :32], pos, neg, num_steps=1, guidance=1.0)
    with pytest.raises(InputError, match="noise"):
        S.sample_latents(FakeDiT(), noise[0], L[0], cache, pos, neg, num_steps=1, guidance=1.0)
