"""Gradio-facing wrappers around `studio.handlers`: session bootstrapping, output tuples, the status area.

Every path or scene action returns the REFRESH values (see `REFRESH`): the first twelve are the outputs the
named API endpoints have always had (gradio_client scripts index them), the rest were added after them.
Errors go to the status area (see `studio.messages.user_errors`) and leave every other output as it was.
The 3D view's figure is sent only when the scene (or how it is drawn) changes; path edits send the camera
payload, which the browser applies to the live figure.
"""
from __future__ import annotations

import functools
import time

import gradio as gr

from engine.errors import Cancelled, InputError
from engine.json_input import parse_json
from studio import figures, files, handlers, persist, sessions
from studio import generate as gen
from studio.figures import coverage_figure
from studio.messages import status_html, user_errors
from studio.model_inputs import GeneratedInputs, thumbnail_trace
from studio.sessions import Held
from studio.state import COVERAGE_WARN, VIDEO_SIZE, Session
from studio.viewcam import MAX_PAYLOAD_BYTES

# the outputs of every path/scene action, in this order
REFRESH = ("session", "plot", "table", "frame", "selected", "summary", "revision", "undo", "redo",
           "interpolation", "constant_speed", "chunks",  # the API's original twelve
           "cameras", "keyframe_list", "preview", "coverage", "browser_state", "status")
N_REFRESH = len(REFRESH)
PATH_VIDEO_SETTLE_S = 0.4
STATUS = REFRESH.index("status")
SCENE_EXTRA = ("preset", "rotation", "distance", "corrected", "sample")  # after the scene status + REFRESH


def ensure(session: Session | None, request: gr.Request | None) -> Session:
    """`session` with its output folder and registry entry (keyed by gradio's session hash, so unload and the
    scene cap can find it); a fresh one for a first event. A session whose state gradio dropped (expired)
    starts with the reason, which its first action reports."""
    if session is not None and session.folder:
        return session
    key = getattr(request, "session_hash", None)
    if not key:
        return (session or Session()).replace(folder=files.new_session_folder())
    entry, why = sessions.REGISTRY.open(key, files.new_session_folder)
    if session is None:
        session = Session(held=Held(released=why) if why else None)
    return session.replace(folder=entry.folder, key=key, latest=entry.latest)


def _request_session_hash() -> str:
    from gradio.context import LocalContext

    return getattr(LocalContext.request.get(None), "session_hash", None) or ""


def current(session: Session | None) -> Session | None:
    """The newest snapshot of `session`: the state an event was given can predate an edit that finished since
    (see `serialised`). Marks the session as used (the scene cap drops the least recently used scene). With no
    state (gradio dropped an expired one, or the tab is new), a placeholder saying why the scene is gone when
    the registry knows, else None."""
    if session is None:
        why = sessions.REGISTRY.why_gone(_request_session_hash())
        return Session(held=Held(released=why)) if why else None
    if session.key:
        sessions.REGISTRY.touch(session.key)
    return session.latest.newest(session)


def serialised(fn=None, *, index: int = 0):
    """Run an event fn that returns a new session (output number `index`) under the session's edit lock, on
    the session's newest snapshot, and publish what it returns: concurrent edits of one session all land, in
    the order they started, none working on a state another one has replaced."""

    def wrap(fn):
        @functools.wraps(fn)
        def run(session, *args, **kwargs):
            if session is None:  # a first event: no earlier edit to wait for
                return fn(current(None), *args, **kwargs)
            latest = session.latest
            with latest.lock:
                out = fn(current(session), *args, **kwargs)
                if isinstance(out, tuple) and len(out) > index and isinstance(out[index], Session):
                    latest.publish(out[index])
            return out

        return run

    return wrap(fn) if fn is not None else wrap


def plot_value(figure: dict | None):
    """A scene figure dict as gr.Plot's payload (pre-serialised: see figures.scene_figure)."""
    if figure is None:
        return None
    from gradio.components.plot import PlotData

    return PlotData(type="plotly", plot=figures.to_json(figure))


def coverage_text(frame, coverage: float) -> str:
    flag = "  (low: the camera leaves what the cache can show)" if coverage < COVERAGE_WARN else ""
    return f"frame {int(frame)}: {coverage:.1%} covered{flag}"


def _clamp_frame(session: Session, frame) -> int:
    try:
        return min(max(int(frame or 0), 0), session.num_frames - 1)
    except (TypeError, ValueError):
        return 0


