"""The rules for user input, written once.

Every entry point (the CLI commands, the studio handlers, ``Gen3CPipeline.generate``) and every public
engine function a caller may use directly checks its values with these functions, so a value is accepted
or refused the same way everywhere. Each check returns the value in its normal form (``float``, ``int``,
float64 numpy array, ...) or raises :class:`engine.errors.InputError` with a one-line message that starts
with the name it was given ("--steps", "keyframe w2c", ...). Internal calls that pass values an entry
point already checked do not check them again.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from engine.errors import InputError
from engine.model_defaults import CHUNK_FRAMES, MODEL_HEIGHT, MODEL_WIDTH

# ---------------------------------------------------------------------------------------------- limits
# A rigid w2c: max |R^T R - I| <= RIGID_TOL and det R > 0 (so det R is +1 within 1.5 * RIGID_TOL), last row
# (0, 0, 0, 1) within ROW_TOL. Official float32 poses are off by ~1e-7; hand-edited files with 6 decimals
# stay well inside 1e-4. K's last row (0, 0, 1) is held to ROW_TOL too.
RIGID_TOL = 1e-4
ROW_TOL = 1e-6
# Camera centres are refused further than this from the world origin (the seed camera). The cache keeps
# depths up to 1e4 (engine.cache3d.UPDATE_MAX_DEPTH), so a camera ten times further away sees none of it,
# and a float32 pose there resolves only ~1e-2 world units.
MAX_CAMERA_DISTANCE = 1e5
# Movement distance of the official presets, in units of the centre depth: the camera moves up to d times
# the scene depth; 10 depths away the cache shows nothing of the scene.
MAX_MOVEMENT_DISTANCE = 10.0

# Frame counts. Per output frame a run holds, at the model resolution (704 x 1280 = 901,120 pixels):
#   generate: the video (uint8 RGB, 3 B/px), the buffer-0 warp it was given (uint8 RGB, 3 B/px) and its
#             coverage mask (bool, 1 B/px);
#   preview:  the warped frames (uint8 RGB, 3 B/px) and the coverage masks (float32, 4 B/px);
# 7 bytes a pixel either way, 6.3 MB a frame. The cameras add ~0.3 kB a frame (w2c and K in float64 and
# float32), and the warps of one chunk (121 frames x 2 buffers x 4 channels x float32 x 901,120 px =
# 3.5 GB) do not grow with the frame count. FRAME_MEMORY_BUDGET of per-frame data gives
# 16 GiB / 6.3 MB = 2,723 frames at the model size, rounded down to the chunk grid (120 N + 1):
# MAX_FRAMES = 2,641 frames (22 chunks, 110 s at 24 fps). At other sizes the same budget applies
# (frame_count with height and width).
FRAME_MEMORY_BUDGET = 16 * 1024**3
BYTES_PER_FRAME_PIXEL = 7
MAX_FRAMES = ((FRAME_MEMORY_BUDGET // (BYTES_PER_FRAME_PIXEL * MODEL_HEIGHT * MODEL_WIDTH) - 1)
              // (CHUNK_FRAMES - 1)) * (CHUNK_FRAMES - 1) + 1
# Frame rate of written videos (libx264 takes up to 240 in every profile level we write).
MAX_FPS = 240.0

# Sampling. The official default is 35 steps; the Karras EDM schedule gains nothing visible past ~100, and
# each step is two passes of the 7B DiT, so 200 bounds the length of one run.
MAX_STEPS = 200
# Guidance g in F = F_c + g (F_c - F_u): g < 0 pushes toward the unconditioned branch; past ~30 the
# prediction is dominated by the difference term and saturates.
MAX_GUIDANCE = 30.0
# numpy's RandomState (the official augmentation-noise draw) takes seeds below 2^32; torch.Generator takes
# any of them.
SEED_LIMIT = 2**32
# Prompts: T5 reads 512 tokens; 4000 characters is far past that and bounds what a request carries.
MAX_PROMPT_CHARS = 4000


# ---------------------------------------------------------------------------------------------- numbers

def finite_float(value, name: str) -> float:
    """A finite number (not a bool; numeric strings are read) as float."""
    if isinstance(value, bool):
        raise InputError(f"{name} must be a number, got {value!r}")
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{name} must be a number, got {_short(value)}") from None
    if not math.isfinite(f):
        raise InputError(f"{name} must be finite, got {value!r}")
    return f


def integer(value, name: str, low: int | None = None, high: int | None = None) -> int:
    """An integer (int, numpy integer or an integral float; not a bool) in [low, high] as int."""
    if isinstance(value, bool):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        value = int(value)
    if not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be an integer, got {_short(value)}")
    n = int(value)
    if (low is not None and n < low) or (high is not None and n > high):
        bounds = [f"at least {low}"] if low is not None else []
        bounds += [f"at most {high}"] if high is not None else []
        raise InputError(f"{name} must be {' and '.join(bounds)}, got {n}")
    return n


def _float64(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numeric, got {type(x).__name__}") from None
    except OverflowError:  # a Python int beyond float range
        raise InputError(f"{name} holds a number too large for a float") from None


def finite_vec3(value, name: str) -> np.ndarray:
    """Three finite numbers (list, tuple, numpy or torch) as float64 [3]."""
    try:
        a = _float64(value, name).reshape(-1)
    except InputError:
        raise InputError(f"{name} must be three numbers (x, y, z), got {_short(value)}") from None
    if a.shape != (3,):
        raise InputError(f"{name} must be three numbers (x, y, z), got {a.size}")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name} must be three finite numbers")
    return a


def fov_deg(value, name: str = "fov") -> float:
    """A field of view in degrees, strictly inside (1, 179)."""
    if isinstance(value, bool):
        raise InputError(f"{name} must be a number of degrees")
    try:
        fov = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{name} must be a number of degrees, got {_short(value)}") from None
    if not math.isfinite(fov) or not 1.0 < fov < 179.0:
        raise InputError(f"{name} must be in (1, 179) degrees, got {value!r}")
    return fov


def image_size(height, width, *, low: int = 1, high: int | None = None, name: str = "image") -> tuple[int, int]:
    """(height, width) as ints, each an integer in [low, high] (a size in pixels)."""
    out = []
    for side, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise InputError(f"{name} {side} must be a positive integer, got {_short(v)}")
        if v < low or (high is not None and v > high):
            span = f"between {low} and {high}" if high is not None else ("a positive integer" if low == 1
                                                                        else f"at least {low}")
            raise InputError(f"{name} {side} must be {span}, got {v!r}")
        out.append(int(v))
    return out[0], out[1]


def fps(value, name: str = "fps") -> float:
    """A frame rate in (0, MAX_FPS]."""
    f = finite_float(value, name)
    if not 0 < f <= MAX_FPS:
        raise InputError(f"{name} must be in (0, {MAX_FPS:g}], got {value!r}")
    return f


def frame_count(value, name: str = "num_frames", *, height: int | None = None, width: int | None = None) -> int:
    """A frame count in 2..MAX_FRAMES; with (height, width), also within FRAME_MEMORY_BUDGET at that size.

    Cheap: callers check it before any camera is built.
    """
    n = integer(value, name, 2, MAX_FRAMES)
    if height is not None and width is not None:
        per_frame = BYTES_PER_FRAME_PIXEL * int(height) * int(width)
        most = FRAME_MEMORY_BUDGET // per_frame
        if n > most:
            raise InputError(f"{name} {n} at {height}x{width} would hold {n * per_frame / 2**30:.1f} GiB of "
                             f"frames (limit {FRAME_MEMORY_BUDGET / 2**30:g} GiB): at most {most} at that size")
    return n


def movement_distance(value, name: str = "movement distance") -> float:
    """A preset's movement distance (units of the centre depth): finite, non-zero, |d| <= MAX_MOVEMENT_DISTANCE."""
    d = finite_float(value, name)
    if not 0 < abs(d) <= MAX_MOVEMENT_DISTANCE:
        raise InputError(f"{name} must be in (0, {MAX_MOVEMENT_DISTANCE:g}] in size, got {value!r}")
    return d


