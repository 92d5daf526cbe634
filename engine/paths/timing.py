"""Keyframe timing in frames: holds, eases, and the plan that places every frame of a clip on a path.

A path of n keyframes sampled for T frames is laid out on the frame axis 0..T-1:

* keyframe k is *reached* at frame ``a[k]`` and *held* there for ``hold[k]`` more frames, up to
  frame ``a[k] + hold[k]``; every frame in that span is the keyframe's camera exactly;
* the first keyframe is reached at frame 0, the last one so that its hold ends on frame T-1,
  a keyframe with a ``time`` t in [0, 1] at frame t (T-1); these are the *pinned* keyframes;
* between two pinned keyframes the frames left after the holds are shared evenly by the segments
  (or, with constant speed, in proportion to the distance the camera travels);
* a held keyframe is reached on a whole frame (its arrival is rounded), so a hold of N frames
  gives N + 1 identical frames; others may fall between frames, as without holds;
* an ease slows the camera into ("ease_in") or out of ("ease_out") a keyframe, or both: it
  changes when the camera gets where along a segment, never the segment's shape.

A plan that cannot be honoured (holds that do not fit, a hold past the last frame) raises
:class:`engine.errors.InputError` saying what to change.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.errors import InputError
from engine.validate import MAX_FRAMES

EASES = ("linear", "ease_in", "ease_out", "ease_in_out")
# Frames per segment of the arc-length table used for constant speed (at least).
_ARC_SAMPLES = 64


def check_hold(hold) -> int:
    """A hold as a whole number of frames in 0..MAX_FRAMES; anything else is an InputError."""
    if isinstance(hold, (float, np.floating)) and math.isfinite(hold) and float(hold).is_integer():
        hold = int(hold)
    if isinstance(hold, bool) or not isinstance(hold, (int, np.integer)):
        raise InputError(f"keyframe hold must be a whole number of frames, got {hold!r}")
    if not 0 <= hold <= MAX_FRAMES:
        raise InputError(f"keyframe hold must be 0..{MAX_FRAMES} frames, got {hold!r}")
    return int(hold)


def check_ease(ease) -> str:
    """One of :data:`EASES`; anything else is an InputError."""
    if not isinstance(ease, str) or ease not in EASES:
        raise InputError(f"keyframe ease must be one of {', '.join(EASES)}, got {ease!r}")
    return ease


def slows_in(ease: str) -> bool:
    return ease in ("ease_in", "ease_in_out")


def slows_out(ease: str) -> bool:
    return ease in ("ease_out", "ease_in_out")


def ease_curve(x, slow_start, slow_end) -> np.ndarray:
    """How far along a stretch (0..1) the camera is at time fraction ``x`` (0..1).

    A cubic Hermite from 0 to 1 with slope 0 at a slowed end and slope 1 at a linear one:
    monotone, exactly 0 and 1 at the ends, and exactly ``x`` when neither end is slowed.
    ``slow_start`` / ``slow_end`` broadcast against ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    m0 = np.where(slow_start, 0.0, 1.0)
    m1 = np.where(slow_end, 0.0, 1.0)
    x2 = x * x
    x3 = x2 * x
    h = (3 * x2 - 2 * x3) + (x3 - 2 * x2 + x) * m0 + (x3 - x2) * m1
    return np.where((m0 == 1.0) & (m1 == 1.0), x, h)


def _inverse_ease(y: np.ndarray, slow_start: bool, slow_end: bool) -> np.ndarray:
    """Time fraction at which :func:`ease_curve` reaches ``y`` (for placing passed keyframes)."""
    if not (slow_start or slow_end):
        return y
    xs = np.linspace(0.0, 1.0, 4097)
    return np.interp(y, ease_curve(xs, slow_start, slow_end), xs)


