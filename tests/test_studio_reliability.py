"""The studio side of issue 11: a private studio root, outputs that are whole or absent, the export quota, the
cap on held scenes, sessions that expire or close and give their scene back, and edits of one session that
are serialised. Live-server cases drive the app with gradio_client, as a user's script would."""
from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest

from faults import enospc_after, fake_ffmpeg, leftovers
from studio import events, files, sessions
from studio.sessions import EVICTED, Registry

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def root(tmp_path, monkeypatch):
    folder = tmp_path / "studio"
    monkeypatch.setenv("GEN3C_STUDIO_TMP", str(folder))
    return folder


@pytest.fixture
def registry(monkeypatch):
    """A registry of our own (cap 2) instead of the process-wide one."""
    reg = Registry(capacity=2)
    monkeypatch.setattr(sessions, "REGISTRY", reg)
    return reg


def request(key: str):
    return SimpleNamespace(session_hash=key)


def loaded(key: str, sample: str = "tabletop"):
    return events.load_sample(None, sample, request=request(key))[1]


# ---------------------------------------------------------------------------------------------
# a private studio root


def test_root_is_created_private(root):
    made = files.studio_root()
    info = os.lstat(made)
    assert made == root and stat.S_ISDIR(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.geteuid()


def test_root_of_ours_open_to_others_is_made_private(root):
    root.mkdir(mode=0o755)
    os.chmod(root, 0o777)
    files.studio_root()
    assert stat.S_IMODE(os.lstat(root).st_mode) == 0o700


def test_root_that_is_a_symlink_is_refused(root):
    root.symlink_to("/")
    with pytest.raises(files.StudioRootError, match="symbolic link"):
        files.studio_root()
    with pytest.raises(files.StudioRootError):
        files.new_session_folder()


def test_root_owned_by_someone_else_is_refused(root):
    root.mkdir(mode=0o700)
    if os.geteuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    os.chown(root, 65534, 65534)
    with pytest.raises(files.StudioRootError, match="owned by another user"):
        files.studio_root()


def test_app_refuses_a_symlinked_root_at_start_up(tmp_path):
    """The attack of issue 11: the studio root replaced by a link to / made the file route serve any file. The
    app now stops at start-up with one line and serves nothing."""
    link = tmp_path / "gen3c-studio"
    link.symlink_to("/")
    env = dict(os.environ, GEN3C_STUDIO_TMP=str(link), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    port = _free_port()
    proc = subprocess.run([sys.executable, "app.py", "--port", str(port), "--no-browser"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: studio root") and "symbolic link" in lines[-1]
    assert "Traceback" not in proc.stderr
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_session_folders_are_unguessable_and_private(root, registry):
    session = loaded("predictable-hash")
    folder = Path(session.folder)
    assert folder.parent == root and "predictable-hash" not in folder.name
    assert len(folder.name) - len("session-") >= 22  # >= 128 random bits
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


# ---------------------------------------------------------------------------------------------
# outputs whole or absent: a failed write leaves nothing, not even an empty placeholder


def test_failed_ply_export_leaves_nothing(root, registry, monkeypatch):
    session = loaded("ply-fail")
    folder = Path(session.folder)
    before = leftovers(folder)
    enospc_after(monkeypatch, folder, 4096)
    with pytest.raises(gr.Error, match="disk full while writing .*pointcloud.ply"):
        events.export_ply(session)
    assert leftovers(folder) == before


@pytest.mark.parametrize("fmt", ["nerfstudio", "npz", "json"])
def test_failed_path_export_leaves_nothing(root, registry, monkeypatch, fmt):
    session = loaded(f"export-fail-{fmt}")
    folder = Path(session.folder)
    before = leftovers(folder)
    enospc_after(monkeypatch, folder, 16)
    with pytest.raises(gr.Error, match="disk full while writing"):
        events.export_path(session, fmt)
    assert leftovers(folder) == before


def _motion(key: str):
    session = loaded(key)
    return session.with_path(session.path, num_frames=session.num_frames)


def test_failed_path_video_leaves_nothing(root, registry, monkeypatch, tmp_path):
    session = _motion("video-fail")
    folder = Path(session.folder)
    monkeypatch.setattr(events, "PATH_VIDEO_SETTLE_S", 0.0)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(fake_ffmpeg(tmp_path, "disk_full")))
    before = leftovers(folder)
    with pytest.raises(gr.Error, match="disk full while writing .*preview"):
        events.path_video(session, 0)
    assert leftovers(folder) == before  # no 0-byte preview-*.mp4 left by the old name reservation


def test_failed_generated_video_leaves_nothing(root, registry, monkeypatch, tmp_path):
    session = _motion("gen-fail")
    folder = Path(session.folder)
    frames = np.zeros((9, 64, 96, 3), np.uint8)
    monkeypatch.setattr(events.gen, "run", lambda *a, **k: SimpleNamespace(frames=frames, fps=24.0, seed=1, trace=None))
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(fake_ffmpeg(tmp_path, "disk_full")))
    before = leftovers(folder)
    generate = events.make_generate(None)
    with pytest.raises(gr.Error, match="disk full while writing .*gen3c"):
        generate(session, "a room", "", 35, 1.0, 1, "official", progress=lambda *a, **k: None)
    assert leftovers(folder) == before


# ---------------------------------------------------------------------------------------------
# the export quota


def test_export_quota_removes_the_oldest_first(root, registry, monkeypatch):
    session = loaded("quota")
    first = Path(events.export_path(session, "npz"))
    size = first.stat().st_size
    monkeypatch.setenv(files.QUOTA_ENV, str(2.5 * size / 2 ** 20))  # room for two exports of this size
    time.sleep(0.01)
    second = Path(events.export_path(session, "npz"))
    time.sleep(0.01)
    third = Path(events.export_path(session, "npz"))
    assert not first.exists() and not first.parent.exists()  # the oldest went, with its folder
    assert second.is_file() and third.is_file()
    exports = list(Path(session.folder).glob("export-*"))
    assert sorted(exports) == sorted([second.parent, third.parent])
    monkeypatch.setenv(files.QUOTA_ENV, str(0.5 * size / 2 ** 20))  # smaller than one export: the newest stays
    fourth = Path(events.export_path(session, "npz"))
    assert fourth.is_file() and list(Path(session.folder).glob("export-*")) == [fourth.parent]


def test_the_quota_is_stated_next_to_the_export_buttons(root):
    from studio.layout import build_demo

    demo = build_demo(None)
    quota = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "studio-export-quota"]
    assert len(quota) == 1 and f"{files.EXPORT_QUOTA_MB} MB" in quota[0].value
    state = [b for b in demo.blocks.values() if isinstance(b, gr.State) and b.time_to_live != float("inf")]
    assert state, "the session state has no time to live"


# ---------------------------------------------------------------------------------------------
# the cap on held scenes: the least recently used session's scene is dropped and that session told


def test_scene_cap_drops_the_least_recently_used_and_says_so(root, registry):
    a, b = loaded("cap-a"), loaded("cap-b")
    assert registry.held_count() == 2
    events.render_frame(a, 0)  # a is used again: b is now the least recently used
    c = loaded("cap-c", "living_room")
    assert registry.held_count() == 2
    assert a.scene is not None and c.scene is not None and b.scene is None
    message = EVICTED.format(cap=2)
    with pytest.raises(gr.Error, match="released to make room"):
        events.render_frame(b, 0)
    with pytest.raises(gr.Error) as err:
        events.add_keyframe(b, "0 0 -0.2", "0 0 1", 40)
    assert err.value.message == message
    assert b.path is not None  # the path is kept: only the scene went
    again = events.load_sample(b, "tabletop", request=request("cap-b"))[1]  # loading again works
    assert again.scene is not None and registry.held_count() == 2 and a.scene is None


# ---------------------------------------------------------------------------------------------
# live server: concurrent edits, unload, expiry


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(tmp_path_factory, ttl_s: int):
    """The studio app in this process on a free port, its sessions' state kept `ttl_s` seconds without an edit."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("live") / "studio"
    mp.setenv("GEN3C_STUDIO_TMP", str(root))
    mp.setenv("GRADIO_HEARTBEAT_INTERVAL", "0.5")
    mp.setenv("GEN3C_STUDIO_SESSION_TTL_S", str(ttl_s))
    import app

    demo = app.build(str(tmp_path_factory.mktemp("no-weights")))
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}/", root=root, demo=demo)
    finally:
        demo.close()
        mp.undo()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    # a long time to live: queued edits on a loaded machine must not outlast their session
    yield from _launch(tmp_path_factory, 600)


@pytest.fixture()
def live_short_ttl(tmp_path_factory):
    yield from _launch(tmp_path_factory, 6)


def _client(url):
    from gradio_client import Client

    # outputs stay on the server: gradio rewrites a cached output file in place when another event produces the
    # same picture, so a concurrent download of it can come back short (seen under load with six edits at once)
    return Client(url, verbose=False, download_files=False)


def _keyframe_rows(out):
    table = out[1].get("value", out[1])
    return [[float(v) for v in row[1:4]] for row in table["data"]]


def test_six_concurrent_edits_of_one_session_all_land(live):
    client = _client(live.url)
    try:
        client.predict("tabletop", api_name="/load_sample")
        client.predict(0, "look-at", api_name="/new_path")  # one keyframe
        positions = [f"{0.01 * (i + 1):.2f} 0 -0.2" for i in range(6)]
        jobs = [client.submit(p, "0 0 1", 40, api_name="/add_keyframe") for p in positions]
        outs = [job.result(timeout=240) for job in jobs]
        counts = sorted(int(o[4].split()[0]) for o in outs)
        assert counts == [2, 3, 4, 5, 6, 7]  # each edit saw every earlier one: none worked on a stale state
        final = client.predict(0, "look-at", api_name="/undo")  # the newest state, one edit undone
        assert final[4].startswith("6 keyframes")
        redone = client.predict(0, "look-at", api_name="/redo")
        xs = sorted(round(row[0], 3) for row in _keyframe_rows(redone)[1:])
        assert xs == [round(0.01 * (i + 1), 3) for i in range(6)]  # all six positions are there
    finally:
        client.close()


def _wait(condition, timeout=30.0):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_closing_a_session_releases_it_at_once(live):
    client = _client(live.url)
    client.predict("tabletop", api_name="/load_sample")
    key = client.session_hash
    entry = sessions.REGISTRY._entries[key]
    folder, held = Path(entry.folder), entry.held
    assert folder.is_dir() and held.scene is not None
    assert key in live.demo.state_holder.session_data
    client.close()
    assert _wait(lambda: not folder.exists())
    assert held.scene is None and held.preview is None and key not in sessions.REGISTRY.keys()
    assert _wait(lambda: key not in live.demo.state_holder.session_data)


def test_an_idle_session_expires_and_says_so(live_short_ttl):
    from gradio_client.exceptions import AppError

    client = _client(live_short_ttl.url)
    try:
        client.predict("tabletop", api_name="/load_sample")
        folder = Path(sessions.REGISTRY._entries[client.session_hash].folder)
        assert _wait(lambda: not folder.exists(), timeout=20)  # time to live 6 s, then gradio's 1 s sweep
        with pytest.raises(AppError, match="expired"):
            client.predict(0, False, api_name="/render_frame")
        with pytest.raises(AppError, match="expired"):
            client.predict(0, "look-at", api_name="/new_path")
        out = client.predict("tabletop", api_name="/load_sample")  # loading again works
        assert "tabletop" in out[0]
    finally:
        client.close()