def refresh(session: Session | None, frame=0, table_mode: str = "look-at", *, figure: bool = False,
            message: str = "", level: str = "info") -> tuple:
    """The REFRESH values for `session` at `frame`. figure: re-send the 3D view's figure (new scene or
    drawing style); otherwise the figure stays and the camera payload updates it in the browser."""
    session = handlers.with_cameras(session) if session is not None and session.path is not None else session
    headers, rows = handlers.keyframe_table(session, table_mode)
    status = status_html(message, level)
    if session is None or session.scene is None:
        return (session, None, gr.update(value=rows, headers=headers), gr.update(), gr.update(),
                handlers.path_summary(session), 0, gr.update(interactive=False), gr.update(interactive=False),
                gr.update(), gr.update(), gr.update(),
                "", handlers.table_payload(session, table_mode), gr.update(), gr.update(), gr.update(), status)
    frame = _clamp_frame(session, frame)
    has_path = session.path is not None
    if not figure and (session.box is None or not handlers.path_inside(session, session.box)):
        figure = True  # the path left the figure's box (or no figure yet): a new figure, a bigger box
    if figure:
        session = session.replace(box=handlers.fit_box(session))
    preview, coverage = gr.update(), gr.update()
    if has_path:
        image, cov = handlers.render_frame(session, frame, bool(session.view.get("holes")))
        preview, coverage = image, coverage_text(frame, cov)
    return (
        session,
        plot_value(handlers.scene_figure(session, frame)) if figure else gr.skip(),
        gr.update(value=rows, headers=headers),
        gr.update(maximum=session.num_frames - 1, value=frame),
        session.selected + 1 if has_path else 1,
        handlers.path_summary(session),
        session.revision,
        gr.update(interactive=session.history.can_undo),
        gr.update(interactive=session.history.can_redo),
        session.path.interpolation if has_path else gr.update(),
        session.path.constant_speed if has_path else gr.update(),
        (session.num_frames - 1) // 120,
        handlers.camera_payload(session, frame),
        handlers.table_payload(session, table_mode, nonce=time.monotonic_ns()),
        preview,
        coverage,
        persist.snapshot(session, table_mode),
        status,
    )


def edit(fn, message=None):
    """An event fn `(session, frame, table_mode, *args) -> REFRESH values` from a handler `fn(session, *args)`.

    message: a function of the new session giving the status line (default: the status area is cleared)."""

    @user_errors(outputs=N_REFRESH, status=STATUS)
    @serialised
    def run(session, frame, table_mode, *args):
        new = fn(session, *args)
        return refresh(new, frame, table_mode, message=message(new) if message else "")

    run.__name__ = getattr(fn, "__name__", "edit")
    return run


def _table_again(session, frame, table_mode, *args):
    return handlers.table_payload(session, table_mode, nonce=time.monotonic_ns())


@user_errors(outputs=N_REFRESH, status=STATUS, keep={REFRESH.index("keyframe_list"): _table_again})
@serialised
def edit_cell(session, frame, table_mode, payload):
    """One cell of the keyframe list, sent by the browser as JSON {row, column, value}; a rejected value
    re-sends the list as it was (the cell shows its old value again) and says why in the status area."""
    data = parse_json(payload, "keyframe table edit", max_bytes=MAX_PAYLOAD_BYTES)
    if not isinstance(data, dict) or not {"row", "column", "value"} <= set(data):
        raise InputError("keyframe table: malformed edit from the browser")
    row, column, value = data["row"], data["column"], data["value"]
    return refresh(handlers.edit_cell(session, row, column, value, table_mode), frame, table_mode)


@user_errors(outputs=N_REFRESH, status=STATUS)
@serialised
def select_from_list(session, frame, table_mode, payload):
    """A keyframe picked in the list (the browser sends its 0-based index as JSON {index})."""
    data = parse_json(payload, "keyframe list selection", max_bytes=MAX_PAYLOAD_BYTES)
    if not isinstance(data, dict) or "index" not in data:
        raise InputError("keyframe list: malformed selection from the browser")
    index = data["index"]
    return refresh(handlers.select_keyframe(session, index), frame, table_mode)


# ---------------------------------------------------------------------------------------------
# named API endpoints (also used by the UI)


def scene_values(session, table_mode="look-at", message="", level="info") -> tuple:
    """Scene status + REFRESH (with the figure) + the default preset's controls + the sample dropdown."""
    d = handlers.DEFAULT_PRESET
    sample = session.scene_ref.get("sample") if session is not None else None
    return ((handlers.scene_status(session),) + refresh(session, 0, table_mode, figure=True, message=message,
                                                        level=level)
            + (d["kind"], d["rotation"], d["distance"], d["corrected"], sample))


