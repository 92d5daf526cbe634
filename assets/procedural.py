"""Procedural sample scenes with exact depth: analytic primitives ray-cast in numpy.

Each scene is a list of primitives (bounded planes, yaw-rotated boxes, spheres, vertical capped cylinders)
with procedural textures and view-independent Lambert shading, so any camera can be rendered and the seed
view's warp can be checked against a ground-truth render. World = the seed camera's OpenCV frame (x right,
y down, z forward, metres); the seed camera is w2c = I. `render(name, w2c, K, H, W)` returns colour in
[0, 1] and z-depth (0 where a ray hits nothing). Noise uses integer hashing, so renders are deterministic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

EPS = 1e-6
SAMPLE_HEIGHT, SAMPLE_WIDTH, SAMPLE_FOV_Y_DEG = 704, 1280, 60.0
LIGHT = np.array([-0.35, -0.85, -0.4]) / np.linalg.norm([-0.35, -0.85, -0.4])  # towards the light (up-left-back)


# ------------------------------------------------------------------------------------------ noise
def _hash(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Deterministic hash of integer lattice points -> float in [0, 1)."""
    h = (ix.astype(np.int64) * 73856093) ^ (iy.astype(np.int64) * 19349663) ^ (seed * 83492791)
    h = h.astype(np.uint64) & np.uint64(0xFFFFFFFF)
    h = (h ^ (h >> np.uint64(16))) * np.uint64(0x45D9F3B) & np.uint64(0xFFFFFFFF)
    h = (h ^ (h >> np.uint64(16))) * np.uint64(0x45D9F3B) & np.uint64(0xFFFFFFFF)
    h = h ^ (h >> np.uint64(16))
    return (h & np.uint64(0xFFFFFF)).astype(np.float64) / float(0x1000000)


def value_noise(u: np.ndarray, v: np.ndarray, seed: int = 0) -> np.ndarray:
    """Smooth 2-D value noise in [0, 1] with unit lattice spacing."""
    iu, iv = np.floor(u), np.floor(v)
    fu, fv = u - iu, v - iv
    su, sv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)
    a, b = _hash(iu, iv, seed), _hash(iu + 1, iv, seed)
    c, d = _hash(iu, iv + 1, seed), _hash(iu + 1, iv + 1, seed)
    return (a * (1 - su) + b * su) * (1 - sv) + (c * (1 - su) + d * su) * sv


def fbm(u, v, seed=0, octaves=3):
    total, amp, norm = 0.0, 1.0, 0.0
    for o in range(octaves):
        total = total + amp * value_noise(u * 2 ** o, v * 2 ** o, seed + 17 * o)
        norm += amp
        amp *= 0.5
    return total / norm


def _vm(v: np.ndarray, M: np.ndarray) -> np.ndarray:
    """v [N,3] @ M [3,3] without BLAS (tiny inner dimension; BLAS threading is slower here)."""
    return v[:, 0:1] * M[0] + v[:, 1:2] * M[1] + v[:, 2:3] * M[2]


def _dot(v: np.ndarray, w) -> np.ndarray:
    """Row-wise v [N,3] . w [3]."""
    return v[:, 0] * w[0] + v[:, 1] * w[1] + v[:, 2] * w[2]


def _rgb(c) -> np.ndarray:
    return np.asarray(c, dtype=np.float64) / 255.0


def _mix(a, b, t):
    t = np.asarray(t, dtype=np.float64)[..., None]
    return np.asarray(a) * (1 - t) + np.asarray(b) * t


# --------------------------------------------------------------------------------------- textures
# A texture maps (u, v) surface coordinates in metres (plus the face id for boxes) to RGB [N, 3].
Texture = Callable[[np.ndarray, np.ndarray], np.ndarray]


def solid(color, noise=0.0, seed=0, freq=4.0) -> Texture:
    c = _rgb(color)

    def tex(u, v):
        n = 1.0 + noise * (fbm(u * freq, v * freq, seed) - 0.5) * 2 if noise else np.ones_like(u)
        return c[None] * n[:, None]
    return tex


