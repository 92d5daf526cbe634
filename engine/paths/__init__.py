"""Keyframed camera paths: editing, interpolation to per-frame cameras, and file I/O.

A :class:`CameraPath` is an immutable list of :class:`Keyframe` (pose + vertical FOV + optional
time, hold and ease); every edit returns a new path, so undo/redo is a list of paths.

* ``engine.paths.keyframe``: :class:`Keyframe` and its yaw/pitch/roll,
* ``engine.paths.camera_path``: :class:`CameraPath` (edits, sampling),
* ``engine.paths.timing``: holds, eases and where every frame lies on the path,
* ``engine.paths.interpolation``: the camera between keyframes (linear / smooth),
* ``engine.paths.preset``: :class:`PathPreset`, an official preset as a few editable keyframes,
* ``engine.paths.intrinsics``: :class:`PathIntrinsics`, the seed camera's lens a path samples with,
* ``engine.paths.files``: project JSON, nerfstudio ``camera_path.json``, GEN3C NPZ, and
  :func:`read_path_file` for a file of any of them.
"""
from engine.paths.camera_path import INTERPOLATIONS, MAX_KEYFRAMES, CameraPath
from engine.paths.files import (
    MAX_FILE_BYTES,
    PATH_FILE_FORMATS,
    PATH_FORMAT,
    PATH_VERSION,
    PathFile,
    load_nerfstudio,
    load_npz,
    load_path_json,
    path_from_dict,
    path_to_dict,
    read_path_file,
    save_nerfstudio,
    save_npz,
    save_path_json,
    to_nerfstudio,
)
from engine.paths.intrinsics import PathIntrinsics
from engine.paths.keyframe import Keyframe
from engine.paths.preset import MAX_PRESET_KEYFRAMES, PRESET_KEYFRAMES, PathPreset
from engine.paths.timing import EASES
from engine.validate import MAX_FRAMES

__all__ = [
    "EASES", "INTERPOLATIONS", "MAX_FILE_BYTES", "MAX_FRAMES", "MAX_KEYFRAMES", "MAX_PRESET_KEYFRAMES",
    "PATH_FILE_FORMATS", "PATH_FORMAT", "PATH_VERSION", "PRESET_KEYFRAMES", "CameraPath", "Keyframe", "PathFile",
    "PathIntrinsics", "PathPreset", "load_nerfstudio", "load_npz", "load_path_json",
    "path_from_dict", "path_to_dict", "read_path_file", "save_nerfstudio", "save_npz", "save_path_json",
    "to_nerfstudio",
]
