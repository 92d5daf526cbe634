"""The 3D view <-> camera pose conversion (no engine scene needed)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine.cameras import look_at_w2c
from engine.errors import InputError
from studio.figures import coverage_figure, to_json, frustum_lines, keyframe_indices_to_draw, scene_figure
from studio.state import History
from studio.viewcam import (
    SceneBox,
    parse_view_payload,
    plotly_camera_from_pose,
    pose_from_plotly_camera,
    to_display,
    to_world,
)


def _random_pose(rng) -> np.ndarray:
    pos = rng.normal(size=3)
    target = pos + rng.normal(size=3) * 2
    up = np.array([0.0, -1.0, 0.0]) + 0.3 * rng.normal(size=3)
    return look_at_w2c(pos, target, up)


def test_display_transform_is_a_rotation_with_up_up():
    # OpenCV "up" is -y; on screen (plotly default up = +z) it must be +z
    assert np.allclose(to_display([0, -1, 0]), [0, 0, 1])
    # the first camera looks along +z (world) = +y (display)
    assert np.allclose(to_display([0, 0, 1]), [0, 1, 0])
    pts = np.random.default_rng(0).normal(size=(10, 3))
    assert np.allclose(to_world(to_display(pts)), pts)


def test_look_at_pose_is_opencv():
    w2c = look_at_w2c([0, 0, 0], [0, 0, 5], [0, -1, 0])
    assert np.allclose(w2c, np.eye(4))
    w2c = look_at_w2c([1, 2, 3], [1, 2, 10], [0, -1, 0])
    assert np.allclose(w2c[:3, :3], np.eye(3)) and np.allclose(w2c[:3, 3], [-1, -2, -3])
    with pytest.raises(InputError):
        look_at_w2c([0, 0, 0], [0, 0, 0], [0, -1, 0])
    with pytest.raises(InputError):
        look_at_w2c([0, 0, 0], [0, 1, 0], [0, -1, 0])


@pytest.mark.parametrize("seed", range(5))
def test_pose_plotly_camera_round_trip(seed):
    rng = np.random.default_rng(seed)
    box = SceneBox.around(rng.normal(size=(100, 3)) * [3, 1, 0.5])
    w2c = _random_pose(rng)
    cam = plotly_camera_from_pose(w2c, box, focus_distance=1.7)
    back = pose_from_plotly_camera(cam, box)
    assert np.allclose(back, w2c, atol=1e-9)


def test_plotly_camera_semantics_match_plotly_normalisation():
    # a camera whose eye sits at the box centre, looking at +x display, up +z display
    box = SceneBox((-2.0, 0.0, -1.0), (2.0, 4.0, 1.0), (1.0, 1.0, 0.5))
    cam = {"eye": {"x": 0, "y": 0, "z": 0}, "center": {"x": 0.25, "y": 0, "z": 0}, "up": {"x": 0, "y": 0, "z": 1}}
    w2c = pose_from_plotly_camera(cam, box)
    centre_world = -w2c[:3, :3].T @ w2c[:3, 3]
    # box centre in display (0, 2, 0) -> world (0, 0, 2)
    assert np.allclose(centre_world, [0, 0, 2])
    # forward (+x display) = +x world; image down = -up = -z display = +y world
    assert np.allclose(w2c[2, :3], [1, 0, 0]) and np.allclose(w2c[1, :3], [0, 1, 0])
    # normalised 0.25 in x with aspect 1 over a range of 4 = 1 display unit: the look-at point is 1 away
    assert np.allclose(box.denormalise([0.25, 0, 0]), [1, 2, 0])


def test_view_payload_parsing_and_errors():
    payload = {"camera": {"eye": {"x": 1, "y": 1, "z": 1}, "center": {"x": 0, "y": 0, "z": 0},
                          "up": {"x": 0, "y": 0, "z": 1}},
               "ranges": {"x": [-1, 1], "y": [0, 2], "z": [-1, 3]}, "aspect": {"x": 0.5, "y": 0.5, "z": 1}}
    cam, box = parse_view_payload(json.dumps(payload))
    assert box.lo == (-1, 0, -1) and box.hi == (1, 2, 3) and box.aspect == (0.5, 0.5, 1)
    for bad in ("", "not json", json.dumps({"x": 1}),
                json.dumps(dict(payload, ranges={"x": [1, -1], "y": [0, 2], "z": [0, 1]}))):
        with pytest.raises(InputError):
            parse_view_payload(bad)
    with pytest.raises(InputError):
        pose_from_plotly_camera({"eye": {"x": "a"}}, box)


def test_history_undo_redo_bounded():
    h = History(depth=3)
    for prev in ["a", "b", "c", "d"]:
        h = h.record(prev)
    assert h.past == ("b", "c", "d")
    h, got = h.undo("e")
    assert got == "d" and h.future == ("e",)
    h, got = h.redo("d")
    assert got == "e" and not h.can_redo
    h2 = h.record("x")
    assert h2.future == () and h2.past[-1] == "x"
    assert History().undo("cur")[1] is False


def test_figures_frustum_and_sampling():
    line = frustum_lines(np.eye(4), 60.0, 16 / 9, 1.0)
    finite = line[np.isfinite(line).all(axis=1)]
    # apex at the origin, image rectangle 1 unit ahead (display +y)
    assert np.allclose(finite[0], 0) and np.isclose(finite[1:, 1].max(), 1.0)
    assert keyframe_indices_to_draw(5, None) == [0, 1, 2, 3, 4]
    many = keyframe_indices_to_draw(121, 7)
    assert 0 in many and 120 in many and 7 in many and len(many) <= 27
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(200, 3)) + [0, 0, 3]
    fig = scene_figure(xyz, rng.integers(0, 255, (200, 3)), box=SceneBox.around(to_display(xyz)), aspect=1.5,
                       focus_distance=3.0, keyframes=[(np.eye(4), 50.0)], selected=0,
                       path_centres=np.zeros((3, 3)), frame_cameras=(np.stack([np.eye(4)] * 3), np.full(3, 50.0)))
    assert len(fig["data"][0]["marker"]["color"]) == 200 and fig["layout"]["uirevision"] == "scene"
    assert fig["data"][0]["marker"]["color"][0].startswith("#")
    text = to_json(fig)
    assert json.loads(text)["data"][0]["x"]["bdata"]  # float32 coordinates travel as base64
    cov = coverage_figure(np.array([1.0, 0.9, 0.5, 0.4]), 0.6, current=1)
    assert list(cov.data[1].x) == [2, 3]
