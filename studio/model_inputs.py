""""What the model receives": each cache buffer's warped render and mask at one frame, as gallery items.

GEN3C conditions every chunk on `frame_buffer_max` (2) cache buffers, newest first: in the first chunk only
the seed image (buffer 1 is empty: zero latents), from the second chunk on [the last generated frame, the
seed]. `buffer_views` turns one frame's renders into pictures. Before a video is made the view shows the
preview cache (the seed buffer: chunk 1's conditioning); after one, until the path or its length changes, what
that generation actually fed the model (`engine.resumable.trace_buffers` on a thumbnail copy of its trace), the
newest buffer of later chunks included.
"""
from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class GeneratedInputs:
    """A generation's trace at thumbnail size, for the path revision and length it was made from."""

    revision: int
    num_frames: int
    trace: list  # per chunk: {"chunk", "frames", "renders" uint8 [C,N,h,w,3], "masks" bool [C,N,h,w]}


def thumbnail_trace(trace: list, size: tuple[int, int]) -> list:
    """``result.trace`` with its renders and masks shrunk to ``size`` (H, W) by area averaging (masks: covered
    where at least half the area is); the latents are dropped. What the view keeps after a run."""
    import torch
    import torch.nn.functional as F

    out = []
    for chunk in trace:
        renders = torch.from_numpy(np.ascontiguousarray(chunk["renders"]))  # [C,N,H,W,3]
        c, n = renders.shape[:2]
        rgb = renders.reshape(c * n, *renders.shape[2:]).permute(0, 3, 1, 2).float()
        rgb = F.interpolate(rgb, size=size, mode="area").round().clamp(0, 255).to(torch.uint8)
        masks = torch.from_numpy(np.ascontiguousarray(chunk["masks"])).reshape(c * n, 1, *renders.shape[2:4])
        masks = F.interpolate(masks.float(), size=size, mode="area") >= 0.5
        out.append({"chunk": int(chunk["chunk"]), "frames": tuple(int(f) for f in chunk["frames"]),
                    "renders": rgb.permute(0, 2, 3, 1).reshape(c, n, *size, 3).numpy(),
                    "masks": masks.reshape(c, n, *size).numpy()})
    return out


def generated_buffer_views(generated: GeneratedInputs, frame: int) -> list[tuple[np.ndarray, str]]:
    """`buffer_views` of what the generation fed the model for output frame `frame`."""
    from engine.resumable import trace_buffers

    images, masks = trace_buffers(generated.trace, frame)
    chunk = next(c for c in generated.trace if (c["frames"][0] if c["chunk"] == 0 else c["frames"][0] + 1)
                 <= frame <= c["frames"][1])
    k = chunk["chunk"]
    names = (["buffer 1 (seed)", "buffer 2 (empty in chunk 1)"] if k == 0 else
             [f"buffer 1 (frame {chunk['frames'][0]}: chunk {k}'s last)", "buffer 2 (seed)"])
    return buffer_views(images, masks, names=[f"generated, chunk {k + 1}, {name}" for name in names[:len(images)]])


def model_input_views(session, frame) -> list[tuple[np.ndarray, str]]:
    """The generation's inputs at `frame` while they belong to the session's path and length, else the preview's."""
    from studio.handlers.common import frame_index, require_path

    generated = session.held.generated if session.held is not None else None
    if generated is not None and generated.revision == session.revision \
            and generated.num_frames == session.num_frames:
        return generated_buffer_views(generated, frame_index(require_path(session), frame))
    return preview_buffer_views(session, frame)
