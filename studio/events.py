"""Gradio-facing wrappers around `studio.handlers`: session bootstrapping, error display, output tuples.

Each wrapper reports an `InputError` with `user_errors` (a toast in the browser, an error for API
clients; the event's outputs, state included, are left unchanged) and returns the values for a fixed
list of components.
"""
from __future__ import annotations

import functools
import time

import gradio as gr

from engine.errors import Cancelled, InputError, WeightsMissingError
from studio import figures, files, handlers
from studio import generate as gen
from studio.figures import coverage_figure
from studio.state import COVERAGE_WARN, Session


API_CALLERS = ("api", "mcp")  # gradio_client / MCP send this in the x-gradio-user header


def _from_api_client() -> bool:
    """True when the running event was called through the API (or outside any request, e.g. tests)."""
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    if request is None:
        return True
    headers = getattr(request, "headers", None) or {}
    return str(headers.get("x-gradio-user", "")).lower() in API_CALLERS


def error_toast(message: str) -> None:
    """An error toast in the page without failing the event (gradio's own gr.Info/gr.Warning path,
    level "error", which its log message and frontend support); gr.Warning where that is unavailable."""
    from gradio.context import LocalContext

    blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
    queue = getattr(blocks, "_queue", None)
    if queue is not None and event_id is not None:
        try:
            queue.log_message(event_id=event_id, log=message, title="Error", level="error")
            return
        except Exception:  # noqa: BLE001 - a gradio internals change must still show the message
            pass
    gr.Warning(message, title="Error")


def user_errors(fn):
    """Report engine input errors without a traceback and without touching the event's outputs.

    In the browser: an error toast and every output skipped (gr.skip()), so gradio puts no "Error"
    badges over the unchanged 3D view, table and sliders. API clients (gradio_client, MCP) get a real
    error (gr.Error -> gradio_client AppError) with the same one-line message.
    """

    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (InputError, WeightsMissingError) as exc:
            if _from_api_client():
                raise gr.Error(str(exc), print_exception=False) from None
            error_toast(str(exc))
            return gr.skip()

    return run


def session_folder(request: gr.Request | None) -> str:
    """The per-session output folder, named after gradio's session hash (so unload can remove it)."""
    key = getattr(request, "session_hash", None)
    if not key:
        return files.new_session_folder()
    return files.session_folder_for(key)


def ensure(session: Session | None, request: gr.Request | None) -> Session:
    if session is not None and session.folder:
        return session
    return (session or Session()).replace(folder=session_folder(request))


def plot_value(figure: dict | None):
    """A scene figure dict as gr.Plot's payload (pre-serialised: see figures.scene_figure)."""
    if figure is None:
        return None
    from gradio.components.plot import PlotData

    return PlotData(type="plotly", plot=figures.to_json(figure))


def refresh(session: Session | None, frame=0, table_mode: str = "look-at") -> tuple:
    """Values for REFRESH outputs: state, 3D view, table, frame slider, selected, summary, revision,
    undo, redo, interpolation, constant speed, length (chunks)."""
    session = handlers.with_cameras(session) if session is not None and session.path is not None else session
    headers, rows = handlers.keyframe_table(session, table_mode)
    if session is None or session.scene is None:
        return (session, None, gr.update(value=rows, headers=headers), gr.update(), gr.update(),
                handlers.path_summary(session), 0, gr.update(interactive=False), gr.update(interactive=False),
                gr.update(), gr.update(), gr.update())
    last = session.num_frames - 1
    try:
        frame = min(max(int(frame or 0), 0), last)
    except (TypeError, ValueError):
        frame = 0
    has_path = session.path is not None
    return (
        session,
        plot_value(handlers.scene_figure(session, frame)),
        gr.update(value=rows, headers=headers),
        gr.update(maximum=last, value=frame),
        session.selected + 1 if has_path else 1,
        handlers.path_summary(session),
        session.revision,
        gr.update(interactive=session.history.can_undo),
        gr.update(interactive=session.history.can_redo),
        session.path.interpolation if has_path else gr.update(),
        session.path.constant_speed if has_path else gr.update(),
        (session.num_frames - 1) // 120,
    )


def edit(fn):
    """An event fn `(session, frame, table_mode, *args) -> REFRESH values` from a handler `fn(session, *args)`."""

    @user_errors
    def run(session, frame, table_mode, *args):
        return refresh(fn(session, *args), frame, table_mode)

    run.__name__ = fn.__name__
    return run


# ---------------------------------------------------------------------------------------------
# named API endpoints (also used by the UI)


@user_errors
def load_sample(session, name, request: gr.Request = None):
    """Load a bundled sample scene. Returns the scene status line, then the refreshed view."""
    session = handlers.load_sample(ensure(session, request), name)
    return (handlers.scene_status(session),) + refresh(session, 0)


