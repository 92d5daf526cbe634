"""Plotly figures: the 3D view (the scene as a coloured surface or points, keyframe frustums, the path, the
current frame's camera) and the coverage chart.

Everything is drawn in display coordinates (see `studio.viewcam`). The 3D view is one persistent figure:
the scene trace is sent once per scene; path edits replace only the camera traces (`camera_traces`, the
slots from PATH_TRACE on), which the browser applies to the live figure (studio/web/studio.js).

Budgets (what a GPU-less browser, i.e. software WebGL, still orbits smoothly): the surface is a grid mesh of
`VERTEX_BUDGET` vertices (`DETAIL_LEVELS`, or $GEN3C_STUDIO_VERTICES); the points mode draws `POINT_BUDGET`
square markers ($GEN3C_STUDIO_POINTS). plotly draws every marker as a glyph mesh, so points cost several
times the triangles of the surface for the same coverage.
"""
from __future__ import annotations

import math
import os

import numpy as np
import plotly.graph_objects as go

from engine.cameras import look_at_w2c
from studio.viewcam import SceneBox, plotly_camera_from_pose, to_display


def _budget(env: str, default: int, lo: int, hi: int) -> int:
    """An integer budget from the environment variable `env` (in lo..hi) or `default`."""
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{env} must be a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ValueError(f"{env} must be in {lo}..{hi}, got {value}")
    return value


POINT_BUDGET = _budget("GEN3C_STUDIO_POINTS", 20_000, 1_000, 500_000)
DETAIL_LEVELS = {"low": 6_000, "standard": 16_000, "high": 60_000}  # surface vertices
DEFAULT_DETAIL = "standard"
VERTEX_BUDGET = _budget("GEN3C_STUDIO_VERTICES", DETAIL_LEVELS[DEFAULT_DETAIL], 500, 500_000)
MARKER_SIZE = 1.5
MARKER_SYMBOL = "square"  # WebGL draws each marker as a glyph mesh: a square is far fewer triangles than a circle
MAX_FRUSTUMS = 24  # more keyframes than this -> draw every n-th (always first, last, selected)
FRUSTUM_SHARE = 0.05  # frustum depth as a share of the scene's median depth
KEYFRAME_COLOUR = "#60a5fa"
SELECTED_COLOUR = "#22d3ee"
CURRENT_COLOUR = "#fb923c"
PATH_COLOUR = "#d8b4fe"
LABEL_COLOUR = "#f0f9ff"
BACKGROUND = "#2b3340"  # a dark backdrop: the scene's colours and the white keyframe frame read well on it

CLOUD_TRACE = 0  # the scene (surface or points); the JS click hook accepts clicks on this trace only
PATH_TRACE, KEYFRAMES_TRACE, SELECTED_TRACE, LABELS_TRACE, CURRENT_TRACE = 1, 2, 3, 4, 5
CAMERA_TRACES = (PATH_TRACE, KEYFRAMES_TRACE, SELECTED_TRACE, LABELS_TRACE, CURRENT_TRACE)
CURRENT_TRACE_NAME = "current frame"
FRAMES_META = "studio_frames"  # layout.meta key: per-frame highlight geometry for studio.js


def _hex_colours(rgb: np.ndarray) -> list[str]:
    rgb = np.asarray(rgb, dtype=np.uint8).reshape(-1, 3)
    return ["#%02x%02x%02x" % tuple(c) for c in rgb.tolist()]


# a frustum polyline as indices into its 6 key points (apex, 4 image corners, up tick); -1 = a gap
FRUSTUM_SEQUENCE = (0, 1, 2, 0, 3, 4, 0, -1, 1, 2, 3, 4, 1, -1, 1, 5, 2, -1)


def frustum_size(focus_distance: float) -> float:
    """Frustum depth (apex to image rectangle) for a scene whose median depth is `focus_distance`."""
    return FRUSTUM_SHARE * float(focus_distance)


