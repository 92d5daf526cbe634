"""Studio handlers on a bundled sample scene (no browser, no weights)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.errors import InputError
from studio import files, handlers
from studio.figures import POINT_BUDGET, VERTEX_BUDGET
from studio.state import Session
from engine.cameras import look_at_w2c
from studio.viewcam import plotly_camera_from_pose


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from engine import samples

    names = samples.list_samples()
    assert names, "no bundled samples"
    folder = tmp_path_factory.mktemp("session")
    return handlers.load_sample(Session(folder=str(folder)), names[0])


def _centre(w2c):
    w2c = np.asarray(w2c, dtype=np.float64)
    return -w2c[:3, :3].T @ w2c[:3, 3]


def test_load_sample_status_figure_and_default_path(base):
    status = handlers.scene_status(base)
    assert "1280x704" in status and "points" in status and "FOV" in status and "depth" in status
    fig = handlers.scene_figure(base, frame=0)
    surface = fig["data"][0]
    assert surface["type"] == "mesh3d" and 1000 < len(surface["vertexcolor"]) <= VERTEX_BUDGET
    as_points = handlers.scene_figure(base.replace(view={"style": "points", "detail": "standard"}), frame=0)
    cloud = as_points["data"][0]
    assert 1000 < len(cloud["marker"]["color"]) <= POINT_BUDGET
    assert fig["layout"]["uirevision"]  # the user's view is kept across updates
    names = [t.get("name") for t in fig["data"]]
    assert "path" in names and "keyframes" in names and "current frame" in names
    assert base.path is not None and base.num_frames == 121
    w2cs, Ks = handlers.with_cameras(base).frame_cams
    assert w2cs.shape == (121, 4, 4) and Ks.shape == (121, 3, 3)


def test_unknown_sample_is_rejected(base):
    with pytest.raises(InputError, match="unknown sample"):
        handlers.load_sample(base, "no-such-sample")


def test_preset_reproduces_the_official_cameras(base):
    from engine import cameras

    s = handlers.set_preset(base, "left", "center_facing", 0.3, 1, False)
    assert s.num_frames == 121 and 2 <= len(s.path.keyframes) <= 12  # a preset is a few editable keyframes
    ref_w2cs, _ = cameras.preset_trajectory("left", base.scene.w2c, base.scene.K, 121, 0.3, "center_facing")
    got, _ = s.path.sample(121, *handlers.MODEL_SIZE)
    assert torch.allclose(got, torch.as_tensor(ref_w2cs, dtype=torch.float32), atol=1e-5)
    assert s.history.past[-1] is base.path  # recorded for undo
    longer = handlers.set_preset(base, "up", "no_rotation", 0.5, 2, True)
    assert longer.num_frames == 241
    for bad in [("sideways", "center_facing", 0.3, 1), ("left", "spin", 0.3, 1), ("left", "center_facing", "x", 1),
                ("left", "center_facing", 0.3, 7)]:
        with pytest.raises(InputError):
            handlers.set_preset(base, *bad)


def test_add_keyframe_from_numbers(base):
    s = handlers.add_keyframe(base, "0.1 -0.05 -0.3", [0, 0, 2], 40)
    kf = s.path.keyframes[-1]
    assert np.allclose(kf.position, [0.1, -0.05, -0.3])
    expected = np.array([0, 0, 2]) - kf.position
    assert np.allclose(kf.forward, expected / np.linalg.norm(expected))
    assert kf.fov_y_deg == pytest.approx(40)
    assert len(s.path.keyframes) == len(base.path.keyframes) + 1 and s.selected == len(s.path.keyframes) - 1
    for pos, look, fov in [("1 2", "0 0 1", 40), ("a b c", "0 0 1", 40), ("0 0 0", "0 0 0", 40),
                           ("0 0 0", "0 0 1", 500), ("nan 0 0", "0 0 1", 40)]:
        with pytest.raises(InputError):
            handlers.add_keyframe(base, pos, look, fov)


def test_add_keyframe_from_plotly_camera_round_trip(base):
    pose = look_at_w2c([0.2, -0.1, -0.4], [0.05, 0.0, 1.5], [0.1, -1.0, 0.0])
    box = handlers.view_box(base)
    camera = plotly_camera_from_pose(pose, box, focus_distance=1.3)
    payload = json.dumps({"camera": camera, "ranges": {a: [box.lo[i], box.hi[i]] for i, a in enumerate("xyz")},
                          "aspect": dict(zip("xyz", box.aspect))})
    s = handlers.add_keyframe_from_view(base, payload)
    assert s.selected == base.selected + 1  # inserted after the selected keyframe, and selected
    assert np.allclose(s.path.keyframes[s.selected].w2c, pose, atol=1e-9)
    # without ranges in the payload the studio's own box is used: same pose
    s2 = handlers.add_keyframe_from_view(base, json.dumps({"camera": camera}))
    assert np.allclose(s2.path.keyframes[s2.selected].w2c, pose, atol=1e-9)
    with pytest.raises(InputError):
        handlers.add_keyframe_from_view(base, "")


def test_undo_redo_every_edit(base):
    s1 = handlers.add_keyframe(base, "0 0 -0.2", "0 0 1", None)
    s2 = handlers.move_keyframe(s1, -1)
    s3 = handlers.set_interpolation(s2, "linear", True)
    assert s3.path.interpolation == "linear" and s3.path.constant_speed
    u1 = handlers.undo(s3)
    assert u1.path is s2.path
    u2 = handlers.undo(u1)
    assert u2.path is s1.path
    r1 = handlers.redo(u2)
    assert r1.path is s2.path
    # a new edit after undo drops the redo stack
    n = handlers.delete_keyframe(u2)
    assert not n.history.can_redo
    with pytest.raises(InputError, match="nothing to redo"):
        handlers.redo(n)
    fresh = handlers.load_sample(base, base.scene_label.split(": ")[1])
    with pytest.raises(InputError, match="nothing to undo"):
        handlers.undo(fresh)


def test_keyframe_list_edits_and_table(base):
    s = handlers.add_keyframe(base, "0 0 -0.2", "0 0 1", None, index=1)
    assert np.allclose(s.path.keyframes[1].position, [0, 0, -0.2]) and s.selected == 1
    down = handlers.move_keyframe(s, +1)
    assert down.path.keyframes[2] is s.path.keyframes[1] and down.selected == 2
    dup = handlers.duplicate_keyframe(handlers.select_keyframe(s, 0))
    assert dup.path.keyframes[1].w2c.tolist() == s.path.keyframes[0].w2c.tolist()  # inserted after the original
    deleted = handlers.delete_keyframe(s)
    assert len(deleted.path.keyframes) == len(s.path.keyframes) - 1
    with pytest.raises(InputError):
        handlers.select_keyframe(s, 10_000)

    headers, rows = handlers.keyframe_table(s, "look-at")
    assert headers[1:4] == ["x", "y", "z"] and len(rows) == len(s.path.keyframes)
    rows[1][1] = 0.25  # move keyframe 2 along x
    edited = handlers.edit_table(s, rows, "look-at")
    assert np.allclose(edited.path.keyframes[1].position, [0.25, 0, -0.2])
    assert edited.path.keyframes[0] is s.path.keyframes[0]  # untouched rows are kept exactly
    _, ypr = handlers.keyframe_table(s, "yaw/pitch/roll")
    ypr[1][4] = 10.0  # yaw 10 degrees
    turned = handlers.edit_table(s, ypr, "yaw/pitch/roll")
    assert turned.path.keyframes[1].yaw_pitch_roll()[0] == pytest.approx(10.0, abs=1e-6)
    bad = [r[:] for r in rows]
    bad[0][2] = "oops"
    with pytest.raises(InputError):
        handlers.edit_table(s, bad, "look-at")
    with pytest.raises(InputError):
        handlers.edit_table(s, rows[:-1], "look-at")


def test_click_sets_look_at_of_selected_keyframe(base):
    s = handlers.add_keyframe(base, "0 0 -0.2", "0 0 1", None)
    target_world = np.array([0.3, 0.1, 1.8])
    from studio.viewcam import to_display

    d = to_display(target_world)
    s2 = handlers.look_at_clicked_point(s, json.dumps({"x": d[0], "y": d[1], "z": d[2]}))
    kf = s2.path.keyframes[s.selected]
    direction = (target_world - kf.position) / np.linalg.norm(target_world - kf.position)
    assert np.allclose(kf.forward, direction) and np.allclose(kf.position, [0, 0, -0.2])
    with pytest.raises(InputError):
        handlers.look_at_clicked_point(s, '{"x": 1}')


def test_render_frame_follows_the_slider(base):
    s = handlers.set_preset(base, "left", "center_facing", 0.3, 1, False)
    first, cov0 = handlers.render_frame(s, 0)
    last, cov1 = handlers.render_frame(s, 120)
    assert first.shape == (352, 640, 3) and first.dtype == np.uint8
    assert 0.0 <= cov1 <= cov0 <= 1.0 and cov0 > 0.95  # frame 0 is the input view
    assert np.abs(first.astype(int) - last.astype(int)).mean() > 1.0
    holes, _ = handlers.render_frame(s, 120, show_holes=True)
    assert (np.all(holes == handlers.HOLE_RGB, axis=-1).mean() > 0) == (cov1 < 1.0)
    for bad in (-1, 121, "x"):
        with pytest.raises(InputError):
            handlers.render_frame(s, bad)


def test_render_path_coverage(base):
    # without foreground masking (see test_foreground_masking_applies_to_both_previews for it on)
    s = handlers.set_foreground_masking(handlers.set_preset(base, "zoom_out", "no_rotation", 0.6, 1, False), False)
    index, frames, coverage = handlers.render_path(s, stride=7)
    assert index.tolist() == list(range(0, 121, 7)) + [120]
    assert frames.shape == (len(index), 176, 320, 3)
    assert coverage.shape == (len(index),) and ((coverage >= 0) & (coverage <= 1)).all()
    # previews at both sizes show what the model-resolution cache shows
    from engine.cache3d import Cache3D

    full = Cache3D(s.scene.image, s.scene.depth, s.scene.w2c, s.scene.K)
    w2cs, Ks = s.path.sample(121, *handlers.MODEL_SIZE)
    cov_model = float(full.render(w2cs[-1:], Ks[-1:])[1].float().mean())
    _, cov_live = handlers.render_frame(s, 120)
    assert abs(cov_live - cov_model) < 0.03 and abs(coverage[-1] - cov_model) < 0.05
    assert coverage[0] > 0.95 and coverage[-1] < coverage[0]  # zooming out uncovers the borders
    message = handlers.coverage_warning(np.array([1.0, 0.5, 0.3]), np.array([0, 4, 8]))
    assert "2 frames" in message and "first 4" in message and "worst 8" in message


def test_export_files_parse(base, tmp_path):
    from engine import paths

    s = handlers.add_keyframe(handlers.set_preset(base, "right", "center_facing", 0.3, 1, False), "0 0 -0.1",
                              "0 0 1", None)
    ns = files.export_path(s.path, "nerfstudio", 121, 704, 1280, str(tmp_path))
    data = json.loads(ns.read_text())
    assert len(data["camera_path"]) == 121 and data["render_height"] == 704
    npz = files.export_path(s.path, "npz", 121, 704, 1280, str(tmp_path))
    w2cs, Ks = paths.load_npz(npz)
    ref, _ = s.path.sample(121, 704, 1280)
    assert np.allclose(np.asarray(w2cs), ref.numpy(), atol=1e-5)
    pj = files.export_path(s.path, "json", 121, 704, 1280, str(tmp_path))
    back = paths.load_path_json(pj)
    assert len(back.keyframes) == len(s.path.keyframes)
    assert np.allclose(back.keyframes[-1].w2c, s.path.keyframes[-1].w2c)
    # and they import back
    assert len(files.import_path(pj, 704).keyframes) == len(s.path.keyframes)
    assert len(files.import_path(npz, 704).keyframes) == 121
    assert len(files.import_path(ns, 704).keyframes) >= 2
    with pytest.raises(InputError):
        files.export_path(s.path, "fbx", 121, 704, 1280, str(tmp_path))


@pytest.mark.parametrize("name,content", [
    ("bad.json", b"{not json"),
    ("empty.json", b""),
    ("wrong.json", json.dumps({"keyframes": "nope"}).encode()),
    ("bad.npz", b"PK\x03\x04garbage"),
    ("path.txt", b"0 0 0"),
])
def test_import_of_a_bad_file_changes_nothing(base, tmp_path, name, content):
    import gradio as gr

    from studio import events

    file = tmp_path / name
    file.write_bytes(content)
    with pytest.raises(InputError):
        files.import_path(file, 704)
    before = base.path
    with pytest.raises(gr.Error):
        events.import_path(base, str(file), 0, "look-at")
    assert base.path is before and not base.history.can_undo


def test_session_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("GEN3C_STUDIO_TMP", str(tmp_path))
    folder = files.session_folder_for("abc123")
    assert (tmp_path / "session-abc123").is_dir() and folder.endswith("session-abc123")
    files.remove_session_folder(folder)
    assert not (tmp_path / "session-abc123").exists()
    outside = tmp_path.parent / "keep-me"
    outside.mkdir(exist_ok=True)
    files.remove_session_folder(str(outside))  # never outside the studio root
    assert outside.exists()
    old = tmp_path / "session-old"
    old.mkdir()
    import os

    os.utime(old, (0, 0))
    assert files.sweep_old_folders(max_age_s=60) == 1 and not old.exists()