def checker(c1, c2, size=0.5, noise=0.05, seed=1) -> Texture:
    a, b = _rgb(c1), _rgb(c2)

    def tex(u, v):
        k = (np.floor(u / size) + np.floor(v / size)) % 2
        col = _mix(a, b, k)
        return col * (1 + noise * (fbm(u * 3, v * 3, seed) - 0.5) * 2)[:, None]
    return tex


def stripes(colors, width=0.2, axis=0, noise=0.04, seed=2) -> Texture:
    cols = np.stack([_rgb(c) for c in colors])

    def tex(u, v):
        coord = u if axis == 0 else v
        idx = np.floor(coord / width).astype(np.int64) % len(cols)
        return cols[idx] * (1 + noise * (fbm(u * 5, v * 5, seed) - 0.5) * 2)[:, None]
    return tex


def planks(base=(150, 100, 60), width=0.22, seed=3) -> Texture:
    """Wooden floor/table: planks along v, each with its own tone, soft grain."""
    b = _rgb(base)

    def tex(u, v):
        idx = np.floor(u / width)
        tone = 0.8 + 0.4 * _hash(idx, np.zeros_like(idx), seed)
        grain = 0.9 + 0.2 * fbm(u * 40, v * 2.5 + idx * 7.3, seed + 1)
        seam = np.where(np.abs(u / width - np.round(u / width)) < 0.03, 0.55, 1.0)
        return b[None] * (tone * grain * seam)[:, None]
    return tex


def bricks(brick=(170, 70, 50), mortar=(210, 200, 190), bw=0.5, bh=0.2, seed=4) -> Texture:
    b, m = _rgb(brick), _rgb(mortar)

    def tex(u, v):
        row = np.floor(v / bh)
        uu = u / bw + 0.5 * (row % 2)
        col = np.floor(uu)
        fu, fv = uu - col, v / bh - row
        is_mortar = (fu < 0.04) | (fv < 0.08)
        tone = 0.8 + 0.35 * _hash(col, row, seed)
        c = b[None] * tone[:, None]
        return np.where(is_mortar[:, None], m[None], c)
    return tex


def facade(wall=(200, 180, 150), window=(60, 90, 140), frame=(240, 240, 235), seed=5, spacing=(2.0, 3.0)) -> Texture:
    """Building wall with a grid of windows (u horizontal, v vertical, metres)."""
    wl, wn, fr = _rgb(wall), _rgb(window), _rgb(frame)
    sx, sy = spacing

    def tex(u, v):
        cu, cv = np.floor(u / sx), np.floor(v / sy)
        fu, fv = u / sx - cu, v / sy - cv
        inside = (fu > 0.25) & (fu < 0.75) & (fv > 0.2) & (fv < 0.7)
        border = (fu > 0.2) & (fu < 0.8) & (fv > 0.15) & (fv < 0.75) & ~inside
        lit = _hash(cu, cv, seed) > 0.7
        glass = np.where(lit[:, None], _rgb((250, 210, 120))[None], wn[None] * (0.8 + 0.4 * fv)[:, None])
        base = wl[None] * (0.92 + 0.16 * fbm(u * 2, v * 2, seed))[:, None]
        return np.where(inside[:, None], glass, np.where(border[:, None], fr[None], base))
    return tex


def rings(colors, scale=0.25, seed=6) -> Texture:
    """Concentric rectangles (a rug pattern) around (0, 0)."""
    cols = np.stack([_rgb(c) for c in colors])

    def tex(u, v):
        r = np.maximum(np.abs(u), np.abs(v) * 1.4)
        idx = np.floor(r / scale).astype(np.int64) % len(cols)
        return cols[idx] * (0.92 + 0.16 * fbm(u * 6, v * 6, seed))[:, None]
    return tex


def painting(seed=7) -> Texture:
    """Abstract art: coloured discs on a gradient."""
    discs = [((-0.3, -0.15), 0.22, (230, 60, 60)), ((0.25, 0.1), 0.28, (40, 120, 220)),
             ((0.05, -0.2), 0.12, (250, 200, 40)), ((-0.1, 0.22), 0.15, (60, 190, 110))]

    def tex(u, v):
        col = _mix(_rgb((250, 240, 220)), _rgb((240, 170, 120)), np.clip(v + 0.5, 0, 1))
        for (cu, cv), r, c in discs:
            inside = (u - cu) ** 2 + (v - cv) ** 2 < r * r
            col = np.where(inside[:, None], _rgb(c)[None], col)
        return col
    return tex


