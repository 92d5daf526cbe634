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