def one_of(value, choices, name: str):
    """``value`` when it is one of ``choices`` (strings; compared exactly)."""
    if not isinstance(value, str) or value not in choices:
        raise InputError(f"{name} must be one of {', '.join(map(str, choices))}, got {_short(value)}")
    return value


# ---------------------------------------------------------------------------------------------- images

def uint8_image(image, name: str = "image", *, frames: bool = False) -> np.ndarray:
    """A uint8 RGB image [H,W,3] (``frames=True``: a video [T,H,W,3]) with no empty side, as numpy."""
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else image
    ndim = 4 if frames else 3
    layout = "[T,H,W,3]" if frames else "[H,W,3]"
    if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.ndim != ndim or arr.shape[-1] != 3:
        got = f"{arr.dtype} {tuple(arr.shape)}" if isinstance(arr, np.ndarray) else type(arr).__name__
        raise InputError(f"{name}: expected a uint8 array {layout}, got {got}")
    if min(arr.shape[:-1]) == 0:
        raise InputError(f"{name}: empty {'video' if frames else 'image'} {tuple(arr.shape)}")
    return arr


# ---------------------------------------------------------------------------------------------- cameras

def _matrices(x, size: int, name: str, batch: bool | None) -> np.ndarray:
    """x as float64 [size,size] / [T,size,size] (which ones ``batch`` allows), finite."""
    M = _float64(x, name)
    allowed = {None: (2, 3), False: (2,), True: (3,)}[batch]
    if M.ndim not in allowed or M.shape[-2:] != (size, size):
        if batch is False:
            raise InputError(f"{name} must be a {size}x{size} matrix, got shape {list(M.shape)}")
        expected = f"[T,{size},{size}]" if batch else f"[{size},{size}] or [T,{size},{size}]"
        raise InputError(f"{name} must have shape {expected}, got {list(M.shape)}")
    if not np.all(np.isfinite(M)):
        raise InputError(f"{name} contains NaN or infinite values")
    return M


