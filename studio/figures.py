"""Plotly figures: the point-cloud scene with camera frustums and path, and the coverage chart.

Everything is drawn in display coordinates (see `studio.viewcam`). The point cloud is capped at
`POINT_BUDGET` points (sent to the browser as JSON on every path change; plotly encodes the numeric
arrays as base64, the colours as "#rrggbb" strings: about 0.6 MB at 20k points).

Point budget: 20,000 points drawn as square markers (override with $GEN3C_STUDIO_POINTS). Measured on a
GPU-less client (headless Chromium, software WebGL, 2 shared CPU cores; animation-frame interval while
orbiting, median of one 12-step drag, noisy): circles 50k ~1600 ms, 30k ~1400 ms, 20k ~860 ms; squares
50k ~780 ms, 30k ~580 ms, 20k ~270 ms. plotly draws every marker as a glyph mesh, so circles cost several
times the triangles of squares; 20k squares keep orbiting usable without a GPU (a GPU draws any of these
at full frame rate) and the 1.5 px squares still read as the scene.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from engine.cameras import look_at_w2c
from studio.viewcam import SceneBox, plotly_camera_from_pose, to_display


def _point_budget(default: int = 20_000) -> int:
    """The cloud's point budget: $GEN3C_STUDIO_POINTS (1,000-500,000) or `default`."""
    import os

    raw = os.environ.get("GEN3C_STUDIO_POINTS", "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"GEN3C_STUDIO_POINTS must be a whole number, got {raw!r}") from None
    if not 1_000 <= value <= 500_000:
        raise ValueError(f"GEN3C_STUDIO_POINTS must be in 1000..500000, got {value}")
    return value


POINT_BUDGET = _point_budget()
MARKER_SIZE = 1.5
MARKER_SYMBOL = "square"  # WebGL draws each marker as a glyph mesh: a square is far fewer triangles than a circle
MAX_FRUSTUMS = 24  # more keyframes than this (presets: one per frame) -> draw every n-th
KEYFRAME_COLOUR = "#3b82f6"
SELECTED_COLOUR = "#06b6d4"
CURRENT_COLOUR = "#f97316"
PATH_COLOUR = "#a855f7"
CLOUD_TRACE = 0  # the JS click hook accepts clicks on this trace only
CURRENT_TRACE_NAME = "current frame"
FRAMES_META = "studio_frames"  # layout.meta key: per-frame highlight geometry for studio.js


def _hex_colours(rgb: np.ndarray) -> list[str]:
    rgb = np.asarray(rgb, dtype=np.uint8).reshape(-1, 3)
    return ["#%02x%02x%02x" % tuple(c) for c in rgb.tolist()]


# a frustum polyline as indices into its 6 key points (apex, 4 image corners, up tick); -1 = a gap
FRUSTUM_SEQUENCE = (0, 1, 2, 0, 3, 4, 0, -1, 1, 2, 3, 4, 1, -1, 1, 5, 2, -1)


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


def _lines_trace(polylines: list[np.ndarray], colour: str, width: float, name: str) -> go.Scatter3d:
    if polylines:
        pts = np.concatenate([np.vstack([p, np.full((1, 3), np.nan)]) for p in polylines])
    else:
        pts = np.zeros((0, 3))
    return go.Scatter3d(x=pts[:, 0], y=pts[:, 1], z=pts[:, 2], mode="lines", name=name,
                        line=dict(color=colour, width=width), hoverinfo="skip", connectgaps=False)


def keyframe_indices_to_draw(count: int, selected: int | None) -> list[int]:
    """All keyframes, or every n-th (always first, last and selected) when there are many."""
    if count <= MAX_FRUSTUMS:
        return list(range(count))
    step = math.ceil(count / MAX_FRUSTUMS)
    keep = set(range(0, count, step)) | {count - 1}
    if selected is not None and 0 <= selected < count:
        keep.add(selected)
    return sorted(keep)


def scene_figure(
    xyz: np.ndarray,
    rgb: np.ndarray,
    *,
    box: SceneBox,
    aspect: float,
    focus_distance: float,
    keyframes: list[tuple[np.ndarray, float]] = (),
    selected: int | None = None,
    path_centres: np.ndarray | None = None,
    frame_cameras: tuple[np.ndarray, np.ndarray] | None = None,
    current: int = 0,
    uirevision: str = "scene",
) -> dict:
    """The 3D view: coloured points, numbered keyframe frustums, the path line, the current camera.

    xyz/rgb: world points and uint8 colours (already capped); keyframes: (w2c, fov_y_deg) pairs;
    path_centres: world camera centres along the sampled path; frame_cameras: (w2cs [T,4,4], fov_y_deg [T])
    of every path frame, `current` the one highlighted. The frustum key points of every frame travel in
    `layout.meta` (see `frame_geometry`) so the browser moves the highlight without a new figure.
    Returns the figure as a plotly JSON dict (see `to_json`): plotly's per-element validation of many
    colour strings would take seconds, so the cloud colours are set after validation.
    """
    pts = to_display(xyz).astype(np.float32)  # float32 arrays travel as base64
    colours = _hex_colours(rgb)
    size = 0.12 * float(focus_distance)
    traces = [go.Scatter3d(
        x=pts[:, 0], y=pts[:, 1], z=pts[:, 2], mode="markers", name="point cloud",
        marker=dict(size=MARKER_SIZE, symbol=MARKER_SYMBOL, line=dict(width=0)),
        hoverinfo="none", showlegend=False,
    )]
    if path_centres is not None and len(path_centres):
        pc = to_display(path_centres)
        traces.append(go.Scatter3d(x=pc[:, 0], y=pc[:, 1], z=pc[:, 2], mode="lines", name="path",
                                   line=dict(color=PATH_COLOUR, width=4), hoverinfo="skip"))
    draw = keyframe_indices_to_draw(len(keyframes), selected)
    normal = [frustum_lines(keyframes[i][0], keyframes[i][1], aspect, size) for i in draw if i != selected]
    traces.append(_lines_trace(normal, KEYFRAME_COLOUR, 3, "keyframes"))
    if selected is not None and 0 <= selected < len(keyframes):
        sel = frustum_lines(keyframes[selected][0], keyframes[selected][1], aspect, size)
        traces.append(_lines_trace([sel], SELECTED_COLOUR, 6, f"selected keyframe {selected + 1}"))
    if draw:
        centres = to_display(np.array([-keyframes[i][0][:3, :3].T @ keyframes[i][0][:3, 3] for i in draw]))
        traces.append(go.Scatter3d(
            x=centres[:, 0], y=centres[:, 1], z=centres[:, 2], mode="text", name="keyframe numbers",
            text=[str(i + 1) for i in draw], textposition="top center",
            textfont=dict(color=KEYFRAME_COLOUR, size=12), hoverinfo="skip", showlegend=False))
    meta = {}
    if frame_cameras is not None and len(frame_cameras[0]):
        geometry = frame_geometry(frame_cameras[0], frame_cameras[1], aspect, size * 1.2)
        t = min(max(int(current), 0), len(geometry) - 1)
        cur = np.vstack([geometry[t], np.full((1, 3), np.nan)])[list(FRUSTUM_SEQUENCE)]
        meta = {FRAMES_META: {"trace": len(traces), "sequence": list(FRUSTUM_SEQUENCE),
                              "points": np.round(geometry, 5).reshape(len(geometry), -1).tolist()}}
        traces.append(_lines_trace([cur], CURRENT_COLOUR, 7, CURRENT_TRACE_NAME))

    # initial view: from behind and above the first camera, looking at the scene centre
    start = look_at_w2c([0.0, -0.35 * focus_distance, -0.9 * focus_distance],
                        [0.0, 0.0, focus_distance], [0.0, -1.0, 0.0])
    camera = plotly_camera_from_pose(start, box, 1.9 * focus_distance, world_up=True)
    scene = box.layout()
    for name in ("xaxis", "yaxis", "zaxis"):
        scene[name].update(showbackground=False, showgrid=True, zeroline=False, title="",
                           showticklabels=False, showspikes=False)
    scene["camera"] = dict(camera, projection=dict(type="perspective"))
    scene["dragmode"] = "turntable"  # the screen's up stays display +z (world up): no upside-down views
    fig = go.Figure(traces)
    fig.update_layout(
        scene=scene, uirevision=uirevision, meta=meta, margin=dict(l=0, r=0, t=0, b=0), height=520,
        legend=dict(orientation="h", y=0.02, x=0.01, bgcolor="rgba(255,255,255,0.6)"),
        paper_bgcolor="rgba(0,0,0,0)", clickmode="event",
    )
    data = fig.to_plotly_json()
    data["data"][CLOUD_TRACE]["marker"]["color"] = colours
    return data


def frame_geometry(w2cs: np.ndarray, fovs_y_deg: np.ndarray, aspect: float, size: float) -> np.ndarray:
    """[T, 6, 3] frustum key points (display coords, see `frustum_points`) of every path frame."""
    return np.stack([frustum_points(w, f, aspect, size) for w, f in zip(np.asarray(w2cs), np.asarray(fovs_y_deg))])


def to_json(figure: dict) -> str:
    """Serialise a figure dict from `scene_figure` (numpy arrays as base64 typed arrays)."""
    from plotly.io.json import to_json_plotly

    return to_json_plotly(figure)


def coverage_figure(coverage: np.ndarray, threshold: float, current: int | None = None,
                    frames: np.ndarray | None = None) -> go.Figure:
    """Coverage (share of covered pixels) per rendered frame, frames under `threshold` marked in red."""
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
    if current is not None:
        fig.add_vline(x=current, line=dict(color=CURRENT_COLOUR, width=1))
    fig.update_layout(
        height=180, margin=dict(l=40, r=10, t=24, b=30), showlegend=False,
        title=dict(text="coverage along the path", font=dict(size=12)),
        xaxis=dict(title="frame", range=[0, max(int(frames[-1]) if len(frames) else 1, 1)]),
        yaxis=dict(title="covered", range=[0, 1.02], tickformat=".0%"),
    )
    return fig
