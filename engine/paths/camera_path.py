"""A keyframed :class:`CameraPath`: edits, keyframe timing, interpolation and sampling to per-frame cameras.

``CameraPath.sample`` turns a path into the exact per-frame cameras (w2cs [T,4,4], Ks [T,3,3]) that
both the studio preview and the generator use. Timing (holds, eases, times, constant speed) is laid
out by ``engine.paths.timing``, the camera between keyframes by ``engine.paths.interpolation`` and
preset-backed segments by ``engine.paths.preset``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from engine import validate
from engine.cameras import camera_center, fov_y_from_intrinsics, intrinsics_from_fov
from engine.errors import InputError
from engine.paths.interpolation import INTERPOLATIONS, Spline
from engine.paths.intrinsics import PathIntrinsics
from engine.paths.keyframe import Keyframe
from engine.paths.preset import PRESET_KEYFRAMES, PathPreset, same_camera
from engine.paths.timing import FramePlan, plan_frames
from engine.validate import MAX_FRAMES

MAX_KEYFRAMES = 10000
# Consecutive cameras of a file this close (w2c entries, FOV degrees) are one held keyframe.
_HOLD_TOL = 1e-9


def _needs_two(n: int) -> InputError:
    return InputError(f"a path needs at least two keyframes to preview motion or generate (it has {n}): "
                      "add a keyframe")


@dataclass(frozen=True)
class CameraPath:
    """An immutable keyframed camera path.

    ``interpolation``: "linear" (straight segments, slerp, linear FOV) or "smooth" (centripetal
    Catmull-Rom positions, Catmull-Rom quaternion spline renormalised, Catmull-Rom FOV; at the two
    ends a phantom key is reflected through the end key, i.e. the end tangent points at the
    neighbour). Quaternions are kept in one hemisphere so turns take the short way. Two
    consecutive keyframes with the same camera (a duplicate) make a segment where the camera
    stays still.
    ``constant_speed``: frames are spaced by distance travelled, so the camera moves at a steady
    speed between its anchors: the two ends and every keyframe with a time, a hold or an ease.
    ``preset``: the official preset the keyframes were sampled from, if any (see
    ``engine.paths.preset``); its segments follow the official formula until edited.
    ``intrinsics``: the seed camera's lens (:class:`engine.paths.intrinsics.PathIntrinsics`): sampled K keep
    its principal point and pixel aspect, zoomed to each frame's FOV; None: square pixels, centred.
    Validation: 1..10000 keyframes, times (where given) strictly increasing in [0, 1].
    A path of one keyframe is a still camera: it can be edited and saved, but needs a second
    keyframe before it can be sampled for motion (:attr:`can_animate`).
    """

    keyframes: tuple = field(default_factory=tuple)
    interpolation: str = "smooth"
    constant_speed: bool = False
    preset: PathPreset | None = None
    intrinsics: PathIntrinsics | None = None

    def __post_init__(self):
        kfs = self.keyframes
        if isinstance(kfs, (str, bytes, dict)) or not hasattr(kfs, "__iter__"):
            raise InputError("camera path keyframes must be a sequence of Keyframe")
        kfs = tuple(kfs)
        object.__setattr__(self, "keyframes", kfs)
        if len(kfs) < 1:
            raise InputError("a camera path needs at least 1 keyframe, got 0")
        if len(kfs) > MAX_KEYFRAMES:
            raise InputError(f"too many keyframes ({len(kfs)} > {MAX_KEYFRAMES})")
        for i, kf in enumerate(kfs):
            if not isinstance(kf, Keyframe):
                raise InputError(f"keyframe {i} is a {type(kf).__name__}, not a Keyframe")
        if self.interpolation not in INTERPOLATIONS:
            raise InputError(f"unknown interpolation {self.interpolation!r}; valid: {', '.join(INTERPOLATIONS)}")
        if not isinstance(self.constant_speed, (bool, np.bool_)):
            raise InputError(f"constant_speed must be true or false, got {self.constant_speed!r}")
        object.__setattr__(self, "constant_speed", bool(self.constant_speed))
        if self.preset is not None and not isinstance(self.preset, PathPreset):
            raise InputError(f"camera path preset must be a PathPreset, got {type(self.preset).__name__}")
        if self.intrinsics is not None and not isinstance(self.intrinsics, PathIntrinsics):
            raise InputError(f"camera path intrinsics must be PathIntrinsics, got {type(self.intrinsics).__name__}")
        self.key_times()  # validates the times

    def __len__(self):
        return len(self.keyframes)

    @property
    def can_animate(self) -> bool:
        """True when the path has the two keyframes that motion (sampling, preview, generation) needs."""
        return len(self.keyframes) >= 2

    # timing ---------------------------------------------------------------------------------

    def key_times(self) -> np.ndarray:
        """The path time in [0, 1] of every keyframe: the parameter :meth:`frame_times` maps frames to.

        Given times are used as they are. Missing ones: the first defaults to 0, the last to 1,
        and interior gaps are spaced evenly between their nearest timed neighbours (with no times
        at all this is uniform, k / (n-1)). The result must be strictly increasing. Holds and eases
        do not move these (they are in frames: see :meth:`key_frames`).
        """
        n = len(self.keyframes)
        given = [kf.time for kf in self.keyframes]
        if n == 1:
            return np.array([0.0 if given[0] is None else given[0]])
        u = np.array([np.nan if t is None else t for t in given], dtype=np.float64)
        if given[0] is None:
            u[0] = 0.0
        if given[-1] is None:
            u[-1] = 1.0
        known = np.flatnonzero(~np.isnan(u))
        for a, b in zip(known[:-1], known[1:]):
            if b - a > 1:
                k = np.arange(a + 1, b)
                u[k] = u[a] + (u[b] - u[a]) * (k - a) / (b - a)
        if given.count(None) == n:
            u = np.arange(n, dtype=np.float64) / (n - 1)
        if np.any(np.diff(u) <= 0):
            bad = int(np.flatnonzero(np.diff(u) <= 0)[0])
            raise InputError(f"keyframe times must be strictly increasing (keyframe {bad} at {u[bad]:.6g}, "
                             f"keyframe {bad + 1} at {u[bad + 1]:.6g})")
        return u

    def _check_num_frames(self, num_frames) -> int:
        if (isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer))
                or not 1 <= num_frames <= MAX_FRAMES):
            raise InputError(f"num_frames must be an integer in [2, {MAX_FRAMES}], got {num_frames!r}")
        n = len(self.keyframes)
        if n == 1 and num_frames > 1:
            raise _needs_two(n)
        if n > 1 and num_frames < 2:
            raise InputError(f"num_frames must be an integer in [2, {MAX_FRAMES}], got {num_frames!r}")
        return int(num_frames)

    def _plan(self, num_frames: int) -> FramePlan:
        T = self._check_num_frames(num_frames)
        kfs = self.keyframes
        positions = None
        if self.constant_speed and len(kfs) > 1:
            spline = self._spline()
            backed = self._backed()

            def positions(seg, s):
                return self._positions(spline, backed, seg, s, T)
        return plan_frames(T, [k.time for k in kfs], [k.hold for k in kfs], [k.ease for k in kfs], positions)

    def key_frames(self, num_frames: int) -> np.ndarray:
        """The frame (float64; whole for held keyframes) at which each keyframe is reached in a clip
        of ``num_frames`` frames; keyframe k then stays until frame ``key_frames[k] + hold``.
        A timing that cannot be honoured (holds that do not fit) is an InputError."""
        return self._plan(num_frames).arrivals.copy()

    def frame_times(self, num_frames: int) -> np.ndarray:
        """Path time (the space of :meth:`key_times`) of each frame: i/(T-1) for a path with no holds,
        eases or constant speed; a frame on or held at keyframe k is at exactly ``key_times()[k]``."""
        plan = self._plan(num_frames)
        u = self.key_times()
        if len(u) == 1:
            return np.zeros(len(plan.s))
        return u[plan.seg] + plan.s * (u[plan.seg + 1] - u[plan.seg])

    # edits ----------------------------------------------------------------------------------

    def _index(self, i: int, name: str = "keyframe index", extra: int = 0) -> int:
        n = len(self.keyframes) + extra
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise InputError(f"{name} must be an integer, got {i!r}")
        if not -n <= i < n:
            raise InputError(f"{name} {i} out of range for {len(self.keyframes)} keyframes")
        return int(i) % n

    def _with(self, kfs) -> "CameraPath":
        return CameraPath(tuple(kfs), self.interpolation, self.constant_speed, self.preset, self.intrinsics)

    def with_keyframe(self, i: int, kf: Keyframe) -> "CameraPath":
        """A new path with keyframe i replaced by ``kf``."""
        i = self._index(i)
        kfs = list(self.keyframes)
        kfs[i] = kf
        return self._with(kfs)

    def with_hold(self, i: int, frames: int) -> "CameraPath":
        """A new path where keyframe i is held for ``frames`` frames (0: the camera passes through)."""
        i = self._index(i)
        return self.with_keyframe(i, self.keyframes[i].with_hold(frames))

    def with_ease(self, i: int, ease: str) -> "CameraPath":
        """A new path where keyframe i has this ease (one of ``EASES``)."""
        i = self._index(i)
        return self.with_keyframe(i, self.keyframes[i].with_ease(ease))

    def inserted(self, i: int, kf: Keyframe) -> "CameraPath":
        """A new path with ``kf`` inserted before index i (i == len appends)."""
        i = self._index(i, extra=1)
        kfs = list(self.keyframes)
        kfs.insert(i, kf)
        return self._with(kfs)

    def removed(self, i: int) -> "CameraPath":
        """A new path without keyframe i (a path keeps at least one keyframe)."""
        i = self._index(i)
        if len(self.keyframes) == 1:
            raise InputError("a camera path keeps at least 1 keyframe: this is the last one")
        kfs = list(self.keyframes)
        del kfs[i]
        return self._with(kfs)

    def moved(self, i: int, j: int) -> "CameraPath":
        """A new path where keyframe i now sits at index j (the others keep their order)."""
        i = self._index(i)
        j = self._index(j, name="target index")
        kfs = list(self.keyframes)
        kfs.insert(j, kfs.pop(i))
        return self._with(kfs)

    def duplicated(self, i: int) -> "CameraPath":
        """A new path with a copy of keyframe i's camera (pose and FOV; no time, no hold, linear ease)
        inserted right after it, at index i + 1: until one of them is edited, the camera stays still
        between the two."""
        i = self._index(i)
        kfs = list(self.keyframes)
        kfs.insert(i + 1, kfs[i].camera_only())
        return self._with(kfs)

    def with_options(self, *, interpolation: str | None = None, constant_speed: bool | None = None) -> "CameraPath":
        return CameraPath(self.keyframes,
                          self.interpolation if interpolation is None else interpolation,
                          self.constant_speed if constant_speed is None else constant_speed,
                          self.preset, self.intrinsics)

    def with_intrinsics(self, K, height: int | None = None, width: int | None = None) -> "CameraPath":
        """The same path sampled with the seed camera's K (pixels at height x width) as its lens; None removes it."""
        if K is None:
            lens = None
        elif isinstance(K, PathIntrinsics):
            lens = K
        else:
            if height is None or width is None:
                raise InputError("path intrinsics need the image height and width K is for")
            lens = PathIntrinsics(K, height, width)
        return CameraPath(self.keyframes, self.interpolation, self.constant_speed, self.preset, lens)

    # construction ---------------------------------------------------------------------------

    @classmethod
    def single(cls, keyframe: Keyframe, interpolation: str = "smooth", constant_speed: bool = False) -> "CameraPath":
        """A path of one keyframe (a still camera, to add keyframes to)."""
        return cls((keyframe,), interpolation, constant_speed)

    @classmethod
    def from_input_camera(cls, fov_y_deg: float | None = None, w2c=None, interpolation: str = "smooth",
                          constant_speed: bool = False, *, K=None, height: int | None = None,
                          width: int | None = None) -> "CameraPath":
        """A new path whose only keyframe is the input camera: ``w2c`` (default identity, the seed
        camera of a single-image scene) with the scene's vertical FOV. With ``K`` (the seed K, pixels at
        ``height`` x ``width``) the path keeps that lens (see ``with_intrinsics``) and the FOV defaults to
        K's, so its first frame is the seed camera exactly."""
        lens = None if K is None else _lens(K, height, width)
        if fov_y_deg is None:
            if lens is None:
                raise InputError("the input camera needs its vertical FOV or its K (with height and width)")
            fov_y_deg = lens.fov_y_deg
        kf = Keyframe(np.eye(4) if w2c is None else w2c, fov_y_deg)
        return cls((kf,), interpolation, constant_speed, None, lens)

    @classmethod
    def from_preset(cls, kind: str, rotation: str, movement_distance: float, *, num_frames: int,
                    fov_y_deg: float | None = None, K=None, height: int | None = None,
                    corrected: bool = False, center_depth: float = 1.0, initial_w2c=None,
                    keyframes: int = PRESET_KEYFRAMES, interpolation: str = "smooth",
                    constant_speed: bool = False, width: int | None = None) -> "CameraPath":
        """An official preset as ``keyframes`` (2..12) editable keyframes whose unedited segments follow
        the official formula: ``sample(T, ...)`` equals ``preset_trajectory(kind, initial_w2c, K, T,
        movement_distance, rotation, center_depth, corrected=corrected)`` for any T (K reduced to a
        vertical FOV, as everywhere in paths). The FOV comes from ``fov_y_deg`` or from ``K`` at
        ``height``; ``initial_w2c`` defaults to identity; ``num_frames``: the clip the keyframes are
        sampled from (evenly spaced over it). With ``K``, ``height`` and ``width`` the path keeps K as its lens
        (see ``with_intrinsics``): sampled Ks equal K itself, as ``preset_trajectory`` repeats it."""
        if (fov_y_deg is None) == (K is None):
            raise InputError("a preset path needs either fov_y_deg or K (with height)")
        lens = None
        if K is not None:
            if height is None:
                raise InputError("a preset path made from K needs the image height K is for")
            if width is not None:
                lens = _lens(K, height, width)
                fov_y_deg = lens.fov_y_deg
            else:
                fov_y_deg = fov_y_from_intrinsics(K, validate.image_size(height, 1)[0])
        preset = PathPreset(kind, rotation, movement_distance, fov_y_deg, num_frames, keyframes, center_depth,
                            corrected, initial_w2c)
        return cls(preset.keyframes, interpolation, constant_speed, preset, lens)

    @classmethod
    def from_cameras(cls, w2cs, Ks, height: int, interpolation: str = "smooth",
                     constant_speed: bool = False, *, width: int | None = None) -> "CameraPath":
        """Every camera becomes a keyframe (uniform times), FOV from fy of each K at ``height``; a run of
        identical consecutive cameras (within 1e-9) becomes one keyframe held for the run's length.

        ``sample`` with the same frame count reproduces the poses. K is reduced to a vertical FOV:
        sampled cameras have square pixels and a centred principal point (W/2, H/2), unless ``width``
        is given and every K is the same (a preset's repeated seed K): then that K is the path's lens
        (see ``with_intrinsics``) and sampling reproduces it exactly.
        """
        if np.ndim(Ks) == 2 and np.ndim(w2cs) == 3:  # one K for every camera
            Ks = np.broadcast_to(validate.intrinsics(Ks, "Ks", batch=False), (len(w2cs), 3, 3))
        W, K = validate.camera_batch(w2cs, Ks, unit="frames")
        T = W.shape[0]
        if T > MAX_KEYFRAMES:
            raise InputError(f"too many cameras ({T} > {MAX_KEYFRAMES})")
        H, _ = validate.image_size(height, 1)
        lens = None
        if width is not None and np.all(K == K[0]):
            lens = _lens(K[0], H, width)
        return cls(tuple(runs_as_holds([Keyframe(W[t], fov_y_from_intrinsics(K[t], H)) for t in range(T)])),
                   interpolation, constant_speed, None, lens)

    # sampling -------------------------------------------------------------------------------

    def _spline(self) -> Spline:
        return Spline(self.keyframes, self.key_times(), self.interpolation)

    def _backed(self) -> np.ndarray:
        """Per segment: the preset keyframe it starts at when it follows the preset formula, else -1."""
        if self.preset is None:
            return np.full(len(self.keyframes) - 1, -1, dtype=int)
        return self.preset.backed_segments(self.keyframes)

    def preset_segments(self) -> tuple:
        """Per segment (keyframes k, k+1): True where it still follows the official preset formula."""
        return tuple(bool(j >= 0) for j in self._backed())

    def _preset_poses(self, j: np.ndarray, s: np.ndarray, T: int) -> np.ndarray:
        v = self.preset.key_positions()
        nxt = np.minimum(j + 1, len(v) - 1)  # s = 0 at the last preset keyframe
        return self.preset.poses(v[j] + s * (v[nxt] - v[j]), T)

    def _positions(self, spline: Spline, backed: np.ndarray, seg: np.ndarray, s: np.ndarray, T: int) -> np.ndarray:
        pos = spline.positions(seg, s)
        pm = backed[seg] >= 0
        if pm.any():
            pos[pm] = camera_center(self._preset_poses(backed[seg[pm]], s[pm], T))
        return pos

    def _formula_keys(self, backed: np.ndarray) -> np.ndarray:
        """Per keyframe: the preset keyframe whose formula camera it shows, when every segment it
        touches follows the preset (so that unedited preset paths are official at any frame count), else -1."""
        n = len(self.keyframes)
        out = np.full(n, -1, dtype=int)
        for k in range(n):
            left = backed[k - 1] + 1 if k > 0 and backed[k - 1] >= 0 else None
            right = backed[k] if k < n - 1 and backed[k] >= 0 else None
            if k > 0 and left is None or k < n - 1 and right is None:
                continue
            if left is not None and right is not None and left != right:
                continue
            out[k] = left if left is not None else right
        return out

    def sample_numpy(self, num_frames: int, height: int, width: int):
        """Like :meth:`sample` but float64 numpy (w2cs [T,4,4], Ks [T,3,3], fovs [T])."""
        H, W = validate.image_size(height, width)
        plan = self._plan(num_frames)
        T = len(plan.s)
        kfs = self.keyframes
        key_w2c = np.stack([kf.w2c for kf in kfs])
        key_fov = np.array([kf.fov_y_deg for kf in kfs])
        w2cs = np.zeros((T, 4, 4))
        fovs = np.zeros(T)
        on = plan.key >= 0
        w2cs[on] = key_w2c[plan.key[on]]
        fovs[on] = key_fov[plan.key[on]]
        if len(kfs) > 1:
            backed = self._backed()
            formula = self._formula_keys(backed)
            fk = on & (formula[np.maximum(plan.key, 0)] >= 0)
            if fk.any():
                j = formula[plan.key[fk]]
                w2cs[fk] = self._preset_poses(j, np.zeros(len(j)), T)
            moving = ~on
            pm = moving & (backed[plan.seg] >= 0)
            if pm.any():
                w2cs[pm] = self._preset_poses(backed[plan.seg[pm]], plan.s[pm], T)
                fovs[pm] = self.preset.fov_y_deg
            still_seg = np.array([same_camera(a, b) for a, b in zip(kfs[:-1], kfs[1:])])
            st = moving & ~pm & still_seg[plan.seg]
            w2cs[st] = key_w2c[plan.seg[st]]
            fovs[st] = key_fov[plan.seg[st]]
            rest = np.flatnonzero(moving & ~pm & ~st)
            if len(rest):
                pos, rot, fov = self._spline().evaluate(plan.seg[rest], plan.s[rest])
                Rt = np.swapaxes(rot, 1, 2)
                w2cs[rest, :3, :3] = Rt
                w2cs[rest, :3, 3] = -np.einsum("tij,tj->ti", Rt, pos)
                w2cs[rest, 3, 3] = 1.0
                fovs[rest] = fov
        if self.intrinsics is not None:
            Ks = self.intrinsics.at(fovs, H, W)
        else:
            Ks = np.stack([intrinsics_from_fov(f, H, W) for f in fovs])
        return w2cs, Ks, fovs

    def sample(self, num_frames: int, height: int, width: int):
        """Per-frame cameras (w2cs [T,4,4], Ks [T,3,3]) as torch float32.

        Frames are laid out by the keyframes' timing (``engine.paths.timing``): with no times, holds,
        eases or constant speed, frame i is at path time i/(T-1). A frame that lands on a keyframe,
        or within its hold, is that keyframe's camera exactly (on a keyframe that only touches
        unedited preset segments: the official preset's camera at this T, the same camera when T
        is the preset's own frame count). K has square pixels, fy from the interpolated vertical
        FOV and principal point (W/2, H/2); with ``intrinsics``, the seed K zoomed to that FOV (the seed K
        itself at the seed's FOV). T is 2..MAX_FRAMES; a path of one keyframe gives one
        frame (T = 1) and refuses more with the message that it needs a second keyframe.
        """
        w2cs, Ks, _ = self.sample_numpy(num_frames, height, width)
        return (torch.from_numpy(w2cs.astype(np.float32)), torch.from_numpy(Ks.astype(np.float32)))


def _lens(K, height, width) -> PathIntrinsics:
    if height is None or width is None:
        raise InputError("path intrinsics need the image height and width K is for")
    return K if isinstance(K, PathIntrinsics) else PathIntrinsics(K, height, width)


def runs_as_holds(keyframes) -> list:
    """Keyframes with every run of identical consecutive cameras (within 1e-9) merged into the run's
    first keyframe, held one more frame for each repeat."""
    out = []
    for kf in keyframes:
        if out and same_camera(out[-1], kf, _HOLD_TOL):
            out[-1] = out[-1].with_hold(out[-1].hold + 1 + kf.hold)
        else:
            out.append(kf)
    return out