@user_errors
def load_upload(session, image, depth_file, fov, fit, weights_dir, request: gr.Request = None,
                progress=gr.Progress()):
    def report(fraction, message=""):
        progress(float(fraction), desc=message or "estimating depth")

    progress(0, desc="reading image")
    session = handlers.load_upload(ensure(session, request), image, depth_file, fov, fit, weights_dir or None,
                                   progress=report)
    return (handlers.scene_status(session),) + refresh(session, 0)


@user_errors
def set_preset(session, kind, rotation, distance, chunks, corrected, frame=0, table_mode="look-at"):
    """Replace the path with an official GEN3C trajectory (frames = 120 * chunks + 1)."""
    return refresh(handlers.set_preset(session, kind, rotation, distance, chunks, corrected), frame, table_mode)


@user_errors
def add_keyframe(session, position, look_at, fov, frame=0, table_mode="look-at"):
    """Append a keyframe from numbers: position "x y z", look-at "x y z" (world, OpenCV axes), vertical FOV."""
    return refresh(handlers.add_keyframe(session, position, look_at, fov), frame, table_mode)


@user_errors
def render_frame(session, frame, show_holes=False):
    """The warped preview at path frame `frame`: image and coverage text."""
    image, coverage = handlers.render_frame(session, frame, bool(show_holes))
    flag = "  (low: the camera leaves what the cache can show)" if coverage < COVERAGE_WARN else ""
    return image, f"frame {int(frame)}: {coverage:.1%} covered{flag}"


@user_errors
def export_path(session, fmt, request: gr.Request = None):
    """Write the path as 'nerfstudio' | 'npz' | 'json' and return the file."""
    session = handlers.require_path(session)
    folder = session.folder or session_folder(request)
    return str(files.export_path(session.path, fmt, session.num_frames, *handlers.MODEL_SIZE, folder))


# ---------------------------------------------------------------------------------------------
# other UI events


@user_errors
def import_path(session, file, frame, table_mode):
    session = handlers.require_scene(session)
    path = files.import_path(file, handlers.MODEL_SIZE[0])
    frames = session.num_frames
    count = len(path.keyframes)
    if count in (121, 241, 361, 481) and count != frames:  # a per-frame file: keep its length
        frames = count
    gr.Info(f"Imported a path with {count} keyframes.")
    return refresh(session.with_path(path, num_frames=frames, selected=0), frame, table_mode)


@user_errors
def export_ply(session, request: gr.Request = None):
    session = handlers.require_scene(session)
    file = files.unique_file(session.folder or session_folder(request), "pointcloud.ply")
    session.scene.save_ply(file)
    return str(file)


@user_errors
def select_row(session, frame, table_mode, evt: gr.SelectData):
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    return refresh(handlers.select_keyframe(session, int(row)), frame, table_mode)


@user_errors
def select_number(session, number, frame, table_mode):
    return refresh(handlers.select_keyframe(session, int(number or 1) - 1), frame, table_mode)


def path_video(session, show_holes=False):
    """The low-res preview video of the whole path and the coverage chart; stale results are dropped."""
    if session is None or session.path is None:
        return gr.skip(), gr.skip(), gr.skip()
    revision = session.revision
    stride = handlers.preview_stride()
    index, frames, coverage = handlers.render_path(session, bool(show_holes), stride)
    if not session.latest.is_current(revision):
        return gr.skip(), gr.skip(), gr.skip()  # a newer edit is on its way; its render will show
    from engine.video import write_mp4

    file = files.unique_file(session.folder or files.new_session_folder(), "preview.mp4")
    write_mp4(file, frames, fps=24 / stride)
    files.keep_newest(file.parent, "preview-", keep=2)
    return (str(file), coverage_figure(coverage, COVERAGE_WARN, frames=index),
            handlers.coverage_warning(coverage, index))


def weights_panel(weights_dir):
    ok, message = gen.weights_status(weights_dir or None)
    return message, gr.update(interactive=ok)


def cancel_generation(session):
    if session is not None:
        session.cancel.set()
    return "Cancelling after the current step..."


def make_generate(weights_dir):
    """The generate event fn."""

    @user_errors
    def generate(session, prompt, negative_prompt, steps, guidance, seed, cfg, progress=gr.Progress()):
        settings = gen.validate_settings(prompt, negative_prompt, steps, guidance, seed, cfg)
        session = handlers.require_path(session)
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
        took = time.perf_counter() - started
        return str(file), str(file), f"Done: {len(result.frames)} frames in {took:.0f} s (seed {result.seed})."

    # not a spaces.GPU call itself: on ZeroGPU, studio.zerogpu runs the generation as several GPU calls, each
    # within its budget (one call could not hold a chunk)
    return generate


def on_unload(request: gr.Request):
    """Tab closed: remove this session's output folder."""
    key = getattr(request, "session_hash", None)
    if key:
        files.remove_session_folder(files.session_folder_for(key, create=False))
