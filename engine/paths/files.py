"""Camera path files, all validated (a bad file raises :class:`engine.errors.InputError` naming the file;
writes go to a temporary file that is renamed into place, so nothing is half-written):

* project JSON (``save_path_json`` / ``load_path_json``),
* nerfstudio ``camera_path.json`` (``to_nerfstudio`` / ``save_nerfstudio`` / ``load_nerfstudio``),
* GEN3C NPZ with ``w2cs_all`` / ``Ks_all`` (``save_npz`` / ``load_npz``),

and :func:`read_path_file`, the one reader for a file of any of the three formats (the CLI's
``--path`` and the studio's import both use it): the format comes from the content, and every file
is held to the same size cap, :data:`MAX_FILE_BYTES`.
"""
from __future__ import annotations

import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine import validate
from engine.atomic import atomic_write_bytes
from engine.cameras import invert_pose, opencv_c2w_to_opengl, opengl_c2w_to_opencv
from engine.errors import InputError
from engine.json_input import parse_json
from engine.model_defaults import FPS
from engine.paths.camera_path import INTERPOLATIONS, MAX_KEYFRAMES, CameraPath, runs_as_holds
from engine.paths.intrinsics import PathIntrinsics
from engine.paths.keyframe import Keyframe
from engine.paths.preset import PathPreset

MAX_FILE_BYTES = 20 * 1024 * 1024
PATH_FORMAT = "gen3c-studio-path"
# 2: keyframe hold and ease, the preset block; version 1 files (no timing beyond times) still read.
PATH_VERSION = 2
READ_VERSIONS = (1, 2)
# A nerfstudio file's keyframes match our gen3c_studio block's path within this (w2c entries, FOV degrees).
_NS_BLOCK_TOL = 1e-6
# What read_path_file reports as PathFile.format.
PATH_FILE_FORMATS = ("project", "nerfstudio", "npz")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip (an .npz) starts with a file or an end record
_NPY_MAGIC = b"\x93NUMPY"
# Top-level keys only a nerfstudio camera path has (keyframes-only files exist: viewer exports).
_NERFSTUDIO_KEYS = ("camera_path", "keyframes", "render_height", "render_width", "camera_type")


# --------------------------------------------------------------------------------------------
# file helpers


