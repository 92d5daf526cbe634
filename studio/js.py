"""The small browser hooks. gr.Plot sends no camera or click events to Python, so:

- READ_VIEW_JS (an event's `js=`, no Python fn) returns the live plotly camera of the 3D view, its axis
  ranges and aspect ratio as JSON into a hidden textbox; a `.then()` handler turns it into a pose with
  `studio.viewcam.pose_from_plotly_camera` (which inverts the display transform).
- CLICK_HOOK_JS (Blocks/launch `js=`, runs once per page) listens for `plotly_click` on the 3D view,
  re-attaching whenever gradio re-mounts the plot, and writes the clicked cloud point (display
  coordinates) into a hidden textbox, firing its input event.
"""
from __future__ import annotations

from studio.figures import CLOUD_TRACE

PLOT_ID = "studio-3d"
VIEW_BOX_ID = "studio-view-camera"
CLICK_BOX_ID = "studio-click-point"

READ_VIEW_JS = f"""
() => {{
  const gd = document.querySelector('#{PLOT_ID} .js-plotly-plot');
  if (!gd || !gd._fullLayout || !gd._fullLayout.scene) return "";
  const sc = gd._fullLayout.scene;
  let cam = sc.camera;
  try {{ if (sc._scene && sc._scene.getCamera) cam = sc._scene.getCamera(); }} catch (e) {{}}
  let aspect = sc.aspectratio;
  try {{ if (sc._scene && sc._scene.glplot) aspect = sc._scene.glplot.getAspectratio(); }} catch (e) {{}}
  const ranges = {{x: sc.xaxis.range, y: sc.yaxis.range, z: sc.zaxis.range}};
  return JSON.stringify({{camera: {{eye: cam.eye, center: cam.center, up: cam.up}},
                         ranges: ranges, aspect: aspect, t: Date.now()}});
}}
"""

CLICK_HOOK_JS = f"""
() => {{
  const write = (payload) => {{
    const box = document.querySelector('#{CLICK_BOX_ID} textarea, #{CLICK_BOX_ID} input');
    if (!box) return;
    const proto = box.tagName === 'TEXTAREA' ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
    Object.getOwnPropertyDescriptor(proto, 'value').set.call(box, payload);
    box.dispatchEvent(new Event('input', {{bubbles: true}}));
  }};
  const attach = () => {{
    const gd = document.querySelector('#{PLOT_ID} .js-plotly-plot');
    if (!gd || !gd.on || gd.__studioClick) return;
    gd.__studioClick = true;
    gd.on('plotly_click', (ev) => {{
      const p = ev && ev.points && ev.points[0];
      if (!p || p.curveNumber !== {CLOUD_TRACE}) return;
      write(JSON.stringify({{x: p.x, y: p.y, z: p.z, t: Date.now()}}));
    }});
  }};
  setInterval(attach, 500);
}}
"""
