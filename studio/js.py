"""The small browser hooks. gr.Plot sends no camera or click events to Python, so:

- READ_VIEW_JS (an event's `js=`, no Python fn) returns the live plotly camera of the 3D view, its axis
  ranges and aspect ratio as JSON into a hidden textbox; a `.then()` handler turns it into a pose with
  `studio.viewcam.pose_from_plotly_camera` (which inverts the display transform).
- CLICK_HOOK_JS (launch `js=`, runs once per page) does three things for the 3D view, re-attaching
  whenever gradio re-mounts the plot:
  * writes a clicked cloud point (display coordinates) into a hidden textbox, firing its input event,
    but only for a real click: plotly's gl3d emits `plotly_click` on the press (and on redraws while the
    button is held), so the point is sent on release, and only when the pointer moved at most
    CLICK_SLOP_PX since the press (an orbit drag is not a click);
  * remembers the view the user orbited to (in display units) and puts it into every new figure
    before plotly draws it (gradio calls `Plotly.react`, which we wrap): updates keep the user's view,
    converted to the new figure's axis ranges, as long as the scene (`layout.uirevision`) is the same;
- HIGHLIGHT_JS (the frame slider's `.change` `js=`, no Python fn) moves the current-frame frustum with
  `Plotly.restyle` on that one trace, from the per-frame geometry the figure carries in
  `layout.meta[FRAMES_META]` (see `studio.figures.scene_figure`): no figure round trip per frame. It
  waits until the slider rests (HIGHLIGHT_IDLE_MS), as every restyle re-draws the whole WebGL scene.
"""
from __future__ import annotations

from studio.figures import CLOUD_TRACE, FRAMES_META