def _read_bytes(file, what: str) -> tuple[bytes, str]:
    """(content, subject) of a user file, held to MAX_FILE_BYTES; ``subject`` ("<what> <name>")
    starts every message about the file. Every failure is a one-line InputError."""
    try:
        p = Path(os.fspath(file))
    except TypeError:
        raise InputError(f"{what} must be a file path, got {type(file).__name__}") from None
    subject = f"{what} {p.name}"
    limit = f"{MAX_FILE_BYTES // (1024 * 1024)} MiB"
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise InputError(f"{subject} cannot be read: {exc.strerror or exc}") from None
    if not p.is_file():
        raise InputError(f"{subject} is not a file")
    if size > MAX_FILE_BYTES:
        raise InputError(f"{subject} is too large ({size / (1024 * 1024):.1f} MiB > {limit})")
    try:
        with open(p, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{subject} cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:  # grew since the stat
        raise InputError(f"{subject} is too large (> {limit})")
    if not data:
        raise InputError(f"{subject} is empty")
    return data, subject


def _parse_json(data: bytes, subject: str):
    """JSON from UTF-8 bytes (a leading byte-order mark is allowed), depth-checked before parsing; NaN /
    Infinity are refused (engine.json_input)."""
    return parse_json(data, subject, max_bytes=MAX_FILE_BYTES)


def _atomic_write(file, data: bytes) -> None:
    """Write bytes to a temporary file next to ``file``, check, sync and rename it into place (engine.atomic)."""
    try:
        p = Path(os.fspath(file))
    except TypeError:
        raise InputError(f"output must be a file path, got {type(file).__name__}") from None
    directory = p.parent if str(p.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(f"folder {str(directory)!r} does not exist")
    atomic_write_bytes(p, data)


def _flat16(v, where: str) -> np.ndarray:
    """16 finite numbers (a flat list, a nested 4x4 list, or the old string form) -> [4,4]."""
    if isinstance(v, list) and len(v) == 4 and all(isinstance(r, list) for r in v):
        v = [x for r in v for x in r]
    if not isinstance(v, list) or len(v) != 16:
        raise InputError(f"{where} must be a list of 16 numbers")
    out = np.empty(16)
    for k, x in enumerate(v):
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise InputError(f"{where} must be a list of 16 numbers (entry {k} is {type(x).__name__})")
        try:
            out[k] = x
        except OverflowError:  # an int beyond float range (parsed JSON refuses those; a dict may hold one)
            raise InputError(f"{where} entry {k} is too large for a float") from None
    if not np.all(np.isfinite(out)):
        raise InputError(f"{where} contains NaN or infinite values")
    return out.reshape(4, 4)


def _get(d: dict, key: str, where: str):
    if key not in d:
        raise InputError(f"{where} is missing {key!r}")
    return d[key]


# --------------------------------------------------------------------------------------------
# project JSON


def _json_objects(entries: list, label: str):
    """Yield (``"<label> <i>"``, entry) for a keyframe list, checking its size and that entries are objects."""
    if len(entries) > MAX_KEYFRAMES:
        raise InputError(f"too many keyframes ({len(entries)} > {MAX_KEYFRAMES})")
    for i, e in enumerate(entries):
        where = f"{label} {i}"
        if not isinstance(e, dict):
            raise InputError(f"{where} must be a JSON object")
        yield where, e


def path_to_dict(path: CameraPath) -> dict:
    """The project-JSON dict of a path (floats kept exact; w2c row-major, 16 numbers; hold in frames;
    ``preset`` only for a path made from a preset)."""
    d = {
        "format": PATH_FORMAT,
        "version": PATH_VERSION,
        "interpolation": path.interpolation,
        "constant_speed": path.constant_speed,
        "keyframes": [
            {"w2c": [float(x) for x in kf.w2c.reshape(-1)], "fov_y_deg": float(kf.fov_y_deg), "time": kf.time,
             "hold": kf.hold, "ease": kf.ease}
            for kf in path.keyframes
        ],
    }
    if path.preset is not None:
        d["preset"] = path.preset.to_dict()
    if path.intrinsics is not None:
        d["intrinsics"] = path.intrinsics.to_dict()
    return d


def path_from_dict(d) -> CameraPath:
    """Inverse of :func:`path_to_dict`, validating every field."""
    if not isinstance(d, dict):
        raise InputError("camera path file must hold a JSON object")
    if d.get("format") != PATH_FORMAT:
        raise InputError(f"camera path file has format {d.get('format')!r}, expected {PATH_FORMAT!r}")
    version = d.get("version")
    if version not in READ_VERSIONS or isinstance(version, bool):
        raise InputError(f"camera path file version {version!r} is not supported "
                         f"(expected {' or '.join(map(str, READ_VERSIONS))})")
    interpolation = d.get("interpolation", "smooth")
    if not isinstance(interpolation, str) or interpolation not in INTERPOLATIONS:
        raise InputError(f"camera path interpolation {interpolation!r} is not one of {', '.join(INTERPOLATIONS)}")
    cs = d.get("constant_speed", False)
    if not isinstance(cs, bool):
        raise InputError(f"camera path constant_speed must be true or false, got {cs!r}")
    kfs_in = _get(d, "keyframes", "camera path file")
    if not isinstance(kfs_in, list):
        raise InputError("camera path keyframes must be a list")
    kfs = []
    for where, e in _json_objects(kfs_in, "keyframe"):
        w2c = _flat16(_get(e, "w2c", where), f"{where} w2c")
        fov = _get(e, "fov_y_deg", where)
        if isinstance(fov, bool) or not isinstance(fov, (int, float)):
            raise InputError(f"{where} fov_y_deg must be a number")
        t = e.get("time")
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float))):
            raise InputError(f"{where} time must be a number or null")
        hold = e.get("hold", 0) if version >= 2 else 0
        if isinstance(hold, bool) or not isinstance(hold, int):
            raise InputError(f"{where} hold must be a whole number of frames")
        ease = e.get("ease", "linear") if version >= 2 else "linear"
        try:
            kfs.append(Keyframe(w2c, fov, t, hold, ease))
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
    preset = None
    if version >= 2 and d.get("preset") is not None:
        preset = PathPreset.from_dict(d["preset"], _flat16)
    intrinsics = None
    if version >= 2 and d.get("intrinsics") is not None:
        intrinsics = PathIntrinsics.from_dict(d["intrinsics"])
    return CameraPath(tuple(kfs), interpolation, cs, preset, intrinsics)


