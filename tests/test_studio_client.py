"""The studio's named API endpoints driven with gradio_client against a live server (no browser).

Prints (no assertions on time) start-to-ready, sample-load and preview-frame timings as JSON.
"""
from __future__ import annotations

import json
import socket
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("GEN3C_STUDIO_TMP", str(tmp_path_factory.mktemp("studio")))
    import app

    t0 = time.perf_counter()
    demo = app.build(str(tmp_path_factory.mktemp("no-weights")))
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
    ready = time.perf_counter() - t0
    yield f"http://127.0.0.1:{port}/", ready
    demo.close()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


def test_named_endpoints_round_trip(server):
    url, ready_s = server
    client = _client(url)
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/load_sample", "/set_preset", "/add_keyframe", "/render_frame", "/export_path", "/new_path", "/undo",
            "/redo"} <= names

    t0 = time.perf_counter()
    out = client.predict("living_room", api_name="/load_sample")
    load_s = time.perf_counter() - t0
    status, figure, summary = out[0], out[1], out[5]
    assert "living_room" in status and "1280x704" in status
    assert figure is not None  # the plotly figure came back
    assert "121 frames" in summary

    out = client.predict("left", "center_facing", 0.3, 2, False, api_name="/set_preset")
    assert out[4].startswith("9 keyframes | 241 frames")  # a preset is a few editable keyframes

    out = client.predict("0.05 0 -0.3", "0 0 1.5", 45, api_name="/add_keyframe")
    assert out[4].startswith("10 keyframes")
    headers_rows = out[1]
    table = headers_rows.get("value", headers_rows)  # an update {headers, value: {headers, data}}
    rows = table["data"]
    assert np.allclose([float(v) for v in rows[-1][1:4]], [0.05, 0, -0.3])

    t0 = time.perf_counter()
    image, coverage = client.predict(120, False, api_name="/render_frame")
    frame_s = time.perf_counter() - t0
    from PIL import Image

    img = np.asarray(Image.open(image))
    assert img.shape[:2] == (352, 640)
    assert "covered" in coverage
    image0, coverage0 = client.predict(0, False, api_name="/render_frame")
    assert float(coverage0.split(":")[1].split("%")[0]) > 95.0
    assert np.abs(np.asarray(Image.open(image0)).astype(int) - img.astype(int)).mean() > 1.0

    out = client.predict(0, "look-at", api_name="/new_path")  # inputs: frame, table mode (like /undo)
    assert out[4].startswith("1 keyframe |") and "needs two" in out[4]
    out = client.predict(0, "look-at", api_name="/undo")
    assert out[4].startswith("10 keyframes")
    assert client.predict(0, "look-at", api_name="/redo")[4].startswith("1 keyframe |")
    client.predict(0, "look-at", api_name="/undo")

    exported = client.predict("nerfstudio", api_name="/export_path")
    assert exported.endswith("camera_path.json")
    data = json.loads(open(exported).read())
    assert len(data["camera_path"]) == 241
    npz = client.predict("npz", api_name="/export_path")
    with np.load(npz, allow_pickle=False) as z:
        assert z["w2cs_all"].shape[-3:] == (241, 4, 4)

    print(json.dumps({"bench": "studio_client", "start_to_ready_s": round(ready_s, 2),
                      "load_sample_to_figure_s": round(load_s, 2), "preview_frame_s": round(frame_s, 3),
                      "note": "2 shared CPU cores, noisy; render_frame includes the HTTP round trip"}))


def test_errors_reach_the_client_and_sessions_are_separate(server):
    from gradio_client.exceptions import AppError

    url, _ = server
    fresh = _client(url)
    with pytest.raises(AppError, match="load a scene first"):
        fresh.predict(0, False, api_name="/render_frame")
    fresh.predict("tabletop", api_name="/load_sample")
    with pytest.raises(AppError, match="three numbers"):
        fresh.predict("1 2", "0 0 1", 45, api_name="/add_keyframe")
    with pytest.raises(AppError, match="choices|unknown format"):
        fresh.predict("fbx", api_name="/export_path")
    other = _client(url)
    with pytest.raises(AppError, match="load a scene first"):
        other.predict("json", api_name="/export_path")
