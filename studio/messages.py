"""The status area and how handler errors reach the page and API clients.

Errors are shown whole in the status area (HTML-escaped: paths such as `<weights>/moge/model.pt` and angle
brackets show literally) and stay there until the next action writes the area again. API clients
(gradio_client, MCP) get a real error (gr.Error -> gradio_client AppError) with the same one-line message.
"""
from __future__ import annotations

import functools
import html

import gradio as gr

from engine.errors import InputError, WeightsMissingError

API_CALLERS = ("api", "mcp")  # gradio_client / MCP send this in the x-gradio-user header
LEVELS = ("error", "warning", "info")


def status_html(message: str = "", level: str = "info") -> str:
    """The status area's HTML for `message` (escaped, line breaks kept); "" clears it."""
    if not message:
        return '<div class="studio-msg studio-msg-none"></div>'
    level = level if level in LEVELS else "info"
    title = {"error": "Error: ", "warning": "Note: ", "info": ""}[level]
    role = ' role="alert"' if level == "error" else ""
    return (f'<div class="studio-msg studio-msg-{level}"{role}><b>{title}</b>'
            f'{html.escape(str(message))}</div>')


def from_api_client() -> bool:
    """True when the running event was called through the API (or outside any request, e.g. tests)."""
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    if request is None:
        return True
    headers = getattr(request, "headers", None) or {}
    return str(headers.get("x-gradio-user", "")).lower() in API_CALLERS


def user_errors(fn=None, *, outputs: int | None = None, status: int = -1, keep: dict | None = None):
    """Report engine input errors without a traceback and without touching the event's other outputs.

    In the browser the event's outputs are all skipped (gr.skip()) except the status area, output number
    `status` of `outputs`, which shows the message (events without a status area: every output skipped and
    the message as an error toast). `keep` maps output numbers to functions of the event's arguments whose
    values are sent anyway (e.g. the keyframe table, so a rejected cell shows its old value again).
    """

    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except (InputError, WeightsMissingError) as exc:
                if from_api_client():
                    raise gr.Error(str(exc), print_exception=False) from None
                if outputs is None:
                    error_toast(str(exc))
                    return gr.skip()
                out = [gr.skip()] * outputs
                out[status] = status_html(str(exc), "error")
                for index, value in (keep or {}).items():
                    out[index] = value(*args, **kwargs)
                return tuple(out)

        return run

    return wrap(fn) if fn is not None else wrap


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