def save_path_json(path: CameraPath, file) -> None:
    """Write a path in the project format (exact: floats are written with repr precision)."""
    if not isinstance(path, CameraPath):
        raise InputError("save_path_json needs a CameraPath")
    _atomic_write(file, json.dumps(path_to_dict(path), indent=1, allow_nan=False).encode("utf-8"))


def load_path_json(file) -> CameraPath:
    """Read a project-format camera path file."""
    data, subject = _read_bytes(file, "camera path file")
    return path_from_dict(_parse_json(data, subject))


# --------------------------------------------------------------------------------------------
# nerfstudio camera_path.json


def _kf_gl_c2w(kf: Keyframe) -> np.ndarray:
    return opencv_c2w_to_opengl(invert_pose(kf.w2c))


def to_nerfstudio(path: CameraPath, num_frames: int, height: int, width: int, fps: float = FPS) -> dict:
    """A nerfstudio ``camera_path.json`` dict for the path rendered at T frames of H x W.

    Matrices are OpenGL camera-to-world (x right, y up, looking down -z) in the same world as ours
    (only the camera axes flip), flattened row-major; ``fov`` is vertical, in degrees; ``seconds``
    is T / fps as ``ns-render`` expects. ``keyframes`` hold the editable keys and ``camera_path``
    the exact per-frame cameras. A ``gen3c_studio`` block keeps interpolation, speed and times (as
    version 1 wrote them) and ``path``, the whole project-format path (holds, eases, preset), which
    :func:`load_nerfstudio` restores exactly while the file's keyframes still match it.
    """
    if not isinstance(path, CameraPath):
        raise InputError("to_nerfstudio needs a CameraPath")
    H, W = validate.image_size(height, width)
    fps = validate.fps(fps)
    w2cs, _, fovs = path.sample_numpy(num_frames, H, W)
    T = w2cs.shape[0]
    aspect = W / H
    gl = opencv_c2w_to_opengl(invert_pose(w2cs))
    seconds = T / fps
    return {
        "camera_type": "perspective",
        "render_height": H,
        "render_width": W,
        "fps": fps,
        "seconds": seconds,
        "is_cycle": False,
        "smoothness_value": 0.0 if path.interpolation == "linear" else 0.5,
        "default_fov": float(path.keyframes[0].fov_y_deg),
        "default_transition_sec": seconds / (len(path) - 1),
        "keyframes": [
            {
                "matrix": [float(x) for x in _kf_gl_c2w(kf).reshape(-1)],
                "fov": float(kf.fov_y_deg),
                "aspect": aspect,
                "override_transition_enabled": False,
                "override_transition_sec": None,
            }
            for kf in path.keyframes
        ],
        "camera_path": [
            {"camera_to_world": [float(x) for x in gl[t].reshape(-1)], "fov": float(fovs[t]), "aspect": aspect}
            for t in range(T)
        ],
        "gen3c_studio": {
            "format": PATH_FORMAT,
            "version": PATH_VERSION,
            "interpolation": path.interpolation,
            "constant_speed": path.constant_speed,
            "times": [kf.time for kf in path.keyframes],
            "path": path_to_dict(path),
        },
    }


def save_nerfstudio(path: CameraPath, file, num_frames: int, height: int, width: int, fps: float = FPS) -> None:
    """Write :func:`to_nerfstudio` to ``file``."""
    d = to_nerfstudio(path, num_frames, height, width, fps)
    _atomic_write(file, json.dumps(d, indent=1, allow_nan=False).encode("utf-8"))


