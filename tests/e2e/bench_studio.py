"""In-browser speed of the studio; prints one JSON object (no assertions).

    .venv/bin/python tests/e2e/bench_studio.py [--moves 20] [--edits 20] [--orbit-steps 40]

Figures: app start -> page answers; page open -> 3D view drawn; Load sample click -> 3D view re-drawn;
path edit (a keyframe's x typed into the keyframe list) -> the 3D view's path and the preview image both
updated (median / p95 over --edits edits); slider move -> new preview image decoded (median / p95 over
--moves moves; with foreground masking, the default, and without); the 3D view's vertex budget;
animation-frame intervals while orbiting the view. Times are taken in the page with performance.now().
"""
from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import studio_driver as drv  # noqa: E402

JS_PATH_LAST_X = """() => { const gd = document.querySelector('#studio-3d .js-plotly-plot');
  const p = gd && gd._fullData && gd._fullData.find((t) => t.name === 'path');
  return p ? p.x[p.x.length - 1] : null; }"""


def _pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def scrub(page, moves: int, seed: int = 0, release: bool = True) -> list[float]:
    """ms from setting the frame slider to the new preview image being decoded, per move.

    release: also end the move as a drag does (pointerup: the studio then re-sends the 3D view too)."""
    rng = random.Random(seed)
    current = int(page.locator("#studio-frame input[type=range]").input_value())
    times = []
    for _ in range(moves):
        target = rng.choice([f for f in range(0, 121, 3) if f != current])
        old = drv.preview_src(page)
        t0 = page.evaluate("""([v, release]) => { const r = document.querySelector('#studio-frame input[type=range]');
            Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(r, String(v));
            const t = performance.now();
            r.dispatchEvent(new Event('input', {bubbles: true})); r.dispatchEvent(new Event('change', {bubbles: true}));
            if (release) r.dispatchEvent(new PointerEvent('pointerup', {bubbles: true})); return t; }""",
                           [target, release])
        handle = page.wait_for_function(
            """(old) => { const i = document.querySelector('#studio-preview img');
                 return (i && i.src !== old && i.complete && i.naturalWidth > 0) ? performance.now() : false; }""",
            arg=old, polling="raf", timeout=60_000)
        times.append(handle.json_value() - t0)
        current = target
    return times


JS_EDIT = """([value, frame]) => new Promise((resolve, reject) => {
  // type `value` into keyframe 2's x and commit it, as a person does; resolve with the ms until the 3D view's
  // path trace and the preview image have both changed (the preview shows frame `frame`)
  const gd = document.querySelector('#studio-3d .js-plotly-plot');
  const pathOf = () => { const p = gd._fullData.find((t) => t.name === 'path'); return p ? p.x : null; };
  const oldPath = pathOf(), img = document.querySelector('#studio-preview img'), oldSrc = img && img.src;
  const inp = document.querySelector('#studio-keyframes input[data-row="1"][data-col="x"]');
  inp.focus();
  Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(inp, String(value));
  inp.dispatchEvent(new Event('input', {bubbles: true}));
  const t0 = performance.now();
  inp.dispatchEvent(new Event('change', {bubbles: true}));
  let viewAt = null, previewAt = null;
  const tick = () => {
    const now = performance.now();
    if (viewAt === null && pathOf() !== oldPath) viewAt = now;
    const i = document.querySelector('#studio-preview img');
    if (previewAt === null && i && i.src !== oldSrc && i.complete && i.naturalWidth > 0) previewAt = now;
    if (viewAt !== null && previewAt !== null) return resolve({both: Math.max(viewAt, previewAt) - t0,
                                                               view: viewAt - t0, preview: previewAt - t0});
    if (now - t0 > 60000) return reject(new Error('the edit did not show'));
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})"""


def edits(page, count: int) -> list[dict]:
    """Per edit of the path (keyframe 2's x, alternating values): ms until the 3D view and the preview show it."""
    drv.set_slider(page, "studio-frame", 20)  # a frame the edit moves, so its preview changes
    page.wait_for_function("() => document.querySelector('#studio-coverage').innerText.startsWith('frame 20:')")
    out = []
    for k in range(count):
        value = 0.05 if k % 2 == 0 else -0.05
        out.append(page.evaluate(JS_EDIT, [value, 20]))
        page.wait_for_timeout(300)  # a person reads the result before the next edit
    return out


