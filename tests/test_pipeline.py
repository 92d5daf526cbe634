"""Gen3CPipeline: one chunk, long videos, conditioning reaching the DiT, seeding, cancel, bad input.

Most tests use the fixture's tiny GEN3C DiT (real diffusers model, official weights layout) with a small linear
stand-in VAE and text encoder, so what reaches the DiT can be predicted exactly. The last tests load the real tiny
weights folder through `from_pretrained`.
"""
from __future__ import annotations

import gc
import threading
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from reference_fixtures import load_fixture, load_fixture_meta
from engine.depth import DepthResult
from engine.errors import Cancelled, InputError
from engine.images import to_model_tensor
from engine.pipeline import DEFAULT_NEGATIVE, Gen3CPipeline, chunk_plan

H, W, C = 64, 128, 17
K_MODEL = np.array([[100.0, 0, W / 2], [0, 100.0, H / 2], [0, 0, 1]], np.float32)


class LinearVAE:
    """Causal 8x8x8 average-pool + fixed 3->16 channel map; decode is its pseudo-inverse. Deterministic."""

    def __init__(self):
        g = torch.Generator().manual_seed(11)
        self.weight = torch.randn(16, 3, generator=g) * 0.5
        self.pinv = torch.linalg.pinv(self.weight)

    def encode(self, video):
        video = video.float()
        first, rest = video[:, :, :1], video[:, :, 1:]
        b, c, t, h, w = rest.shape
        rest = rest.reshape(b, c, t // 8, 8, h, w).mean(3)
        x = torch.nn.functional.avg_pool3d(torch.cat([first, rest], 2), (1, 8, 8))
        return torch.einsum("oc,bcthw->bothw", self.weight, x)

    def decode(self, z):
        x = torch.einsum("co,bothw->bcthw", self.pinv, z.float())
        x = x.repeat_interleave(8, -1).repeat_interleave(8, -2)
        return torch.cat([x[:, :, :1], x[:, :, 1:].repeat_interleave(8, 2)], 2)


class FakeText:
    def __init__(self, log):
        self.log = log

    def encode(self, texts):
        self.log.append(list(texts))
        out = []
        for t in texts:
            g = torch.Generator().manual_seed(len(t) * 7919 + sum(map(ord, t)) % 10007)
            out.append(torch.randn(12, 512, generator=g))
        return torch.stack(out)

    def release(self):
        self.log.append("released")


def _depth_for(image_uint8):
    h, w = image_uint8.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    depth = 2.0 + 0.5 * xx / w + 0.2 * yy / h + image_uint8[..., 0].astype(np.float32) / 2550.0
    return DepthResult(depth=depth.astype(np.float32), K=K_MODEL.copy(), mask=None)


@pytest.fixture(scope="module")
def dit():
    from engine.convert import dit_from_official

    weights = load_fixture("dit_tiny")
    state = {k: v for k, v in weights.items() if k.startswith(("net.", "logvar."))}
    return dit_from_official(state, load_fixture_meta("dit_tiny")["net_config"]).eval().float()


class Recorder(torch.nn.Module):
    """Wraps the DiT, recording its inputs (and optionally cancelling after N calls)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.config = inner.config
        self.calls = []

    @property
    def dtype(self):
        return self.inner.dtype

    def forward(self, **kw):
        self.calls.append({k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in kw.items()})
        return self.inner(**kw)


def make_pipe(dit, depth_calls=None, text_log=None):
    cfg = SimpleNamespace(height=H, width=W, chunk_frames=C, fps=24, sigma_data=0.5, frame_buffer_max=2,
                          latent_channels=16, spatial_compression=8, temporal_compression=8, augment_sigma=0.001)
    text_log = [] if text_log is None else text_log
    depth_calls = [] if depth_calls is None else depth_calls

    def estimator(img):
        depth_calls.append(img.copy())
        return _depth_for(img)

    return Gen3CPipeline(cfg, Recorder(dit), LinearVAE(), text_encoder_loader=lambda: FakeText(text_log),
                         depth_estimator=estimator)


def _seed_cache(image):
    """The cache a run starts from, built independently: the fitted image, its depth (the stand-in estimator's),
    the seed camera w2c = I with the depth's K."""
    from engine.cache3d import Cache3D
    from engine.images import fit_image

    fitted = fit_image(image, H, W)[0]
    d = _depth_for(fitted)
    return Cache3D(to_model_tensor(fitted), torch.from_numpy(d.depth)[None], torch.eye(4), torch.from_numpy(d.K))


def _image(seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.stack([xx * 255 // W, yy * 255 // H, (xx + yy) % 256], -1).astype(np.int32)
    return np.clip(img + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)


def _cameras(n):
    w2cs = torch.eye(4).repeat(n, 1, 1)
    w2cs[:, 0, 3] = -torch.linspace(0, 0.3, n)  # move right
    return w2cs, torch.from_numpy(K_MODEL).repeat(n, 1, 1)


def _net_frame0(L, seed):
    """What the DiT sees at latent frame 0 while the indicator is on: (L + 0.001 n) / sqrt(0.001^2 + 0.5^2)."""
    from engine.sampler import augmentation_noise

    n = augmentation_noise(L.shape, seed)
    return ((L + 0.001 * n) / np.sqrt(0.001**2 + 0.25))[:, :, 0]


# ------------------------------------------------------------------------------------------ plan

def test_chunk_plan():
    assert chunk_plan(17, 17) == [(0, 16)]
    assert chunk_plan(33, 17) == [(0, 16), (16, 32)]
    assert chunk_plan(20, 17) == [(0, 16), (16, 32)]  # rounded up, tail trimmed later
    assert chunk_plan(2, 17) == [(0, 16)]
    assert chunk_plan(241, 121) == [(0, 120), (120, 240)]
    with pytest.raises(InputError):
        chunk_plan(1, 17)


# ------------------------------------------------------------------------------------------ one chunk

def test_one_chunk_shapes_and_conditioning_reach_the_dit(dit):
    depth_calls, text_log = [], []
    pipe = make_pipe(dit, depth_calls, text_log)
    image = _image()
    steps = []
    res = pipe.generate(image, _cameras(C), C, prompt="a room", negative_prompt="", num_steps=2, guidance=1.0,
                        seed=3, progress=lambda d: steps.append(dict(d)))
    assert res.frames.shape == (C, H, W, 3) and res.frames.dtype == np.uint8
    assert res.warps.shape == (C, H, W, 3) and res.masks.shape == (C, H, W) and res.masks.dtype == bool
    assert res.fps == 24 and res.seed == 3
    assert {"text", "depth", "render", "encode", "denoise", "decode"} <= set(res.timings)
    assert len(depth_calls) == 1  # seed depth only
    assert text_log == [["a room"], "released"]  # empty negative reuses the positive; T5 released after use
    # progress: every denoising step of the chunk reported
    den = [d["step"] for d in steps if d["stage"] == "denoise"]
    assert den[-2:] == [1, 2] and all(d["num_chunks"] == 1 for d in steps)

    calls = pipe.transformer.calls
    assert len(calls) == 4  # 2 steps x (cond + uncond)
    assert torch.all(calls[0]["condition_mask"][:, 33:] == 0)  # one cache buffer (the seed): buffer 1 is zeros
    # the cache latents the DiT sees are the VAE encodings of the rendered warps and masks
    images, masks = _seed_cache(image).render(*_cameras(C))
    expected_cache = pipe.encode_cache(images, masks)
    assert expected_cache.shape == (1, 64, 3, 8, 16)
    assert torch.all(expected_cache[:, 32:] == 0)  # one buffer: buffer-1 latents are zeros
    torch.testing.assert_close(calls[0]["condition_mask"][:, 1:], expected_cache, rtol=0, atol=1e-5)
    assert torch.all(calls[1]["condition_mask"][:, 1:] == 0)  # uncond: zeroed cache
    assert torch.all(calls[0]["condition_mask"][:, 0, 0] == 1) and torch.all(calls[0]["condition_mask"][:, 0, 1:] == 0)
    assert calls[0]["fps"] == 24
    # the first frame reaches the DiT: at frame 0 the net sees (L + 0.001 n) / sqrt(0.001^2 + 0.5^2)
    from engine.images import fit_image

    first = to_model_tensor(fit_image(image, H, W)[0])
    L = pipe.encode_condition(first)
    seen = calls[0]["hidden_states"][:, :, 0]
    torch.testing.assert_close(seen, _net_frame0(L, seed=3), rtol=0, atol=1e-5)
    # the warp preview of frame 0 (identity camera) is the input image where covered
    cov = res.masks[0]
    assert cov.mean() > 0.8
    assert np.abs(res.warps[0][cov].astype(int) - fit_image(image, H, W)[0][cov].astype(int)).mean() < 2


def test_text_embeddings_cached_between_runs(dit):
    log = []
    pipe = make_pipe(dit, text_log=log)
    pipe.encode_prompts("a", DEFAULT_NEGATIVE)
    pipe.encode_prompts("a", DEFAULT_NEGATIVE)
    assert log == [["a", DEFAULT_NEGATIVE], "released"]
    pos, neg = pipe.encode_prompts("a", "")
    assert neg is pos


# ------------------------------------------------------------------------------------------ long video

def test_two_chunk_video_uses_last_frame_and_updates_cache(dit):
    depth_calls = []
    pipe = make_pipe(dit, depth_calls)
    n = 2 * (C - 1) + 1
    w2cs, Ks = _cameras(n)
    updates = []
    image = _image()
    res = pipe.generate(image, (w2cs, Ks), n, num_steps=2, seed=5)
    assert res.frames.shape == (n, H, W, 3) and res.warps.shape == (n, H, W, 3) and res.masks.shape == (n, H, W)
    # chunk 2's depth came from chunk 1's last frame (uint8 round trip)
    assert len(depth_calls) == 2
    np.testing.assert_array_equal(depth_calls[1], res.frames[C - 1])
    calls = pipe.transformer.calls
    assert len(calls) == 8
    # the new buffer is that frame, placed at the camera of frame C-1: chunk 2's cache latents are the renders
    # of the seed cache updated (official non-rigid alignment) with that frame and its depth there
    cache = _seed_cache(image)
    last = res.frames[C - 1]
    cache.update(to_model_tensor(last), torch.from_numpy(_depth_for(last).depth)[None], w2cs[C - 1], Ks[C - 1])
    assert cache.num_buffers == 2
    torch.testing.assert_close(cache.images[0], to_model_tensor(res.frames[C - 1]))
    expected_cache = pipe.encode_cache(*cache.render(w2cs[C - 1:], Ks[C - 1:]))
    torch.testing.assert_close(calls[4]["condition_mask"][:, 1:], expected_cache, rtol=0, atol=1e-5)
    # chunk 2's first-frame condition is that same frame: check what the DiT saw
    L2 = pipe.encode_condition(to_model_tensor(res.frames[C - 1]))
    torch.testing.assert_close(calls[4]["hidden_states"][:, :, 0], _net_frame0(L2, seed=5), rtol=0, atol=1e-5)
    # one generator seeded once: chunk 2's initial noise is its second draw (frames >= 1 are pure noise at step 0)
    from engine.sampler import edm_coefficients, init_noise_sigma, scheduler_sigmas

    g = torch.Generator().manual_seed(5)
    draws = [torch.randn(pipe.latent_shape(), generator=g) for _ in range(2)]
    c_in = edm_coefficients(float(scheduler_sigmas(2)[0]))[0]
    for chunk, call in ((0, calls[0]), (1, calls[4])):
        torch.testing.assert_close(call["hidden_states"][:, :, 1:], (draws[chunk] * init_noise_sigma() * c_in)[:, :, 1:])
    # both buffers' latents reach the DiT in chunk 2 (buffer 1 = the seed is no longer zero)
    assert calls[4]["condition_mask"][:, 33:].abs().amax() > 0
    del updates


def test_frame_count_not_on_the_chunk_grid_is_trimmed(dit):
    pipe = make_pipe(dit)
    n = C + 3  # needs 2 chunks; the tail of chunk 2 is dropped
    res = pipe.generate(_image(), _cameras(n), n, num_steps=1, seed=1)
    assert res.frames.shape[0] == n and res.warps.shape[0] == n and res.masks.shape[0] == n


def test_camera_path_input_and_resident_placement(dit):
    from engine.paths import CameraPath

    text_log, depth_calls = [], []
    pipe = make_pipe(dit, depth_calls, text_log)
    pipe.placement = "resident"
    w2cs, Ks = _cameras(5)
    path = CameraPath.from_cameras(w2cs, Ks, H)
    image = _image()
    res = pipe.generate(image, path, C, prompt="p", num_steps=1)
    assert res.frames.shape == (C, H, W, 3)
    assert "released" not in text_log and pipe._text_encoder is not None  # resident: T5 kept
    # the DiT saw the path sampled for C frames: the cache render of the last frame moved with the camera
    expected = path.sample(C, H, W)
    images, _ = _seed_cache(image).render(*expected)
    assert np.array_equal(res.warps[-1], ((images[-1, 0].clamp(-1, 1) + 1) * 127.5).round().byte()
                          .permute(1, 2, 0).numpy())


# ------------------------------------------------------------------------------------------ seeding

def test_seed_determinism(dit):
    pipe = make_pipe(dit)
    img, cams = _image(), _cameras(C)
    a = pipe.generate(img, cams, C, num_steps=2, seed=7).frames
    b = pipe.generate(img, cams, C, num_steps=2, seed=7).frames
    c = pipe.generate(img, cams, C, num_steps=2, seed=8).frames
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# ------------------------------------------------------------------------------------------ cancel

def _live_tensors() -> int:
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # isinstance on deprecated torch.distributed aliases warns
        return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))


def test_cancel_after_first_step_raises_and_frees(dit):
    pipe = make_pipe(dit)
    img, cams = _image(), _cameras(C)
    pipe.encode_prompts("", DEFAULT_NEGATIVE)  # embeddings are kept by design; count after caching them
    pipe.generate(img, cams, C, num_steps=1, seed=1)  # warm any lazy caches
    pipe.transformer.calls.clear()
    before = _live_tensors()
    event = threading.Event()

    def progress(info):
        if info["stage"] == "denoise" and info["step"] == 1:
            event.set()

    with pytest.raises(Cancelled):
        pipe.generate(img, cams, C, num_steps=3, seed=1, progress=progress, cancel=event)
    assert len(pipe.transformer.calls) == 2  # exactly one step ran
    pipe.transformer.calls.clear()
    after = _live_tensors()
    assert after <= before


def test_cancel_before_start(dit):
    pipe = make_pipe(dit)
    with pytest.raises(Cancelled):
        pipe.generate(_image(), _cameras(C), C, num_steps=2, cancel=lambda: True)
    assert pipe.transformer.calls == []


# ------------------------------------------------------------------------------------------ bad input

@pytest.mark.parametrize("kwargs, match", [
    (dict(num_frames=1), "frames"),
    (dict(num_frames=C, cameras=_cameras(C - 1)), "camera"),
    (dict(cfg="legacy"), "cfg"),
    (dict(num_steps=0), "steps"),
    (dict(guidance=float("inf")), "guidance"),
    (dict(seed=-1), "seed"),
    (dict(image=np.zeros((H, W), np.uint8)), "image"),
    (dict(image=np.zeros((H, W, 3), np.float32)), "image"),
    (dict(cameras="left"), "cameras"),
    (dict(depth=DepthResult(np.ones((10, 10), np.float32), K_MODEL)), "depth"),
])
def test_bad_inputs_raise_before_any_work(dit, kwargs, match):
    pipe = make_pipe(dit)
    args = dict(image=_image(), cameras=_cameras(C), num_frames=C, num_steps=1)
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        pipe.generate(args.pop("image"), args.pop("cameras"), args.pop("num_frames"), **args)
    assert pipe.transformer.calls == []


def test_given_depth_at_image_size_is_fitted(dit):
    pipe = make_pipe(dit)
    big = np.repeat(np.repeat(_image(), 2, 0), 2, 1)  # 128x256 -> fitted to 64x128
    d = _depth_for(big)
    res = pipe.generate(big, _cameras(C), C, num_steps=1, depth=d)
    assert res.frames.shape == (C, H, W, 3)


# ------------------------------------------------------------------------------------------ real tiny weights folder

@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from engine.models import make_tiny_weights

    root = tmp_path_factory.mktemp("tiny_weights")
    make_tiny_weights(root)
    return root


def test_from_pretrained_reads_shapes_from_the_folder(tiny_dir):
    from engine.models import Gen3CConfig

    cfg = Gen3CConfig.load(tiny_dir)
    pipe = Gen3CPipeline.from_pretrained(tiny_dir, device="cpu", text_cache_dir=None,
                                         placement="low_memory")
    assert (pipe.height, pipe.width, pipe.chunk_frames, pipe.fps) == (cfg.height, cfg.width, cfg.chunk_frames, cfg.fps)
    assert pipe.latent_shape() == (1, cfg.latent_channels, cfg.latent_frames, cfg.latent_height, cfg.latent_width)
    h, w = cfg.height, cfg.width
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) % 256], -1).astype(np.uint8)
    K = np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1]], np.float32)
    depth = DepthResult((2.0 + xx / w).astype(np.float32), K)
    w2cs = torch.eye(4).repeat(cfg.chunk_frames, 1, 1)
    w2cs[:, 0, 3] = -torch.linspace(0, 0.2, cfg.chunk_frames)
    res = pipe.generate(img, (w2cs, torch.from_numpy(K).repeat(cfg.chunk_frames, 1, 1)), cfg.chunk_frames,
                        prompt="a house", num_steps=2, depth=depth)
    assert res.frames.shape == (cfg.chunk_frames, h, w, 3) and res.frames.dtype == np.uint8
    assert res.fps == cfg.fps
    assert pipe._text_encoder is None  # low_memory: T5 released after encoding


def test_from_pretrained_missing_weights(tmp_path):
    from engine.errors import WeightsMissingError

    with pytest.raises(WeightsMissingError, match="huggingface-cli download"):
        Gen3CPipeline.from_pretrained(tmp_path / "nothing", device="cpu")
    with pytest.raises(InputError, match="placement"):
        Gen3CPipeline.from_pretrained(tmp_path / "nothing", device="cpu", placement="everywhere")


def test_auto_placement_is_resident_on_cpu_and_names_are_checked():
    from engine.pipeline import resolve_placement

    assert resolve_placement("auto", torch.device("cpu")) == "resident"
    assert resolve_placement("low_memory", torch.device("cpu")) == "low_memory"
    with pytest.raises(InputError, match="placement"):
        resolve_placement("everywhere", torch.device("cpu"))
