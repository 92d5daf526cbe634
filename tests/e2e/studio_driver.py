"""Drive the real GEN3C Studio (app.py) in headless Debian Chromium with Playwright.

Shared by the e2e tests (tests/e2e/test_studio_browser.py) and the browser benchmark
(tests/e2e/bench_studio.py). Nothing here asserts; helpers wait for visible changes and return values.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "tests" / "_artifacts"
CHROMIUM = "/usr/bin/chromium"
# without the background-networking flags Chromium keeps dialing out on the closed network
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1440, "height": 900}  # the benchmark's browser: an artist's laptop screen, default WebGL
# The tests' browser: the same window without WebGL multisampling. Without a GPU every redraw of the 3D view
# is rasterised by SwiftShader on the CPU; 4x MSAA about doubles that cost (measured ~1.1 s -> ~0.5 s per
# orbit frame at load ~6). Page behaviour is unchanged.
TEST_VIEWPORT = {"width": 1440, "height": 900}
# $GEN3C_E2E_VIEWPORT=WxH runs the tests' browser at another size (screenshots then carry it in their names)
_OTHER = os.environ.get("GEN3C_E2E_VIEWPORT", "").strip()
if _OTHER:
    TEST_VIEWPORT = dict(zip(("width", "height"), map(int, _OTHER.lower().split("x"))))
FAST_WEBGL_ARGS = ["--webgl-antialiasing-mode=none"]

PLOT = "#studio-3d .js-plotly-plot"
PREVIEW_IMG = "#studio-preview img"
SUMMARY = "#studio-path-summary"


def browser_available() -> str | None:
    """None when Chromium and Playwright are usable, else the reason they are not."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} not installed"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StudioServer:
    """`python app.py --port P --no-browser` in a subprocess with its own studio temp folder."""

    def __init__(self, log_file: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.tmp = tempfile.mkdtemp(prefix="gen3c-e2e-")
        if log_file is None:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            log_file = ARTIFACTS / "studio-app.log"
        self.log_file = Path(log_file)
        self.proc: subprocess.Popen | None = None
        self.ready_s: float | None = None

    def start(self, timeout: float = 120.0) -> float:
        """Start the app and wait until its page answers; returns seconds from spawn to ready."""
        env = dict(os.environ, GEN3C_STUDIO_TMP=str(Path(self.tmp) / "studio"), GRADIO_ANALYTICS_ENABLED="False",
                   HF_HUB_OFFLINE="1", GRADIO_TEMP_DIR=str(Path(self.tmp) / "gradio"))
        env.pop("GEN3C_WEIGHTS", None)  # the studio must run without weights
        env.pop("MOGE_MODEL", None)
        started = time.perf_counter()
        self._log = open(self.log_file, "w")
        self.proc = subprocess.Popen([sys.executable, "app.py", "--port", str(self.port), "--no-browser"],
                                     cwd=REPO_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        while time.perf_counter() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    if r.status == 200:
                        self.ready_s = time.perf_counter() - started
                        return self.ready_s
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"app.py did not answer within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return Path(self.log_file).read_text()[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def launch_browser(playwright, downloads: Path | None = None, fast: bool = False):
    """A persistent Chromium context on a fresh profile dir (removed by `close_browser`).

    fast: the tests' cheaper software WebGL and window (`TEST_VIEWPORT`, `FAST_WEBGL_ARGS`)."""
    profile = tempfile.mkdtemp(prefix="gen3c-e2e-chromium-")
    ctx = playwright.chromium.launch_persistent_context(
        profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + (FAST_WEBGL_ARGS if fast else []),
        viewport=TEST_VIEWPORT if fast else VIEWPORT,
        accept_downloads=True, downloads_path=str(downloads) if downloads else None)
    ctx._e2e_profile = profile
    return ctx


def close_browser(ctx) -> None:
    profile = getattr(ctx, "_e2e_profile", None)
    ctx.close()
    if profile:
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(page, name: str, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    file = ARTIFACTS / (f"{name}-{_OTHER}.png" if _OTHER else f"{name}.png")
    page.screenshot(path=str(file), full_page=full_page)
    return file


# ------------------------------------------------------------------------------------------ page state

JS_PLOT_READY = f"""() => {{
  const gd = document.querySelector('{PLOT}');
  const fd = gd && gd._fullData;
  return !!(gd && gd._fullLayout && gd._fullLayout.scene && fd && fd.length
            && fd[0].x && fd[0].x.length > 0 && gd.querySelector('canvas'));
}}"""

JS_PLOT_INFO = f"""() => {{
  const gd = document.querySelector('{PLOT}');
  if (!gd || !gd._fullLayout || !gd._fullLayout.scene) return null;
  const sc = gd._fullLayout.scene;
  const arr = (a) => Array.from(a || [], (v) => (v === null ? NaN : Number(v)));
  return {{
    camera: JSON.parse(JSON.stringify(sc.camera)),
    ranges: {{x: sc.xaxis.range.slice(), y: sc.yaxis.range.slice(), z: sc.zaxis.range.slice()}},
    aspect: JSON.parse(JSON.stringify(sc.aspectratio)),
    traces: gd._fullData.map((t) => ({{name: t.name, mode: t.mode, n: (t.x || []).length}})),
    cloud_points: (gd._fullData[0].x || []).length,
    path: gd._fullData.filter((t) => t.name === 'path').map((t) => ({{x: arr(t.x), y: arr(t.y), z: arr(t.z)}}))[0] || null,
    canvas: (() => {{ const c = gd.querySelector('canvas'); return c ? [c.width, c.height] : null; }})(),
  }};
}}"""


def plot_info(page) -> dict | None:
    """Live plotly state of the 3D view: camera, axis ranges, aspect ratio, traces, path trace data."""
    return page.evaluate(JS_PLOT_INFO)


def wait_plot(page, timeout_ms: float = 60_000) -> None:
    page.wait_for_function(JS_PLOT_READY, timeout=timeout_ms)


def wait_plot_stable(page, quiet_ms: int = 800, timeout_ms: float = 60_000) -> None:
    """Wait until the 3D view has not been re-drawn (same element, same figure data) for `quiet_ms`."""
    page.evaluate(f"""() => new Promise((resolve, reject) => {{
      let last = null, since = performance.now();
      const t0 = performance.now();
      const tick = () => {{
        const gd = document.querySelector('{PLOT}');
        const key = gd && gd._fullData && gd._fullData[0];
        if (!key || !last || key !== last.key || gd !== last.gd) {{ last = {{gd, key}}; since = performance.now(); }}
        if (key && performance.now() - since >= {quiet_ms}) return resolve(true);
        if (performance.now() - t0 > {timeout_ms}) return reject(new Error('3D view kept changing'));
        setTimeout(tick, 50);
      }};
      tick();
    }})""")


def view_camera(page) -> dict:
    """The 3D view's camera three ways: `layout` (what plotly saved after the last drag), `full`
    (_fullLayout.scene.camera: refreshed only on the next re-plot) and `live` (what WebGL draws); plus the
    scene's axis ranges and aspect ratio."""
    return page.evaluate(f"""() => {{
      const gd = document.querySelector('{PLOT}');
      const sc = gd._fullLayout.scene;
      const pick = (c) => JSON.parse(JSON.stringify({{eye: c.eye, center: c.center, up: c.up}}));
      return {{layout: pick((gd.layout.scene && gd.layout.scene.camera) || sc.camera), full: pick(sc.camera),
               live: pick(sc._scene.getCamera()),
               ranges: {{x: sc.xaxis.range.slice(), y: sc.yaxis.range.slice(), z: sc.zaxis.range.slice()}},
               aspect: JSON.parse(JSON.stringify(sc.aspectratio))}};
    }}""")


def orbit(page, dx: float, dy: float, attempts: int = 3, start=(0.5, 0.5)) -> dict:
    """Drag the 3D view until plotly has saved a new camera; returns `view_camera` after the drag.

    Gradio may re-mount the plot while a drag is in flight (a slow preview event landing), which loses
    the drag, so the view is first let settle and the drag is retried."""
    before = view_camera(page)["layout"]["eye"]
    for _ in range(attempts):
        wait_plot_stable(page)
        drag_plot(page, dx, dy, start=start)
        try:
            page.wait_for_function(f"""(old) => {{
                const gd = document.querySelector('{PLOT}');
                const c = gd && gd.layout && gd.layout.scene && gd.layout.scene.camera;
                return !!(c && c.eye && Math.hypot(c.eye.x - old.x, c.eye.y - old.y, c.eye.z - old.z) > 1e-3);
            }}""", arg=before, timeout=10_000)
            return view_camera(page)
        except Exception:  # noqa: BLE001 - retried; the last failure is raised below
            continue
    raise TimeoutError("dragging the 3D view did not change its camera")


def preview_src(page) -> str:
    return page.evaluate(f"() => {{ const i = document.querySelector('{PREVIEW_IMG}'); return i ? i.src : ''; }}")


def wait_preview_change(page, old_src: str, timeout_ms: float = 30_000) -> str:
    """Wait until the preview <img> shows a new, fully decoded image; returns its src."""
    page.wait_for_function(
        """([sel, old]) => { const i = document.querySelector(sel);
             return !!(i && i.src && i.src !== old && i.complete && i.naturalWidth > 0); }""",
        arg=[PREVIEW_IMG, old_src], timeout=timeout_ms)
    return preview_src(page)


def preview_pixels_apart(page, keep_as: str | None = None, compare_with: str | None = None) -> float | None:
    """Keep the preview's decoded pixels under a name (``keep_as``), or the fraction of its pixels that differ
    by more than 16 levels in a channel from the ones kept as ``compare_with``."""
    return page.evaluate(f"""async ([keep, other]) => {{
      const i = document.querySelector('{PREVIEW_IMG}');
      for (let k = 0; k < 100; k++) {{
        try {{ await i.decode(); if (i.complete && i.naturalWidth > 0) break; }}
        catch (e) {{ await new Promise((r) => setTimeout(r, 100)); }}
      }}
      const c = document.createElement('canvas'); c.width = i.naturalWidth; c.height = i.naturalHeight;
      const g = c.getContext('2d', {{willReadFrequently: true}}); g.drawImage(i, 0, 0);
      const px = g.getImageData(0, 0, c.width, c.height).data;
      window.__gen3cKept = window.__gen3cKept || {{}};
      if (keep) {{ window.__gen3cKept[keep] = px; return null; }}
      const ref = window.__gen3cKept[other];
      if (!ref || ref.length !== px.length) return 1.0;
      let apart = 0;
      for (let j = 0; j < px.length; j += 4) {{
        if (Math.abs(px[j] - ref[j]) > 16 || Math.abs(px[j + 1] - ref[j + 1]) > 16
            || Math.abs(px[j + 2] - ref[j + 2]) > 16) apart++;
      }}
      return apart / (px.length / 4);
    }}""", [keep_as, compare_with])


def summary_text(page) -> str:
    """The path summary line (without the "Error" badge gradio puts on outputs of a failed event)."""
    lines = [line.strip() for line in page.inner_text(SUMMARY).splitlines() if line.strip()]
    return lines[-1] if lines else ""


def wait_summary(page, predicate_js: str, timeout_ms: float = 30_000) -> str:
    """Wait until the path summary text `s` satisfies the JS expression `predicate_js`."""
    page.wait_for_function(
        f"""() => {{ const e = document.querySelector('{SUMMARY}'); if (!e) return false;
               const s = e.innerText; return {predicate_js}; }}""", timeout=timeout_ms)
    return summary_text(page)


def keyframe_count(page) -> int:
    text = summary_text(page)
    return int(text.split()[0]) if text and text.split()[0].isdigit() else 0


def table_rows(page) -> list[list[float]]:
    """The keyframe list's rows: [number, then the seven numbers shown], as on the page."""
    return page.evaluate("""() => Array.from(document.querySelectorAll('#studio-keyframes tr[data-row]'), (r) =>
        [Number(r.dataset.row) + 1].concat(Array.from(r.querySelectorAll('input.studio-kf-cell'), (i) => Number(i.value))))""")


def scroll_table(page, to_end: bool = True) -> None:
    """Scroll the keyframe list to its last (or first) row."""
    page.evaluate("""(end) => { const v = document.querySelector('#studio-keyframes .studio-list-scroll');
                               if (v) v.scrollTop = end ? v.scrollHeight : 0; }""", to_end)


def table_row(page, number: int) -> list[float]:
    """Row `number` (the '#' column) of the keyframe list."""
    for row in table_rows(page):
        if int(row[0]) == number:
            return row
    raise LookupError(f"keyframe row {number} is not in the list")


def cell(page, number: int, column: str):
    """The input of keyframe `number`'s `column` in the keyframe list."""
    return page.locator(f'#studio-keyframes .studio-kf-cell[data-row="{number - 1}"][data-col="{column}"]')


def wait_list_value(page, number: int, column: str, value: str, timeout_ms: float = 30_000) -> None:
    """Wait until the list's cell shows `value` as its confirmed (server) value."""
    page.wait_for_function(
        """([r, c, v]) => { const i = document.querySelector(`#studio-keyframes .studio-kf-cell[data-row="${r}"][data-col="${c}"]`);
                           return !!(i && i.dataset.value === v && !i.classList.contains('studio-pending')); }""",
        arg=[number - 1, column, value], timeout=timeout_ms)


def status_text(page) -> str:
    """The status area's text ('' when it shows no message)."""
    return page.evaluate("() => { const m = document.querySelector('#studio-status .studio-msg'); "
                         "return m && !m.classList.contains('studio-msg-none') ? m.innerText.trim() : ''; }")


def open_tab(page, name: str) -> None:
    """Click a tab of the studio (Path, Scene, Files, View; Preview, What the model receives)."""
    page.get_by_role("tab", name=name, exact=True).click()


def set_slider(page, elem_id: str, value: float) -> None:
    """Set a gradio slider as a drag would: the range input's value, then its input and change events."""
    page.evaluate("""([id, v]) => {
      const r = document.querySelector(`#${id} input[type=range]`);
      const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
      setter.call(r, String(v));
      r.dispatchEvent(new Event('input', {bubbles: true}));
      r.dispatchEvent(new Event('change', {bubbles: true}));
      r.dispatchEvent(new PointerEvent('pointerup', {bubbles: true}));
    }""", [elem_id, value])


JS_AFTER_FRAMES = """() => new Promise((resolve) => setTimeout(
    () => requestAnimationFrame(() => requestAnimationFrame(() => resolve(true))), 60))"""


def drag_plot(page, dx: float, dy: float, steps: int | None = None, start=(0.5, 0.5), rest: bool = True) -> None:
    """Orbit the 3D view with a left-button mouse drag across its canvas in ~20 px mouse steps (the
    turntable control follows coarse steps; each step is a software-WebGL redraw of the whole view).

    rest: let two frames pass after the press and after each move, as a hand does (plotly's camera lags the
    mouse; released at once it saves a stale camera and keeps turning). The benchmark drags without rests."""
    steps = steps or max(2, round(max(abs(dx), abs(dy)) / 20))
    plot = page.locator(PLOT)
    plot.scroll_into_view_if_needed()
    box = plot.bounding_box()
    x0, y0 = box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1]
    page.mouse.move(x0, y0)
    page.mouse.down()
    if rest:
        page.evaluate(JS_AFTER_FRAMES)
    for k in range(1, steps + 1):
        page.mouse.move(x0 + dx * k / steps, y0 + dy * k / steps)
        if rest:
            page.evaluate(JS_AFTER_FRAMES)
    page.mouse.up()


JS_CLOUD_SPOTS = f"""(n) => {{
  // cloud points projected to the plot (fractions of its box) with the scene's own camera matrices,
  // nearest the middle first
  const gd = document.querySelector('{PLOT}');
  const sc = gd._fullLayout.scene._scene, cam = sc.glplot.cameraParams, ds = sc.dataScale;
  const t = gd._fullData[0];  // the scene (surface vertices or points)
  const mul = (m, v) => [0, 1, 2, 3].map((r) => m[r] * v[0] + m[4 + r] * v[1] + m[8 + r] * v[2] + m[12 + r] * v[3]);
  const out = [];
  const step = Math.max(1, Math.floor(t.x.length / 4000));
  for (let i = 0; i < t.x.length; i += step) {{
    const c = mul(cam.projection, mul(cam.view, mul(cam.model, [t.x[i] * ds[0], t.y[i] * ds[1], t.z[i] * ds[2], 1])));
    if (c[3] <= 0) continue;
    const fx = (c[0] / c[3] + 1) / 2, fy = (1 - c[1] / c[3]) / 2;
    if (fx > 0.2 && fx < 0.8 && fy > 0.2 && fy < 0.8) out.push([Math.hypot(fx - 0.5, fy - 0.5), fx, fy]);
  }}
  out.sort((a, b) => a[0] - b[0]);
  const picked = [];
  for (const o of out) if (picked.every((p) => Math.hypot(p[0] - o[1], p[1] - o[2]) > 0.04)) picked.push([o[1], o[2]]);
  return picked.slice(0, n);
}}"""


def cloud_point_under_mouse(page, tries: int = 8):
    """A spot of the 3D view (fractions of its box) where the mouse is over a point of the cloud, as plotly's
    own hover picking reports it (candidates: cloud points projected with the scene's camera, nearest the
    middle first); None if none is."""
    page.locator(PLOT).scroll_into_view_if_needed()
    box = page.locator(PLOT).bounding_box()
    for fx, fy in page.evaluate(JS_CLOUD_SPOTS, tries):
        page.mouse.move(box["x"] + 2, box["y"] + 2)  # off the spot first, so hovering it is a new hover
        page.evaluate(f"""() => {{ const gd = document.querySelector('{PLOT}');
          const cloud = 0;
          window.__e2eHover = new Promise((resolve) => {{
            const done = (v) => {{ gd.removeListener('plotly_hover', on); resolve(v); }};
            const on = (ev) => {{ const p = ev && ev.points && ev.points[0]; if (p && p.curveNumber === cloud) done(true); }};
            gd.on('plotly_hover', on);
            setTimeout(() => done(false), 3000);
          }}); }}""")
        page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        if page.evaluate("() => window.__e2eHover"):
            return fx, fy
    return None


def error_toasts(page) -> list[str]:
    """Texts of the visible gradio error toasts."""
    return page.evaluate("""() => Array.from(document.querySelectorAll('.toast-body'))
        .filter((t) => /error/i.test(t.className) || t.querySelector('.toast-title.error, [class*=error]'))
        .map((t) => t.innerText.trim())""")


def dump_json(obj) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)


JS_PROJECT = f"""(opts) => {{
  // scene points (display coordinates) projected with the 3D view's own WebGL camera matrices, as fractions
  // of the plot's box; with opts.frame also as fractions of the keyframe frame drawn over the view (its DOM box)
  const gd = document.querySelector('{PLOT}');
  const sc = gd._fullLayout.scene._scene, cam = sc.glplot.cameraParams, ds = sc.dataScale;
  const mul = (m, v) => [0, 1, 2, 3].map((r) => m[r] * v[0] + m[4 + r] * v[1] + m[8 + r] * v[2] + m[12 + r] * v[3]);
  const plot = gd.getBoundingClientRect();
  const box = opts.frame ? document.querySelector('.studio-frame-box').getBoundingClientRect() : null;
  return opts.points.map((p) => {{
    const c = mul(cam.projection, mul(cam.view, mul(cam.model, [p[0] * ds[0], p[1] * ds[1], p[2] * ds[2], 1])));
    if (c[3] <= 0) return null;
    const px = plot.left + (c[0] / c[3] + 1) / 2 * plot.width, py = plot.top + (1 - c[1] / c[3]) / 2 * plot.height;
    const out = [(px - plot.left) / plot.width, (py - plot.top) / plot.height];
    if (box) out.push((px - box.left) / box.width, (py - box.top) / box.height);
    return out;
  }});
}}"""


def project(page, display_points, frame: bool = False) -> list:
    """`JS_PROJECT` of display points [[x, y, z], ...]: per point [u, v] in the plot (and [u, v] in the frame)."""
    return page.evaluate(JS_PROJECT, {"points": [list(map(float, p)) for p in display_points], "frame": frame})


def scene_vertices(page, step: int = 1) -> list:
    """Every `step`-th vertex of the scene trace (display coordinates)."""
    return page.evaluate(f"""(step) => {{ const t = document.querySelector('{PLOT}')._fullData[0]; const out = [];
      for (let i = 0; i < t.x.length; i += step) out.push([t.x[i], t.y[i], t.z[i]]); return out; }}""", step)


def click_and_wait_summary(page, selector: str, predicate_js: str, timeout_ms: float = 30_000) -> str:
    """Click a button and wait until the path summary satisfies `predicate_js` (see `wait_summary`)."""
    page.click(selector)
    return wait_summary(page, predicate_js, timeout_ms)


EXPORT_LABELS = {"nerfstudio": "camera_path.json (nerfstudio)", "json": "path.json (GEN3C Studio keyframes)",
                 "npz": "cameras.npz (GEN3C w2cs_all / Ks_all)"}


def open_files(page) -> None:
    if not page.locator("#studio-export").is_visible():
        open_tab(page, "Files")
        page.locator("#studio-export").wait_for(state="visible")


def export_file(page, fmt: str, folder, parse: bool = True):
    """Export the path in `fmt` through the Files tab, download the new file like a user; returns the parsed
    JSON (parse) or the downloaded file's path."""
    open_files(page)
    page.locator("#studio-export-format").get_by_text(EXPORT_LABELS[fmt]).click()
    links = page.locator("#studio-export-file a[download]")
    before = links.count()
    page.click("#studio-export")
    page.wait_for_function("(n) => document.querySelectorAll('#studio-export-file a[download]').length > n",
                           arg=before)
    assert links.count() == before + 1, "one export, one new download"
    with page.expect_download() as info:
        links.first.click()  # newest first
    file = Path(folder) / f"{len(list(Path(folder).iterdir()))}-{info.value.suggested_filename}"
    info.value.save_as(file)
    return json.loads(file.read_text()) if parse else (file, info.value.suggested_filename)