def sky(seed=8) -> Texture:
    """Sky dome texture on (azimuth, elevation)-like coordinates: gradient plus soft clouds."""
    def tex(u, v):
        # u: azimuth (radians), v: -y of the unit direction (1 = zenith, OpenCV y down)
        t = np.clip(v, 0, 1) ** 0.6
        col = _mix(_rgb((200, 225, 245)), _rgb((70, 130, 210)), t)
        c = fbm(u * 6, v * 12, seed, octaves=4)
        cloud = np.clip((c - 0.55) * 4, 0, 1) * (v > 0.02)
        return _mix(col, _rgb((250, 250, 252)), cloud * 0.85)
    return tex


def window(width: float, height: float) -> Texture:
    """A window with a white frame and cross bars; sky-blue glass brightening towards the top."""
    def tex(u, v):
        fu, fv = u / width, v / height
        bar = 0.03
        frame = (fu < bar) | (fu > 1 - bar) | (fv < bar * 1.5) | (fv > 1 - bar * 1.5)
        frame |= (np.abs(fu - 0.5) < bar / 2) | (np.abs(fv - 0.45) < bar * 0.75)
        glass = _mix(_rgb((175, 215, 245)), _rgb((110, 165, 225)), np.clip(fv, 0, 1))
        return np.where(frame[:, None], _rgb((248, 248, 244))[None], glass)
    return tex


def rubik(seed=9) -> Texture:
    cols = np.stack([_rgb(c) for c in [(230, 40, 40), (40, 160, 60), (40, 80, 220), (250, 200, 30),
                                        (250, 130, 20), (245, 245, 245)]])

    def tex(u, v):
        n = 3 / 0.09
        cu, cv = np.floor(u * n), np.floor(v * n)
        fu, fv = u * n - cu, v * n - cv
        idx = (_hash(cu, cv, seed) * 6).astype(np.int64) % 6
        black = (fu < 0.08) | (fu > 0.92) | (fv < 0.08) | (fv > 0.92)
        return np.where(black[:, None], 0.08, cols[idx])
    return tex


# ------------------------------------------------------------------------------------- primitives
@dataclass
class Plane:
    """A (bounded) plane: origin + s*u_axis + t*v_axis, s in [u0,u1], t in [v0,v1] (None = unbounded)."""

    origin: tuple
    u_axis: tuple
    v_axis: tuple
    texture: Texture
    bounds: tuple | None = None

    def __post_init__(self):
        self.o = np.asarray(self.origin, float)
        self.u = np.asarray(self.u_axis, float) / np.linalg.norm(self.u_axis)
        self.v = np.asarray(self.v_axis, float) / np.linalg.norm(self.v_axis)
        n = np.cross(self.u, self.v)
        self.n = n / np.linalg.norm(n)

    def intersect(self, o, d):
        denom = _dot(d, self.n)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = ((self.o - o) @ self.n) / denom
        t = np.where(np.abs(denom) > 1e-12, t, np.inf)
        if self.bounds is not None:
            p = o + d * t[:, None] - self.o
            s, r = _dot(p, self.u), _dot(p, self.v)
            u0, u1, v0, v1 = self.bounds
            t = np.where((s >= u0) & (s <= u1) & (r >= v0) & (r <= v1), t, np.inf)
        return np.where(t > EPS, t, np.inf)

    def aabb(self):
        if self.bounds is None:
            return None
        u0, u1, v0, v1 = self.bounds
        return np.array([self.o + a * self.u + b * self.v for a in (u0, u1) for b in (v0, v1)])

    def shade(self, p):
        q = p - self.o
        return self.texture(_dot(q, self.u), _dot(q, self.v)), np.broadcast_to(self.n, p.shape)


