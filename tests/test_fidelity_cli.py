"""`--fit official` on the command line: `engine preview` renders the official chunk-0 conditioning of the official
two-chunk run (`pipeline_tiny`) from its image file and seed depth, and `engine generate` runs the official mode."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fidelity_setup import convert_official, official_pipeline, reference
from engine.images import to_uint8


@pytest.fixture(scope="module")
def fx():
    return reference()


@pytest.fixture(scope="module")
def files(tmp_path_factory, fx):
    """The official run's inputs as files: the image as a lossless PNG, the seed depth and K as an NPZ."""
    folder = tmp_path_factory.mktemp("official_inputs")
    Image.fromarray(fx["inputs/image_uint8"].numpy()).save(folder / "image.png")
    np.savez(folder / "depth.npz", depth=fx["inputs/seed_depth"].numpy(), K=fx["inputs/K"].numpy())
    return folder


@pytest.fixture()
def written(monkeypatch):
    """The frames each write_mp4 call is given, by file name (the mp4 itself is lossy)."""
    from engine import video

    frames = {}
    real = video.write_mp4

    def record(file, video_frames, *args, **kwargs):
        frames[str(file).replace("\\", "/").rsplit("/", 1)[-1]] = np.array(video_frames)
        return real(file, video_frames, *args, **kwargs)

    monkeypatch.setattr(video, "write_mp4", record)
    return frames


def _preview(files, out, fit):
    from engine.cli import preview

    return preview.main(["--image", str(files / "image.png"), "--depth", str(files / "depth.npz"), "--fit", fit,
                         "--preset", "left", "--rotation", "center_facing", "--distance", "0.3", "--frames", "33",
                         "--height", "64", "--width", "128", "--device", "cpu", "--out", str(out), "--quiet"])


def test_preview_fit_official_renders_the_official_chunk0_conditioning(files, fx, written, tmp_path):
    from engine.paths import load_npz

    assert _preview(files, tmp_path / "official", "official") == 0
    w2cs, Ks = load_npz(tmp_path / "official" / "cameras.npz")
    torch.testing.assert_close(torch.as_tensor(w2cs), fx["inputs/w2cs"], rtol=0, atol=1e-5)
    torch.testing.assert_close(torch.as_tensor(Ks), fx["inputs/Ks"], rtol=0, atol=1e-5)
    masks = np.load(tmp_path / "official" / "masks.npz")["masks"].astype(bool)[:17]
    ref_masks = fx["chunk0/render_masks"][:, 0, 0].bool().numpy()
    assert np.array_equal(masks[1:], ref_masks[1:]) and (masks[0] != ref_masks[0]).mean() <= 0.03
    frames = written["preview.mp4"][:17].astype(int)
    ref = to_uint8(fx["chunk0/render_images"][:, 0]).astype(int)
    assert np.abs(frames[1:] - ref[1:]).max() <= 1
    # the default fit keeps its own image path (u / 127.5 - 1 of the pixels): other colours
    official = written["preview.mp4"]
    assert _preview(files, tmp_path / "crop", "crop") == 0
    assert not np.array_equal(written["preview.mp4"], official)


def test_generate_fit_official_runs_the_official_mode(files, fx, written, tmp_path):
    from engine.cameras import preset_trajectory
    from engine.cli import generate
    from engine.depth import DepthResult

    weights = convert_official(tmp_path)
    args = ["--image", str(files / "image.png"), "--depth", str(files / "depth.npz"), "--preset", "left",
            "--frames", "17", "--steps", "2", "--seed", "3", "--weights", str(weights), "--no-text-encoder",
            "--device", "cpu", "--quiet"]
    assert generate.main([*args, "--fit", "official", "--out", str(tmp_path / "official.mp4")]) == 0
    assert generate.main([*args, "--out", str(tmp_path / "crop.mp4")]) == 0
    pipe = official_pipeline(weights, fx["inputs/K"].numpy())
    depth = DepthResult(fx["inputs/seed_depth"].numpy(), fx["inputs/K"].numpy())
    cams = preset_trajectory("left", torch.eye(4), fx["inputs/K"], 17, 0.3, "center_facing")  # the CLI's default preset
    want = pipe.generate(fx["inputs/image_uint8"].numpy(), cams, 17, num_steps=2, seed=3, depth=depth,
                         fit="official", trace=True)
    assert np.array_equal(written["official.mp4"], want.frames)
    assert torch.equal(want.trace[0]["condition_frame"], fx["chunk0/condition_clip_frame0"])  # the official frame
    assert not np.array_equal(written["crop.mp4"], want.frames)
