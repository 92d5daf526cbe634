"""sample_latents resumed by step ranges (the ZeroGPU split) equals one uninterrupted run; bad ranges are refused."""
from __future__ import annotations

import pytest
import torch

from engine.errors import InputError
from engine.sampler import sample_latents


@pytest.fixture(scope="module")
def setup():
    from engine.models.tiny import tiny_transformer

    g = torch.Generator().manual_seed(1)
    shape = (1, 16, 3, 8, 16)
    inputs = dict(noise=torch.randn(shape, generator=g), condition_latent=torch.randn(shape, generator=g),
                  cache_latents=torch.randn(1, 64, 3, 8, 16, generator=g),
                  prompt_embeds=torch.randn(1, 32, 32, generator=g), negative_prompt_embeds=None)
    return tiny_transformer(81, 32, seed=2), inputs


def test_ranges_back_to_back_equal_one_run(setup):
    dit, inputs = setup
    whole = sample_latents(dit, **inputs, num_steps=7, guidance=2.0, augment_seed=5)
    steps = []
    x = sample_latents(dit, **inputs, num_steps=7, guidance=2.0, augment_seed=5, stop_step=3,
                       progress=lambda i, n: steps.append(i))
    x = sample_latents(dit, **inputs, num_steps=7, guidance=2.0, augment_seed=5, start_step=3, stop_step=4, latents=x,
                       progress=lambda i, n: steps.append(i))
    x = sample_latents(dit, **inputs, num_steps=7, guidance=2.0, augment_seed=5, start_step=4, latents=x,
                       progress=lambda i, n: steps.append(i))
    assert steps == [1, 2, 3, 4, 5, 6, 7]
    torch.testing.assert_close(x, whole, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    (dict(start_step=3), "needs the latents"),
    (dict(latents=torch.zeros(1, 16, 3, 8, 16)), "only given when resuming"),
    (dict(start_step=4, stop_step=4, latents=torch.zeros(1, 16, 3, 8, 16)), "empty"),
    (dict(stop_step=8), "not inside"),
    (dict(start_step=1, latents=torch.zeros(1, 16, 2, 8, 16)), "latents have shape"),
])
def test_bad_ranges_are_refused(setup, kwargs, message):
    dit, inputs = setup
    with pytest.raises(InputError, match=message):
        sample_latents(dit, **inputs, num_steps=7, guidance=1.0, **kwargs)
