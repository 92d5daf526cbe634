"""Between our camera poses and the plotly 3D view.

World coordinates are OpenCV (x right, y down, z forward from the first camera). The 3D view shows them
turned so that the image's "up" is plotly's default up (+z) and the first camera looks along +y:

    display = DISPLAY_FROM_WORLD @ world,  i.e. (x, y, z)_world -> (x, z, -y)_display

This is a proper rotation, so angles and handedness are kept and the inverse is the transpose.

Plotly keeps its camera (eye, center, up) in *normalised scene units*: with the axis ranges
[lo_i, hi_i] and aspect ratio a_i of the scene, a display point p maps to
n_i = (p_i - (lo_i + hi_i) / 2) * a_i / (hi_i - lo_i) (plotly.js gl-plot3d model matrix, autoScale and
autoCenter on). We set the aspect ratio proportional to the ranges, so the map is isotropic.

Keyframe field of view: plotly renders with a fixed 45 degree vertical perspective FOV on a canvas of any
aspect; a keyframe added from the view takes the *scene's* vertical FOV instead, so that every keyframe
frames the scene like the input image. Position, viewing direction and roll are exactly the view's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.cameras import look_at_w2c
from engine.errors import InputError
from engine.json_input import parse_json

DISPLAY_FROM_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
WORLD_FROM_DISPLAY = DISPLAY_FROM_WORLD.T
PLOTLY_FOV_Y_DEG = 45.0  # gl-plot3d default fovy = pi / 4
# What the browser hooks send (a camera and the axis box) is a few hundred bytes.
MAX_PAYLOAD_BYTES = 64 * 1024


def to_display(points_world: np.ndarray) -> np.ndarray:
    """World points [..., 3] -> display points [..., 3]."""
    return np.asarray(points_world, dtype=np.float64) @ DISPLAY_FROM_WORLD.T


def to_world(points_display: np.ndarray) -> np.ndarray:
    """Display points [..., 3] -> world points [..., 3]."""
    return np.asarray(points_display, dtype=np.float64) @ WORLD_FROM_DISPLAY.T


@dataclass(frozen=True)
class SceneBox:
    """Axis ranges (display units) and aspect ratio of the plotly scene."""

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    aspect: tuple[float, float, float]

    @classmethod
    def around(cls, display_points: np.ndarray, pad: float = 0.05) -> "SceneBox":
        """A box holding the points, padded, with an aspect ratio proportional to its ranges."""
        pts = np.asarray(display_points, dtype=np.float64).reshape(-1, 3)
        pts = pts[np.isfinite(pts).all(axis=1)]
        if len(pts) == 0:
            pts = np.zeros((1, 3))
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        span = np.maximum(hi - lo, 1e-3)
        size = span.max()
        # no axis thinner than 5 % of the largest so the box never degenerates
        span = np.maximum(span, 0.05 * size)
        mid = (lo + hi) / 2
        lo, hi = mid - span / 2 * (1 + 2 * pad), mid + span / 2 * (1 + 2 * pad)
        rng = hi - lo
        aspect = rng / rng.max()
        return cls(tuple(map(float, lo)), tuple(map(float, hi)), tuple(map(float, aspect)))

    def layout(self) -> dict:
        """The plotly `scene` settings (ranges and manual aspect ratio) for this box."""
        axes = {}
        for i, name in enumerate("xyz"):
            axes[f"{name}axis"] = dict(range=[self.lo[i], self.hi[i]], autorange=False)
        return dict(aspectmode="manual", aspectratio=dict(zip("xyz", self.aspect)), **axes)

    def _scale(self) -> np.ndarray:
        return np.array(self.aspect) / (np.array(self.hi) - np.array(self.lo))

    def _mid(self) -> np.ndarray:
        return (np.array(self.lo) + np.array(self.hi)) / 2

    def normalise(self, display_points: np.ndarray) -> np.ndarray:
        return (np.asarray(display_points, dtype=np.float64) - self._mid()) * self._scale()

    def denormalise(self, normalised: np.ndarray) -> np.ndarray:
        return np.asarray(normalised, dtype=np.float64) / self._scale() + self._mid()


VERTICAL_SIN = 1e-4  # views closer than this (sine of the angle) to straight down/up get FALLBACK_UP
FALLBACK_UP_DISPLAY = np.array([0.0, 1.0, 0.0])  # straight down/up: the image top points into the scene


def pose_from_plotly_camera(camera: dict, box: SceneBox) -> np.ndarray:
    """w2c [4,4] of the view plotly shows for `camera` = {eye, center, up} (normalised scene units).

    The image's up is `up` made orthogonal to the viewing direction, as plotly draws it. Looking
    (almost) exactly along `up` (straight down or up in the turntable view) leaves the roll undefined;
    then the top of the image points along display +y (away from the input camera) instead of failing.
    """
    try:
        vec = {k: np.array([float(camera[k][a]) for a in "xyz"]) for k in ("eye", "center", "up")}
    except (KeyError, TypeError, ValueError):
        raise InputError("3D view camera: expected eye, center and up with x, y, z numbers") from None
    if not all(np.isfinite(v).all() for v in vec.values()):
        raise InputError("3D view camera: non-finite values")
    eye_d, center_d = box.denormalise(vec["eye"]), box.denormalise(vec["center"])
    up_d = vec["up"] / box._scale()  # a direction: scale without the offset
    forward = center_d - eye_d
    if np.linalg.norm(forward) < 1e-12 or np.linalg.norm(up_d) < 1e-12:
        raise InputError("3D view camera: eye and center coincide or up is zero")
    f, u = forward / np.linalg.norm(forward), up_d / np.linalg.norm(up_d)
    if np.linalg.norm(np.cross(f, u)) < VERTICAL_SIN:
        up_d = FALLBACK_UP_DISPLAY
    return look_at_w2c(to_world(eye_d), to_world(center_d), to_world(up_d))


def plotly_camera_from_pose(w2c: np.ndarray, box: SceneBox, focus_distance: float,
                            world_up: bool = False) -> dict:
    """The plotly camera {eye, center, up} showing pose `w2c`, orbiting a point `focus_distance` ahead.

    world_up: up = display +z (what plotly's turntable drag keeps) instead of the pose's own image up;
    the view then has the pose's position and direction with no roll.
    """
    w2c = np.asarray(w2c, dtype=np.float64)
    rot = w2c[:3, :3]
    eye = -rot.T @ w2c[:3, 3]
    forward, down = rot[2], rot[1]
    center = eye + forward * float(focus_distance)
    up_n = np.array([0.0, 0.0, 1.0]) if world_up else to_display(-down) * box._scale()
    up_n /= np.linalg.norm(up_n)
    as_xyz = lambda v: {a: float(x) for a, x in zip("xyz", v)}  # noqa: E731
    return {
        "eye": as_xyz(box.normalise(to_display(eye))),
        "center": as_xyz(box.normalise(to_display(center))),
        "up": as_xyz(up_n),
    }


def parse_view_payload(text: str) -> tuple[dict, SceneBox | None]:
    """The JSON the browser hook sends: {camera: {eye, center, up}, ranges: {x: [lo, hi], ...}, aspect: {...}}.

    Returns the camera and the live scene box when the payload carries ranges (else None: use ours).
    """
    if not text or not text.strip():
        raise InputError("3D view camera: nothing received from the browser (is the 3D view shown?)")
    data = parse_json(text, "3D view camera", max_bytes=MAX_PAYLOAD_BYTES)
    if not isinstance(data, dict) or "camera" not in data:
        raise InputError("3D view camera: missing 'camera'")
    box = None
    if data.get("ranges") and data.get("aspect"):
        try:
            lo = tuple(float(data["ranges"][a][0]) for a in "xyz")
            hi = tuple(float(data["ranges"][a][1]) for a in "xyz")
            aspect = tuple(float(data["aspect"][a]) for a in "xyz")
        except (KeyError, TypeError, ValueError, IndexError):
            raise InputError("3D view camera: malformed axis ranges") from None
        vals = np.array(lo + hi + aspect)
        if not np.isfinite(vals).all() or any(h <= l for l, h in zip(lo, hi)) or min(aspect) <= 0:
            raise InputError("3D view camera: degenerate axis ranges")
        box = SceneBox(lo, hi, aspect)
    return data["camera"], box


# the 3D view's own field of view is set by the browser so that the frame of a keyframe (FOV f, the model's
# aspect) fills FRAME_FILL of the plot's height: tan(view/2) = tan(f/2) / FRAME_FILL (width permitting)
FRAME_FILL = 0.8
OVERVIEW_ELEVATION_DEG = 28.0  # the default view looks down on the scene from behind the input camera
OVERVIEW_ASPECT = 1.45  # plot width / height assumed when fitting the default view


def view_fov_for_frame(frame_fov_y_deg: float) -> float:
    """The 3D view's vertical FOV (degrees) that shows a keyframe frame of `frame_fov_y_deg` at FRAME_FILL."""
    return float(np.degrees(2 * np.arctan(np.tan(np.radians(frame_fov_y_deg) / 2) / FRAME_FILL)))


def overview_pose(points_world: np.ndarray, view_fov_y_deg: float, aspect: float = OVERVIEW_ASPECT,
                  margin: float = 1.06) -> tuple[np.ndarray, float]:
    """A view from behind and above the input camera that shows every point: (w2c, distance to the orbit
    centre). The camera looks along the input camera's forward axis tilted down OVERVIEW_ELEVATION_DEG, at
    the middle of the points' box, from just far enough back for all of them to fit the view."""
    pts = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) == 0:
        pts = np.zeros((1, 3))
    centre = (pts.min(axis=0) + pts.max(axis=0)) / 2
    el = np.radians(OVERVIEW_ELEVATION_DEG)
    forward = np.array([0.0, np.sin(el), np.cos(el)])  # world: +z ahead, +y down
    up = np.array([0.0, -1.0, 0.0])
    right = np.cross(-up, forward)
    right /= np.linalg.norm(right)
    cam_up = np.cross(forward, right)
    rel = pts - centre
    x, y, z = rel @ right, rel @ cam_up, rel @ forward
    ty = np.tan(np.radians(view_fov_y_deg) / 2)
    tx = ty * aspect
    # the eye sits at centre - D * forward; a point is inside when |x| <= tx (D + z) and |y| <= ty (D + z)
    distance = float(max(np.max(np.abs(x) * margin / tx - z), np.max(np.abs(y) * margin / ty - z), 1e-3))
    eye = centre - distance * forward
    return look_at_w2c(eye, centre, up), distance
