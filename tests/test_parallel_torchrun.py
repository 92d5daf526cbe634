"""Parallel generation launched with torchrun (gloo on CPU) on the tiny weights, against one process.

The tiny chunk is 3x8x16 latents = 3x4x8 = 96 DiT tokens after 2x2 patching, so 2 ranks hold 48 tokens each and
4 ranks 24 (splits that cut through a latent frame). The single-process reference is a plain process with the
ranks' thread settings (one torch thread, as torchrun sets, and one numba thread, as a parallel session sets): the
VAE's CPU kernels round differently with other thread settings, which shows in a few uint8 frame values even where
the latents are bit-identical.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.cli import generate as cli_generate

import parallel_worker

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("parallel_worker.py")
TIMEOUT = 300
LATENT_TOL = 1e-5


def _env() -> dict:
    """What every launched process gets: torchrun's one thread per rank (the reference too), this checkout on
    the path, and a prompt-embedding cache that is not the user's."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
            "XDG_CACHE_HOME": str(_CACHE_HOME),
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


_CACHE_HOME = None


@pytest.fixture(scope="module", autouse=True)
def _private_cache_home(tmp_path_factory):
    global _CACHE_HOME
    _CACHE_HOME = tmp_path_factory.mktemp("xdg_cache")
    yield
    _CACHE_HOME = None


def torchrun(nproc: int, argv: list, tmp_path: Path):
    """Run ``torchrun --standalone --nproc-per-node nproc ARGV``; (returncode, {rank: (stdout, stderr)}, agent log).

    ARGV starting with "-m" runs a module (``-m engine generate ...``), otherwise a script. Every rank's streams go
    to their own files, so each rank's output is known.
    """
    logs = tmp_path / f"torchrun-{uuid.uuid4().hex[:8]}"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "--redirects", "3", "--log-dir", str(logs), *argv]
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
    ranks = {}
    for rank in range(nproc):
        (folder,) = logs.glob(f"*/attempt_0/{rank}")
        ranks[rank] = ((folder / "stdout.log").read_text(), (folder / "stderr.log").read_text())
    return proc.returncode, ranks, proc.stderr


def run_single(argv: list):
    """One plain process (no torchrun) with the ranks' environment."""
    proc = subprocess.run([sys.executable, *argv], cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _scene(folder: Path, height: int, width: int) -> Path:
    """A PNG at twice the model size and its depth (+K) as .npz."""
    folder.mkdir(parents=True, exist_ok=True)
    h, w = 2 * height, 2 * width
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, (3 * xx + yy) % 256], -1).astype(np.uint8)
    Image.fromarray(img).save(folder / "image.png")
    depth = (2.0 + xx / w + 0.3 * yy / h).astype(np.float32)
    K = np.array([[0.9 * w, 0, w / 2], [0, 0.9 * w, h / 2], [0, 0, 1]], np.float32)
    np.savez(folder / "depth.npz", depth=depth, K=K)
    return folder


@pytest.fixture(scope="module")
def scene(tmp_path_factory, tiny_weights_dir):
    from engine.models import Gen3CConfig

    cfg = Gen3CConfig.load(tiny_weights_dir)
    return _scene(tmp_path_factory.mktemp("parallel_scene"), cfg.height, cfg.width)


def _run_api(nproc, plan, weights, scene, folder):
    """(frames, latents) of tests/parallel_worker.py on ``nproc`` torchrun ranks, or in one process (plan "none")."""
    out = folder / f"result-{uuid.uuid4().hex[:8]}.npz"
    argv = [str(WORKER), "generate", str(weights), str(scene), str(out), plan]
    if plan == "none":
        run_single(argv)
    else:
        rc, ranks, agent = torchrun(nproc, argv, folder)
        assert rc == 0, ranks[0][1][-3000:] + agent[-2000:]
    with np.load(out) as data:
        return data["frames"], data["latents"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_weights_dir, scene):
    """(frames uint8, latents) of the worker's generation in one plain process."""
    return _run_api(1, "none", tiny_weights_dir, scene, tmp_path_factory.mktemp("parallel_reference"))


def _assert_matches(result, reference):
    (frames, latents), (ref_frames, ref_latents) = result, reference
    assert frames.dtype == np.uint8 and frames.shape == ref_frames.shape
    assert np.array_equal(frames, ref_frames)
    assert latents.shape == ref_latents.shape
    assert float(np.abs(latents - ref_latents).max()) <= LATENT_TOL


