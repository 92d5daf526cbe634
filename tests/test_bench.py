"""The benchmarks' shared timing helper and the warp benchmark on a bundled sample (speed itself is never asserted)."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from engine.bench import timing


def test_timing_statistics_match_numpy():
    seconds = [0.5, 0.1, 0.3, 0.2, 0.9, 0.4, 0.25, 0.35, 0.15, 0.45, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.05,
               0.95, 1.0, 1.5]
    cpu = [s / 2 for s in seconds]
    cpu[seconds.index(0.05)] = 0.123
    t = timing.Timing(seconds, cpu, first_call_seconds=2.0)
    assert t.median == np.median(seconds) and t.min == 0.05 and t.max == 1.5
    assert t.mean == pytest.approx(np.mean(seconds), rel=1e-12)
    # nearest-rank 95th percentile = numpy's "inverted_cdf" definition
    assert t.p95 == np.percentile(seconds, 95, method="inverted_cdf") == 1.0
    assert t.cpu_at_min == 0.123
    d = t.as_dict()
    assert d["seconds"] == t.median and d["min_seconds"] == 0.05 and d["p95_seconds"] == 1.0
    assert d["seconds_all"] == seconds and d["repeats"] == len(seconds) and d["first_call_seconds"] == 2.0
    assert "peak_memory_gb" not in d
    assert timing.Timing([3.0], [1.0], peak_memory_bytes=2_500_000_000).as_dict()["peak_memory_gb"] == 2.5


def test_measure_warms_up_then_times_each_repeat():
    calls = []

    def fn():
        calls.append(None)
        time.sleep(0.2 if len(calls) == 1 else 0.02)

    t = timing.measure(fn, "cpu", warmup=2, repeats=3)
    assert len(calls) == 2 + 3 and len(t.seconds) == len(t.cpu_seconds) == 3
    assert t.first_call_seconds >= 0.2 and all(s >= 0.02 for s in t.seconds)
    assert max(t.seconds) < 0.2  # the slow first call is not among the timed repeats
    assert all(c < 0.01 for c in t.cpu_seconds)  # process CPU time: sleeping costs none
    assert t.peak_memory_bytes is None

    calls.clear()
    t = timing.measure(fn, "cpu", warmup=0, repeats=2)
    assert len(calls) == 2 and t.first_call_seconds is None and max(t.seconds) >= 0.2
    with pytest.raises(ValueError):
        timing.measure(fn, "cpu", repeats=0)


def test_environment_block():
    env = timing.environment("cpu")
    assert env["device"] == "cpu" and env["gpu"] is None and env["gpu_present"] == torch.cuda.is_available()
    assert env["torch"] == torch.__version__ and env["threads"] == torch.get_num_threads()
    assert timing.resolve_device("cpu").type == "cpu"
    assert timing.resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_bench_warp_smoke_on_a_sample(capsys):
    from engine.bench import warp

    assert warp.main(["--frames", "3", "--sizes", "24x40", "--repeat", "1", "--reference-frames", "3",
                      "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    row = out["results"][0]
    assert row["buffers"] == 2 and row["points"] == 24 * 40 and row["fast_total_ms"] > 0
    assert out["sample"] == "living_room" and out["device"] == "cpu"
    assert not any("reference" in key for key in row)


@pytest.mark.parametrize("sample", ["tabletop", "living_room"])  # a spiral preset and a linear one
def test_bench_warp_second_buffer_is_the_sample_seen_from_mid_path(sample):
    """The extra buffer (added through the public Cache3D.update) unprojects each pixel from the camera halfway
    along the path: projecting its points with that camera gives back the pixel centre and the sample's depth."""
    from engine.bench.warp import sample_cache

    cache, w2cs, Ks = sample_cache(sample, 24, 40, 5, 2)
    assert cache.num_buffers == 2
    seed_points = cache.points(1)  # the older buffer: the seed view (w2c = I), so its z is the sample's depth
    pts = cache.points(0).reshape(-1, 3).double()
    cam = pts @ w2cs[2, :3, :3].double().T + w2cs[2, :3, 3].double()
    uv = cam @ Ks[2].double().T
    uv = uv[:, :2] / uv[:, 2:3]
    v, u = torch.meshgrid(torch.arange(24.0), torch.arange(40.0), indexing="ij")
    torch.testing.assert_close(uv, torch.stack([u, v], -1).reshape(-1, 2).double(), rtol=0, atol=1e-3)
    torch.testing.assert_close(cam[:, 2].float(), seed_points[..., 2].reshape(-1), rtol=1e-5, atol=0)
    assert not torch.allclose(cache.points(0), cache.points(1))