def frustum_points(w2c: np.ndarray, fov_y_deg: float, aspect: float, size: float) -> np.ndarray:
    """[6, 3] display points of a camera frustum: apex, the image rectangle's corners, the up tick."""
    w2c = np.asarray(w2c, dtype=np.float64)
    rot, t = w2c[:3, :3], w2c[:3, 3]
    centre = -rot.T @ t
    hy = size * math.tan(math.radians(fov_y_deg) / 2)
    hx = hy * aspect
    cam = np.array([[-hx, -hy, size], [hx, -hy, size], [hx, hy, size], [-hx, hy, size],
                    [0.0, -hy * 1.4, size]])  # the tick: a tip above the image's top edge (-y)
    return to_display(np.vstack([centre, cam @ rot + centre]))  # rows: rot.T @ p + centre


def frustum_lines(w2c: np.ndarray, fov_y_deg: float, aspect: float, size: float) -> np.ndarray:
    """Polyline (display coords, NaN-separated) of a camera frustum: apex, image rectangle, up tick."""
    pts = np.vstack([frustum_points(w2c, fov_y_deg, aspect, size), np.full((1, 3), np.nan)])
    return pts[list(FRUSTUM_SEQUENCE)]


def frame_geometry(w2cs: np.ndarray, fovs_y_deg: np.ndarray, aspect: float, size: float) -> np.ndarray:
    """[T, 6, 3] frustum key points (display coords, see `frustum_points`) of every path frame."""
    return np.stack([frustum_points(w, f, aspect, size) for w, f in zip(np.asarray(w2cs), np.asarray(fovs_y_deg))])


def keyframe_indices_to_draw(count: int, selected: int | None) -> list[int]:
    """All keyframes, or every n-th (always first, last and selected) when there are many."""
    if count <= MAX_FRUSTUMS:
        return list(range(count))
    step = math.ceil(count / MAX_FRUSTUMS)
    keep = set(range(0, count, step)) | {count - 1}
    if selected is not None and 0 <= selected < count:
        keep.add(selected)
    return sorted(keep)


