"""GPU calls within a budget (engine.gpu_calls, studio.zerogpu): the step-range plan, and split runs that equal
unsplit ones on the tiny weights, through the real `spaces.GPU` decorator (which passes through off Spaces) with
the state pickled between calls as ZeroGPU does."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import spaces
import torch

from engine.depth import DepthResult
from engine.errors import InputError
from engine.gpu_calls import GpuCallSettings, call_plan, estimate_step_seconds, generate_in_calls, plan_gpu_calls


# ---- the plan -------------------------------------------------------------------------------------------

def test_plan_for_a_budget_and_step_time():
    # 120 s budget, 20 s overhead, 19.45 s steps: floor(100 / 19.45) = 5 steps per call, 35 steps -> 7 calls
    assert plan_gpu_calls(35, 19.45, 120, 20) == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 25), (25, 30), (30, 35)]
    # 4 steps per call fit (4 x 25 = 100 <= 100): 10 steps -> 3 calls, balanced 4/3/3 rather than 4/4/2
    assert plan_gpu_calls(10, 25.0, 120, 20) == [(0, 4), (4, 7), (7, 10)]
    assert plan_gpu_calls(3, 1.0, 120) == [(0, 3)]  # everything in one call


def test_exact_fits_are_fits():
    assert plan_gpu_calls(10, 10.0, 120, 20) == [(0, 10)]  # 20 + 10 x 10 = 120 exactly
    assert plan_gpu_calls(20, 10.0, 120, 20) == [(0, 10), (10, 20)]
    assert plan_gpu_calls(3, 0.1, 0.3) == [(0, 3)]  # 0.3 / 0.1 is 2.999... in floating point
    assert plan_gpu_calls(1, 100.0, 120, 20) == [(0, 1)]


def test_many_steps_cover_every_step_once_within_the_budget():
    ranges = plan_gpu_calls(1000, 1.0, 120, 7.5)  # 112 steps per call at most
    assert ranges[0][0] == 0 and ranges[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    sizes = [stop - start for start, stop in ranges]
    assert len(ranges) == 9 and max(sizes) - min(sizes) <= 1 and 7.5 + max(sizes) * 1.0 <= 120


def test_a_step_longer_than_the_budget_is_refused():
    with pytest.raises(InputError, match=r"one denoising step \(130.0 s\).*does not fit the GPU budget of 120.0 s"):
        plan_gpu_calls(35, 130.0, 120)
    with pytest.raises(InputError, match="call overhead"):
        plan_gpu_calls(35, 100.0, 120, 30)  # the step fits alone, not with the overhead
    for bad in (dict(num_steps=0), dict(step_seconds=0), dict(budget_s=float("nan")), dict(overhead_s=-1)):
        args = dict(num_steps=35, step_seconds=10.0, budget_s=120.0, overhead_s=0.0) | bad
        with pytest.raises(InputError):
            plan_gpu_calls(**args)


def test_zerogpu_step_estimate_and_settings_from_the_environment():
    # 2 forwards x 4.42 s (H100, stock diffusers) x 132 / 60 SMs
    assert estimate_step_seconds() == pytest.approx(2 * 4.42 * 132 / 60)
    s = GpuCallSettings.from_env({})
    assert (s.budget_s, s.step_seconds) == (120.0, estimate_step_seconds())
    s = GpuCallSettings.from_env({"GEN3C_GPU_BUDGET_S": "250", "GEN3C_STEP_SECONDS": "9", "GEN3C_GPU_OVERHEAD_S": "0"})
    assert (s.budget_s, s.step_seconds, s.overhead_s) == (250.0, 9.0, 0.0) and s.plan(35) == [(0, 18), (18, 35)]
    assert s.call_seconds(17) == 153.0
    with pytest.raises(InputError, match="refuses calls past about 300 s"):
        GpuCallSettings.from_env({"GEN3C_GPU_BUDGET_S": "600"})
    with pytest.raises(InputError, match="GEN3C_STEP_SECONDS"):
        GpuCallSettings.from_env({"GEN3C_STEP_SECONDS": "fast"})


def test_call_plan_puts_prepare_and_decode_in_the_first_and_last_call_of_each_chunk():
    calls = call_plan(2, [(0, 2), (2, 4)])
    assert calls == [([("begin",), ("prepare",), ("denoise", 2)], 2), ([("denoise", 4), ("finish",)], 2),
                     ([("prepare",), ("denoise", 2)], 2), ([("denoise", 4), ("finish",)], 2)]


# ---- split runs equal unsplit runs --------------------------------------------------------------------

H, W, C = 64, 128, 17
K = np.array([[100.0, 0, W / 2], [0, 100.0, H / 2], [0, 0, 1]], np.float32)


def _depth(image):
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return DepthResult(depth=(2 + 0.5 * xx / w + 0.2 * yy / h + image[..., 1] / 2550.0).astype(np.float32),
                       K=K.copy(), mask=None)


def _inputs(n):
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    w2cs = torch.eye(4).repeat(n, 1, 1)
    w2cs[:, 0, 3] = -torch.linspace(0, 0.3, n)
    return image, (w2cs, torch.from_numpy(K).repeat(n, 1, 1))


@pytest.fixture(scope="module")
def pipe(tiny_weights_dir):
    from engine.pipeline import Gen3CPipeline

    return Gen3CPipeline.from_pretrained(tiny_weights_dir, device="cpu", zero_text=True, depth_estimator=_depth)


def _all_on_cpu(obj, seen=None) -> bool:
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return True
    seen.add(id(obj))
    if torch.is_tensor(obj):
        return obj.device.type == "cpu"
    if isinstance(obj, (list, tuple)):
        return all(_all_on_cpu(v, seen) for v in obj)
    if isinstance(obj, dict):
        return all(_all_on_cpu(v, seen) for v in obj.values())
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return all(_all_on_cpu(v, seen) for v in vars(obj).values())
    return True


def _zerogpu_call(pipe, log):
    @spaces.GPU(duration=lambda state, stages, seconds: seconds)
    def call(state, stages, seconds):
        log.append((list(stages), seconds))
        state = pickle.loads(pickle.dumps(state))  # what crosses into the GPU worker on ZeroGPU
        state = pipe.run_stages(state, stages, offload=True)
        assert _all_on_cpu(state)
        return pickle.loads(pickle.dumps(state))  # and back

    return call


@pytest.mark.parametrize("cache", [None, "taylorseer"])  # taylorseer skips on a fixed schedule, across the call boundaries
def test_split_two_chunk_run_equals_the_unsplit_run(pipe, cache):
    n = 2 * (C - 1) + 1
    image, cameras = _inputs(n)
    kwargs = dict(num_steps=6, seed=3, guidance=1.5, depth=_depth(image), cache=cache)
    unsplit = pipe.generate(image, cameras, n, **kwargs)
    log, reports = [], []
    settings = GpuCallSettings(budget_s=100.0, step_seconds=30.0, overhead_s=10.0)  # 3 steps per call
    split = generate_in_calls(pipe, image, cameras, n, settings=settings, call=_zerogpu_call(pipe, log),
                              progress=reports.append, **kwargs)
    assert [len(stages) for stages, _ in log] == [3, 2, 2, 2] and all(sec == 100.0 for _, sec in log)
    np.testing.assert_array_equal(split.frames, unsplit.frames)
    np.testing.assert_array_equal(split.warps, unsplit.warps)
    np.testing.assert_array_equal(split.masks, unsplit.masks)
    assert len(split.latents) == len(unsplit.latents) == 2
    for a, b in zip(split.latents, unsplit.latents):
        assert (a - b).abs().max().item() <= 1e-6
    assert [r["call"] for r in reports] == [1, 2, 3, 4] and reports[-1]["stage"] == "done"


def test_studio_zerogpu_loads_at_import_only_when_enabled(tiny_weights_dir, monkeypatch):
    from studio import zerogpu

    assert not zerogpu.enabled({}) and zerogpu.enabled({"SPACES_ZERO_GPU": "true"})
    assert zerogpu.load_at_import(tiny_weights_dir, environ={}) is None and not zerogpu.active()
    monkeypatch.setenv("GEN3C_GPU_BUDGET_S", "100")
    monkeypatch.setenv("GEN3C_STEP_SECONDS", "30")
    monkeypatch.setenv("GEN3C_GPU_OVERHEAD_S", "10")
    try:
        loaded = zerogpu.load_at_import(tiny_weights_dir, environ={"GEN3C_ZEROGPU": "1"})
        assert loaded is not None and zerogpu.active() and loaded.placement == "resident"
        image, cameras = _inputs(C)
        reports = []
        split = zerogpu.generate(image, cameras, C, num_steps=4, seed=2, depth=_depth(image), progress=reports.append)
        unsplit = loaded.generate(image, cameras, C, num_steps=4, seed=2, depth=_depth(image))
        np.testing.assert_array_equal(split.frames, unsplit.frames)
        assert len(reports) == 2  # 4 steps, 3 per call: two calls
    finally:
        zerogpu.unload()
    assert not zerogpu.active()
