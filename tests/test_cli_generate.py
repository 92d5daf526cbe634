"""`python -m engine generate` end to end on the tiny weights, and its input errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from engine.cli import generate as cli_generate


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    from engine.models import Gen3CConfig, make_tiny_weights

    root = tmp_path_factory.mktemp("tiny_weights")
    make_tiny_weights(root)
    return root, Gen3CConfig.load(root)


@pytest.fixture(scope="module")
def scene(tmp_path_factory, tiny_weights):
    """A PNG at twice the model size (so the fit is exercised) and its depth as .npy with K in an .npz."""
    _, cfg = tiny_weights
    h, w = 2 * cfg.height, 2 * cfg.width
    folder = tmp_path_factory.mktemp("scene")
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, (3 * xx + yy) % 256], -1).astype(np.uint8)
    Image.fromarray(img).save(folder / "image.png")
    depth = (2.0 + xx / w + 0.3 * yy / h).astype(np.float32)
    K = np.array([[0.9 * w, 0, w / 2], [0, 0.9 * w, h / 2], [0, 0, 1]], np.float32)
    np.savez(folder / "depth.npz", depth=depth, K=K)
    return folder


def _args(weights, scene, out, *extra):
    return ["--image", str(scene / "image.png"), "--depth", str(scene / "depth.npz"), "--preset", "left",
            "--weights", str(weights), "--out", str(out), "--steps", "2", "--no-text-encoder", "--quiet",
            "--device", "cpu", *extra]


def test_generate_writes_side_by_side_mp4(tiny_weights, scene, tmp_path, capsys):
    from engine.video import read_video

    root, cfg = tiny_weights
    out = tmp_path / "video.mp4"
    n = cfg.chunk_frames - 4  # off the chunk grid: one chunk, tail trimmed
    rc = cli_generate.main(_args(root, scene, out, "--frames", str(n), "--prompt", "a street", "--side-by-side",
                                             "--batch-cfg"))
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    frames = read_video(out)
    assert frames.shape == (n, cfg.height, 2 * cfg.width, 3)  # [warped preview | video]
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["frames"] == n and summary["fps"] == cfg.fps and summary["steps"] == 2
    # left half is the warp preview: frame 0 (identity camera) shows the fitted input image
    from engine.images import fit_image, load_image

    fitted, _ = fit_image(load_image(scene / "image.png"), cfg.height, cfg.width)
    assert np.abs(frames[0, :, :cfg.width].astype(int) - fitted.astype(int)).mean() < 12


@pytest.mark.parametrize("extra, message", [
    (["--frames", "1"], "--frames"),
    (["--cfg", "legacy"], "--cfg"),
    (["--steps", "0"], "--steps"),
    (["--placement", "everywhere"], "--placement"),
    (["--preset", "sideways"], "sideways"),
])
def test_bad_input_is_one_line_error_and_writes_nothing(tiny_weights, scene, tmp_path, capsys, extra, message):
    root, _ = tiny_weights
    out = tmp_path / "never.mp4"
    rc = cli_generate.main(_args(root, scene, out, *extra))
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("error:") and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_missing_weights_says_what_to_download(scene, tmp_path, capsys):
    out = tmp_path / "never.mp4"
    rc = cli_generate.main(_args(tmp_path / "no_weights", scene, out))
    err = capsys.readouterr().err
    assert rc == 2 and "error:" in err and "huggingface-cli download" in err
    assert not out.exists()


def test_missing_image_file(tiny_weights, scene, tmp_path, capsys):
    root, _ = tiny_weights
    args = _args(root, scene, tmp_path / "x.mp4")
    args[1] = str(tmp_path / "missing.png")
    assert cli_generate.main(args) == 2
    assert "error:" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ bench pipeline

def test_bench_pipeline_tiny_prints_json(tiny_weights, capsys):
    from engine.bench import pipeline as bench_pipeline

    root, cfg = tiny_weights
    assert bench_pipeline.main(["--tiny", "--weights", str(root), "--steps", "1"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["mode"] == "tiny" and report["frames"] == cfg.chunk_frames and report["steps"] == 1
    assert (report["height"], report["width"]) == (cfg.height, cfg.width)
    assert {"render", "encode", "denoise", "decode"} <= set(report["stages_s"])
    assert report["gpu_present"] == torch.cuda.is_available()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_bench_pipeline_full_size_needs_a_gpu(capsys):
    from engine.bench import pipeline as bench_pipeline

    assert bench_pipeline.main([]) == 2
    assert "no GPU" in capsys.readouterr().err
