"""Gen3CPipeline.generate: injected noise, the trace of what the model received, zero-text width from the DiT."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.depth import DepthResult
from engine.errors import InputError

H, W = 64, 128
K = np.array([[100.0, 0, 64.0], [0, 100.0, 32.0], [0, 0, 1]], np.float32)


def _image():
    yy, xx = np.mgrid[0:H, 0:W]
    return np.stack([xx * 2, yy * 4, (5 * xx + 3 * yy) % 256], -1).astype(np.uint8)


def _estimator(calls):
    def estimate(img):
        calls.append(img.shape)
        return DepthResult((2.0 + 1.5 * img.mean(-1) / 255).astype(np.float32), K)
    return estimate


def _cameras(n):
    from engine.cameras import preset_trajectory

    w2cs, Ks = preset_trajectory("left", torch.eye(4), torch.from_numpy(K), n, 0.3, "center_facing")
    return torch.as_tensor(w2cs, dtype=torch.float32), torch.as_tensor(Ks, dtype=torch.float32)


@pytest.fixture(scope="module")
def pipe(tiny_weights_dir):
    from engine.pipeline import Gen3CPipeline

    calls = []
    p = Gen3CPipeline.from_pretrained(tiny_weights_dir, device="cpu", placement="resident", zero_text=True,
                                      depth_estimator=_estimator(calls))
    p.depth_calls = calls
    return p


@pytest.mark.parametrize("noise, message", [
    (torch.zeros(1, 16, 3, 8, 16), "noise must be a list of 2 tensors"),
    ([torch.zeros(1, 16, 3, 8, 16)], "noise has 1 tensors; this run has 2 chunks"),
    ([torch.zeros(1, 16, 3, 8, 16), torch.zeros(16, 3, 8, 16)], r"noise for chunk 1 has shape \[16, 3, 8, 16\]"),
    ([torch.zeros(1, 16, 3, 8, 16), torch.full((1, 16, 3, 8, 16), float("nan"))], "chunk 1 holds NaN"),
    ([torch.zeros(1, 16, 3, 8, 16, dtype=torch.int64)] * 2, "chunk 0 must be a floating-point tensor"),
])
def test_bad_noise_is_refused_before_any_work(pipe, noise, message):
    pipe.depth_calls.clear()
    with pytest.raises(InputError, match=message) as exc:
        pipe.generate(_image(), _cameras(33), 33, num_steps=1, noise=noise)
    assert len(str(exc.value).splitlines()) == 1 and pipe.depth_calls == []


def test_injected_noise_replaces_the_seeded_draws(pipe):
    assert pipe.latent_shape() == (1, 16, 3, 8, 16)
    g = torch.Generator().manual_seed(7)  # the documented default: one draw per chunk from a CPU generator
    seeded = [torch.randn(pipe.latent_shape(), generator=g) for _ in range(2)]
    default = pipe.generate(_image(), _cameras(33), 33, num_steps=2, seed=7)
    injected = pipe.generate(_image(), _cameras(33), 33, num_steps=2, seed=7, noise=seeded)
    assert np.array_equal(default.frames, injected.frames)
    other = pipe.generate(_image(), _cameras(33), 33, num_steps=2, seed=7, noise=[seeded[1], seeded[0]])
    assert not np.array_equal(other.frames[:17], default.frames[:17])
    assert default.trace is None


def test_trace_holds_what_the_model_received(pipe):
    result = pipe.generate(_image(), _cameras(33), 33, num_steps=1, trace=True)
    assert [t["chunk"] for t in result.trace] == [0, 1]
    first, second = result.trace
    assert set(first) == {"chunk", "frames", "w2cs", "Ks", "renders", "masks", "cache_latents", "condition_latent",
                          "condition_frame", "update_camera_index"}
    assert first["renders"].shape == (17, 1, H, W, 3) and first["renders"].dtype == np.uint8
    assert second["renders"].shape == (17, 2, H, W, 3) and second["masks"].dtype == bool
    assert first["cache_latents"].shape == (1, 64, 3, 8, 16) and not first["cache_latents"][:, 32:].any()
    assert second["cache_latents"][:, 32:].any()  # the seed, now buffer 1
    assert first["condition_latent"].shape == (1, 16, 3, 8, 16)
    assert (first["update_camera_index"], second["update_camera_index"]) == (None, 16)
    w2cs, Ks = _cameras(33)
    assert torch.equal(second["w2cs"], w2cs[16:]) and torch.equal(second["Ks"], Ks[16:])
    # buffer 0 is what result.warps / masks show; the join drops chunk 1's first (shared) frame
    assert np.array_equal(np.concatenate([first["renders"][:, 0], second["renders"][1:, 0]]), result.warps)
    assert np.array_equal(np.concatenate([first["masks"][:, 0], second["masks"][1:, 0]]), result.masks)
    # chunk 1 is conditioned on chunk 0's last frame, whose camera (16) is where the cache was updated
    from engine.images import to_model_tensor

    assert torch.equal(second["condition_frame"], to_model_tensor(result.frames[16]))
    assert json.dumps({k: v for k, v in first.items() if isinstance(v, (int, tuple, type(None)))})
    # one output frame's buffers, from the chunk whose output shows it (frame 16: chunk 0's last)
    from engine.images import to_uint8
    from engine.resumable import trace_buffers

    for t, buffers in ((0, 1), (16, 1), (17, 2), (32, 2)):
        images, masks = trace_buffers(result.trace, t)
        assert images.shape == (buffers, 3, H, W) and masks.shape == (buffers, 1, H, W)
        assert np.array_equal(to_uint8(images[0]), result.warps[t])
        assert np.array_equal(masks[0, 0].numpy() > 0.5, result.masks[t])
    with pytest.raises(InputError, match="frame 33 is in no traced chunk"):
        trace_buffers(result.trace, 33)


def test_trace_in_split_calls_equals_one_call(pipe):
    from engine.gpu_calls import GpuCallSettings, generate_in_calls

    one = pipe.generate(_image(), _cameras(33), 33, num_steps=3, trace=True)
    split = generate_in_calls(pipe, _image(), _cameras(33), 33, num_steps=3, trace=True,
                              settings=GpuCallSettings(budget_s=10, step_seconds=4, overhead_s=0))
    assert np.array_equal(one.frames, split.frames)
    for a, b in zip(one.trace, split.trace, strict=True):
        assert np.array_equal(a["renders"], b["renders"]) and torch.equal(a["cache_latents"], b["cache_latents"])


def test_zero_text_takes_the_width_from_the_dit(tmp_path):
    """A folder converted without T5 (the official tiny DiT reads 512-wide text): generation runs, whatever
    gen3c.json's text_dim says."""
    from fidelity_setup import convert_official
    from engine.models import Gen3CConfig
    from engine.pipeline import Gen3CPipeline

    weights = convert_official(tmp_path)
    assert Gen3CConfig.load(weights).text_dim == 512  # convert writes the DiT's width
    cfg = json.loads((weights / "gen3c.json").read_text())
    cfg["text_dim"] = 1024  # what folders converted before said
    (weights / "gen3c.json").write_text(json.dumps(cfg))
    pipe = Gen3CPipeline.from_pretrained(weights, device="cpu", dtype=torch.float32, placement="resident",
                                         zero_text=True, depth_estimator=_estimator([]))
    assert pipe.transformer.config.text_embed_dim == 512
    pos, neg = pipe.encode_prompts("a prompt", "another")
    assert pos.shape == (1, 512, 512) and not pos.any() and not neg.any()
    result = pipe.generate(_image(), _cameras(17), 17, num_steps=1)
    assert result.frames.shape == (17, H, W, 3)