N_SCENE = 1 + N_REFRESH + len(SCENE_EXTRA)


@user_errors(outputs=N_SCENE, status=1 + STATUS)
@serialised(index=1)
def load_sample(session, name, request: gr.Request = None):
    """Load a bundled sample scene. Returns the scene status line, then the refreshed view."""
    session = handlers.load_sample(ensure(session, request), name)
    return scene_values(session)


@user_errors(outputs=N_SCENE, status=1 + STATUS)
@serialised(index=1)
def load_upload(session, image, depth_file, fov, fit, weights_dir, request: gr.Request = None,
                progress=gr.Progress()):
    def report(fraction, message=""):
        progress(float(fraction), desc=message or "estimating depth")

    progress(0, desc="reading image")
    session = handlers.load_upload(ensure(session, request), image, depth_file, fov, fit, weights_dir or None,
                                   progress=report)
    return scene_values(session)


@user_errors(outputs=N_REFRESH, status=STATUS)
@serialised
def set_preset(session, kind, rotation, distance, chunks, corrected, frame=0, table_mode="look-at"):
    """Replace the path with an official GEN3C trajectory (frames = 120 * chunks + 1)."""
    return refresh(handlers.set_preset(session, kind, rotation, distance, chunks, corrected), frame, table_mode)


@user_errors(outputs=N_REFRESH, status=STATUS)
@serialised
def add_keyframe(session, position, look_at, fov, frame=0, table_mode="look-at"):
    """Add a keyframe from numbers: position "x y z", look-at "x y z" (world, OpenCV axes), vertical FOV."""
    return refresh(handlers.add_keyframe(session, position, look_at, fov), frame, table_mode)


@user_errors
def render_frame(session, frame, show_holes=False):
    """The warped preview at path frame `frame`: image and coverage text."""
    image, coverage = handlers.render_frame(current(session), frame, bool(show_holes))
    return image, coverage_text(frame, coverage)


def _write_export(session, fmt, request) -> str:
    session = handlers.require_path(current(session))
    folder = session.folder or ensure(session, request).folder
    path = handlers.scene_path(session)  # sampled with the scene camera's lens, as generation samples it
    return str(files.export_path(path, fmt, session.num_frames, *handlers.MODEL_SIZE, folder))


@user_errors
def export_path(session, fmt, request: gr.Request = None):
    """Write the path as 'nerfstudio' | 'npz' | 'json' and return the file (named camera_path.json,
    cameras.npz or path.json, in a folder of its own)."""
    return _write_export(session, fmt, request)


@user_errors(outputs=2, status=1)
def export_to_list(session, fmt, earlier, request: gr.Request = None):
    """The UI's export: the new file joins the session's earlier exports (newest first, each its own
    download) and the status area says what was written."""
    from pathlib import Path

    file = _write_export(session, fmt, request)
    return _downloads(file, earlier), status_html(f"Exported {Path(file).name} ({files.EXPORT_FORMATS[fmt]}).")


def _downloads(file: str, earlier) -> list[str]:
    """The Downloads list: `file`, then the earlier exports still on disk (the quota may have removed some)."""
    from pathlib import Path

    paths = [file] + [p for p in _file_paths(earlier) if p != file and Path(p).is_file()]
    return paths[:8]


def _file_paths(value) -> list[str]:
    items = value if isinstance(value, list) else ([] if value is None else [value])
    out = []
    for item in items:
        path = item if isinstance(item, str) else getattr(item, "path", None) or (
            item.get("path") if isinstance(item, dict) else None)
        if path:
            out.append(str(path))
    return out


# ---------------------------------------------------------------------------------------------
# other UI events


@user_errors(outputs=N_REFRESH, status=STATUS)
@serialised
def import_path(session, file, frame, table_mode):
    session = handlers.require_scene(session)
    path = files.import_path(file, handlers.MODEL_SIZE[0])
    frames = session.num_frames
    count = len(path.keyframes)
    if count in persist.FRAME_CHOICES and count != frames:  # a per-frame file: keep its length
        frames = count
    return refresh(session.with_path(path, num_frames=frames, selected=0, targets={}), frame, table_mode,
                   message=f"Imported a path with {count} keyframes.")