def _ns_matrix(v, where: str) -> np.ndarray:
    """A nerfstudio matrix -> OpenGL c2w [4,4].

    Lists are row-major (viser viewer, ``ns-render``). The old web viewer wrote a JSON string of
    three.js ``Matrix4.elements``, which are column-major. If the assumed order does not give a
    last row (0, 0, 0, 1) but the other order does, the other order is used.
    """
    column_major = False
    if isinstance(v, str):
        if len(v) > 10000:
            raise InputError(f"{where} string is too long")
        try:
            v = parse_json(v, where)
        except InputError:
            raise InputError(f"{where} string is not a JSON list of 16 numbers") from None
        column_major = True
    M = _flat16(v, where)
    if column_major:
        M = M.T
    affine = np.allclose(M[3], [0, 0, 0, 1], atol=1e-6)
    if not affine and np.allclose(M[:, 3], [0, 0, 0, 1], atol=1e-6):
        M = M.T
    return M


def load_nerfstudio(file) -> CameraPath:
    """Read a nerfstudio camera_path.json as a CameraPath.

    A file we wrote (a ``gen3c_studio`` block whose ``path`` matches the file's keyframes) gives
    that path exactly. Otherwise ``keyframes`` are used when present (``matrix`` as a list or the
    old string form), else every ``camera_path`` entry (``camera_to_world``) becomes a keyframe;
    ``fov`` falls back to ``default_fov``. A run of identical consecutive cameras becomes one
    keyframe with a hold: for ``camera_path`` entries one frame per repeat (so sampling the path
    for the file's frame count gives the file's cameras), for ``keyframes`` the run's transition
    time (``override_transition_sec`` of each later keyframe of the run when enabled, else
    ``default_transition_sec``) times ``fps`` (24 when absent). Interpolation comes from our block
    when present, else from ``smoothness_value`` (0 = linear).
    """
    data, subject = _read_bytes(file, "nerfstudio camera path")
    return _nerfstudio_from_dict(_parse_json(data, subject))


def _nerfstudio_from_dict(d) -> CameraPath:
    if not isinstance(d, dict):
        raise InputError("nerfstudio camera path must hold a JSON object")
    default_fov = d.get("default_fov")
    entries = d.get("keyframes")
    key, label = "matrix", "keyframe"
    if not entries:
        entries = d.get("camera_path")
        key, label = "camera_to_world", "camera_path entry"
    if not isinstance(entries, list) or not entries:
        raise InputError("nerfstudio camera path has no keyframes and no camera_path entries")
    kfs = []
    for where, e in _json_objects(entries, f"nerfstudio {label}"):
        gl = _ns_matrix(_get(e, key, where), f"{where} {key}")
        validate.w2c(gl, f"{where} {key}", batch=False)
        fov = e.get("fov", default_fov)
        if fov is None:
            raise InputError(f"{where} is missing 'fov'")
        if isinstance(fov, bool) or not isinstance(fov, (int, float)):
            raise InputError(f"{where} fov must be a number")
        w2c = invert_pose(opengl_c2w_to_opencv(gl))
        try:
            kfs.append(Keyframe(w2c, fov))
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None

    interpolation = "linear" if d.get("smoothness_value") == 0 else "smooth"
    constant_speed = False
    extra = d.get("gen3c_studio")
    if isinstance(extra, dict) and extra.get("format") == PATH_FORMAT and key == "matrix":
        ours = _block_path(extra, kfs)
        if ours is not None:
            return ours
        if extra.get("interpolation") in INTERPOLATIONS:
            interpolation = extra["interpolation"]
        if isinstance(extra.get("constant_speed"), bool):
            constant_speed = extra["constant_speed"]
        times = extra.get("times")
        if isinstance(times, list) and len(times) == len(kfs):
            for i, t in enumerate(times):
                if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float))):
                    raise InputError(f"nerfstudio gen3c_studio time {i} must be a number or null")
            kfs = [kf.with_time(t) for kf, t in zip(kfs, times)]
    if key == "matrix":
        kfs = _keyframe_runs_as_holds(d, kfs)
    else:
        kfs = runs_as_holds(kfs)
    return CameraPath(tuple(kfs), interpolation, constant_speed)


def _block_path(extra: dict, kfs: list) -> CameraPath | None:
    """The path in our gen3c_studio block, if it has one and the file's keyframes still match it."""
    if extra.get("path") is None:
        return None
    try:
        ours = path_from_dict(extra["path"])
    except InputError as exc:
        raise InputError(f"nerfstudio gen3c_studio path: {exc}") from None
    if len(ours) != len(kfs):
        return None
    for a, b in zip(ours.keyframes, kfs):
        if np.abs(a.w2c - b.w2c).max() > _NS_BLOCK_TOL or abs(a.fov_y_deg - b.fov_y_deg) > _NS_BLOCK_TOL:
            return None  # edited elsewhere since we wrote it: the file's keyframes win
    return ours