@dataclass(frozen=True)
class FramePlan:
    """Where each of T frames lies on a path of n keyframes.

    ``seg`` [T] int and ``s`` [T] float: the segment (keyframes seg, seg+1) and how far along it;
    ``key`` [T] int: the keyframe a frame shows exactly (reached or held there), -1 while moving;
    ``arrivals`` [n] float: the frame at which each keyframe is reached (a whole frame when held).
    """

    seg: np.ndarray
    s: np.ndarray
    key: np.ndarray
    arrivals: np.ndarray


class _ArcTable:
    """Cumulative distance travelled along the path, on a fine grid of segment coordinates c = seg + s."""

    def __init__(self, n: int, num_frames: int, positions):
        m = max(_ARC_SAMPLES, -(-1024 // (n - 1)), -(-4 * num_frames // (n - 1)))
        seg = np.repeat(np.arange(n - 1), m)
        s = np.tile(np.arange(m) / m, n - 1)
        seg = np.append(seg, n - 2)
        s = np.append(s, 1.0)
        pts = positions(seg, s)
        raw = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
        self.coord = seg + s
        self.m = m
        self.raw = raw
        self.tiny = 1e-9 * (float(np.abs(pts).max()) + 1.0)
        # A vanishing time term makes the table strictly increasing, so stretches of pure rotation
        # (no distance) are passed through in a vanishing time instead of dividing by zero.
        self.strict = raw + 1e-9 * raw[-1] * self.coord / (n - 1)

    def at_key(self, k, strict: bool = True):
        return (self.strict if strict else self.raw)[np.asarray(k) * self.m]

    def coord_at(self, length: np.ndarray) -> np.ndarray:
        return np.interp(length, self.strict, self.coord)


def plan_frames(num_frames: int, times, holds, eases, positions=None) -> FramePlan:
    """The :class:`FramePlan` of ``num_frames`` frames for keyframes with these times (None or
    [0, 1]), holds (frames) and eases. ``positions(seg, s) -> [N,3]`` (the camera centres along the
    path) turns on constant speed; None spaces frames evenly in time within each segment."""
    n = len(times)
    T = int(num_frames)
    if n == 1:
        return FramePlan(np.zeros(T, int), np.zeros(T), np.zeros(T, int), np.zeros(1))
    F = float(T - 1)
    h = np.asarray(holds, dtype=np.float64)
    slow_in = np.array([slows_in(e) for e in eases])
    slow_out = np.array([slows_out(e) for e in eases])
    arc = _ArcTable(n, T, positions) if positions is not None else None

    pinned = sorted({0, n - 1} | {k for k, t in enumerate(times) if t is not None})
    a = np.full(n, np.nan)
    for k in pinned:
        t = times[k]
        a[k] = t * F if t is not None else (0.0 if k == 0 else F - h[k])
    uniform = np.ones(n - 1, dtype=bool)  # segments timed evenly (not by distance)
    for p, q in zip(pinned[:-1], pinned[1:]):
        free = a[q] - a[p] - h[p] - h[p + 1:q].sum()
        ks = np.arange(p + 1, q)
        held_before = np.cumsum(h[p:q])[:-1] - h[p]  # holds of keyframes p+1..k-1, for each k
        if arc is not None and arc.at_key(q, False) - arc.at_key(p, False) > arc.tiny:
            uniform[p:q] = False
            frac = (arc.at_key(ks) - arc.at_key(p)) / (arc.at_key(q) - arc.at_key(p))
        else:
            frac = (ks - p) / (q - p)
        a[ks] = a[p] + h[p] + held_before + free * frac
    whole = np.floor(a + 0.5)
    a = np.where((h > 0) | (np.abs(a - whole) < 1e-9), whole, a)  # held keys on whole frames

    if arc is None:
        anchors = np.arange(n)
    else:
        stops = (h > 0) | slow_in | slow_out
        stops[pinned] = True
        stops[1:][uniform] = True  # evenly timed stretches keep every keyframe
        stops[:-1][uniform] = True
        anchors = np.flatnonzero(stops)
        _check_distance(arc, anchors, uniform)
        a = _place_passed_keys(arc, a, h, anchors, slow_in, slow_out)
    _check_fit(a, h, T)

    d = a + h
    f = np.arange(T, dtype=np.float64)
    kk = np.searchsorted(a, f, side="right") - 1
    before = kk < 0
    kk = np.clip(kk, 0, n - 1)
    on = before | (f <= d[kk]) | (kk == n - 1)
    key = np.where(on, np.where(before, 0, kk), -1)
    seg = np.minimum(np.where(on, key, kk), n - 2)
    s = np.where(on & (key == n - 1), 1.0, 0.0)

    mv = np.flatnonzero(~on)
    if len(mv):
        A_idx = np.searchsorted(anchors, kk[mv], side="right") - 1
        A, B = anchors[A_idx], anchors[A_idx + 1]
        x = (f[mv] - d[A]) / (a[B] - d[A])
        y = ease_curve(x, slow_out[A], slow_in[B])
        if arc is None:
            by_arc = np.zeros(len(mv), dtype=bool)
        else:  # constant speed: a stretch over several segments, or one not timed evenly
            by_arc = (B - A > 1) | ~uniform[A]
        seg[mv] = A
        s[mv] = y
        if by_arc.any():
            i = mv[by_arc]
            A2, B2 = A[by_arc], B[by_arc]
            la, lb = arc.at_key(A2), arc.at_key(B2)
            c = arc.coord_at(la + y[by_arc] * (lb - la))
            sg = np.clip(np.floor(c).astype(int), A2, B2 - 1)
            seg[i] = sg
            s[i] = np.clip(c - sg, 0.0, 1.0)
    return FramePlan(seg, s, key, a)


def _check_distance(arc: _ArcTable, anchors: np.ndarray, uniform: np.ndarray) -> None:
    """With constant speed, two stops with no travel between them would get no frames."""
    for A, B in zip(anchors[:-1], anchors[1:]):
        if not uniform[A] and arc.at_key(B, False) - arc.at_key(A, False) <= arc.tiny:
            raise InputError(f"with constant speed, keyframes {A} and {B} get no frames: the camera does not "
                             "move between them (turn constant speed off, or remove the hold, ease or time "
                             "that stops the camera at one of them)")


def _place_passed_keys(arc: _ArcTable, a, h, anchors, slow_in, slow_out) -> np.ndarray:
    """Arrival frames of keyframes the camera passes at constant speed (not anchors), eases included."""
    a = a.copy()
    for A, B in zip(anchors[:-1], anchors[1:]):
        if B - A < 2:
            continue
        ks = np.arange(A + 1, B)
        y = (arc.at_key(ks) - arc.at_key(A)) / (arc.at_key(B) - arc.at_key(A))
        x = _inverse_ease(y, bool(slow_out[A]), bool(slow_in[B]))
        a[ks] = a[A] + h[A] + x * (a[B] - a[A] - h[A])
    return a


def _check_fit(a: np.ndarray, h: np.ndarray, T: int) -> None:
    F = T - 1
    eps = 1e-9 * max(F, 1)
    n = len(a)
    if a[-1] + h[-1] > F + eps:
        raise InputError(f"keyframe {n - 1} is held past the last frame: reached at frame {a[-1]:.6g} and held "
                         f"{int(h[-1])} frames, but {T} frames end at frame {F} (shorten the hold, change its "
                         "time or use more frames)")
    if a[0] < -eps:
        raise InputError(f"the holds do not fit in {T} frames: keyframe 0 would be reached at frame {a[0]:.6g} "
                         "(shorten a hold or use more frames)")
    gap = a[1:] - (a[:-1] + h[:-1])
    bad = np.flatnonzero(gap <= eps)
    if len(bad):
        k = int(bad[0])
        raise InputError(f"the holds do not fit in {T} frames ({int(h.sum())} of its {F} frame steps are held): "
                         f"keyframe {k + 1} would be reached at frame {a[k + 1]:.6g}, no later than keyframe {k} "
                         f"moves on at frame {a[k] + h[k]:.6g} (shorten a hold, change a keyframe time or use "
                         "more frames)")
