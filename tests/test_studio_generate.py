"""The studio's generate panel end to end on tiny random weights (CPU): status, run, progress, cancel."""
from __future__ import annotations

import threading

import gradio as gr
import numpy as np
import pytest

from engine.video import read_video
from studio import events, handlers
from studio import generate as gen
from studio.state import Session


@pytest.fixture()
def session(tmp_path):
    from engine import samples

    s = handlers.load_sample(Session(folder=str(tmp_path)), samples.list_samples()[0])
    s = handlers.set_preset(s, "left", "center_facing", 0.3, 1, False)
    # one tiny chunk (17 frames) keeps the CPU run short; the studio's own lengths are 120*N+1
    return s.replace(num_frames=17, frame_cams=None, video_cams=None)


def test_panel_says_what_to_fetch_without_weights(tmp_path):
    ok, message = gen.weights_status(tmp_path / "nothing-here")
    assert not ok
    assert "GEN3C-Cosmos-7B" in message and "convert" in message


def test_panel_reports_tiny_weights_as_ready(tiny_weights_dir):
    ok, message = gen.weights_status(tiny_weights_dir)
    assert ok and str(tiny_weights_dir) in message


def test_panel_names_the_folder_found_through_the_environment(tiny_weights_dir, monkeypatch):
    """No folder given (the app's default): the message names the one $GEN3C_WEIGHTS points to."""
    monkeypatch.setenv("GEN3C_WEIGHTS", str(tiny_weights_dir))
    ok, message = gen.weights_status(None)
    assert ok and f"`{tiny_weights_dir}`" in message


def test_generate_writes_a_video_with_progress(session, tiny_weights_dir):
    seen = []

    def progress(fraction, desc=""):
        seen.append((fraction, desc))

    generate = events.make_generate(tiny_weights_dir)
    video, download, message = generate(session, "a room", "", 2, 1.0, 7, "official", progress=progress)
    assert video == download and message.startswith("Done: 17 frames")
    frames = read_video(video)
    assert frames.shape[0] == 17 and frames.shape[-1] == 3
    assert seen and all(0.0 <= f <= 1.0 for f, _ in seen)
    assert any("step 2/2" in d for _, d in seen)


def test_generate_rejects_bad_settings_without_running(session, tiny_weights_dir):
    generate = events.make_generate(tiny_weights_dir)
    with pytest.raises(gr.Error, match="CFG policy"):
        generate(session, "", "", 2, 1.0, 1, "nonsense", progress=lambda *a, **k: None)
    with pytest.raises(gr.Error, match="steps"):
        generate(session, "", "", 0, 1.0, 1, "official", progress=lambda *a, **k: None)


def test_cancel_stops_between_steps(session, tiny_weights_dir):
    generate = events.make_generate(tiny_weights_dir)

    def progress(fraction, desc=""):
        if "step 1/" in desc:
            events.cancel_generation(session)

    out = generate(session, "", "", 4, 1.0, 1, "official", progress=progress)
    assert out[2] == "Cancelled."
    assert isinstance(session.cancel, threading.Event)


def test_same_seed_same_video(session, tiny_weights_dir):
    settings = gen.validate_settings("", "", 2, 1.0, 3, "official")
    a = gen.run(session, tiny_weights_dir, settings).frames
    b = gen.run(session, tiny_weights_dir, settings).frames
    np.testing.assert_array_equal(a, b)


def _stand_in_moge(image):
    """Depth for the cache update of chunk 2 (the tiny weights have no MoGe): smooth, from the image's pixels."""
    from engine.depth import DepthResult

    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    K = np.array([[0.9 * w, 0, w / 2], [0, 0.9 * w, h / 2], [0, 0, 1]], np.float32)
    return DepthResult(depth=(2 + 0.5 * xx / w + 0.2 * yy / h + image[..., 1] / 2550.0).astype(np.float32), K=K)


def test_model_inputs_view_shows_what_the_generation_fed_the_model(session, tiny_weights_dir, monkeypatch):
    """Two chunks: after generating, the view's tiles at each frame are that run's own cache renders and masks
    (result.trace of an identical run, shrunk to the view's size), chunk 2 with its newest buffer; a path edit
    brings the preview's seed buffer back."""
    import torch
    import torch.nn.functional as F

    from engine.pipeline import Gen3CPipeline
    from studio.model_inputs import model_input_views
    from studio.state import VIDEO_SIZE

    s = session.replace(num_frames=33, frame_cams=None, video_cams=None)  # two tiny chunks: 0-16, 16-32
    pipe = Gen3CPipeline.from_pretrained(tiny_weights_dir, depth_estimator=_stand_in_moge)
    monkeypatch.setattr(gen, "_pipeline", lambda *a, **k: pipe)
    events.make_generate(tiny_weights_dir)(s, "", "", 1, 1.0, 5, "official", progress=lambda *a, **k: None)
    image, depth, fit = s.source
    reference = pipe.generate(
        image, handlers.scene_path(s), 33, depth=depth, fit=fit, trace=True, foreground_masking=True,
        **gen.validate_settings("", "", 1, 1.0, 5, "official"))
    assert len(reference.trace) == 2
    for frame, chunk in ((3, 0), (30, 1)):
        tiles = model_input_views(s, frame)
        assert tiles[0][1].startswith(f"generated, chunk {chunk + 1}, buffer 1")
        start = reference.trace[chunk]["frames"][0]
        buffers = reference.trace[chunk]["renders"].shape[1]
        assert buffers == chunk + 1 and len(tiles) == 4  # chunk 1: the seed only, its second buffer shown empty
        for b in range(buffers):
            want = torch.from_numpy(reference.trace[chunk]["renders"][frame - start, b]).permute(2, 0, 1).float()
            want = F.interpolate(want[None], size=VIDEO_SIZE, mode="area")[0].permute(1, 2, 0).numpy()
            got = tiles[2 * b][0].astype(np.float64)
            assert got.shape == (*VIDEO_SIZE, 3) and np.abs(got - want).max() <= 1.0  # one uint8 rounding
            covered = float(tiles[2 * b + 1][1].split("mask, ")[1].split("%")[0]) / 100
            assert abs(covered - reference.trace[chunk]["masks"][frame - start, b].mean()) <= 0.02
    assert "chunk 1's last" in model_input_views(s, 30)[0][1]
    edited = handlers.set_preset(s, "right", "center_facing", 0.3, 1, False)
    assert model_input_views(edited, 3)[0][1] == "buffer 1 (seed): render"