def orbit_frames(page, dx: float = 120, steps: int = 40) -> dict:
    """requestAnimationFrame intervals in the page while the mouse orbits the 3D view."""
    page.evaluate("""() => { window.__raf = []; window.__rafOn = true;
        const f = (t) => { window.__raf.push(t); if (window.__rafOn) requestAnimationFrame(f); };
        requestAnimationFrame(f); }""")
    t0 = time.perf_counter()
    drv.drag_plot(page, dx, 0, steps=steps, start=(0.08, 0.05), rest=False)
    wall = time.perf_counter() - t0
    stamps = page.evaluate("() => { window.__rafOn = false; return window.__raf; }")
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return {"drag_mouse_events": steps, "drag_wall_s": round(wall, 3), "frames": len(stamps),
            "frame_interval_ms_median": round(statistics.median(gaps), 1) if gaps else None,
            "frame_interval_ms_p95": round(_pct(gaps, 0.95), 1) if gaps else None,
            "frame_interval_ms_max": round(max(gaps), 1) if gaps else None}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=20)
    ap.add_argument("--edits", type=int, default=20)
    ap.add_argument("--orbit-steps", type=int, default=40)
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    out: dict = {"machine": f"{platform.machine()} {__import__('os').cpu_count()}-core CPU, software WebGL",
                 "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=drv.REPO_ROOT,
                                          capture_output=True, text=True).stdout.strip(),
                 "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    server = drv.StudioServer()
    try:
        out["app_start_to_ready_s"] = round(server.start(), 2)
        with sync_playwright() as pw:
            ctx = drv.launch_browser(pw)
            page = ctx.new_page()
            t0 = time.perf_counter()
            page.goto(server.url)
            drv.wait_plot(page)
            out["page_open_to_3d_view_s"] = round(time.perf_counter() - t0, 2)
            page.wait_for_function("() => { const i = document.querySelector('#studio-preview img'); "
                                   "return !!(i && i.complete && i.naturalWidth); }")
            out["page_open_to_preview_s"] = round(time.perf_counter() - t0, 2)
            info = drv.plot_info(page)
            out["scene_budget"] = {"vertices_drawn": info["cloud_points"],
                                   "traces": {t["name"]: t["n"] for t in info["traces"]}}
            # Load sample -> 3D view drawn: first move away with a preset so the figure must change
            page.locator("#studio-preset input").click()
            page.get_by_role("option", name="left", exact=True).click()
            page.click("#studio-apply-preset")
            page.wait_for_function(f"() => Math.abs(({JS_PATH_LAST_X})() || 0) > 1e-3")
            drv.wait_plot_stable(page)
            drv.open_tab(page, "Scene")
            page.locator("#studio-load-sample").wait_for(state="visible")
            t_click = page.evaluate("() => { const t = performance.now(); "
                                    "document.querySelector('#studio-load-sample').click(); return t; }")
            drawn = page.wait_for_function(
                f"() => {{ const x = ({JS_PATH_LAST_X})(); return (x !== null && Math.abs(x) < 1e-6) ? "
                "performance.now() : false; }", polling="raf", timeout=60_000).json_value()
            out["load_sample_to_3d_view_s"] = round((drawn - t_click) / 1000, 3)
            drv.open_tab(page, "Path")
            drv.wait_plot_stable(page)
            page.wait_for_selector("#studio-keyframes input.studio-kf-cell")
            times = edits(page, args.edits)
            both = [t["both"] for t in times]
            out["edit_to_view_and_preview_ms"] = {
                "edits": len(both), "median": round(statistics.median(both), 1), "p95": round(_pct(both, 0.95), 1),
                "min": round(min(both), 1), "max": round(max(both), 1),
                "view_median": round(statistics.median(t["view"] for t in times), 1),
                "preview_median": round(statistics.median(t["preview"] for t in times), 1)}
            drv.wait_plot_stable(page)
            for key, release in (("scrub_to_preview_ms_while_dragging", False),
                                 ("scrub_to_preview_ms_with_release", True)):
                times = scrub(page, args.moves, release=release)
                out[key] = {"moves": len(times), "median": round(statistics.median(times), 1),
                            "p95": round(_pct(times, 0.95), 1), "min": round(min(times), 1),
                            "max": round(max(times), 1)}
                drv.wait_plot_stable(page)
            # the same scrub with foreground masking off: what the occluder mask costs per preview frame
            page.locator("#studio-foreground-masking input").click()
            page.wait_for_timeout(1500)
            drv.wait_plot_stable(page)
            times = scrub(page, args.moves, seed=1, release=False)
            out["scrub_to_preview_ms_without_foreground_masking"] = {
                "moves": len(times), "median": round(statistics.median(times), 1), "p95": round(_pct(times, 0.95), 1)}
            page.locator("#studio-foreground-masking input").click()
            page.wait_for_timeout(1500)
            drv.wait_plot_stable(page)
            out["orbit"] = orbit_frames(page, steps=args.orbit_steps)
            drv.close_browser(ctx)
    finally:
        server.stop()
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
