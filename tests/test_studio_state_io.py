"""What the studio keeps and says (no browser): the browser state and kept uploads (studio.persist), the status
area's escaping, exports under their plain names, the upload's crop/pad and FOV in words, the overview view, the
model-inputs pictures, and what the Generate panel passes on (foreground masking, the no-text-encoder mode)."""
from __future__ import annotations

import json
import shutil

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from engine.errors import InputError
from studio import files, handlers, persist
from studio.messages import status_html
from studio.state import Session


@pytest.fixture()
def studio_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("GEN3C_STUDIO_TMP", str(tmp_path / "studio"))
    return tmp_path


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from engine import samples

    return handlers.load_sample(Session(folder=str(tmp_path_factory.mktemp("s"))), samples.list_samples()[0])


def _upload_files(folder, size=(1200, 1600)):
    h, w = size
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[..., 1] = 120
    img[h // 3:2 * h // 3, w // 3:2 * w // 3] = [200, 30, 30]
    Image.fromarray(img).save(folder / "photo.png")
    depth = np.full((h, w), 4.0, dtype=np.float32)
    np.save(folder / "photo_depth.npy", depth)
    return folder / "photo.png", folder / "photo_depth.npy"


def test_browser_state_round_trip(base):
    s = handlers.edit_cell(handlers.select_keyframe(base, 3), 3, "x", 0.4, "look-at")
    s = handlers.edit_cell(s, 5, "hold", 8, "look-at")
    s = handlers.set_interpolation(s, "linear", True)
    state = json.loads(json.dumps(persist.snapshot(s, "yaw/pitch/roll")))  # what the browser stores
    back = persist.read_state(state)
    assert back["scene"] == {"sample": base.scene_ref["sample"]} and back["table_mode"] == "yaw/pitch/roll"
    assert back["path"].interpolation == "linear" and back["path"].constant_speed
    assert [k.hold for k in back["path"].keyframes] == [k.hold for k in s.path.keyframes]
    for a, b in zip(back["path"].keyframes, s.path.keyframes):
        np.testing.assert_array_equal(a.w2c, b.w2c)
    assert back["selected"] == 3 and back["frames"] == 121
    np.testing.assert_allclose(back["targets"][3], s.targets[s.path.keyframes[3]])  # the typed look point
    # an unedited preset stays the official formula after the round trip
    w2cs, _ = persist.read_state(persist.snapshot(base))["path"].sample(121, 704, 1280)
    ref, _ = base.path.sample(121, 704, 1280)
    np.testing.assert_allclose(w2cs.numpy(), ref.numpy(), atol=1e-6)


@pytest.mark.parametrize("state", [
    None, [], {}, {"version": 99}, {"version": 1, "scene": "x"},
    {"version": 1, "scene": {"upload": "../../etc/passwd"}},
    {"version": 1, "scene": {"upload": "0123456789abcdef/.."}},
])
def test_a_stale_or_tampered_browser_state_is_ignored(state):
    assert persist.read_state(state) is None


def test_a_broken_saved_path_is_reported_not_used(base):
    state = persist.snapshot(base)
    state["path"]["keyframes"][0]["w2c"] = ["x"] * 16
    state["frames"] = 7
    back = persist.read_state(state)
    assert back["path"] is None and "w2c" in back["path_error"] and back["frames"] == 121


def test_kept_uploads_come_back_and_go(studio_tmp, base):
    image, depth = _upload_files(studio_tmp)
    s = handlers.load_upload(base, image, depth, None, "pad")
    upload_id = s.scene_ref["upload"]
    restored = handlers.restore_upload(None, upload_id)
    assert restored is not None and restored.scene_label == "upload (depth file)"
    np.testing.assert_array_equal(restored.scene.depth.numpy(), s.scene.depth.numpy())
    np.testing.assert_array_equal(restored.scene.image.numpy(), s.scene.image.numpy())
    assert restored.source[2] == "pad"
    shutil.rmtree(files.studio_root() / f"upload-{upload_id}")
    assert handlers.restore_upload(None, upload_id) is None
    assert persist.load_upload("../session-x") is None


def test_upload_status_says_fov_and_crop(studio_tmp, base):
    image, depth = _upload_files(studio_tmp)
    s = handlers.load_upload(base, image, depth, None, "crop")
    status = handlers.scene_status(s)
    fov = np.degrees(2 * np.arctan(np.tan(np.radians(30)) * 704 / 960))  # 60 deg assumed on 1200 rows, 960 kept
    assert f"FOV {fov:.1f} deg (assumed 60.0 deg for the whole 1600x1200 image" in status
    assert "crop: 1600x1200 scaled x0.8 to 1280x960, 128 px cut top and bottom -> 1280x704" in status
    thumb, text = handlers.fit_preview(image, "pad")
    assert text == "pad: 1600x1200 scaled x0.587 to 939x704, 170 px black bars left and right -> 1280x704"
    assert thumb.shape == (176, 320, 3) and (thumb[:, :20] == 0).all()  # the bars are there
    with pytest.raises(InputError, match="FOV must be in"):
        handlers.load_upload(base, image, depth, "500", "crop")


def test_status_area_escapes_and_keeps_the_whole_message():
    from engine.depth import MOGE_HELP

    html = status_html(MOGE_HELP, "error")
    assert "&lt;weights&gt;/moge/model.pt" in html and "<weights>" not in html
    import html as html_mod

    text = html_mod.unescape(html.split("</b>", 1)[1].rsplit("</div>", 1)[0])
    assert text == MOGE_HELP
    assert 'role="alert"' in html and "studio-msg-none" in status_html("")


def test_exports_keep_their_plain_names_each_in_its_own_folder(base, tmp_path):
    a = files.export_path(base.path, "nerfstudio", 121, 704, 1280, str(tmp_path))
    b = files.export_path(base.path, "nerfstudio", 121, 704, 1280, str(tmp_path))
    assert a.name == b.name == "camera_path.json" and a != b and a.exists() and b.exists()
    assert files.export_path(base.path, "json", 121, 704, 1280, str(tmp_path)).name == "path.json"


def test_overview_sees_every_point_from_behind_and_above(base):
    from studio.handlers.view3d import overview
    from studio.viewcam import view_fov_for_frame

    w2c, _ = overview(base)
    pts = np.concatenate([base.preview.cloud[0], np.zeros((1, 3))])
    cam = pts @ w2c[:3, :3].T + w2c[:3, 3]
    assert (cam[:, 2] > 0).all()
    half = np.tan(np.radians(view_fov_for_frame(60.0)) / 2)
    assert (np.abs(cam[:, 1] / cam[:, 2]) <= half * 1.001).all()
    eye = -w2c[:3, :3].T @ w2c[:3, 3]
    assert eye[2] < 0 and eye[1] < 0  # behind and above the input camera (y down)


def test_model_inputs_show_each_buffer_and_the_empty_one(base):
    from studio.model_inputs import buffer_views, preview_buffer_views

    items = preview_buffer_views(base, 60)
    assert [c.split(":")[0] for _, c in items] == ["buffer 1 (seed)"] * 2 + ["buffer 2"] * 2
    assert items[0][0].shape == (352, 640, 3) and items[1][0].dtype == np.uint8
    import torch

    images = torch.zeros(2, 3, 8, 16)
    masks = torch.zeros(2, 1, 8, 16)
    masks[1, :, :4] = 1
    two = buffer_views(images, masks, names=["last frame", "seed"])
    assert [c for _, c in two][1::2] == ["last frame: mask, 0% covered", "seed: mask, 50% covered"]


def test_generate_passes_foreground_masking_and_the_no_text_encoder_mode(base, monkeypatch):
    from studio import events
    from studio import generate as gen

    seen = {}

    class Result:
        frames, fps, seed, trace = np.zeros((2, 8, 8, 3), dtype=np.uint8), 24, 1, None  # a GenerationResult

    def fake_run(session, weights_dir, settings, progress=None, cancel=None):
        seen.update(settings)
        return Result()

    monkeypatch.setattr(gen, "run", fake_run)
    s = handlers.set_foreground_masking(base, False)
    events.make_generate(None)(s, "", "", 2, 1.0, 1, "official", True, progress=lambda *a, **k: None)
    assert seen["foreground_masking"] is False and seen["zero_text"] is True
    seen.clear()
    events.make_generate(None)(base, "", "", 2, 1.0, 1, "official", progress=lambda *a, **k: None)
    assert seen["foreground_masking"] is True and "zero_text" not in seen
    assert seen["cache"].mode == "none"  # exact unless asked


def test_generate_passes_the_fast_mode_and_refuses_an_unknown_one(base, monkeypatch):
    from studio import events
    from studio import generate as gen

    seen = {}

    class Result:
        frames, fps, seed, trace = np.zeros((2, 8, 8, 3), dtype=np.uint8), 24, 1, None  # a GenerationResult

    monkeypatch.setattr(gen, "run", lambda session, weights_dir, settings, **kw: seen.update(settings) or Result())
    events.make_generate(None)(base, "", "", 2, 1.0, 1, "official", False, "taylorseer",
                               progress=lambda *a, **k: None)
    assert seen["cache"].mode == "taylorseer"
    assert [mode for _, mode in gen.fast_mode_choices()] == ["none", "first_block", "mag", "taylorseer"]
    assert all("approximate" in label for label, mode in gen.fast_mode_choices() if mode != "none")
    seen.clear()
    with pytest.raises(gr.Error, match="fast mode"):
        events.make_generate(None)(base, "", "", 2, 1.0, 1, "official", False, "warp-speed",
                                   progress=lambda *a, **k: None)
    assert not seen


def test_no_text_encoder_mode_needs_no_t5(tiny_weights_dir, tmp_path):
    from studio import generate as gen

    folder = tmp_path / "no_t5"
    shutil.copytree(tiny_weights_dir, folder, ignore=shutil.ignore_patterns("text_encoder", "text_tokenizer"))
    ok, message = gen.weights_status(folder)
    assert not ok and "about 45 GB" in message and "<details>" in message and "No text encoder" in message
    ok, message = gen.weights_status(folder, zero_text=True)
    assert ok and "no text encoder" in message


def test_cpu_threads_for_the_app(monkeypatch):
    import torch

    from studio.runtime import THREADS_ENV, limit_cpu_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv(THREADS_ENV, "1")
        assert limit_cpu_threads() == 1 and torch.get_num_threads() == 1
        for bad in ("0", "two"):
            monkeypatch.setenv(THREADS_ENV, bad)
            with pytest.raises(ValueError, match=THREADS_ENV):
                limit_cpu_threads()
        monkeypatch.delenv(THREADS_ENV)
        expected = None if torch.cuda.is_available() else 1
        assert limit_cpu_threads() == expected
    finally:
        torch.set_num_threads(before)