def _invertible(Ms: np.ndarray, name: str) -> None:
    if np.any(np.abs(np.linalg.det(Ms)) < 1e-12):
        raise InputError(f"{name} is singular (not invertible)")


def w2c(pose, name: str = "w2c", *, batch: bool | None = None) -> np.ndarray:
    """A rigid world-to-camera pose [4,4] (or a stack [T,4,4]) as float64 numpy.

    Finite and invertible; last row (0, 0, 0, 1) within ROW_TOL; rotation block orthonormal within RIGID_TOL
    with det +1 (no scale, shear, reflection or projection); camera centre within MAX_CAMERA_DISTANCE of the
    origin. ``batch``: None accepts both shapes, False only [4,4], True only [T,4,4].
    """
    M = _matrices(pose, 4, name, batch)
    Ms = M.reshape(-1, 4, 4)
    if len(Ms) == 0:
        return M
    _invertible(Ms, name)
    if np.abs(Ms[:, 3] - [0.0, 0.0, 0.0, 1.0]).max() > ROW_TOL:
        raise InputError(f"{name} last row must be (0, 0, 0, 1): a rigid pose has no projective part")
    R = Ms[:, :3, :3]
    err = np.abs(np.einsum("tji,tjk->tik", R, R) - np.eye(3)).max()
    if err > RIGID_TOL:
        raise InputError(f"{name} is not a rigid transform (rotation block not orthonormal, error {err:.2g})")
    if np.any(np.linalg.det(R) < 0):
        raise InputError(f"{name} is not a rigid transform (rotation block is a reflection)")
    distance = np.linalg.norm(Ms[:, :3, 3], axis=1).max()  # = |camera centre| for a rigid pose
    if distance > MAX_CAMERA_DISTANCE:
        raise InputError(f"{name} puts the camera {distance:.3g} units from the origin "
                         f"(at most {MAX_CAMERA_DISTANCE:g})")
    return M