PLOT_ID = "studio-3d"
VIEW_BOX_ID = "studio-view-camera"
CLICK_BOX_ID = "studio-click-point"
CLICK_SLOP_PX = 4
CLICK_LATE_MS = 2000  # plotly_click arriving this long after a click's release still counts

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
  const AXES = ['x', 'y', 'z'];
  const write = (payload) => {{
    const box = document.querySelector('#{CLICK_BOX_ID} textarea, #{CLICK_BOX_ID} input');
    if (!box) return;
    const proto = box.tagName === 'TEXTAREA' ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
    Object.getOwnPropertyDescriptor(proto, 'value').set.call(box, payload);
    box.dispatchEvent(new Event('input', {{bubbles: true}}));
  }};
  // normalised scene units <-> display units, from a scene's axis ranges and aspect ratio
  const boxOf = (scene) => {{
    if (!scene || !scene.aspectratio) return null;
    const r = AXES.map((a) => scene[a + 'axis'] && scene[a + 'axis'].range);
    if (r.some((v) => !v || v.length !== 2)) return null;
    return {{mid: r.map((v) => (v[0] + v[1]) / 2),
             unit: r.map((v, i) => (v[1] - v[0]) / scene.aspectratio[AXES[i]])}};
  }};
  const toDisplay = (p, box, dir) => AXES.map((a, i) => (dir ? 0 : box.mid[i]) + p[a] * box.unit[i]);
  const toNorm = (p, box, dir) => Object.fromEntries(AXES.map((a, i) => [a, (p[i] - (dir ? 0 : box.mid[i])) / box.unit[i]]));
  const saveView = (gd) => {{
    try {{
      const sc = gd._fullLayout.scene;
      const cam = (gd.layout.scene && gd.layout.scene.camera) || sc.camera;
      const box = boxOf(sc);
      if (!cam || !cam.eye || !box) return;
      window.__studioView = {{rev: gd.layout.uirevision, eye: toDisplay(cam.eye, box), center: toDisplay(cam.center, box),
                             up: toDisplay(cam.up || {{x: 0, y: 0, z: 1}}, box, true)}};
    }} catch (e) {{}}
  }};
  const keepView = () => {{
    const P = window.Plotly;
    if (!P || !P.react || P.__studioKeepView) return;
    const react = P.react;
    P.react = function (gd, data, layout) {{
      try {{
        const v = window.__studioView;
        const inPlot = gd && gd.closest && gd.closest('#{PLOT_ID}');
        const box = layout && boxOf(layout.scene);
        if (inPlot && v && box && layout.uirevision === v.rev) {{
          layout.scene.camera = Object.assign({{}}, layout.scene.camera || {{}}, {{
            eye: toNorm(v.eye, box), center: toNorm(v.center, box), up: toNorm(v.up, box, true)}});
        }}
      }} catch (e) {{}}
      return react.apply(this, arguments);
    }};
    P.__studioKeepView = true;
  }};
  // plotly's gl3d scene emits plotly_click when the button goes down over a point (and again on redraws
  // while it is held), so a point is only sent once the button comes up without having moved.
  const press = {{down: null, moved: 0, pending: null, lastUp: null}};
  window.addEventListener('pointerup', () => {{
    if (!press.down) return;
    const click = press.moved <= {CLICK_SLOP_PX};
    if (click && press.pending) write(press.pending);
    press.lastUp = {{click: click, t: performance.now()}};
    press.down = null; press.pending = null;
  }}, true);
  const attach = () => {{
    keepView();
    const gd = document.querySelector('#{PLOT_ID} .js-plotly-plot');
    if (!gd || !gd.on || gd.__studioHooks) return;
    gd.__studioHooks = true;
    gd.addEventListener('pointerdown', (e) => {{
      press.down = [e.clientX, e.clientY]; press.moved = 0; press.pending = null;
    }}, true);
    gd.addEventListener('pointermove', (e) => {{
      if (press.down) press.moved = Math.max(press.moved, Math.hypot(e.clientX - press.down[0], e.clientY - press.down[1]));
    }}, true);
    gd.on('plotly_click', (ev) => {{
      const p = ev && ev.points && ev.points[0];
      if (!p || p.curveNumber !== {CLOUD_TRACE}) return;
      const payload = JSON.stringify({{x: p.x, y: p.y, z: p.z, t: Date.now()}});
      if (press.down) {{ press.pending = payload; return; }}  // decided on release
      // emitted after the release: a click only if that release ended no drag, just now, once
      // (a quick click: plotly picks on its next software-WebGL draw, which can take a second without a GPU)
      const up = press.lastUp;
      press.lastUp = null;
      if (up && up.click && performance.now() - up.t < {CLICK_LATE_MS}) write(payload);
    }});
    gd.on('plotly_relayout', (ev) => {{
      if (ev && Object.keys(ev).some((k) => k.startsWith('scene.camera'))) saveView(gd);
    }});
  }};
  attach();
  new MutationObserver(attach).observe(document.body, {{childList: true, subtree: true}});
  setInterval(attach, 500);
}}
"""

HIGHLIGHT_IDLE_MS = 400

HIGHLIGHT_JS = f"""
(frame) => {{
  // Each restyle re-draws the whole WebGL scene (seconds on a GPU-less client at 50k points), so the
  // highlight follows once the slider has rested {HIGHLIGHT_IDLE_MS} ms: scrubbing keeps the page free for
  // the preview image.
  clearTimeout(window.__studioHighlight);
  window.__studioHighlight = setTimeout(() => {{
    const gd = document.querySelector('#{PLOT_ID} .js-plotly-plot');
    const meta = gd && gd.layout && gd.layout.meta && gd.layout.meta.{FRAMES_META};
    if (!meta || !window.Plotly || !meta.points.length) return;
    const t = Math.max(0, Math.min(meta.points.length - 1, Math.round(Number(frame) || 0)));
    if (gd.__studioHighlighted === meta.points[t]) return;
    const p = meta.points[t];
    const x = [], y = [], z = [];
    for (const i of meta.sequence) {{
      x.push(i < 0 ? null : p[3 * i]); y.push(i < 0 ? null : p[3 * i + 1]); z.push(i < 0 ? null : p[3 * i + 2]);
    }}
    gd.__studioHighlighted = p;
    window.Plotly.restyle(gd, {{x: [x], y: [y], z: [z]}}, [meta.trace]);
  }}, {HIGHLIGHT_IDLE_MS});
  return [];
}}
"""
