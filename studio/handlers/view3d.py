"""The 3D view: the scene figure (sent once per scene) and the camera payload (sent on every path edit and
applied to the live figure by studio/web/studio.js)."""
from __future__ import annotations

import json

import numpy as np

from studio import figures
from studio.handlers.common import MODEL_SIZE, selected_index
from studio.handlers.preview import with_cameras
from studio.mesh import scene_mesh
from studio.state import PREVIEW_SIZE, Session
from studio.viewcam import (
    FRAME_FILL,
    SceneBox,
    overview_pose,
    plotly_camera_from_pose,
    to_display,
    view_fov_for_frame,
)

MODEL_ASPECT = MODEL_SIZE[1] / MODEL_SIZE[0]


BOX_MARGIN = 0.5  # the 3D view's box reaches this share of the scene's size beyond it on every side


def fit_box(session: Session) -> SceneBox:
    """A box for a new 3D view figure: the point cloud, the seed camera and the path, with room to spare
    (the box of a figure in the browser never changes: path edits that leave it send a new figure)."""
    xyz = session.preview.cloud[0]
    extra = [np.zeros((1, 3))]
    if session.path is not None:
        extra.append(np.array([kf.position for kf in session.path.keyframes]))
        if session.frame_cams is not None:
            extra.append(_centres(session.frame_cams[0].double().numpy()))
    return SceneBox.around(to_display(np.concatenate([xyz] + extra)), pad=BOX_MARGIN)


def view_box(session: Session) -> SceneBox:
    """The 3D view's axis box: that of the figure in the browser, else the one a new figure gets."""
    return session.box if session.box is not None else fit_box(session)


def path_inside(session: Session, box: SceneBox) -> bool:
    """Whether every keyframe and path camera lies inside `box` (display units)."""
    session = with_cameras(session)
    if session.path is None:
        return True
    pts = np.concatenate([np.array([kf.position for kf in session.path.keyframes]),
                          _centres(session.frame_cams[0].double().numpy())])
    d = to_display(pts)
    return bool(((d >= np.array(box.lo)) & (d <= np.array(box.hi))).all())


def _centres(w2cs: np.ndarray) -> np.ndarray:
    return -np.einsum("tji,tj->ti", w2cs[:, :3, :3], w2cs[:, :3, 3])


def mesh_for(session: Session):
    """The scene surface at the session's detail level (built once per scene and level)."""
    budget = figures.DETAIL_LEVELS.get(session.view.get("detail"), figures.VERTEX_BUDGET)
    meshes = session.preview.meshes
    if budget not in meshes:
        meshes[budget] = scene_mesh(session.scene, budget)
    return meshes[budget]


def _path_cameras(session: Session, frame):
    """Keyframes, selected index, path centres, per-frame (w2cs, fovs) and the clamped current frame."""
    if session.path is None:
        return [], None, None, None, 0
    keyframes = [(kf.w2c, kf.fov_y_deg) for kf in session.path.keyframes]
    w2cs = session.frame_cams[0].double().numpy()
    centres = _centres(w2cs)
    fy = session.frame_cams[1].double().numpy()[:, 1, 1]
    fovs = np.degrees(2 * np.arctan(PREVIEW_SIZE[0] / (2 * fy)))
    current = 0 if frame is None else min(max(int(frame), 0), session.num_frames - 1)
    return keyframes, selected_index(session), centres, (w2cs, fovs), current


def frame_fov(session: Session) -> float:
    """The FOV of the frame drawn over the 3D view: the selected keyframe's, else the scene's."""
    from engine.cameras import fov_y_from_intrinsics

    if session.path is not None:
        return float(session.path.keyframes[selected_index(session)].fov_y_deg)
    return float(fov_y_from_intrinsics(session.scene.K, session.scene.height))


def overview(session: Session) -> tuple[np.ndarray, float]:
    """The default view (w2c, orbit distance): the scene and the whole path from behind and above."""
    session = with_cameras(session)
    pts = [session.preview.cloud[0], np.zeros((1, 3))]
    if session.path is not None:
        _, _, centres, _, _ = _path_cameras(session, 0)
        pts.append(centres)
    return overview_pose(np.concatenate(pts), view_fov_for_frame(frame_fov(session)))


def scene_figure(session: Session | None, frame=None):
    """The 3D view for the session: the scene (surface or points) and the camera traces."""
    if session is None or session.scene is None:
        return None
    session = with_cameras(session)
    keyframes, selected, centres, cams, current = _path_cameras(session, frame)
    box = view_box(session)
    w2c, distance = overview(session)
    points = session.view.get("style") == "points"
    xyz, rgb = session.preview.cloud
    return figures.scene_figure(
        xyz, rgb, mesh=None if points else mesh_for(session), box=box, aspect=MODEL_ASPECT,
        focus_distance=session.preview.focus_distance, keyframes=keyframes, selected=selected,
        path_centres=centres, frame_cameras=cams, current=current,
        uirevision=f"{session.scene_label}|{session.revision}", scene_key=f"{id(session.scene):x}", view_w2c=w2c,
        view_distance=distance)


def camera_payload(session: Session | None, frame=None) -> str:
    """The camera traces, per-frame highlight geometry, keyframe views (for "Look through") and the frame
    FOV, as JSON for studio.js's applyCameras. "" without a scene."""
    if session is None or session.scene is None:
        return ""
    session = with_cameras(session)
    keyframes, selected, centres, cams, current = _path_cameras(session, frame)
    traces, meta = figures.camera_traces(aspect=MODEL_ASPECT, focus_distance=session.preview.focus_distance,
                                         keyframes=keyframes, selected=selected, path_centres=centres,
                                         frame_cameras=cams, current=current)
    box = view_box(session)
    focus = session.preview.focus_distance
    views = [plotly_camera_from_pose(w2c, box, focus) for w2c, _ in keyframes]
    return json.dumps({
        "revision": session.revision,
        "frame": current,
        "first_trace": figures.CAMERA_TRACES[0],
        "traces": traces,
        "frames": meta,
        "views": views,
        "selected": -1 if selected is None else selected,
        "fov": frame_fov(session),
        "frame_fill": FRAME_FILL,
        "model_aspect": MODEL_ASPECT,
        "box": {"lo": list(box.lo), "hi": list(box.hi), "aspect": list(box.aspect)},
    }, allow_nan=False)
