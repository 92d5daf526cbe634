"""Previews: one warped frame, the whole-path video frames and their coverage."""
from __future__ import annotations

import numpy as np
import torch

from studio.handlers.common import frame_index, require_path, scene_path
from studio.state import COVERAGE_WARN, PREVIEW_SIZE, VIDEO_SIZE, Session

HOLE_RGB = np.array([255, 0, 170], dtype=np.uint8)


def with_cameras(session: Session) -> Session:
    """The session with the path's preview cameras sampled (cached until the path changes)."""
    if session.path is None or session.frame_cams is not None:
        return session
    return session.replace(frame_cams=_sample(session, PREVIEW_SIZE), video_cams=_sample(session, VIDEO_SIZE))


def _sample(session: Session, size) -> tuple:
    """The path's cameras for every frame; a one-keyframe path is its still camera on every frame (the
    preview shows it; motion needs a second keyframe)."""
    path = scene_path(session)
    if path.can_animate:
        return path.sample(session.num_frames, *size)
    w2cs, Ks = path.sample(1, *size)
    return w2cs.expand(session.num_frames, 4, 4).clone(), Ks.expand(session.num_frames, 3, 3).clone()


def require_motion(session: Session) -> Session:
    """The session, if its path has the two keyframes motion needs, else InputError saying so."""
    from engine.errors import InputError

    session = require_path(session)
    if not session.path.can_animate:
        raise InputError("a path needs at least two keyframes to preview motion or generate (it has 1): "
                         "add a keyframe")
    return session


def render_frame(session: Session, frame, show_holes: bool = False) -> tuple[np.ndarray, float]:
    """The warped preview of one frame (uint8 [H,W,3] at PREVIEW_SIZE) and its coverage in [0, 1]."""
    session = with_cameras(require_path(session))
    t = frame_index(session, frame)
    w2cs, Ks = session.frame_cams
    images, masks = session.preview.frame_cache.render(w2cs[t:t + 1], Ks[t:t + 1])
    return _to_rgb(images[0, -1], masks[0, -1], show_holes), float(masks[0, -1].float().mean())


def _to_rgb(image, mask, show_holes: bool) -> np.ndarray:
    from engine.images import to_uint8

    rgb = to_uint8(image)
    if show_holes:
        hole = np.asarray(mask.detach().cpu().numpy()[0] < 0.5)
        rgb = rgb.copy()
        rgb[hole] = HOLE_RGB
    return rgb


PATH_CHUNK = 4  # frames rendered at a time for the path video (a newer edit stops the render between chunks)


def render_path(session: Session, show_holes: bool = False, stride: int = 1, stale=None):
    """Every `stride`-th frame of the path at VIDEO_SIZE.

    Returns (frame indices [F], frames uint8 [F,H,W,3], coverage [F] in [0, 1]); None when `stale()` (checked
    between chunks of PATH_CHUNK frames) turns true: the result would be out of date.
    """
    session = with_cameras(require_motion(session))
    stride = max(int(stride), 1)
    w2cs, Ks = session.video_cams
    index = np.arange(0, len(w2cs), stride)
    if index[-1] != len(w2cs) - 1:
        index = np.append(index, len(w2cs) - 1)  # always show where the path ends
    frames, coverage = [], []
    for start in range(0, len(index), PATH_CHUNK):
        if stale is not None and stale():
            return None
        sel = torch.as_tensor(index[start:start + PATH_CHUNK])
        images, masks = session.preview.video_cache.render(w2cs[sel], Ks[sel])
        frames += [_to_rgb(images[t, -1], masks[t, -1], show_holes) for t in range(len(sel))]
        coverage.append(masks[:, -1].float().mean(dim=(1, 2, 3)).cpu().numpy())
    return index, np.stack(frames), np.concatenate(coverage)


def preview_stride() -> int:
    """Frames to skip in the whole-path preview: every frame on a GPU, every 2nd on a CPU."""
    return 1 if torch.cuda.is_available() else 2


def coverage_warning(coverage: np.ndarray, frames: np.ndarray | None = None) -> str:
    coverage = np.asarray(coverage)
    frames = np.arange(len(coverage)) if frames is None else np.asarray(frames)
    low = np.flatnonzero(coverage < COVERAGE_WARN)
    if len(low) == 0:
        return f"Coverage stays above {COVERAGE_WARN:.0%} along the whole path."
    return (f"Warning: {len(low)} frames (first {frames[low[0]]}, worst {frames[np.argmin(coverage)]} at "
            f"{float(np.min(coverage)):.0%}) are under {COVERAGE_WARN:.0%} covered: "
            "the camera leaves what the cache can show; the model will have to invent those parts.")