@user_errors(outputs=2, status=1)
def export_ply(session, request: gr.Request = None):
    """The scene's point cloud as a binary PLY in an export folder of its own (counted in the quota)."""
    session = handlers.require_scene(current(session))
    scene = session.scene
    with files.export_file(session.folder or ensure(session, request).folder, "pointcloud.ply") as file:
        scene.save_ply(file)
    return str(file), status_html(f"Exported {file.name}.")


@user_errors
def path_video(session, frame=0):
    """The low-res preview video of the whole path and the coverage chart; stale results are dropped."""
    session = current(session)
    if session is None or session.path is None:
        return gr.skip(), gr.skip(), gr.skip()
    if not session.path.can_animate:
        return None, gr.skip(), "One keyframe: add another (Add from view) to see the camera move."
    revision = session.revision
    stride = handlers.preview_stride()
    stale = lambda: not session.latest.is_current(revision)  # noqa: E731 - a newer edit is on its way
    time.sleep(PATH_VIDEO_SETTLE_S)  # let a run of quick edits finish first: their previews come before the video
    if stale():
        return gr.skip(), gr.skip(), gr.skip()
    out = handlers.render_path(session, bool(session.view.get("holes")), stride, stale=stale)
    if out is None or stale():
        return gr.skip(), gr.skip(), gr.skip()  # the newer edit's render will show
    index, frames, coverage = out
    from engine.video import write_mp4

    if session.scene is None:
        return gr.skip(), gr.skip(), gr.skip()  # released meanwhile: the next action says why
    file = files.unique_file(session.folder or files.new_session_folder(), "preview.mp4")
    write_mp4(file, frames, fps=24 / stride)
    files.keep_newest(file.parent, "preview-", keep=2)
    now = _clamp_frame(session, frame)
    return (str(file), coverage_figure(coverage, COVERAGE_WARN, current=now, frames=index),
            handlers.coverage_warning(coverage, index))


def weights_panel(weights_dir):
    """(panel markdown, Generate enabled, accordion open, no-text-encoder offered)."""
    ok, message = gen.weights_status(weights_dir or None)
    zero_ok, _ = gen.weights_status(weights_dir or None, zero_text=True)
    return message, gr.update(interactive=ok or zero_ok), gr.update(open=ok or zero_ok)


def cancel_generation(session):
    if session is not None:
        session.cancel.set()
    return "Cancelling after the current step...", gr.update(interactive=False)


def make_generate(weights_dir):
    """The generate event fn."""

    @user_errors
    def generate(session, prompt, negative_prompt, steps, guidance, seed, cfg, no_text_encoder=False,
                 fast_mode="none", progress=gr.Progress()):
        settings = gen.validate_settings(prompt, negative_prompt, steps, guidance, seed, cfg, fast_mode)
        session = handlers.require_motion(current(session))
        settings["foreground_masking"] = bool(session.preview.foreground_masking)
        if no_text_encoder:
            settings["zero_text"] = True
        session.cancel.clear()
        started = time.perf_counter()

        def report(info: dict):
            chunks, k = max(int(info.get("num_chunks") or 1), 1), int(info.get("chunk") or 0)
            steps_, step = max(int(info.get("num_steps") or 1), 1), int(info.get("step") or 0)
            progress(min((k + step / steps_) / chunks, 1.0),
                     desc=f"chunk {k + 1}/{chunks} {info.get('stage', '')} step {step}/{steps_}")

        try:
            result = gen.run(session, weights_dir, settings, progress=report, cancel=session.cancel)
        except Cancelled:
            return gr.skip(), gr.skip(), "Cancelled."
        from engine.video import write_mp4

        file = files.unique_file(session.folder, "gen3c.mp4")
        write_mp4(file, result.frames, fps=result.fps)
        if result.trace is not None and session.held is not None:  # the model-inputs view shows what it received
            session.held.generated = GeneratedInputs(session.revision, session.num_frames,
                                                     thumbnail_trace(result.trace, VIDEO_SIZE))
        took = time.perf_counter() - started
        return str(file), str(file), f"Done: {len(result.frames)} frames in {took:.0f} s (seed {result.seed})."

    # not a spaces.GPU call itself: on ZeroGPU, studio.zerogpu runs the generation as several GPU calls, each
    # within its budget (one call could not hold a chunk)
    return generate


def make_unload(blocks):
    """The unload event fn (tab closed, gradio_client closed): the session is closed at once (scene released,
    folder removed, gradio's record of it dropped, memory given back); see `studio.cleanup`."""

    def on_unload(request: gr.Request):
        from studio.cleanup import close_session

        key = getattr(request, "session_hash", None)
        if key:
            close_session(key, blocks=blocks)

    return on_unload