def _cli_args(weights, scene, out, *extra):
    """`python -m engine generate` options for the generation tests/parallel_worker.py makes."""
    return ["--image", str(scene / "image.png"), "--depth", str(scene / "depth.npz"), "--preset", "left",
            "--weights", str(weights), "--out", str(out), "--frames", str(parallel_worker.FRAMES),
            "--steps", str(parallel_worker.STEPS), "--guidance", str(parallel_worker.GUIDANCE),
            "--prompt", parallel_worker.PROMPT, "--device", "cpu", *extra]


@pytest.mark.parametrize("plan", ["ulysses", "cfg"])
def test_cli_on_two_ranks_matches_one_process(plan, tiny_weights_dir, scene, reference, tmp_path):
    from safetensors.torch import load_file

    from engine.video import read_video, write_mp4

    out, lat = tmp_path / "out" / "video.mp4", tmp_path / "out" / "latents.safetensors"
    out.parent.mkdir()
    rc, ranks, agent = torchrun(2, ["-m", "engine", "generate", *_cli_args(tiny_weights_dir, scene, out),
                                    "--save-latents", str(lat), "--parallel", plan], tmp_path)
    assert rc == 0, ranks[0][1][-3000:] + agent[-2000:]
    summary = json.loads(ranks[0][0].strip().splitlines()[-1])
    assert summary["parallel"] == {"plan": plan, "world_size": 2, "cfg_degree": 2 if plan == "cfg" else 1,
                                   "context_degree": 1 if plan == "cfg" else 2}
    assert "chunk 1/1" in ranks[0][1]  # rank 0 shows the progress
    assert ranks[1] == ("", "")  # every other rank is silent
    assert sorted(p.name for p in out.parent.iterdir()) == ["latents.safetensors", "video.mp4"]
    ref_frames, ref_latents = reference
    ref_video = tmp_path / "reference.mp4"
    write_mp4(ref_video, ref_frames, fps=summary["fps"])  # the reference frames through the same encoder
    assert np.array_equal(read_video(out), read_video(ref_video))
    saved = load_file(str(lat))
    assert list(saved) == ["chunk_0"]
    _assert_matches((ref_frames, saved["chunk_0"].numpy()[None]), reference)


def test_python_api_ulysses_on_two_ranks(tiny_weights_dir, scene, reference, tmp_path):
    _assert_matches(_run_api(2, "ulysses", tiny_weights_dir, scene, tmp_path), reference)


@pytest.mark.slow
def test_python_api_cfg_and_ulysses_on_four_ranks(tiny_weights_dir, scene, reference, tmp_path):
    _assert_matches(_run_api(4, "cfg,ulysses", tiny_weights_dir, scene, tmp_path), reference)


@pytest.mark.slow
def test_python_api_ulysses_on_four_ranks(tmp_path_factory, scene, tmp_path):
    """Ulysses degree 4 splits the heads 4 ways: a tiny DiT with 4 heads (same width)."""
    from engine.models import make_tiny_weights

    weights = make_tiny_weights(tmp_path_factory.mktemp("tiny_4_heads") / "w", dit_heads=4)
    _assert_matches(_run_api(4, "ulysses", weights, scene, tmp_path), _run_api(1, "none", weights, scene, tmp_path))


# ------------------------------------------------------------------------------------------ refusals

def _one_error_from_rank_0(ranks) -> str:
    errors = [line for line in ranks[0][1].splitlines() if line.startswith("error:")]
    assert len(errors) == 1, ranks[0][1]
    for rank, (stdout, stderr) in ranks.items():
        if rank:
            assert (stdout, stderr) == ("", ""), (rank, stderr)
    return errors[0]


@pytest.mark.parametrize("nproc, plan, message", [
    (2, "ring", "--parallel ring needs an attention kernel that returns the log-sum-exp"),
    (3, "cfg", "needs an even number of processes"),
])
def test_cli_refuses_a_plan_before_loading(nproc, plan, message, tiny_weights_dir, scene, tmp_path):
    out = tmp_path / "never.mp4"
    rc, ranks, _ = torchrun(nproc, ["-m", "engine", "generate", *_cli_args(tiny_weights_dir, scene, out),
                                    "--parallel", plan], tmp_path)
    assert rc != 0
    assert message in _one_error_from_rank_0(ranks)
    assert not out.exists()