def _xyz(points: np.ndarray) -> dict:
    """Trace coordinates as JSON-ready lists (None where a polyline has a gap)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    out = {}
    for k, axis in enumerate("xyz"):
        col = np.round(pts[:, k], 6)
        out[axis] = [None if not math.isfinite(v) else float(v) for v in col.tolist()]
    return out


def _lines(polylines: list[np.ndarray], colour: str, width: float, name: str) -> dict:
    pts = (np.concatenate([np.vstack([p, np.full((1, 3), np.nan)]) for p in polylines]) if polylines
           else np.zeros((0, 3)))
    return dict(type="scatter3d", mode="lines", name=name, line=dict(color=colour, width=width),
                hoverinfo="skip", connectgaps=False, showlegend=False, **_xyz(pts))


def camera_traces(*, aspect: float, focus_distance: float, keyframes=(), selected: int | None = None,
                  path_centres: np.ndarray | None = None, frame_cameras=None, current: int = 0) -> tuple[list, dict]:
    """The camera traces of the 3D view (slots PATH_TRACE.. CURRENT_TRACE, in that order) and the per-frame
    highlight geometry for layout.meta[FRAMES_META] ({} without frames).

    keyframes: (w2c, fov_y_deg) pairs; path_centres: world camera centres along the sampled path;
    frame_cameras: (w2cs [T,4,4], fov_y_deg [T]) of every path frame, `current` the one highlighted.
    """
    size = frustum_size(focus_distance)
    centres = np.zeros((0, 3)) if path_centres is None or not len(path_centres) else to_display(path_centres)
    path = dict(type="scatter3d", mode="lines", name="path", line=dict(color=PATH_COLOUR, width=4),
                hoverinfo="skip", showlegend=False, **_xyz(centres))
    draw = keyframe_indices_to_draw(len(keyframes), selected)
    normal = [frustum_lines(keyframes[i][0], keyframes[i][1], aspect, size) for i in draw if i != selected]
    has_selected = selected is not None and 0 <= selected < len(keyframes)
    sel = [frustum_lines(keyframes[selected][0], keyframes[selected][1], aspect, size)] if has_selected else []
    label_at = (np.array([frustum_points(keyframes[i][0], keyframes[i][1], aspect, size)[5] for i in draw])
                if draw else np.zeros((0, 3)))
    labels = dict(type="scatter3d", mode="text", name="keyframe numbers", text=[str(i + 1) for i in draw],
                  textposition="top center", textfont=dict(color=LABEL_COLOUR, size=15, family="Arial Black"),
                  hoverinfo="skip", showlegend=False, **_xyz(label_at))
    meta, current_lines = {}, []
    if frame_cameras is not None and len(frame_cameras[0]):
        geometry = frame_geometry(frame_cameras[0], frame_cameras[1], aspect, size * 1.15)
        t = min(max(int(current), 0), len(geometry) - 1)
        current_lines = [geometry[t]]
        meta = {"trace": CURRENT_TRACE, "sequence": list(FRUSTUM_SEQUENCE),
                "points": np.round(geometry, 5).reshape(len(geometry), -1).tolist()}
    cur = _lines([np.vstack([g, np.full((1, 3), np.nan)])[list(FRUSTUM_SEQUENCE)] for g in current_lines],
                 CURRENT_COLOUR, 7, CURRENT_TRACE_NAME)
    traces = [path, _lines(normal, KEYFRAME_COLOUR, 3, "keyframes"),
              _lines(sel, SELECTED_COLOUR, 6, f"selected keyframe {selected + 1}" if has_selected else "selected keyframe"),
              labels, cur]
    return traces, meta


def _typed(values: np.ndarray):
    """A float32 / int32 array as plotly.js's base64 typed-array spec ({dtype, bdata}): compact JSON."""
    import base64

    arr = np.ascontiguousarray(values)
    kind = {np.dtype(np.float32): "f4", np.dtype(np.int32): "i4"}[arr.dtype]
    return {"dtype": kind, "bdata": base64.b64encode(arr.astype(arr.dtype.newbyteorder("<")).tobytes()).decode()}


def _surface_trace(mesh) -> dict:
    v = to_display(mesh.vertices).astype(np.float32)
    f = mesh.faces.astype(np.int32)
    return dict(type="mesh3d", name="scene surface", x=_typed(v[:, 0]), y=_typed(v[:, 1]), z=_typed(v[:, 2]),
                i=_typed(f[:, 0]), j=_typed(f[:, 1]), k=_typed(f[:, 2]),
                flatshading=True, hoverinfo="none", showscale=False, showlegend=False,
                lighting=dict(ambient=1.0, diffuse=0.0, specular=0.0, roughness=1.0, fresnel=0.0),
                lightposition=dict(x=0, y=0, z=1e5))


def _points_trace(xyz: np.ndarray) -> dict:
    pts = to_display(xyz).astype(np.float32)
    return dict(type="scatter3d", mode="markers", name="point cloud", x=_typed(pts[:, 0]), y=_typed(pts[:, 1]),
                z=_typed(pts[:, 2]),
                marker=dict(size=MARKER_SIZE, symbol=MARKER_SYMBOL, line=dict(width=0)),
                hoverinfo="none", showlegend=False)


