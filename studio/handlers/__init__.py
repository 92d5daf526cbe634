"""Studio logic as plain functions: Session in, Session (or display values) out. No gradio here.

Every function validates what it gets and raises `engine.errors.InputError` with a one-line message
for bad input; the session it was given is never modified (sessions are immutable), so a failed edit
changes nothing. `studio.events` wires these to components and turns InputError into a visible error.

Modules by concern: `scene` (load a sample or upload, status, crop preview, preview caches), `path_edits`
(presets, keyframe edits, undo/redo, interpolation), `table` (the keyframe table), `preview` (frames, path
video), `view3d` (the 3D view's figure and camera payload), `common` (shared checks). The names below are
what the studio and its tests use.
"""
from studio.handlers.common import MODEL_SIZE, require_path, require_scene, scene_path
from studio.handlers.path_edits import (
    CHUNK_CHOICES,
    DEFAULT_PRESET,
    add_keyframe,
    add_keyframe_at_frame,
    add_keyframe_from_view,
    delete_keyframe,
    duplicate_keyframe,
    look_at_clicked_point,
    move_keyframe,
    new_path,
    redo,
    select_keyframe,
    set_interpolation,
    set_ease,
    set_hold,
    set_keyframe_to_view,
    set_length,
    set_preset,
    undo,
)
from studio.handlers.preview import (
    HOLE_RGB,
    coverage_warning,
    preview_stride,
    render_frame,
    render_path,
    require_motion,
    with_cameras,
)
from studio.handlers.scene import (
    fit_preview,
    load_sample,
    load_upload,
    restore_upload,
    scene_status,
    set_foreground_masking,
)
from studio.handlers.table import TABLE_LOOK, TABLE_YPR, edit_cell, edit_table, keyframe_table, path_summary, table_payload
from studio.handlers.view3d import camera_payload, fit_box, frame_fov, path_inside, scene_figure, view_box

__all__ = [
    "MODEL_SIZE", "require_path", "require_scene", "scene_path",
    "CHUNK_CHOICES", "DEFAULT_PRESET", "add_keyframe", "add_keyframe_at_frame", "add_keyframe_from_view",
    "delete_keyframe", "duplicate_keyframe", "look_at_clicked_point", "move_keyframe", "new_path",
    "redo", "set_ease", "set_hold", "select_keyframe", "set_interpolation", "set_keyframe_to_view", "set_length", "set_preset", "undo",
    "HOLE_RGB", "coverage_warning", "preview_stride", "render_frame", "render_path", "require_motion", "with_cameras",
    "fit_preview", "load_sample", "load_upload", "restore_upload", "scene_status", "set_foreground_masking",
    "TABLE_LOOK", "TABLE_YPR", "edit_cell", "edit_table", "keyframe_table", "path_summary", "table_payload",
    "camera_payload", "fit_box", "frame_fov", "path_inside", "scene_figure", "view_box",
]
