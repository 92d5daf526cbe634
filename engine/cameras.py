"""Camera conventions, look-at, intrinsics and the official GEN3C trajectory presets.

Conventions (see engine/API.md): OpenCV camera axes (x right, y down, z forward), world-to-camera 4x4
poses, K in pixels for the stated (H, W). The world frame of a single-image scene is the seed camera,
so world +y points down and world "up" is (0, -1, 0). OpenGL / nerfstudio axes appear only at file I/O.

All functions accept numpy arrays, torch tensors or nested lists. The camera rules (rigid w2c, pinhole
K, FOV, image size) are :mod:`engine.validate`'s; failures raise :class:`engine.errors.InputError` with a
one-line message.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from engine import validate
from engine.errors import InputError

PRESETS = ("left", "right", "up", "down", "zoom_in", "zoom_out", "clockwise", "counterclockwise")
ROTATION_MODES = ("center_facing", "no_rotation", "trajectory_aligned")

# Linear presets: (axis index, sign) of the camera displacement in the initial camera frame.
_LINEAR_AXES = {
    "left": (0, -1.0),
    "right": (0, 1.0),
    "up": (1, -1.0),
    "down": (1, 1.0),
    "zoom_in": (2, 1.0),
    "zoom_out": (2, -1.0),
}


def _to_torch(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def invert_pose(w2c):
    """Inverse of a rigid pose ([4,4] or [...,4,4]) using R^T: w2c <-> c2w. Keeps the input type."""
    if isinstance(w2c, torch.Tensor):
        R = w2c[..., :3, :3]
        t = w2c[..., :3, 3:]
        out = torch.zeros_like(w2c)
        out[..., :3, :3] = R.transpose(-1, -2)
        out[..., :3, 3:] = -R.transpose(-1, -2) @ t
        out[..., 3, 3] = 1
        return out
    M = np.asarray(w2c, dtype=np.float64)
    R = M[..., :3, :3]
    out = np.zeros_like(M)
    out[..., :3, :3] = np.swapaxes(R, -1, -2)
    out[..., :3, 3] = -np.einsum("...ji,...j->...i", R, M[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def camera_center(w2c):
    """Camera centre in world coordinates, -R^T t, for a [4,4] or [...,4,4] w2c (keeps the type)."""
    if isinstance(w2c, torch.Tensor):
        R = w2c[..., :3, :3]
        return -(R.transpose(-1, -2) @ w2c[..., :3, 3:]).squeeze(-1)
    M = np.asarray(w2c, dtype=np.float64)
    return -np.einsum("...ji,...j->...i", M[..., :3, :3], M[..., :3, 3])


def look_at_w2c(position, target, up=(0.0, -1.0, 0.0)) -> np.ndarray:
    """A correct OpenCV look-at pose: camera centre at ``position``, +z toward ``target``.

    ``up`` is the world up direction; the image's up (camera -y) is aligned with it (``up`` need not be
    orthogonal to the view). The default (0, -1, 0) is "up" in the seed camera's world (whose +y points
    down). Returns float64 [4,4]. Raises InputError when position == target or the view direction is
    parallel to ``up``.
    """
    p = validate.finite_vec3(position, "look-at position")
    q = validate.finite_vec3(target, "look-at target")
    u = validate.finite_vec3(up, "look-at up")
    f = q - p
    n = np.linalg.norm(f)
    if n < 1e-12:
        raise InputError("look-at target coincides with the camera position")
    f = f / n
    if np.linalg.norm(u) < 1e-12:
        raise InputError("look-at up vector is zero")
    x = np.cross(f, u / np.linalg.norm(u))
    nx = np.linalg.norm(x)
    if nx < 1e-9:
        raise InputError("look-at view direction is parallel to the up vector")
    x = x / nx
    y = np.cross(f, x)
    w2c = np.eye(4)
    w2c[:3, :3] = np.stack([x, y, f])
    w2c[:3, 3] = -w2c[:3, :3] @ p
    return w2c


def _official_look_at(p: np.ndarray, target: np.ndarray, corrected: bool) -> np.ndarray:
    """GEN3C's look_at_matrix: :func:`look_at_w2c` with world up (0, -1, 0) in our axes (its rotation
    r = (0, 1, 0) x f, u = f x r is the same, value for value) and, unless corrected, translation -p
    instead of -R p (the official quirk). A camera on its look-at point has no pose: NaN rows, which the
    preset callers refuse with a message naming the preset."""
    if np.linalg.norm(np.asarray(target, np.float64) - p) < 1e-12:
        return np.full((4, 4), np.nan)
    M = look_at_w2c(p, target)
    if not corrected:
        M[:3, 3] = -p
    return M


def _check_preset_kind(kind: str, camera_rotation: str) -> None:
    if kind not in PRESETS:
        raise InputError(f"unknown trajectory {kind!r}; valid: {', '.join(PRESETS)}")
    if camera_rotation not in ROTATION_MODES:
        raise InputError(f"unknown camera rotation {camera_rotation!r}; valid: {', '.join(ROTATION_MODES)}")


def _check_preset_numbers(num_frames, movement_distance, center_depth) -> tuple[int, float, float]:
    T = validate.frame_count(num_frames, "num_frames")  # before any camera is built
    d = validate.movement_distance(movement_distance, "movement_distance")
    c = validate.finite_float(center_depth, "center_depth")
    if c <= 0:
        raise InputError(f"center_depth must be a positive finite number, got {center_depth!r}")
    return T, d, c


def _preset_motion(kind: str, i: np.ndarray, T: int, d: float, c: float, camera_rotation: str,
                   corrected: bool) -> np.ndarray:
    """The official per-frame matrices M_i (float64 [N,4,4]) at frame positions i of a T-frame preset."""
    if len(i) == 0:
        return np.zeros((0, 4, 4))
    pos = np.zeros((len(i), 3))
    if kind in _LINEAR_AXES:
        axis, sign = _LINEAR_AXES[kind]
        denom = (T - 1) if corrected else T
        pos[:, axis] = sign * i * d * c / denom
    else:
        s = 1.0 if kind == "clockwise" else -1.0
        theta = 2.0 * math.pi * i / (T - 1)
        pos[:, 0] = d * (np.cos(theta) - 1.0) * s * c
        pos[:, 1] = d * np.sin(theta) * c
    base = np.array([0.0, 0.0, c])
    factor = {"center_facing": 0.0, "no_rotation": 1.0, "trajectory_aligned": 2.0}[camera_rotation]
    return np.stack([_official_look_at(p, base + factor * p, corrected) for p in pos]).reshape(-1, 4, 4)


def preset_trajectory(
    kind: str,
    initial_w2c,
    K,
    num_frames: int,
    movement_distance: float,
    camera_rotation: str,
    center_depth: float = 1.0,
    *,
    corrected: bool = False,
):
    """Cameras of an official GEN3C trajectory preset -> (w2cs [T,4,4], Ks [T,3,3]) torch float32.

    Default (``corrected=False``) reproduces ``camera_utils.generate_camera_trajectory`` of the
    official code, quirks included:

    * Linear presets (left/right/up/down/zoom_in/zoom_out) move along -x/+x/-y/+y/+z/-z of the
      initial camera by ``i * d * c / T`` for frame i (d = movement_distance, c = center_depth), so
      the last frame sits at ``d * c * (T-1)/T``, not at ``d * c``.
    * Spiral presets (clockwise / counterclockwise): theta_i = 2*pi*i/(T-1), position
      ``(s * d * (cos theta - 1) * c, d * sin theta * c, 0)`` with s = +1 clockwise, -1
      counterclockwise: one full circle through the start, the last pose equals the first.
    * The look-at point is ``(0, 0, c)``; center_facing aims there, no_rotation at ``a + p`` (no
      turn), trajectory_aligned at ``a + 2p``.
    * The look-at matrix uses world up (0, 1, 0) (OpenCV y down, so this is correct), but its
      translation is ``-p`` instead of ``-R p``: the true camera centre is ``R^T p`` when the
      camera turns (center_facing / trajectory_aligned).
    * Composition: ``w2c_i = M_i @ W0``; ``initial_w2c`` may be [4,4] or per-frame [T,4,4].
    * K is repeated for every frame (a [T,3,3] K is passed through).

    ``corrected=True`` gives what the names promise: translation ``-R p`` (camera centre at p)
    and linear offsets ``i * d * c / (T-1)``, reaching ``d * c`` at the last frame. Spirals already
    close their circle, so only the translation changes for them.
    """
    _check_preset_kind(kind, camera_rotation)
    T, d, c = _check_preset_numbers(num_frames, movement_distance, center_depth)
    W0 = validate.w2c(initial_w2c, "initial_w2c")
    if W0.ndim == 3 and W0.shape[0] != T:
        raise InputError(f"initial_w2c has {W0.shape[0]} frames, expected {T}")
    K64 = validate.intrinsics(K, "K")
    if K64.ndim == 3 and K64.shape[0] != T:
        raise InputError(f"K has {K64.shape[0]} frames, expected {T}")

    M = _preset_motion(kind, np.arange(T, dtype=np.float64), T, d, c, camera_rotation, bool(corrected))
    w2cs = M @ W0  # broadcasts [T,4,4] @ [4,4] or [T,4,4]
    Ks = np.broadcast_to(K64, (T, 3, 3)) if K64.ndim == 2 else K64
    return _to_torch(w2cs), _to_torch(Ks)


def preset_poses(
    kind: str,
    frames,
    num_frames: int,
    movement_distance: float,
    camera_rotation: str,
    center_depth: float = 1.0,
    *,
    initial_w2c=None,
    corrected: bool = False,
) -> np.ndarray:
    """World-to-camera poses (float64 [N,4,4]) of an official preset at frame positions ``frames``.

    The same formula as :func:`preset_trajectory` (quirks included unless ``corrected``), evaluated
    at any frame positions of a ``num_frames`` trajectory, whole or fractional (the formula is
    continuous in the frame index): ``frames = 0..T-1`` gives ``preset_trajectory``'s w2cs in
    float64. ``initial_w2c``: one [4,4] pose (default identity). A camera that lands on its
    look-at point (a zoom past it) has no pose: NaN rows, which callers must refuse.
    """
    _check_preset_kind(kind, camera_rotation)
    T, d, c = _check_preset_numbers(num_frames, movement_distance, center_depth)
    W0 = np.eye(4) if initial_w2c is None else validate.w2c(initial_w2c, "initial_w2c")
    if W0.ndim != 2:
        raise InputError("preset_poses takes a single [4,4] initial_w2c")
    i = np.asarray(frames, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(i)):
        raise InputError("preset frame positions must be finite")
    return _preset_motion(kind, i, T, d, c, camera_rotation, bool(corrected)) @ W0


def intrinsics_from_fov(fov_y_deg: float, height: int, width: int) -> np.ndarray:
    """Square-pixel K for a vertical FOV (degrees) at (H, W); principal point (W/2, H/2).

    The principal point follows the official convention (704x1280 -> cx=640, cy=352) rather than
    the pixel-centre ((W-1)/2, (H-1)/2). Returns float64 [3,3].
    """
    fov = validate.fov_deg(fov_y_deg)
    H, W = validate.image_size(height, width)
    f = (H / 2.0) / math.tan(math.radians(fov) / 2.0)
    return np.array([[f, 0.0, W / 2.0], [0.0, f, H / 2.0], [0.0, 0.0, 1.0]])


def fov_y_from_intrinsics(K, height: int) -> float:
    """Vertical FOV in degrees of K at image height H: 2*atan((H/2)/fy)."""
    K = validate.intrinsics(K, batch=False)
    H, _ = validate.image_size(height, 1)
    return math.degrees(2.0 * math.atan((H / 2.0) / K[1, 1]))


def scale_intrinsics(K, sy: float, sx: float):
    """K of the same camera after its image is resized by (sy, sx) (new size = s x old size).

    Pixel centres sit at integer coordinates (engine-wide) and a resize by s (PIL, torch with
    ``align_corners=False``) maps a pixel coordinate x to s (x + 0.5) - 0.5, so rows 0 and 1 of K are
    scaled and the principal point follows the same map: cx' = sx (cx + 0.5) - 0.5, cy' likewise. K has
    last row (0, 0, 1); [..., 3, 3] numpy (float64 out) or torch (same dtype out).
    """
    for name, s in (("sy", sy), ("sx", sx)):
        if not isinstance(s, (int, float)) or isinstance(s, bool) or not math.isfinite(s) or s <= 0:
            raise InputError(f"intrinsics scale {name} must be a positive finite number, got {s!r}")
    if isinstance(K, torch.Tensor):
        out = K.clone()
    else:
        out = np.array(K, dtype=np.float64)
    out[..., 0, :] = out[..., 0, :] * sx
    out[..., 1, :] = out[..., 1, :] * sy
    out[..., 0, 2] += 0.5 * sx - 0.5
    out[..., 1, 2] += 0.5 * sy - 0.5
    return out


_GL_FLIP = np.diag([1.0, -1.0, -1.0, 1.0])


def opencv_c2w_to_opengl(c2w):
    """OpenCV camera-to-world -> OpenGL camera-to-world (camera y and z axes negated; same world)."""
    if isinstance(c2w, torch.Tensor):
        return c2w @ torch.as_tensor(_GL_FLIP, dtype=c2w.dtype, device=c2w.device)
    return np.asarray(c2w, dtype=np.float64) @ _GL_FLIP


def opengl_c2w_to_opencv(c2w):
    """OpenGL camera-to-world -> OpenCV camera-to-world (the flip is its own inverse)."""
    return opencv_c2w_to_opengl(c2w)
