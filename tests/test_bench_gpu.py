"""`python -m engine bench gpu` without a GPU, its --tiny smoke run, and the meta-device memory arithmetic."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from engine.bench.memory_model import live_peak_bytes


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU answer")
def test_bench_gpu_without_a_gpu_prints_gpu_present_false_and_exits_0(repo_root):
    proc = subprocess.run([sys.executable, "-m", "engine", "bench", "gpu"], cwd=repo_root, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["bench"] == "gpu" and report["gpu_present"] is False
    assert set(report["would_measure"]) == {"dit", "vae", "warp", "low_memory_generation", "chunk_estimate", "fast"}
    assert report["targets"] == {"dit_forward_s": 3.4, "chunk_s": 270.0, "peak_memory_gb": 24.0, "warp_ms": 150.0}


def test_bench_gpu_tiny_runs_every_section(capsys):
    from engine.bench import gpu

    assert gpu.main(["--tiny", "--repeats", "1", "--fast-steps", "2", "--gen-steps", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    for section in ("dit", "vae", "warp", "low_memory_generation", "chunk_estimate", "fast"):
        assert "error" not in report[section] and "skipped" not in report[section], (section, report[section])
    assert report["dit"]["ulysses"].startswith("not run")
    assert report["vae"]["streamed_vs_untiled_latent_rel_mean_abs"] < 1e-5
    assert report["low_memory_generation"]["frames"] == 17
    assert report["fast"]["block_calls_exact"] == 2 * 2 * report["fast"]["blocks_per_forward"]
    assert report["chunk_estimate"]["meets_target"] is None  # a smoke run is no measurement


def test_budget_skips_what_does_not_fit(capsys):
    from engine.bench import gpu

    assert gpu.main(["--tiny", "--budget-s", "5", "--only", "dit,fast"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dit"]["skipped"].startswith("time budget") and "vae" not in report


def test_live_peak_bytes_counts_allocations_not_views():
    def fn():
        a = torch.ones(1000, device="meta")  # 4000 bytes
        a.add_(1)  # in place: nothing new
        b = a * 2  # 8000 live
        del a
        b.view(10, 100)  # a view: nothing new
        return b + 1  # 8000 live again (b and the result)

    assert live_peak_bytes(fn) == 8000


def test_streamed_vae_needs_a_fraction_of_the_untiled_memory():
    from engine.bench.memory_model import vae_memory_model

    model = vae_memory_model()  # 121 x 704 x 1280, counted on the meta device (seconds, no GPU)
    m = model["math_attention"]
    # what the arithmetic in engine.models.vae_stream states: ~4 GB streamed against ~23 GB untiled
    assert m["decode_streamed_gb"] < 0.25 * m["decode_untiled_gb"] and m["encode_streamed_gb"] < 0.25 * m["encode_untiled_gb"]
    assert 3 < m["decode_streamed_gb"] < 5 and 20 < m["decode_untiled_gb"] < 26
    f = model["fused_attention"]
    assert f["decode_streamed_gb"] < f["decode_untiled_gb"] and f["encode_streamed_gb"] < f["encode_untiled_gb"]


def test_ulysses_figure_comes_from_a_torchrun_job_that_matches_one_process(capsys):
    from engine.bench import gpu

    assert gpu.main(["--tiny", "--repeats", "1", "--only", "dit", "--ulysses-ranks", "2"]) == 0
    ulysses = json.loads(capsys.readouterr().out)["dit"]["ulysses"]
    assert "error" not in ulysses, ulysses
    assert ulysses["parallel"] == "ulysses" and ulysses["world_size"] == 2
    assert ulysses["tokens_per_rank"] * 2 == ulysses["tokens"] == 3 * 4 * 8  # the tiny DiT's tokens, split
    assert ulysses["tuned"]["seconds"] > 0 and ulysses["speedup_vs_one_process"] > 0
    assert ulysses["max_abs_diff_vs_one_process"] <= 1e-5


def test_bench_dit_parallel_outside_torchrun_is_a_one_line_error(repo_root):
    proc = subprocess.run([sys.executable, "-m", "engine", "bench", "dit", "--tiny", "--parallel", "ulysses"],
                          cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and "torchrun" in proc.stderr
