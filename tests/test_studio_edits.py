"""Studio path edits on the keyframe paths (no browser): one cell of the keyframe list, holds and eases, New path,
a one-keyframe path, Duplicate after the selected keyframe, the selection across undo/redo, Set keyframe to view,
and the camera payload the browser applies to the 3D view."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine.errors import InputError
from studio import handlers
from studio.state import Session
from engine.cameras import look_at_w2c
from studio.viewcam import SceneBox, plotly_camera_from_pose, pose_from_plotly_camera

LOOK = ["x", "y", "z", "look x", "look y", "look z", "fov"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from engine import samples

    return handlers.load_sample(Session(folder=str(tmp_path_factory.mktemp("s"))), samples.list_samples()[0])


def _rows(session, mode="look-at"):
    return handlers.keyframe_table(session, mode)[1]


def _changed(a, b):
    return [(r, c) for r in range(len(a)) for c in range(1, 8) if a[r][c] != b[r][c]]


@pytest.mark.parametrize("column", LOOK)
def test_one_cell_changes_only_that_number(base, column):
    before = _rows(base)
    value = before[2][1 + LOOK.index(column)] + (5.0 if column == "fov" else 0.3)
    edited = handlers.edit_cell(base, 2, column, value, "look-at")
    after = _rows(edited)
    assert _changed(before, after) == [(2, 1 + LOOK.index(column))]
    kf = edited.path.keyframes[2]
    pos, target = np.array(after[2][1:4]), np.array(after[2][4:7])
    np.testing.assert_allclose(kf.position, pos, atol=1e-4)
    np.testing.assert_allclose(kf.forward, (target - pos) / np.linalg.norm(target - pos), atol=1e-4)
    assert [k is o for k, o in zip(edited.path.keyframes, base.path.keyframes)] == [i != 2 for i in range(9)]


def test_yaw_pitch_roll_cell_and_timing_kept(base):
    s = handlers.edit_cell(base, 4, "hold", 7, "look-at")
    s = handlers.edit_cell(s, 4, "ease", "ease_in", "look-at")
    before = _rows(s, "yaw/pitch/roll")
    turned = handlers.edit_cell(s, 4, "yaw", 15.0, "yaw/pitch/roll")
    after = _rows(turned, "yaw/pitch/roll")
    assert _changed(before, after) == [(4, 4)]
    kf = turned.path.keyframes[4]
    yaw, pitch = np.radians([15.0, before[4][5]])
    np.testing.assert_allclose(kf.forward, [np.sin(yaw) * np.cos(pitch), -np.sin(pitch), np.cos(yaw) * np.cos(pitch)],
                               atol=1e-6)
    assert kf.hold == 7 and kf.ease == "ease_in"  # a camera edit keeps the keyframe's timing
    moved = handlers.edit_cell(turned, 4, "x", 0.5, "look-at")
    assert moved.path.keyframes[4].hold == 7 and moved.path.keyframes[4].ease == "ease_in"


def test_holds_and_eases_reach_the_sampled_cameras(base):
    s = handlers.edit_cell(base, 3, "hold", 10, "look-at")
    w2cs, _ = s.path.sample(s.num_frames, 352, 640)
    w2cs = w2cs.numpy()
    at = int(round(s.path.key_frames(s.num_frames)[3]))
    for t in range(at, at + 11):  # held: the keyframe's own camera on 11 frames
        np.testing.assert_allclose(w2cs[t], s.path.keyframes[3].w2c, atol=1e-6)
    payload = json.loads(handlers.table_payload(s))
    assert payload["headers"][-2:] == ["hold", "ease"] and payload["rows"][3][-2:] == [10, "linear"]
    assert payload["timeline"]["hold"][3] == 10 and payload["timeline"]["at"][3] == pytest.approx(at)


@pytest.mark.parametrize("column,value,message", [
    ("x", "abc", "must be a number"), ("fov", 500, r"\(1, 179\)"), ("hold", 2.5, "integer"), ("hold", -1, "at least 0"),
    ("hold", 500, "hold"), ("ease", "bouncy", "ease must be one of"), ("#", 1, "no column"),
])
def test_rejected_cells_change_nothing(base, column, value, message):
    with pytest.raises(InputError, match=message):
        handlers.edit_cell(base, 2, column, value, "look-at")
    with pytest.raises(InputError, match="row 10 does not exist"):
        handlers.edit_cell(base, 9, "x", 0, "look-at")
    assert not base.history.can_undo


def test_new_path_delete_to_one_and_the_one_keyframe_path(base):
    new = handlers.new_path(base)
    assert len(new.path.keyframes) == 1 and new.history.past[-1] is base.path  # undoable
    np.testing.assert_allclose(new.path.keyframes[0].w2c, np.eye(4))
    assert "needs two" in handlers.path_summary(new)
    image, coverage = handlers.render_frame(new, 60)  # the still camera: the input view
    assert image.shape == (352, 640, 3) and coverage > 0.9
    with pytest.raises(InputError, match="at least two keyframes"):
        handlers.render_path(new)
    with pytest.raises(InputError, match="cannot be deleted"):
        handlers.delete_keyframe(new)
    s = base
    while len(s.path.keyframes) > 1:
        s = handlers.delete_keyframe(s)
    assert len(s.path.keyframes) == 1
    back = handlers.undo(handlers.new_path(base))
    assert back.path is base.path


def test_duplicate_goes_after_the_selected_keyframe(base):
    s = handlers.select_keyframe(base, 3)
    d = handlers.duplicate_keyframe(s)
    assert d.selected == 4 and len(d.path.keyframes) == 10
    np.testing.assert_array_equal(d.path.keyframes[4].w2c, s.path.keyframes[3].w2c)
    assert d.path.keyframes[5] is s.path.keyframes[4]


def test_selection_follows_the_same_keyframe_across_undo_and_redo(base):
    s = handlers.select_keyframe(base, 5)
    chosen = s.path.keyframes[5]
    up = handlers.move_keyframe(s, -1)
    assert up.path.keyframes[4] is chosen and up.selected == 4
    undone = handlers.undo(up)
    assert undone.path.keyframes[undone.selected] is chosen and undone.selected == 5
    redone = handlers.redo(undone)
    assert redone.path.keyframes[redone.selected] is chosen
    # a deletion undone: the neighbour that was selected stays selected
    d = handlers.delete_keyframe(handlers.select_keyframe(base, 2))
    kept = d.path.keyframes[d.selected]
    u = handlers.undo(d)
    assert u.path.keyframes[u.selected] is kept


def _payload(w2c, box, fov=None):
    d = {"camera": plotly_camera_from_pose(w2c, box, 1.3),
         "ranges": {a: [box.lo[i], box.hi[i]] for i, a in enumerate("xyz")}, "aspect": dict(zip("xyz", box.aspect))}
    if fov is not None:
        d["fov"] = fov
    return json.dumps(d)


def test_add_and_set_from_view_take_the_frames_fov_and_keep_timing(base):
    box = handlers.view_box(base)
    pose = look_at_w2c([0.3, -0.2, -0.5], [0.0, 0.1, 2.0], [0.0, -1.0, 0.1])
    added = handlers.add_keyframe_from_view(base, _payload(pose, box, fov=42.0))
    kf = added.path.keyframes[added.selected]
    assert kf.fov_y_deg == pytest.approx(42.0) and np.allclose(kf.w2c, pose, atol=1e-9)
    with pytest.raises(InputError, match="FOV"):
        handlers.add_keyframe_from_view(base, _payload(pose, box, fov=400))
    held = handlers.edit_cell(handlers.select_keyframe(base, 2), 2, "hold", 5, "look-at")
    moved = handlers.set_keyframe_to_view(held, _payload(pose, box))
    kf = moved.path.keyframes[2]
    assert np.allclose(kf.w2c, pose, atol=1e-9) and kf.hold == 5
    assert kf.fov_y_deg == held.path.keyframes[2].fov_y_deg and len(moved.path.keyframes) == 9


def test_camera_payload_carries_only_cameras_and_the_keyframe_views(base):
    s = handlers.with_cameras(handlers.select_keyframe(base, 4))
    data = json.loads(handlers.camera_payload(s, 30))
    names = [t["name"] for t in data["traces"]]
    assert names == ["path", "keyframes", "selected keyframe 5", "keyframe numbers", "current frame"]
    assert all(t["type"] == "scatter3d" for t in data["traces"])  # no scene surface in an edit
    assert len(data["frames"]["points"]) == s.num_frames and data["selected"] == 4
    assert data["fov"] == pytest.approx(s.path.keyframes[4].fov_y_deg)
    box = SceneBox(tuple(data["box"]["lo"]), tuple(data["box"]["hi"]), tuple(data["box"]["aspect"]))
    for kf, view in zip(s.path.keyframes, data["views"]):  # Look through keyframe: exactly its pose
        np.testing.assert_allclose(pose_from_plotly_camera(view, box), kf.w2c, atol=1e-9)
    # the path's frames: apexes of the per-frame highlight are the sampled camera centres (display coordinates)
    w2cs = s.frame_cams[0].double().numpy()
    apex = np.array(data["frames"]["points"][30][:3])
    centre = -w2cs[30, :3, :3].T @ w2cs[30, :3, 3]
    np.testing.assert_allclose(apex, [centre[0], centre[2], -centre[1]], atol=1e-4)