def intrinsics(K, name: str = "K", *, batch: bool | None = None) -> np.ndarray:
    """A pinhole intrinsic matrix [3,3] (or a stack [T,3,3]) in pixels as float64 numpy.

    Finite (so the principal point is), positive focal lengths fx = K[0,0] and fy = K[1,1], last row
    (0, 0, 1) within ROW_TOL, invertible. ``batch`` as for :func:`w2c`.
    """
    M = _matrices(K, 3, name, batch)
    Ks = M.reshape(-1, 3, 3)
    if len(Ks) == 0:
        return M
    focal = Ks[:, [0, 1], [0, 1]]
    if np.any(focal == 0):
        raise InputError(f"{name} is singular (not invertible): focal lengths fx, fy must be positive, got 0")
    if np.any(focal < 0):
        raise InputError(f"{name} focal lengths must be positive, got fx {focal[:, 0].min():.4g}, "
                         f"fy {focal[:, 1].min():.4g}")
    if np.abs(Ks[:, 2] - [0.0, 0.0, 1.0]).max() > ROW_TOL:
        raise InputError(f"{name} last row must be (0, 0, 1)")
    _invertible(Ks, name)
    return M


def camera_batch(w2cs, Ks, *, names: tuple[str, str] = ("w2cs", "Ks"), num_frames: int | None = None,
                 unit: str = "cameras") -> tuple[np.ndarray, np.ndarray]:
    """Per-frame cameras: rigid w2cs [T,4,4] and intrinsics Ks [T,3,3] of the same length, as float64 numpy.

    Each matrix follows :func:`w2c` and :func:`intrinsics`. ``num_frames``: T must equal it. ``unit`` names
    what is counted in the length message ("cameras", "frames").
    """
    w_name, k_name = names
    W = w2c(w2cs, w_name, batch=True)
    K = intrinsics(Ks, k_name, batch=True)
    if len(W) != len(K):
        raise InputError(f"{w_name} and {k_name} disagree in length: {w_name} has {len(W)} {unit} but "
                         f"{k_name} has {len(K)}")
    if num_frames is not None and len(W) != num_frames:
        raise InputError(f"{len(W)} cameras given for {num_frames} frames")
    return W, K


# ---------------------------------------------------------------------------------------------- sampling

def num_steps(value, name: str = "num_steps") -> int:
    """Denoising steps: an integer in 1..MAX_STEPS."""
    return integer(value, name, 1, MAX_STEPS)


def guidance(value, name: str = "guidance") -> float:
    """CFG guidance g in [0, MAX_GUIDANCE]."""
    g = finite_float(value, name)
    if not 0.0 <= g <= MAX_GUIDANCE:
        raise InputError(f"{name} must be in [0, {MAX_GUIDANCE:g}], got {value!r}")
    return g


def cfg_policy(value, name: str = "cfg policy") -> str:
    """One of ``engine.sampler.CFG_POLICIES``."""
    from engine.sampler import CFG_POLICIES

    return one_of(value, CFG_POLICIES, name)


def seed(value, name: str = "seed") -> int:
    """A random seed: an integer in [0, SEED_LIMIT)."""
    return integer(value, name, 0, SEED_LIMIT - 1)


def prompt(value, name: str = "prompt") -> str:
    """A text prompt: a string of at most MAX_PROMPT_CHARS characters (None is the empty prompt)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string, got {type(value).__name__}")
    if len(value) > MAX_PROMPT_CHARS:
        raise InputError(f"{name} is limited to {MAX_PROMPT_CHARS} characters, got {len(value)}")
    return value


@dataclass(frozen=True)
class SamplingOptions:
    num_steps: int
    guidance: float
    cfg: str
    seed: int


def sampling_options(steps, scale, cfg, random_seed, /, *, names: dict | None = None) -> SamplingOptions:
    """Steps, guidance, CFG policy and seed checked together; ``names`` maps "num_steps", "guidance",
    "cfg" and "seed" to the names the caller's user knows (e.g. "--steps")."""
    names = {"num_steps": "num_steps", "guidance": "guidance", "cfg": "cfg policy", "seed": "seed",
             **(names or {})}
    return SamplingOptions(num_steps(steps, names["num_steps"]), guidance(scale, names["guidance"]),
                           cfg_policy(cfg, names["cfg"]), seed(random_seed, names["seed"]))


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