@dataclass
class Box:
    """Box with centre, half extents (x, y, z) and a yaw (degrees) about the vertical axis.

    `textures` maps a face id ('x-', 'x+', 'y-' (top, OpenCV y up is -), 'y+', 'z-', 'z+') to a texture, with
    'all' as the fallback. Face (u, v) coordinates are metres from the face's corner.
    """

    center: tuple
    half: tuple
    textures: dict
    yaw_deg: float = 0.0

    def __post_init__(self):
        self.c = np.asarray(self.center, float)
        self.h = np.asarray(self.half, float)
        a = math.radians(self.yaw_deg)
        self.R = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])  # local->world

    def aabb(self):
        signs = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)], float)
        return self.c + (signs * self.h) @ self.R.T

    def _local(self, o, d):
        if self.yaw_deg == 0:
            return o - self.c, d
        return (o - self.c) @ self.R, _vm(d, self.R)

    def intersect(self, o, d):
        lo, ld = self._local(o, d)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / ld
            t1 = (-self.h - lo) * inv
            t2 = (self.h - lo) * inv
            lo_t, hi_t = np.fmin(t1, t2), np.fmax(t1, t2)  # fmin/fmax skip the NaN of 0 * inf
        tmin = np.maximum(np.maximum(lo_t[:, 0], lo_t[:, 1]), lo_t[:, 2])
        tmax = np.minimum(np.minimum(hi_t[:, 0], hi_t[:, 1]), hi_t[:, 2])
        t = np.where(tmin > EPS, tmin, tmax)  # from inside: the far wall
        return np.where((tmax >= tmin) & (t > EPS), t, np.inf)

    def shade(self, p):
        q = _vm(p - self.c, self.R)
        rel = np.abs(q) / self.h
        axis = np.argmax(rel, axis=1)
        sign = np.sign(q[np.arange(len(q)), axis])
        n_local = np.zeros_like(q)
        n_local[np.arange(len(q)), axis] = sign
        col = np.zeros_like(q)
        names = {(0, -1): "x-", (0, 1): "x+", (1, -1): "y-", (1, 1): "y+", (2, -1): "z-", (2, 1): "z+"}
        uv_axes = {0: (2, 1), 1: (0, 2), 2: (0, 1)}
        for (ax, sg), name in names.items():
            sel = (axis == ax) & (sign == sg)
            if not sel.any():
                continue
            tex = self.textures.get(name, self.textures.get("all"))
            a_u, a_v = uv_axes[ax]
            col[sel] = tex(q[sel, a_u] + self.h[a_u], q[sel, a_v] + self.h[a_v])
        return col, _vm(n_local, self.R.T)


@dataclass
class Sphere:
    center: tuple
    radius: float
    texture: Texture
    emissive: bool = False

    def __post_init__(self):
        self.c = np.asarray(self.center, float)

    def aabb(self):
        return self.c + self.radius * np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)], float)

    def intersect(self, o, d):
        oc = o - self.c
        a = d[:, 0] ** 2 + d[:, 1] ** 2 + d[:, 2] ** 2
        b = 2 * _dot(d, oc)
        cc = oc @ oc - self.radius ** 2
        disc = b * b - 4 * a * cc
        sq = np.sqrt(np.maximum(disc, 0))
        t0, t1 = (-b - sq) / (2 * a), (-b + sq) / (2 * a)
        t = np.where(t0 > EPS, t0, t1)
        return np.where((disc >= 0) & (t > EPS), t, np.inf)

    def shade(self, p):
        n = (p - self.c) / self.radius
        u = np.arctan2(n[:, 0], n[:, 2])
        v = -n[:, 1]
        return self.texture(u, v), n


