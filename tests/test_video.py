"""engine.video: MP4 round trip, odd sizes, atomic writes, frame utilities."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import video
from engine.errors import InputError


def _moving_pattern(t=6, h=48, w=64):
    ys, xs = np.mgrid[0:h, 0:w]
    frames = []
    for i in range(t):
        r = 128 + 100 * np.sin((xs + 3 * i) / 6.0)
        g = 128 + 100 * np.cos((ys - 2 * i) / 5.0)
        b = 128 + 60 * np.sin((xs + ys) / 9.0 + i)
        frames.append(np.stack([r, g, b], -1))
    return np.clip(np.round(frames), 0, 255).astype(np.uint8)


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))


def test_round_trip(tmp_path):
    frames = _moving_pattern()
    out = video.write_mp4(tmp_path / "a.mp4", frames, fps=12)
    back = video.read_video(out)
    assert back.shape == frames.shape and back.dtype == np.uint8
    assert _psnr(back, frames) > 30  # yuv420p chroma subsampling of a busy pattern: ~32.7 dB
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]  # no temp files left


def test_odd_size_is_padded_by_one(tmp_path):
    frames = _moving_pattern(3, 45, 61)
    back = video.read_video(video.write_mp4(tmp_path / "odd.mp4", frames))
    assert back.shape == (3, 46, 62, 3)
    assert _psnr(back[:, :45, :61], frames) > 30


def test_bad_input_writes_nothing(tmp_path):
    with pytest.raises(InputError, match="uint8"):
        video.write_mp4(tmp_path / "x.mp4", np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(InputError, match="fps"):
        video.write_mp4(tmp_path / "x.mp4", np.zeros((2, 8, 8, 3), np.uint8), fps=0)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(InputError, match="junk.mp4"):
        video.read_video(tmp_path / "junk.mp4")
    with pytest.raises(InputError, match="not found"):
        video.read_video(tmp_path / "missing.mp4")


def test_side_by_side_and_masks():
    a = np.zeros((2, 4, 3, 3), np.uint8)
    b = np.full((2, 4, 5, 3), 9, np.uint8)
    sb = video.side_by_side(a, b, gap=2)
    assert sb.shape == (2, 4, 10, 3)
    assert (sb[:, :, :3] == 0).all() and (sb[:, :, 5:] == 9).all()
    with pytest.raises(InputError, match="video 1"):
        video.side_by_side(a, np.zeros((3, 4, 3, 3), np.uint8))
    m = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    mu = video.masks_to_uint8(m)
    assert mu.shape == (1, 2, 2, 3) and mu[0, 0, 0, 0] == 255 and mu[0, 0, 1, 2] == 0
    np.testing.assert_array_equal(video.masks_to_uint8(m.bool()[:, 0]), mu)


def test_tensor_video_to_uint8():
    t = torch.tensor([-1.0, 0.0, 1.0]).view(1, 3, 1, 1).expand(2, 3, 2, 2)
    out = video.tensor_video_to_uint8(t)
    assert out.shape == (2, 2, 2, 3)
    np.testing.assert_array_equal(out[0, 0, 0], [0, 128, 255])
    with pytest.raises(InputError):
        video.tensor_video_to_uint8(torch.zeros(3, 2, 2))