def _config_only_copy(weights: Path, folder: Path, **changes) -> Path:
    """The weights folder with every weight file replaced by junk: loading any model from it fails."""
    shutil.copytree(weights, folder)
    for file in folder.rglob("*.safetensors"):
        file.write_bytes(b"not a safetensors file")
    if changes:
        cfg = json.loads((folder / "gen3c.json").read_text())
        (folder / "gen3c.json").write_text(json.dumps({**cfg, **changes}))
    return folder


def test_cli_refuses_tokens_that_do_not_split(tiny_weights_dir, tmp_path):
    # 48x80 pixels -> 6x10 latents -> 3x5 tokens a frame, 45 in a chunk: odd, so not 2 ranks
    weights = _config_only_copy(tiny_weights_dir, tmp_path / "w", height=48, width=80)
    scene = _scene(tmp_path / "scene", 48, 80)
    out = tmp_path / "never.mp4"
    rc, ranks, _ = torchrun(2, ["-m", "engine", "generate", *_cli_args(weights, scene, out), "--parallel", "ulysses"],
                            tmp_path)
    assert rc != 0
    error = _one_error_from_rank_0(ranks)
    assert "45 DiT tokens (3x3x5 after patching)" in error and "not padded" in error


def test_cli_refuses_a_bad_image_before_any_rank_reads_weights(tiny_weights_dir, scene, tmp_path):
    # every weight file is junk: had any rank started loading a model, the error would be about that file
    weights = _config_only_copy(tiny_weights_dir, tmp_path / "w")
    bad = tmp_path / "image.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    args = _cli_args(weights, scene, tmp_path / "never.mp4", "--parallel", "ulysses")
    args[args.index(str(scene / "image.png"))] = str(bad)
    rc, ranks, _ = torchrun(2, ["-m", "engine", "generate", *args], tmp_path)
    assert rc != 0
    error = _one_error_from_rank_0(ranks)
    assert "image.png" in error and "safetensors" not in error
    assert not (tmp_path / "never.mp4").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refusal_on_one_rank_stops_every_rank(tmp_path):
    """Rank 1 refuses its input while rank 0 waits at the checkpoint: both exit 2, rank 0 prints rank 1's error.

    The ranks are started one by one with torchrun's variables (not by torchrun, which would kill a waiting rank
    as soon as another fails and so hide a rank that never returns).
    """
    port = _free_port()
    procs = []
    for rank in range(2):
        env = {**_env(), "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        procs.append(subprocess.Popen([sys.executable, str(WORKER), "agree", str(tmp_path)], cwd=REPO, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=120)
            results.append((p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [r[0] for r in results] == [2, 2], results
    assert results[0][2].strip() == "error: rank 1 refuses its input"
    assert results[1][1:] == ("", "")
    assert not (tmp_path / "rank0-passed-the-checkpoint").exists()


def test_parallel_outside_torchrun_is_a_one_line_error(tiny_weights_dir, scene, tmp_path, monkeypatch, capsys):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    rc = cli_generate.main(_cli_args(tiny_weights_dir, scene, tmp_path / "never.mp4", "--parallel", "ulysses"))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert re.match(r"error: --parallel ulysses runs under torchrun", err)
    assert not torch.distributed.is_initialized()


def test_cfg_parallel_with_fast_mode_matches_one_process_fast_mode(tiny_weights_dir, scene, tmp_path):
    """The fast mode's per-branch cache contexts run inside the CFG-parallel runner: each rank keeps the state of
    its own branch, so 2 ranks give what one process gives with the same (approximate) fast mode."""
    from safetensors.torch import load_file

    single_out, single_lat = tmp_path / "single.mp4", tmp_path / "single.safetensors"
    run_single(["-m", "engine", "generate", *_cli_args(tiny_weights_dir, scene, single_out),
                "--cache", "taylorseer", "--save-latents", str(single_lat), "--quiet"])
    out, lat = tmp_path / "cfg.mp4", tmp_path / "cfg.safetensors"
    rc, ranks, agent = torchrun(2, ["-m", "engine", "generate", *_cli_args(tiny_weights_dir, scene, out),
                                    "--cache", "taylorseer", "--save-latents", str(lat), "--parallel", "cfg"],
                                tmp_path)
    assert rc == 0, ranks[0][1][-3000:] + agent[-2000:]
    summary = json.loads(ranks[0][0].strip().splitlines()[-1])
    assert summary["cache"] == "taylorseer" and summary["approximate"] is True
    a, b = load_file(str(single_lat))["chunk_0"], load_file(str(lat))["chunk_0"]
    assert float((a - b).abs().max()) <= LATENT_TOL
