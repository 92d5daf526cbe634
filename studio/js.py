"""The browser side of the studio: studio/web/studio.js (run once per page through `launch(js=...)`) and the
small `js=` functions of events that call it.

gr.Plot sends no camera or click events to Python and re-mounts (a new WebGL context) whenever its value
changes, so the 3D view's figure is sent once per scene and studio.js edits it in place:
- `applyCameras(payload)` (the hidden camera box's change) replaces the camera traces of the live figure
  with `Plotly.react` (the scene trace stays; no re-mount, the user's view is kept);
- `showFrame(frame)` (the frame slider) moves the current-frame frustum with `Plotly.restyle` from the
  per-frame geometry in the payload, once the slider rests, and the coverage chart's current-frame line;
- the frame of the selected keyframe (its FOV, the model's aspect) is drawn over the view and the view's
  own FOV set so the frame fills FRAME_FILL of it: `readView()` returns the live camera with that FOV, so
  "Add from view" adds exactly what is inside the frame; `lookThrough()` moves the view to the keyframe;
- clicks on the scene (not orbit drags) aim the selected keyframe (CLICK_BOX_ID);
- the keyframe list is an HTML table of inputs edited in place (CELL_BOX_ID: one cell, SELECT_BOX_ID: a row
  picked), re-filled from the list payload without losing the focused cell;
- on a software-WebGL browser the 3D view renders at one device pixel per CSS pixel.
"""
from __future__ import annotations

import json
from pathlib import Path

PLOT_ID = "studio-3d"
VIEW_BOX_ID = "studio-view-camera"
CLICK_BOX_ID = "studio-click-point"
CAMERAS_BOX_ID = "studio-cameras"
LIST_BOX_ID = "studio-list-data"
CELL_BOX_ID = "studio-cell-edit"
SELECT_BOX_ID = "studio-list-select"
CLICK_SLOP_PX = 4
CLICK_LATE_MS = 2000  # plotly_click arriving this long after a click's release still counts
HIGHLIGHT_IDLE_MS = 300
ROTATE_SPEED = 0.4  # plotly's turntable: about this many degrees per pixel dragged (its default 1 spins the view)

WEB = Path(__file__).resolve().parent / "web"


def page_js() -> str:
    """The page-level script: the studio config, then studio.js."""
    config = {"click_box": CLICK_BOX_ID, "cell_box": CELL_BOX_ID, "select_box": SELECT_BOX_ID,
              "click_slop_px": CLICK_SLOP_PX, "click_late_ms": CLICK_LATE_MS, "highlight_idle_ms": HIGHLIGHT_IDLE_MS,
              "rotate_speed": ROTATE_SPEED}
    body = (WEB / "studio.js").read_text()
    return f"() => {{ window.__studioConfig = {json.dumps(config)}; ({body.strip()})(); }}"


def page_css() -> str:
    return (WEB / "studio.css").read_text()


# event js= functions (the page script defines window.studio before any event can run)
READ_VIEW_JS = "() => window.studio.readView()"
APPLY_CAMERAS_JS = "(payload) => { window.studio.applyCameras(payload); return []; }"
RENDER_LIST_JS = "(payload) => window.studio.renderList(payload)"
HIGHLIGHT_JS = "(frame) => window.studio.showFrame(frame)"
LOOK_THROUGH_JS = "() => window.studio.lookThrough()"
OVERVIEW_JS = "() => window.studio.overview()"