@dataclass
class Cylinder:
    """Vertical capped cylinder, axis along y through (x, z), from y_top (smaller y) to y_bottom."""

    x: float
    z: float
    y_top: float
    y_bottom: float
    radius: float
    texture: Texture
    cap_texture: Texture | None = None

    def aabb(self):
        r = self.radius
        return np.array([[self.x + a * r, y, self.z + b * r] for a in (-1, 1) for b in (-1, 1)
                         for y in (self.y_top, self.y_bottom)])

    def intersect(self, o, d):
        ox, oz = o[0] - self.x, o[2] - self.z
        a = d[:, 0] ** 2 + d[:, 2] ** 2
        b = 2 * (ox * d[:, 0] + oz * d[:, 2])
        c = ox * ox + oz * oz - self.radius ** 2
        disc = b * b - 4 * a * c
        sq = np.sqrt(np.maximum(disc, 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            best = np.full(len(d), np.inf)
            for t in ((-b - sq) / (2 * a), (-b + sq) / (2 * a)):
                y = o[1] + d[:, 1] * t
                ok = (disc >= 0) & (a > 1e-12) & (t > EPS) & (y >= self.y_top) & (y <= self.y_bottom)
                best = np.where(ok & (t < best), t, best)
            for yc in (self.y_top, self.y_bottom):
                t = (yc - o[1]) / d[:, 1]
                px, pz = o[0] + d[:, 0] * t - self.x, o[2] + d[:, 2] * t - self.z
                ok = np.isfinite(t) & (t > EPS) & (px * px + pz * pz <= self.radius ** 2)
                best = np.where(ok & (t < best), t, best)
        return best

    def shade(self, p):
        dx, dz = p[:, 0] - self.x, p[:, 2] - self.z
        r = np.sqrt(dx * dx + dz * dz)
        on_cap = (np.abs(p[:, 1] - self.y_top) < 1e-6) | (np.abs(p[:, 1] - self.y_bottom) < 1e-6)
        on_cap &= r < self.radius * (1 - 1e-6)
        n = np.stack([dx, np.zeros_like(dx), dz], 1) / np.maximum(r, 1e-12)[:, None]
        n = np.where(on_cap[:, None], np.stack([np.zeros_like(dx), np.sign(p[:, 1] - (self.y_top + self.y_bottom) / 2),
                                               np.zeros_like(dx)], 1), n)
        u = np.arctan2(dx, dz) * self.radius
        col = self.texture(u, p[:, 1] - self.y_top)
        if self.cap_texture is not None and on_cap.any():
            col[on_cap] = self.cap_texture(dx[on_cap], dz[on_cap])
        return col, n


@dataclass
class SceneDef:
    name: str
    title: str
    description: str
    preset: dict
    primitives: list = field(default_factory=list)


# ----------------------------------------------------------------------------------------- scenes
def _room() -> SceneDef:
    floor_y, ceil_y, back_z, left_x, right_x, front_z = 1.3, -1.5, 5.0, -2.6, 2.6, -2.5
    prims = [
        Plane((0, floor_y, 0), (1, 0, 0), (0, 0, 1), planks((160, 105, 62))),
        Plane((0, ceil_y, 0), (1, 0, 0), (0, 0, -1), solid((235, 232, 225), 0.05)),
        Plane((0, 0, back_z), (1, 0, 0), (0, 1, 0), solid((222, 170, 120), 0.08, seed=11, freq=1.5)),
        Plane((left_x, 0, 0), (0, 0, 1), (0, 1, 0), stripes([(90, 130, 190), (120, 160, 210)], 0.25)),
        Plane((right_x, 0, 0), (0, 0, -1), (0, 1, 0), solid((120, 175, 120), 0.08, seed=12, freq=1.5)),
        Plane((0, 0, front_z), (-1, 0, 0), (0, 1, 0), solid((230, 215, 180), 0.05, seed=13)),
        # window on the left wall
        Box((left_x + 0.02, -0.2, 2.6), (0.03, 0.6, 0.8), {"all": solid((245, 245, 240)),
                                                         "x+": window(1.6, 1.2)}),
        # framed painting on the back wall
        Box((0.3, -0.35, back_z - 0.03), (0.75, 0.5, 0.03), {"all": solid((60, 40, 30)),
                                                             "z-": lambda u, v: painting()(u - 0.75, v - 0.5)}),
        # rug, coffee table, sofa, ball, lamp, bookshelf
        Box((0.1, floor_y - 0.01, 2.8), (1.3, 0.01, 0.9), {"all": lambda u, v: rings(
            [(180, 50, 60), (240, 200, 120), (60, 80, 140)], 0.2)(u - 1.3, v - 0.9)}),
        Box((0.25, 0.88, 2.9), (0.6, 0.03, 0.35), {"all": planks((110, 70, 40), 0.12, seed=21)}, yaw_deg=8),
        *[Cylinder(0.25 + dx, 2.9 + dz, 0.91, floor_y, 0.03, solid((70, 45, 30)))
          for dx, dz in ((-0.5, -0.28), (0.5, -0.28), (-0.5, 0.28), (0.5, 0.28))],
        Box((-0.2, 0.95, 4.45), (1.2, 0.35, 0.45), {"all": solid((70, 110, 160), 0.15, seed=22, freq=8)}),
        Box((-0.2, 0.35, 4.8), (1.2, 0.3, 0.12), {"all": solid((60, 100, 150), 0.15, seed=23, freq=8)}),
        Sphere((-1.1, 1.0, 2.4), 0.3, stripes([(230, 50, 50), (250, 250, 250), (40, 90, 220), (250, 210, 40)],
                                              math.pi / 3, axis=0)),
        Cylinder(1.8, 4.2, -0.3, floor_y, 0.035, solid((50, 50, 55))),
        Cylinder(1.8, 4.2, -0.65, -0.25, 0.22, solid((250, 235, 190), 0.05), solid((255, 245, 210))),
        Box((2.35, 0.2, 2.2), (0.25, 1.1, 0.7), {"all": solid((120, 80, 50)),
                                                 "x-": stripes([(200, 60, 60), (60, 140, 200), (230, 190, 60),
                                                                (90, 170, 90), (160, 90, 180)], 0.09, axis=0)}),
    ]
    return SceneDef("living_room", "Living room", "A furnished room: rug, coffee table, sofa, ball and lamp.",
                    {"preset": "left", "camera_rotation": "center_facing", "movement_distance": 0.3}, prims)


def _street() -> SceneDef:
    ground_y = 1.6
    prims = [
        Sphere((0, 0, 0), 90.0, sky(), emissive=True),
        Plane((0, ground_y, 0), (1, 0, 0), (0, 0, 1), lambda u, v: _asphalt(u, v)),
        Box((4.0, ground_y - 0.08, 10.0), (2.0, 0.08, 30.0), {"all": checker((195, 190, 180), (175, 170, 165), 0.6)}),
        Box((-7.0, ground_y - 0.08, 10.0), (2.0, 0.08, 30.0), {"all": checker((195, 190, 180), (175, 170, 165), 0.6)}),
        Box((11.0, ground_y - 6.0, 7.0), (5.0, 6.0, 7.0), {"all": facade((205, 175, 140), seed=31)}),
        Box((11.0, ground_y - 9.0, 32.0), (5.0, 9.0, 9.0), {"all": facade((150, 170, 190), seed=32, spacing=(2.5, 3.0))}),
        Box((-14.0, ground_y - 7.5, 12.0), (5.0, 7.5, 22.0), {"all": bricks(bw=0.6, bh=0.25)}),
        Box((-3.0, ground_y - 12.0, 55.0), (12.0, 12.0, 4.0), {"all": facade((230, 220, 200), seed=33)}),
        Cylinder(2.4, 6.0, -3.2, ground_y - 0.16, 0.07, solid((40, 60, 50))),
        Sphere((2.4, -3.35, 6.0), 0.25, solid((255, 240, 190))),
        Cylinder(3.2, 11.0, 0.2, ground_y - 0.16, 0.15, solid((110, 80, 55), 0.2, freq=10)),
        Sphere((3.2, -0.9, 11.0), 1.4, solid((70, 150, 70), 0.35, seed=34, freq=3)),
        Cylinder(-5.6, 16.0, -0.5, ground_y - 0.16, 0.15, solid((110, 80, 55), 0.2, freq=10)),
        Sphere((-5.6, -1.6, 16.0), 1.6, solid((90, 160, 60), 0.35, seed=35, freq=3)),
        Cylinder(2.7, 3.4, ground_y - 1.2, ground_y - 0.16, 0.22, stripes([(200, 40, 40), (170, 30, 30)], 0.3, axis=1),
                 solid((230, 60, 60))),
        Box((-1.0, ground_y - 0.75, 20.0), (1.0, 0.6, 2.2), {"all": solid((240, 200, 40), 0.05),
                                                             "z-": stripes([(240, 200, 40), (40, 40, 50)], 0.4)}),
    ]
    return SceneDef("street_corner", "Street corner", "A city street with a corner building, trees, a lamp post and a van.",
                    {"preset": "zoom_in", "camera_rotation": "no_rotation", "movement_distance": 0.6}, prims)


def _asphalt(u, v):
    base = _rgb((85, 85, 90))[None] * (0.85 + 0.3 * fbm(u * 3, v * 3, 41))[:, None]
    dash = (np.abs(u + 1.5) < 0.08) & ((v % 3.0) < 1.6)
    cross = (v > 40) & (v < 44) & ((u % 1.0) < 0.5)
    return np.where((dash | cross)[:, None], _rgb((240, 240, 235))[None], base)


def _tabletop() -> SceneDef:
    table_y, floor_y, wall_z = 0.28, 1.1, 2.1
    wood = planks((180, 120, 70), 0.15, seed=52)
    prims = [
        Plane((0, floor_y, 0), (1, 0, 0), (0, 0, 1), checker((200, 200, 205), (120, 120, 130), 0.4)),
        Plane((0, 0, wall_z), (1, 0, 0), (0, 1, 0), bricks((235, 225, 205), (200, 190, 175), 0.3, 0.15, seed=51)),
        Plane((-2.5, 0, 0), (0, 0, 1), (0, 1, 0), solid((200, 215, 230), 0.05)),
        Plane((2.5, 0, 0), (0, 0, -1), (0, 1, 0), solid((230, 210, 200), 0.05)),
        Plane((0, -1.6, 0), (1, 0, 0), (0, 0, -1), solid((240, 240, 240))),
        Box((0.35, -0.45, wall_z - 0.02), (0.5, 0.33, 0.02), {"all": solid((50, 35, 25)),
                                                            "z-": lambda u, v: painting()(u - 0.5, v - 0.33)}),
        Box((0.0, table_y + 0.025, 1.2), (1.1, 0.025, 0.75), {"all": wood}),
        *[Cylinder(x, z, table_y + 0.05, floor_y, 0.04, solid((90, 60, 35)))
          for x, z in ((-1.0, 0.55), (1.0, 0.55), (-1.0, 1.85), (1.0, 1.85))],
        Cylinder(-0.3, 0.95, table_y - 0.16, table_y, 0.065, stripes([(40, 120, 200), (250, 250, 250)], 0.03, axis=1),
                 solid((70, 40, 20))),
        Sphere((0.02, table_y - 0.09, 0.85), 0.09, checker((240, 80, 40), (250, 220, 60), 0.5)),
        Sphere((0.24, table_y - 0.065, 0.75), 0.065, solid((250, 140, 30), 0.1, freq=20)),
        Box((0.5, table_y - 0.03, 1.1), (0.2, 0.03, 0.15), {"all": solid((180, 40, 50)), "y-": solid((200, 50, 60), 0.05)}, yaw_deg=-12),
        Box((0.48, table_y - 0.085, 1.1), (0.17, 0.025, 0.13), {"all": solid((40, 110, 70)), "y-": solid((50, 130, 80), 0.05)}, yaw_deg=5),
        Box((0.51, table_y - 0.13, 1.1), (0.15, 0.02, 0.11), {"all": solid((240, 200, 60))}, yaw_deg=-3),
        Box((0.2, table_y - 0.045, 1.3), (0.045, 0.045, 0.045), {"all": rubik()}, yaw_deg=30),
        Cylinder(-0.55, 1.35, table_y - 0.4, table_y, 0.09, stripes([(120, 60, 160), (200, 160, 220)], 0.06, axis=1),
                 solid((60, 30, 80))),
        Sphere((-0.55, table_y - 0.5, 1.35), 0.13, solid((240, 90, 130), 0.2, freq=12)),
    ]
    return SceneDef("tabletop", "Tabletop", "Objects on a wooden table: mug, balls, books, a puzzle cube and a vase.",
                    {"preset": "clockwise", "camera_rotation": "center_facing", "movement_distance": 0.15}, prims)


SCENES: dict[str, Callable[[], SceneDef]] = {"living_room": _room, "street_corner": _street, "tabletop": _tabletop}


def scene_def(name: str) -> SceneDef:
    if name not in SCENES:
        raise KeyError(name)
    return SCENES[name]()


def seed_intrinsics(height: int = SAMPLE_HEIGHT, width: int = SAMPLE_WIDTH) -> np.ndarray:
    """The seed camera K of the samples: 60 degree vertical FOV, principal point (W/2, H/2)."""
    f = (height / 2.0) / math.tan(math.radians(SAMPLE_FOV_Y_DEG) / 2.0)
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def _screen_rect(prim, w2c, K, margin: float = 2.0):
    """Pixel rectangle that contains the primitive's projection, or None (unbounded / behind the camera)."""
    corners = prim.aabb() if hasattr(prim, "aabb") else None
    if corners is None:
        return None
    cam = corners @ w2c[:3, :3].T + w2c[:3, 3]
    if (cam[:, 2] <= 1e-3).any():
        return None
    uv = cam @ K.T
    uv = uv[:, :2] / uv[:, 2:3]
    return uv[:, 0].min() - margin, uv[:, 0].max() + margin, uv[:, 1].min() - margin, uv[:, 1].max() + margin


def render(name: str, w2c, K, height: int, width: int, rows_per_chunk: int = 176) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast scene `name` from camera (w2c, K) -> (rgb float64 [H,W,3] in [0,1], z-depth float32 [H,W])."""
    sdef = scene_def(name)
    w2c = np.asarray(w2c, np.float64)
    K = np.asarray(K, np.float64)
    c2w = np.linalg.inv(w2c)
    origin = c2w[:3, 3]
    Kinv = np.linalg.inv(K)
    rgb = np.zeros((height, width, 3))
    depth = np.zeros((height, width), np.float32)
    xs = np.arange(width, dtype=np.float64)
    for r0 in range(0, height, rows_per_chunk):
        ys = np.arange(r0, min(height, r0 + rows_per_chunk), dtype=np.float64)
        gx, gy = np.meshgrid(xs, ys)
        pix = np.stack([gx.ravel(), gy.ravel(), np.ones(gx.size)], 1)
        d = _vm(_vm(pix, Kinv.T), c2w[:3, :3].T)  # camera z component = 1, so t is z-depth
        best_t = np.full(len(d), np.inf)
        best_i = np.full(len(d), -1)
        px, py = pix[:, 0], pix[:, 1]
        for i, prim in enumerate(sdef.primitives):
            rect = _screen_rect(prim, w2c, K)
            if rect is None:
                t = prim.intersect(origin, d)
                closer = t < best_t
                best_t = np.where(closer, t, best_t)
                best_i = np.where(closer, i, best_i)
                continue
            x0, x1, y0, y1 = rect
            if y1 < ys[0] or y0 > ys[-1]:
                continue
            sel = np.flatnonzero((px >= x0) & (px <= x1) & (py >= y0) & (py <= y1))
            if sel.size == 0:
                continue
            t = prim.intersect(origin, d[sel])
            closer = t < best_t[sel]
            best_t[sel[closer]] = t[closer]
            best_i[sel[closer]] = i
        col = np.zeros((len(d), 3))
        for i, prim in enumerate(sdef.primitives):
            sel = best_i == i
            if not sel.any():
                continue
            p = origin + d[sel] * best_t[sel, None]
            c, n = prim.shade(p)
            if getattr(prim, "emissive", False):
                col[sel] = c
            else:
                lam = np.abs(_dot(n, LIGHT))  # two-sided Lambert: view-independent either way
                col[sel] = c * (0.45 + 0.6 * lam)[:, None]
        hit = np.isfinite(best_t)
        rows = slice(r0, r0 + len(ys))
        rgb[rows] = np.clip(col, 0, 1).reshape(len(ys), width, 3)
        depth[rows] = np.where(hit, best_t, 0.0).reshape(len(ys), width).astype(np.float32)
    return rgb, depth


def render_uint8(name: str, w2c, K, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    rgb, depth = render(name, w2c, K, height, width)
    return np.round(rgb * 255.0).astype(np.uint8), depth