def _positive(v, default: float) -> float:
    ok = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and v > 0
    return float(v) if ok else default


def _keyframe_runs_as_holds(d: dict, kfs: list) -> list:
    """nerfstudio keyframes with each run of identical consecutive cameras as one held keyframe."""
    entries = d["keyframes"]
    fps = _positive(d.get("fps"), 24.0)
    n = len(kfs)
    default = _positive(d.get("default_transition_sec"), _positive(d.get("seconds"), n - 1.0) / max(n - 1, 1))
    out, held = [], []
    for i, kf in enumerate(kfs):
        if out and np.abs(out[-1].w2c - kf.w2c).max() <= 1e-9 and abs(out[-1].fov_y_deg - kf.fov_y_deg) <= 1e-9:
            e = entries[i]
            sec = default
            if e.get("override_transition_enabled") is True:
                sec = _positive(e.get("override_transition_sec"), default)
            held[-1] += sec
        else:
            out.append(kf)
            held.append(0.0)
    return [kf.with_hold(int(math.floor(h * fps + 0.5))) if h else kf for kf, h in zip(out, held)]


# --------------------------------------------------------------------------------------------
# GEN3C NPZ


def _check_npz_cameras(w2cs, Ks, what: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        W, K = validate.camera_batch(w2cs, Ks, names=("w2cs_all", "Ks_all"), unit="frames")
    except InputError as exc:
        raise InputError(f"{what} {exc}") from None
    if W.shape[0] < 1 or W.shape[0] > MAX_KEYFRAMES:
        raise InputError(f"{what} must hold 1..{MAX_KEYFRAMES} cameras, got {W.shape[0]}")
    return W, K


def _drop_batch(a: np.ndarray, ndim: int) -> np.ndarray:
    return a[0] if a.ndim == ndim + 1 and a.shape[0] == 1 else a


def save_npz(file, w2cs, Ks) -> None:
    """Write cameras as a GEN3C NPZ (``w2cs_all`` [T,4,4], ``Ks_all`` [T,3,3], float32)."""
    def arr(x):
        return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    W = _drop_batch(arr(w2cs), 3)
    K = _drop_batch(arr(Ks), 3)
    _check_npz_cameras(W, K, "NPZ")
    buf = io.BytesIO()
    np.savez(buf, w2cs_all=W.astype(np.float32), Ks_all=K.astype(np.float32))
    _atomic_write(file, buf.getvalue())


def load_npz(file):
    """Read a GEN3C NPZ -> (w2cs [T,4,4], Ks [T,3,3]) torch float32.

    Accepts a leading batch dimension of 1. Loaded with ``allow_pickle=False``: object arrays are
    refused, never executed.
    """
    data, subject = _read_bytes(file, "camera NPZ")
    return _npz_cameras(data, subject)


_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _npy_entry(npz, key: str, subject: str) -> np.ndarray:
    """One array of an NPZ, its header checked before numpy allocates anything: the data must be exactly what
    the header's shape and dtype need, so a header claiming a huge shape is refused, never allocated."""
    try:
        data = npz.zip.read(f"{key}.npy")
    except Exception:  # zipfile reports a damaged entry as BadZipFile, zlib.error, EOFError, ...
        raise InputError(f"{subject} entry {key!r} is unreadable") from None
    fp = io.BytesIO(data)
    try:
        shape, _, dtype = _NPY_HEADER_READERS[np.lib.format.read_magic(fp)](fp)
    except Exception:  # numpy reports a bad header as ValueError, KeyError on an unknown version, ...
        raise InputError(f"{subject} entry {key!r} is not a valid .npy array") from None
    if dtype.hasobject:
        raise InputError(f"{subject} entry {key!r} is a pickled object array (refused)")
    if dtype.kind not in "fiu":
        raise InputError(f"{subject} entry {key!r} has non-numeric dtype {dtype}")
    needed, held = math.prod(shape) * dtype.itemsize, len(data) - fp.tell()
    if needed != held:
        raise InputError(f"{subject} entry {key!r} claims shape {shape} ({needed:,} bytes) but holds {held:,} bytes")
    fp.seek(0)
    try:
        return np.load(fp, allow_pickle=False)
    except Exception:  # the header was checked; anything left is a damaged body
        raise InputError(f"{subject} entry {key!r} is unreadable") from None


def _npz_cameras(data: bytes, subject: str):
    try:
        npz = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception:
        raise InputError(f"{subject} is not a valid .npz archive") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        npz_close = getattr(npz, "close", None)
        if npz_close:
            npz_close()
        raise InputError(f"{subject} is a single array, not an archive with w2cs_all and Ks_all")
    with npz:
        out = {}
        for key in ("w2cs_all", "Ks_all"):
            if key not in npz.files:
                raise InputError(f"{subject} is missing {key!r} (has {', '.join(npz.files) or 'nothing'})")
            try:
                info = npz.zip.getinfo(f"{key}.npy")
            except KeyError:
                raise InputError(f"{subject} entry {key!r} is unreadable") from None
            if info.file_size > MAX_FILE_BYTES:
                raise InputError(f"{subject} entry {key!r} is too large")
            out[key] = _drop_batch(_npy_entry(npz, key, subject), 3)
    _check_npz_cameras(out["w2cs_all"], out["Ks_all"], subject)
    return (torch.from_numpy(out["w2cs_all"].astype(np.float32)),
            torch.from_numpy(out["Ks_all"].astype(np.float32)))


# --------------------------------------------------------------------------------------------
# any path file


@dataclass(frozen=True)
class PathFile:
    """What :func:`read_path_file` found: the path, the file's format (one of ``PATH_FILE_FORMATS``)
    and, for an NPZ, its exact cameras (``(w2cs [T,4,4], Ks [T,3,3])`` torch float32, K as stored;
    ``path`` is every camera as a keyframe, K reduced to a vertical FOV)."""

    path: CameraPath
    format: str
    cameras: tuple[torch.Tensor, torch.Tensor] | None = None


def read_path_file(file, height: int) -> PathFile:
    """Read a camera path file of any supported format, told apart by its content, not its name.

    A zip archive is a GEN3C NPZ; JSON with ``"format": "gen3c-studio-path"`` is a project file;
    other JSON with one of nerfstudio's top-level keys (``camera_path``, ``keyframes``, ``render_height``,
    ...) is a nerfstudio ``camera_path.json``. ``height`` is the image height the NPZ intrinsics are given for. Every
    problem (missing, empty, over ``MAX_FILE_BYTES``, not UTF-8, not JSON, unknown or invalid
    content, pickled NPZ arrays) is an InputError whose message starts with "camera path <name>".
    """
    validate.image_size(height, 1)
    data, subject = _read_bytes(file, "camera path")
    if data[:4] in _ZIP_MAGIC or data.startswith(_NPY_MAGIC):
        w2cs, Ks = _npz_cameras(data, subject)
        return PathFile(_in_file(subject, CameraPath.from_cameras, w2cs, Ks, height), "npz", (w2cs, Ks))
    d = _parse_json(data, subject)
    if not isinstance(d, dict):
        kind = {list: "list", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(d), "null")
        raise InputError(f"{subject} holds a JSON {kind}, not a camera path object")
    if "format" in d:
        if d["format"] != PATH_FORMAT:
            shown = repr(d["format"])
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise InputError(f"{subject} has format {shown}, expected {PATH_FORMAT!r} "
                             "(or a nerfstudio camera_path.json)")
        return PathFile(_in_file(subject, path_from_dict, d), "project")
    if any(key in d for key in _NERFSTUDIO_KEYS):
        return PathFile(_in_file(subject, _nerfstudio_from_dict, d), "nerfstudio")
    raise InputError(f"{subject} is not a camera path (expected a GEN3C Studio path with \"format\": "
                     f"\"{PATH_FORMAT}\", a nerfstudio camera_path.json or a GEN3C .npz)")


def _in_file(subject: str, build, *args):
    """``build(*args)`` with its InputError messages prefixed by the file's subject."""
    try:
        return build(*args)
    except InputError as exc:
        raise InputError(f"{subject}: {exc}") from None
