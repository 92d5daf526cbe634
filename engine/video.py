"""MP4 writing/reading and small frame utilities (uint8 [T,H,W,3] at the file boundary)."""
from __future__ import annotations

import contextlib
import subprocess
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from engine import validate
from engine.atomic import atomic_output, is_disk_full
from engine.errors import InputError, OutputError
from engine.model_defaults import FPS


def _as_frames(frames, what: str = "frames") -> np.ndarray:
    arr = frames if isinstance(frames, torch.Tensor) else np.asarray(frames)
    return validate.uint8_image(arr, what, frames=True)


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()  # $IMAGEIO_FFMPEG_EXE, else the bundled binary


def _last_line(text: bytes) -> str:
    lines = [ln.strip() for ln in text.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


def _encode(tmp: Path, arr: np.ndarray, fps: float, crf: int, out: Path) -> None:
    """Pipe the frames through ffmpeg into ``tmp``; its exit status decides (imageio's writer ignores it)."""
    t, h, w = arr.shape[:3]
    cmd = [_ffmpeg(), "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
           "-r", str(Fraction(fps).limit_denominator()), "-i", "-", "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           "-crf", str(crf), "-f", "mp4", str(tmp)]
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: ffmpeg does not start ({exc.strerror or exc})") from None
    log: list[bytes] = []
    reader = threading.Thread(target=lambda: log.append(proc.stderr.read()), daemon=True)
    reader.start()
    try:
        for frame in arr:
            proc.stdin.write(frame.tobytes())
    except BrokenPipeError:
        pass  # ffmpeg stopped early: its status and log say why
    except BaseException:
        proc.kill()
        raise
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()
        status = proc.wait()
        reader.join()
    if status != 0:
        message = _last_line(b"".join(log))
        if is_disk_full(message):
            raise OutputError(f"disk full while writing {out}")
        how = f"exit status {status}" if status > 0 else f"signal {-status}"
        raise OutputError(f"cannot write {out}: ffmpeg failed ({how}{': ' + message if message else ''})")


def count_frames(file) -> int:
    """Video frames in a file, read back from its container (packets of the first video stream, no decoding).

    A file ffmpeg cannot open (a truncated mp4 has no index) raises InputError.
    """
    path = Path(file)
    cmd = [_ffmpeg(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"]
    result = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
    if result.returncode != 0:
        raise InputError(f"video {path.name}: unreadable ({_last_line(result.stderr) or 'ffmpeg failed'})")
    return sum(1 for line in result.stdout.splitlines() if line.strip() and not line.startswith(b"#"))


def write_mp4(file, frames, fps: float = FPS, quality_crf: int = 17) -> Path:
    """Write uint8 [T,H,W,3] frames as H.264 (libx264, yuv420p) MP4, whole or not at all.

    yuv420p needs even sizes: odd heights/widths are padded by one edge-replicated pixel. The video is
    encoded into a temporary file in the target folder; ffmpeg's exit status is checked and the frame count is
    read back before the file is synced and renamed into place. Any failure leaves nothing under ``file`` (an
    older file there is kept) and raises a one-line OutputError naming it ("disk full while writing ...").
    """
    arr = _as_frames(frames)
    fps = validate.fps(fps)
    crf = validate.integer(quality_crf, "quality_crf", 0, 51)
    pad_h, pad_w = arr.shape[1] % 2, arr.shape[2] % 2
    if pad_h or pad_w:
        arr = np.pad(arr, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    arr = np.ascontiguousarray(arr)
    out = Path(file)

    def complete(tmp: Path) -> None:
        try:
            found = count_frames(tmp)
        except InputError as exc:
            raise OutputError(f"cannot write {out}: the written video does not read back ({exc})") from None
        if found != len(arr):
            raise OutputError(f"cannot write {out}: {found} of {len(arr)} frames read back")

    with atomic_output(out, suffix=".mp4", check=complete) as tmp:
        _encode(tmp, arr, fps, crf, out)
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
