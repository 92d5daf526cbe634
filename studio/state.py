"""Per-browser session state: the scene, the preview caches, the camera path and its edit history.

A `Session` is immutable: handlers return a new one (`dataclasses.replace`), sharing the heavy parts
(scene, caches). Paths are immutable `engine.paths.CameraPath` objects, so undo/redo is a pair of
bounded stacks of paths. Nothing here is module-level user data: gradio keeps one Session per browser
(and per gradio_client session) in `gr.State`.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

from engine.model_defaults import CHUNK_FRAMES

HISTORY_DEPTH = 64
PREVIEW_SIZE = (352, 640)  # live frame preview (H, W)
VIDEO_SIZE = (176, 320)  # whole-path preview video and coverage chart
COVERAGE_WARN = 0.6  # frames covered less than this are flagged


@dataclass(frozen=True)
class History:
    """Undo/redo stacks of earlier / later paths (None = no path), newest last, bounded depth."""

    past: tuple = ()
    future: tuple = ()
    depth: int = HISTORY_DEPTH

    def record(self, previous) -> "History":
        """Remember `previous` before an edit; a new edit clears the redo stack."""
        return History((self.past + (previous,))[-self.depth:], (), self.depth)

    def undo(self, current):
        """(history, path to restore) or (self, None-sentinel False) when there is nothing to undo."""
        if not self.past:
            return self, False
        restored = self.past[-1]
        return History(self.past[:-1], self.future + (current,), self.depth), restored

    def redo(self, current):
        if not self.future:
            return self, False
        restored = self.future[-1]
        return History((self.past + (current,))[-self.depth:], self.future[:-1], self.depth), restored

    @property
    def can_undo(self) -> bool:
        return bool(self.past)

    @property
    def can_redo(self) -> bool:
        return bool(self.future)


@dataclass(frozen=True)
class Preview:
    """What the live preview needs for the current scene: caches at two sizes and the scene-side facts."""

    frame_cache: Any  # engine.cache3d.Cache3D at PREVIEW_SIZE
    video_cache: Any  # engine.cache3d.Cache3D at VIDEO_SIZE
    focus_distance: float  # median scene depth: look-at distance for keyframes and the 3D view orbit
    cloud: Any = None  # (xyz [P,3], rgb uint8 [P,3]) capped at figures.POINT_BUDGET for the 3D view
    meshes: dict = field(default_factory=dict)  # vertex budget -> studio.mesh.SceneMesh, built on first use
    foreground_masking: bool = True  # whether the caches blank what the seed's occluders hide


class Latest:
    """The newest revision of a session, shared (by reference) by all its Session snapshots.

    Long renders compare their snapshot's revision with it and drop their result when a newer
    edit has happened meanwhile: the last change wins.
    """

    def __init__(self, value: int = 0):
        self.value = value

    def is_current(self, revision: int) -> bool:
        return revision == self.value


@dataclass(frozen=True, eq=False)  # eq=False: hashed by identity (gradio hashes state values)
class Session:
    scene: Any = None  # engine.scene.Scene at model resolution
    scene_label: str = ""
    source: Any = None  # (image uint8 [H,W,3] as given, engine.depth.DepthResult, fit) for generation
    preview: Preview | None = None
    path: Any = None  # engine.paths.CameraPath | None
    history: History = field(default_factory=History)
    num_frames: int = CHUNK_FRAMES
    selected: int = 0  # selected keyframe index
    frame_cams: Any = None  # (w2cs, Ks) of `path` at PREVIEW_SIZE, cached per path
    video_cams: Any = None  # (w2cs, Ks) at VIDEO_SIZE
    folder: str = ""  # per-session output folder
    revision: int = 0  # bumped on every path/scene change; stale preview videos are dropped
    latest: Latest = field(default_factory=Latest)
    cancel: threading.Event = field(default_factory=threading.Event)  # set by the Cancel button
    targets: dict = field(default_factory=dict)  # Keyframe -> look-at point the user typed (table, look-at mode)
    scene_ref: dict = field(default_factory=dict)  # how to load the scene again: {"sample": name} | {"upload": id}
    view: dict = field(default_factory=lambda: {"style": "surface", "detail": "standard"})  # 3D view settings
    box: Any = None  # studio.viewcam.SceneBox of the 3D view's figure now in the browser (None: none sent yet)

    def with_path(self, path, *, record: bool = True, **changes) -> "Session":
        """A new session with `path` (history recorded unless record=False) and cameras re-sampled."""
        changes.setdefault("history", self.history.record(self.path) if record else self.history)
        return self.replace(path=path, frame_cams=None, video_cams=None, **changes)

    def replace(self, **changes) -> "Session":
        """A new snapshot; a new path or length (frame_cams reset) also bumps the revision."""
        if "frame_cams" in changes and changes["frame_cams"] is None and "revision" not in changes:
            changes["revision"] = self.latest.value + 1
        new = replace(self, **changes)
        if new.revision > self.latest.value:
            self.latest.value = new.revision
        return new
