""""What the model receives": each cache buffer's warped render and mask at one frame, as gallery items.

GEN3C conditions every chunk on `frame_buffer_max` (2) cache buffers, newest first: in the first chunk only
the seed image (buffer 1 is empty: zero latents), from the second chunk on [the last generated frame, the
seed]. `buffer_views` turns one frame's renders into pictures; the studio feeds it the preview caches now,
and a generation's per-chunk trace (renders [T,N,3,H,W], masks [T,N,1,H,W]) can feed it the same way.
"""
from __future__ import annotations

import numpy as np

EMPTY_GREY = 40


def buffer_views(images, masks, buffers: int = 2, names: list[str] | None = None,
                 size: tuple[int, int] | None = None) -> list[tuple[np.ndarray, str]]:
    """[(uint8 [H,W,3], caption)] for each buffer: its render, then its mask (white = covered).

    images [N,3,H,W] in [-1, 1], masks [N,1,H,W] of one frame (N <= buffers); buffers the model takes
    (missing ones are shown as empty); names one label per present buffer (default "buffer n"); size the
    (H, W) of empty tiles (default the renders')."""
    from engine.images import to_uint8
    from engine.video import masks_to_uint8

    n = int(images.shape[0])
    h, w = size or tuple(images.shape[-2:])
    names = names or [f"buffer {b + 1}" for b in range(n)]
    out = []
    for b in range(n):
        covered = float(masks[b].float().mean())
        out.append((to_uint8(images[b]), f"{names[b]}: render"))
        out.append((masks_to_uint8(masks[b:b + 1])[0], f"{names[b]}: mask, {covered:.0%} covered"))
    for b in range(n, buffers):
        empty = np.full((h, w, 3), EMPTY_GREY, dtype=np.uint8)
        out.append((empty, f"buffer {b + 1}: empty in chunk 1"))
        out.append((empty, f"buffer {b + 1}: no mask yet"))
    return out


def preview_buffer_views(session, frame) -> list[tuple[np.ndarray, str]]:
    """`buffer_views` of the session's preview cache at path frame `frame` (the first chunk: the seed)."""
    from studio.handlers.common import frame_index, require_path
    from studio.handlers.preview import with_cameras

    session = with_cameras(require_path(session))
    t = frame_index(session, frame)
    w2cs, Ks = session.frame_cams
    images, masks = session.preview.frame_cache.render(w2cs[t:t + 1], Ks[t:t + 1])
    return buffer_views(images[0], masks[0], names=["buffer 1 (seed)"])
