"""The 3D view's figure and the browser-side contracts (no browser): per-frame highlight geometry, the
turntable view, add-from-view near straight down, and how handler errors reach the page and API clients."""
from __future__ import annotations

import json
import types

import numpy as np
import pytest

from studio import figures, handlers
from studio.state import Session
from engine.cameras import look_at_w2c
from studio.viewcam import SceneBox, pose_from_plotly_camera, to_display


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from engine import samples

    return handlers.load_sample(Session(folder=str(tmp_path_factory.mktemp("s"))), samples.list_samples()[0])


def _polyline(points6: np.ndarray, sequence) -> np.ndarray:
    """What studio.js HIGHLIGHT_JS builds from one frame's key points (None/NaN for -1)."""
    pts = np.vstack([points6, np.full((1, 3), np.nan)])
    return pts[list(sequence)]


def _array(value) -> np.ndarray:
    """A trace array as plotly serialises it (a list or a base64 typed array {dtype, bdata})."""
    if isinstance(value, dict):
        import base64

        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).astype(np.float64)
    return np.asarray(value, dtype=np.float64)


def test_figure_carries_every_frames_highlight_geometry(base):
    session = handlers.with_cameras(base)
    fig = handlers.scene_figure(session, frame=40)
    meta = fig["layout"]["meta"][figures.FRAMES_META]
    trace = fig["data"][meta["trace"]]
    assert trace["name"] == figures.CURRENT_TRACE_NAME
    assert len(meta["points"]) == session.num_frames == 121
    # frame t's key points are that path frame's camera (apex = camera centre, in display coordinates)
    w2cs = session.frame_cams[0].double().numpy()
    for t in (0, 40, 120):
        pts = np.array(meta["points"][t]).reshape(6, 3)
        centre = -w2cs[t, :3, :3].T @ w2cs[t, :3, 3]
        np.testing.assert_allclose(pts[0], to_display(centre), atol=1e-5)
        forward = to_display(w2cs[t, 2, :3])
        rect_mid = pts[1:5].mean(axis=0) - pts[0]
        assert np.dot(rect_mid / np.linalg.norm(rect_mid), forward) > 0.999  # the image lies ahead
    # the highlight drawn from Python is frame 40, as the JS rebuilds it from the meta
    drawn = np.stack([_array(trace[a]) for a in "xyz"], axis=1)[:len(meta["sequence"])]
    np.testing.assert_allclose(drawn, _polyline(np.array(meta["points"][40]).reshape(6, 3), meta["sequence"]),
                               atol=1e-5, equal_nan=True)
    assert not np.allclose(meta["points"][0], meta["points"][120])  # zoom_in moves forward
    json.loads(figures.to_json(fig))  # the meta serialises (no NaN in it)


def test_frustum_sequence_rebuilds_the_python_polyline():
    w2c = look_at_w2c([0.1, -0.2, 0.3], [1.0, 0.5, 3.0], [0.2, -1.0, 0.0])
    pts = figures.frustum_points(w2c, 55.0, 16 / 9, 0.7)
    np.testing.assert_allclose(_polyline(pts, figures.FRUSTUM_SEQUENCE), figures.frustum_lines(w2c, 55.0, 16 / 9, 0.7),
                               equal_nan=True)


def test_view_is_a_turntable_with_world_up(base):
    layout = handlers.scene_figure(base, 0)["layout"]
    scene = layout["scene"]
    assert scene["dragmode"] == "turntable"
    assert scene["camera"]["up"] == {"x": 0.0, "y": 0.0, "z": 1.0}
    # the initial view as a pose: image up is world up (-y) as far as the viewing direction allows, no roll
    box = SceneBox(tuple(scene[f"{a}axis"]["range"][0] for a in "xyz"),
                   tuple(scene[f"{a}axis"]["range"][1] for a in "xyz"),
                   tuple(scene["aspectratio"][a] for a in "xyz"))
    w2c = pose_from_plotly_camera(scene["camera"], box)
    right = w2c[0, :3]
    assert abs(right[1]) < 1e-9  # horizontal image rows: no roll


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_add_from_view_straight_down_or_up_gets_a_sensible_roll(base, sign):
    box = handlers.view_box(base)
    cam = {"eye": {"x": 0.0, "y": 0.0, "z": 0.8 * sign}, "center": {"x": 0.0, "y": 0.0, "z": 0.0},
           "up": {"x": 0.0, "y": 0.0, "z": 1.0}}
    w2c = pose_from_plotly_camera(cam, box)
    assert np.isfinite(w2c).all()
    np.testing.assert_allclose(w2c[:3, :3] @ w2c[:3, :3].T, np.eye(3), atol=1e-12)
    # display -z (down) for sign +1 = world +y; the image top points along world +z (into the scene)
    np.testing.assert_allclose(w2c[2, :3], [0.0, sign, 0.0], atol=1e-12)
    np.testing.assert_allclose(-w2c[1, :3], [0.0, 0.0, 1.0], atol=1e-12)
    payload = json.dumps({"camera": cam})
    added = handlers.add_keyframe_from_view(base, payload)
    assert len(added.path.keyframes) == len(base.path.keyframes) + 1


def _request(user_header: str | None):
    headers = {} if user_header is None else {"x-gradio-user": user_header}
    return types.SimpleNamespace(headers=headers, session_hash="test")


def test_errors_go_to_the_status_area_in_the_browser_and_are_errors_for_api_clients(base, tmp_path, monkeypatch):
    import gradio as gr
    from gradio.context import LocalContext

    from studio import events

    bad = tmp_path / "broken.json"
    bad.write_text('{"camera_path": [1, 2')
    before = base.path
    token = LocalContext.request.set(_request(None))  # a browser: no x-gradio-user header
    try:
        out = events.import_path(base, str(bad), 0, "look-at")
        status = out[events.STATUS]
        # every other output (state, 3D view, table, slider...) is left as it is
        assert [v for i, v in enumerate(out) if i != events.STATUS] == [gr.skip()] * (events.N_REFRESH - 1)
        assert "broken.json" in status and "Error" in status
        LocalContext.request.set(_request("api"))
        with pytest.raises(gr.Error, match="broken.json"):
            events.import_path(base, str(bad), 0, "look-at")
    finally:
        LocalContext.request.reset(token)
    with pytest.raises(gr.Error, match="load a scene first"):  # called directly (no request): an error too
        events.render_frame(None, 0)
    assert base.path is before and not base.history.can_undo
