"""MP4 writing/reading and small frame utilities (uint8 [T,H,W,3] at the file boundary)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine import validate
from engine.atomic import atomic_output
from engine.errors import InputError
from engine.model_defaults import FPS


def _as_frames(frames, what: str = "frames") -> np.ndarray:
    arr = frames if isinstance(frames, torch.Tensor) else np.asarray(frames)
    return validate.uint8_image(arr, what, frames=True)


def write_mp4(file, frames, fps: float = FPS, quality_crf: int = 17) -> Path:
    """Write uint8 [T,H,W,3] frames as H.264 (libx264, yuv420p) MP4.

    yuv420p needs even sizes: odd heights/widths are padded by one edge-replicated pixel. The file is
    written to a temporary name in the same folder and renamed, so a failed write leaves nothing behind.
    """
    import imageio.v2 as imageio

    arr = _as_frames(frames)
    fps = validate.fps(fps)
    pad_h, pad_w = arr.shape[1] % 2, arr.shape[2] % 2
    if pad_h or pad_w:
        arr = np.pad(arr, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    out = Path(file)
    with atomic_output(out, suffix=".mp4") as tmp:
        writer = imageio.get_writer(
            str(tmp), format="FFMPEG", mode="I", fps=float(fps), codec="libx264", pixelformat="yuv420p",
            macro_block_size=1, ffmpeg_log_level="error", ffmpeg_params=["-crf", str(int(quality_crf))],
        )
        try:
            for frame in arr:
                writer.append_data(frame)
        finally:
            writer.close()
    return out


def read_video(file) -> np.ndarray:
    """Decode a video file to uint8 [T,H,W,3]."""
    import imageio.v2 as imageio

    path = Path(file)
    if not path.is_file():
        raise InputError(f"video {path.name}: file not found")
    try:
        reader = imageio.get_reader(str(path), format="FFMPEG")
        try:
            frames = [np.asarray(f, dtype=np.uint8)[..., :3] for f in reader]
        finally:
            reader.close()
    except (OSError, RuntimeError, ValueError, IndexError) as exc:
        raise InputError(f"video {path.name}: cannot decode ({str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__})") from None
    if not frames:
        raise InputError(f"video {path.name}: no frames")
    return np.stack(frames)


def side_by_side(*videos, gap: int = 0) -> np.ndarray:
    """Concatenate uint8 [T,H,W,3] videos left to right (same T and H), with an optional black gap."""
    if not videos:
        raise InputError("side_by_side needs at least one video")
    arrs = [_as_frames(v, f"video {i}") for i, v in enumerate(videos)]
    t, h = arrs[0].shape[:2]
    for i, a in enumerate(arrs[1:], 1):
        if a.shape[:2] != (t, h):
            raise InputError(f"video {i} is {a.shape[0]} frames x {a.shape[1]} px high; video 0 is {t} x {h}")
    parts = []
    for i, a in enumerate(arrs):
        if i and gap > 0:
            parts.append(np.zeros((t, h, gap, 3), np.uint8))
        parts.append(a)
    return np.concatenate(parts, axis=2)


def masks_to_uint8(masks) -> np.ndarray:
    """Masks [T,1,H,W] or [T,H,W] (bool/float, 1 = covered) -> uint8 [T,H,W,3] (white = covered)."""
    m = masks.detach().float().cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks, np.float32)
    if m.ndim == 4 and m.shape[1] == 1:
        m = m[:, 0]
    if m.ndim != 3:
        raise InputError(f"masks: expected [T,1,H,W] or [T,H,W], got {tuple(m.shape)}")
    v = np.round(np.clip(m, 0, 1) * 255).astype(np.uint8)
    return np.repeat(v[..., None], 3, axis=-1)


def tensor_video_to_uint8(images) -> np.ndarray:
    """Torch [T,3,H,W] in [-1, 1] -> uint8 [T,H,W,3]."""
    from engine.images import to_uint8

    t = torch.as_tensor(images)
    if t.dim() != 4 or t.shape[1] != 3:
        raise InputError(f"video tensor: expected [T,3,H,W], got {tuple(t.shape)}")
    return to_uint8(t)