def scene_figure(
    xyz: np.ndarray | None = None,
    rgb: np.ndarray | None = None,
    *,
    mesh=None,
    box: SceneBox,
    aspect: float,
    focus_distance: float,
    keyframes=(),
    selected: int | None = None,
    path_centres: np.ndarray | None = None,
    frame_cameras=None,
    current: int = 0,
    uirevision: str = "scene",
    scene_key: str = "",
    view_w2c: np.ndarray | None = None,
    view_distance: float | None = None,
) -> dict:
    """The 3D view as a plotly JSON dict (see `to_json`): the scene (a `studio.mesh.SceneMesh` surface when
    `mesh` is given, else the points xyz/rgb), then the camera traces (see `camera_traces`).

    The initial view is `view_w2c` (a pose, orbiting a point `view_distance` ahead), default: behind and
    above the first camera; turntable orbiting keeps display +z (world up) up. `scene_key` names the scene:
    the browser keeps the user's view when a new figure of the same scene arrives (a bigger box). Colours are set after
    plotly's validation, which would take seconds over many colour strings.
    """
    if mesh is not None:
        scene_trace = _surface_trace(mesh)
        scene_trace["vertexcolor"] = _hex_colours(mesh.colours)
    else:
        scene_trace = _points_trace(xyz)
        scene_trace["marker"]["color"] = _hex_colours(rgb)
    traces, meta = camera_traces(aspect=aspect, focus_distance=focus_distance, keyframes=keyframes,
                                 selected=selected, path_centres=path_centres, frame_cameras=frame_cameras,
                                 current=current)
    if view_w2c is None:  # behind and above the first camera, looking at the scene centre
        view_w2c = look_at_w2c([0.0, -0.35 * focus_distance, -0.9 * focus_distance],
                               [0.0, 0.0, focus_distance], [0.0, -1.0, 0.0])
        view_distance = 1.9 * focus_distance
    camera = plotly_camera_from_pose(view_w2c, box, view_distance or focus_distance, world_up=True)
    scene = box.layout()
    for name in ("xaxis", "yaxis", "zaxis"):  # no axes: the box is room for the path, not a thing to look at
        scene[name].update(visible=False, showspikes=False)
    scene["camera"] = dict(camera, projection=dict(type="perspective"))
    scene["dragmode"] = "turntable"  # the screen's up stays display +z (world up): no upside-down views
    scene["bgcolor"] = BACKGROUND
    layout = dict(scene=scene, uirevision=uirevision, meta={FRAMES_META: meta, "studio_scene": scene_key},
                  margin=dict(l=0, r=0, t=0, b=0), showlegend=False,
                  paper_bgcolor="rgba(0,0,0,0)", clickmode="event", hovermode="closest")
    return {"data": [scene_trace] + traces, "layout": layout}


def to_json(figure: dict) -> str:
    """Serialise a figure dict from `scene_figure` (numpy arrays as base64 typed arrays)."""
    from plotly.io.json import to_json_plotly

    return to_json_plotly(figure)


def coverage_figure(coverage: np.ndarray, threshold: float, current: int | None = None,
                    frames: np.ndarray | None = None) -> go.Figure:
    """Coverage (share of covered pixels) per rendered frame, frames under `threshold` marked in red, the
    current frame as a vertical line (shape 1; the browser moves it while scrubbing)."""
    cov = np.asarray(coverage, dtype=np.float64)
    frames = np.arange(len(cov)) if frames is None else np.asarray(frames)
    low = cov < threshold
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=frames, y=cov, mode="lines", name="coverage",
                             line=dict(color="#2563eb", width=2)))
    if low.any():
        fig.add_trace(go.Scatter(x=frames[low], y=cov[low], mode="markers", name=f"< {threshold:.0%}",
                                 marker=dict(color="#dc2626", size=5)))
    fig.add_hline(y=threshold, line=dict(color="#dc2626", dash="dash", width=1))
    fig.add_vline(x=0 if current is None else current, line=dict(color=CURRENT_COLOUR, width=2),
                  name="current frame")
    fig.update_layout(
        height=120, margin=dict(l=40, r=8, t=6, b=26), showlegend=False,
        xaxis=dict(title=dict(text="frame", standoff=2), range=[0, max(int(frames[-1]) if len(frames) else 1, 1)]),
        yaxis=dict(title=dict(text="covered"), range=[0, 1.02], tickformat=".0%"),
        meta={"studio": "coverage"},
    )
    return fig
