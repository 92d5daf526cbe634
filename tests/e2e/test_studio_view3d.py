"""The 3D view as an artist uses it, in headless Chromium: the scene as a coloured surface, the default overview,
frustums sized to the scene, the orbit rate, "Add from view" adding what the frame over the view shows (points
projected by the browser's camera and by the new keyframe agree), Look through / Set keyframe to view, and edits
that update the live figure in place (no re-mount, no WebGL context leak).

Expected values are computed here from the engine's sample scene and the page's own WebGL camera matrices,
never from the studio's handlers.
"""
from __future__ import annotations

import numpy as np
import pytest

import studio_driver as drv

pytestmark = pytest.mark.e2e

SAMPLE = "living_room"
WORLD_FROM_DISPLAY = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
MODEL_H, MODEL_W = 704, 1280
TOP = (0.5, 0.03)  # of the 3D view: empty backdrop in the default view (a drag from there is not a click)


@pytest.fixture(scope="module")
def scene():
    from engine import samples
    from engine.scene import build_scene

    image, depth = samples.load_sample(SAMPLE)
    return build_scene(image, depth, MODEL_H, MODEL_W)


def _world(display) -> np.ndarray:
    return np.asarray(display, dtype=np.float64) @ WORLD_FROM_DISPLAY.T


def _trace(page, name: str) -> np.ndarray:
    pts = page.evaluate("""(name) => { const t = document.querySelector('#studio-3d .js-plotly-plot')._fullData
        .find((d) => d.name === name || d.name.startsWith(name)); return t ? Array.from(t.x, (v, i) => [v, t.y[i], t.z[i]]) : null; }""",
                        name)
    return np.array([[np.nan if v is None else v for v in p] for p in pts], dtype=np.float64)


def _view_pose(view: dict):
    """World eye, forward and up of the live plotly camera (independent of studio.viewcam)."""
    lo = np.array([view["ranges"][a][0] for a in "xyz"])
    hi = np.array([view["ranges"][a][1] for a in "xyz"])
    unit = (hi - lo) / np.array([view["aspect"][a] for a in "xyz"])
    vec = {k: np.array([view["live"][k][a] for a in "xyz"], dtype=np.float64) for k in ("eye", "center", "up")}
    eye = WORLD_FROM_DISPLAY @ ((lo + hi) / 2 + vec["eye"] * unit)
    centre = WORLD_FROM_DISPLAY @ ((lo + hi) / 2 + vec["center"] * unit)
    up = WORLD_FROM_DISPLAY @ (vec["up"] * unit)
    forward = (centre - eye) / np.linalg.norm(centre - eye)
    up = up - up.dot(forward) * forward
    return eye, forward, up / np.linalg.norm(up)


def _keyframes(page, tmp_path) -> list[dict]:
    """The path's keyframes exactly, from a project-JSON export downloaded through the page."""
    data = drv.export_file(page, "json", tmp_path)
    drv.open_tab(page, "Path")
    return data["keyframes"]


def test_scene_is_a_coloured_surface_without_bridges_over_depth_edges(studio_page, scene):
    page = studio_page
    info = page.evaluate("""() => { const t = document.querySelector('#studio-3d .js-plotly-plot')._fullData[0];
        return {type: t.type, n: t.x.length, faces: t.i.length, colours: (t.vertexcolor || []).length}; }""")
    assert info["type"] == "mesh3d" and info["colours"] == info["n"]
    assert 1_000 < info["n"] <= 60_000 and info["faces"] > info["n"]  # a surface, within the vertex budget
    # no triangle joins points on two sides of a depth edge: every edge of every triangle is short compared with
    # its depth (a grid step of <= 30 px at the sample's focal length, with slack for slanted surfaces)
    tri = page.evaluate("""() => { const t = document.querySelector('#studio-3d .js-plotly-plot')._fullData[0];
        const out = []; for (let f = 0; f < t.i.length; f += 7) out.push([t.i[f], t.j[f], t.k[f]]); return out; }""")
    verts = np.array(drv.scene_vertices(page))
    world = _world(verts)
    corners = world[np.array(tri)]
    depth = corners[..., 2]
    spread = (depth.max(axis=1) - depth.min(axis=1)) / depth.min(axis=1)
    assert spread.max() < 0.3, f"a triangle spans a depth edge (relative depth spread {spread.max():.2f})"
    # the surface lies on the scene: its vertices are the depth map's points (reprojected, they hit their depth)
    K = np.asarray(scene.K, dtype=np.float64)
    pix = (K @ world.T).T
    u, v = pix[:, 0] / pix[:, 2], pix[:, 1] / pix[:, 2]
    d = np.asarray(scene.depth[0])
    iu, iv = np.clip(np.rint(u).astype(int), 0, MODEL_W - 1), np.clip(np.rint(v).astype(int), 0, MODEL_H - 1)
    np.testing.assert_allclose(world[:, 2], d[iv, iu], rtol=0.02)
    drv.screenshot(page, "view3d-01-surface", full_page=False)


def test_default_view_from_behind_and_above_shows_scene_and_path(studio_page):
    page = studio_page
    view = drv.view_camera(page)
    eye, forward, _ = _view_pose(view)
    assert eye[2] < 0 and eye[1] < 0, f"the default view is not behind and above the input camera: eye {eye}"
    assert forward[2] > 0.5 and forward[1] > 0.05  # looking ahead and down at the scene
    pts = drv.scene_vertices(page, step=25) + _trace(page, "path").tolist()
    uv = np.array([p[:2] for p in drv.project(page, pts) if p is not None])
    assert len(uv) == len(pts), "a point of the scene or the path is behind the default view"
    assert (uv > -0.01).all() and (uv < 1.01).all(), "the default view cuts off part of the scene or the path"


def test_frustums_only_for_keyframes_sized_to_the_scene(studio_page, scene):
    page = studio_page
    count = drv.keyframe_count(page)
    others = _trace(page, "keyframes")
    drawn = np.isfinite(others[:, 0])
    strokes = int(drawn[0]) + int(np.sum(drawn[1:] & ~drawn[:-1]))
    assert strokes == 3 * (count - 1)  # each keyframe frustum is drawn as 3 strokes; the selected one apart
    sel = _trace(page, "selected keyframe")
    apex = sel[0]
    depth = np.asarray(scene.depth[0])
    median = float(np.median(depth[(depth > 0) & (depth < 1000)]))
    # the frustum's depth: apex to the middle of its image rectangle (polyline points 1, 2, 4, 5 are its corners)
    corners = sel[[1, 2, 4, 5]]
    centre = corners.mean(axis=0)
    size = np.linalg.norm(centre - apex)
    assert 0.02 * median < size < 0.08 * median, f"frustum depth {size:.3f} vs median scene depth {median:.3f}"
    cur = _trace(page, "current frame")
    np.testing.assert_allclose(_world(cur[0]), [0, 0, 0], atol=1e-5)  # frame 0 of the preset: the input camera
    assert page.evaluate("() => document.querySelector('#studio-3d .js-plotly-plot')._fullData"
                         ".find((t) => t.name === 'path').mode") == "lines"


def test_orbit_turns_at_a_sane_rate(studio_page):
    page = studio_page
    before = drv.view_camera(page)
    drv.orbit(page, 120, 0, start=TOP)
    drv.wait_plot_stable(page)
    after = drv.view_camera(page)
    e0, _, _ = _view_pose(before)
    e1, _, _ = _view_pose(after)

    def azimuth(e, view):
        lo = np.array([view["ranges"][a][0] for a in "xyz"])
        hi = np.array([view["ranges"][a][1] for a in "xyz"])
        unit = (hi - lo) / np.array([view["aspect"][a] for a in "xyz"])
        centre = WORLD_FROM_DISPLAY @ ((lo + hi) / 2 + np.array([view["live"]["center"][a] for a in "xyz"]) * unit)
        rel = e - centre
        return np.degrees(np.arctan2(rel[0], rel[2]))

    turned = abs((azimuth(e1, after) - azimuth(e0, before) + 180) % 360 - 180)
    rate = turned / 120
    assert 0.2 <= rate <= 0.75, f"orbiting turns {rate:.2f} degrees per pixel dragged"


def test_add_from_view_adds_what_the_frame_shows(studio_page, tmp_path):
    page = studio_page
    drv.orbit(page, -60, 20, start=TOP)
    drv.wait_plot_stable(page)
    count = drv.keyframe_count(page)
    drv.click_and_wait_summary(page, "#studio-add-view", f"s.startsWith('{count + 1} keyframes')")
    drv.wait_plot_stable(page)
    kf = _keyframes(page, tmp_path)[1]  # inserted after the selected keyframe 1
    w2c = np.array(kf["w2c"], dtype=np.float64).reshape(4, 4)
    from engine.cameras import intrinsics_from_fov

    K = intrinsics_from_fov(kf["fov_y_deg"], MODEL_H, MODEL_W)
    verts = np.array(drv.scene_vertices(page, step=11))
    world = _world(verts)
    cam = (w2c[:3, :3] @ world.T).T + w2c[:3, 3]
    ahead = cam[:, 2] > 0.1
    pix = (K @ cam[ahead].T).T
    uv_kf = np.stack([pix[:, 0] / pix[:, 2] / MODEL_W, pix[:, 1] / pix[:, 2] / MODEL_H], axis=1)
    inside = ((uv_kf > 0.05) & (uv_kf < 0.95)).all(axis=1)
    assert inside.sum() >= 20, "too few scene points inside the new keyframe's view"
    rng = np.random.default_rng(0)
    pick = rng.choice(np.flatnonzero(inside), size=min(40, int(inside.sum())), replace=False)
    browser = drv.project(page, verts[ahead][pick], frame=True)
    uv_view = np.array([p[2:] for p in browser])
    err = np.abs(uv_view - uv_kf[pick])
    assert err.max() < 0.02, f"the frame over the view and the keyframe disagree by {err.max():.3%} of the image"
    drv.screenshot(page, "view3d-02-added-from-view", full_page=False)


def test_look_through_and_set_keyframe_to_view(studio_page, tmp_path):
    page = studio_page
    keys = _keyframes(page, tmp_path)
    selected = int(drv.summary_text(page).split("selected #")[1]) - 1
    page.click("#studio-overview")
    drv.wait_plot_stable(page)
    page.click("#studio-look-through")
    page.wait_for_timeout(500)
    drv.wait_plot_stable(page)
    w2c = np.array(keys[selected]["w2c"]).reshape(4, 4)
    eye, forward, up = _view_pose(drv.view_camera(page))
    np.testing.assert_allclose(eye, -w2c[:3, :3].T @ w2c[:3, 3], atol=1e-4)
    np.testing.assert_allclose(forward, w2c[2, :3], atol=1e-4)
    np.testing.assert_allclose(up, -w2c[1, :3], atol=1e-4)
    drv.screenshot(page, "view3d-03-look-through", full_page=False)
    # now move the view and put the selected keyframe there
    drv.orbit(page, 50, 0, start=TOP)
    drv.wait_plot_stable(page)
    eye, forward, up = _view_pose(drv.view_camera(page))
    count = drv.keyframe_count(page)
    page.click("#studio-set-view")
    page.wait_for_function("() => !document.querySelector('#studio-undo').disabled")
    page.wait_for_timeout(300)
    drv.wait_plot_stable(page)
    after = _keyframes(page, tmp_path)
    assert len(after) == count
    moved = np.array(after[selected]["w2c"]).reshape(4, 4)
    np.testing.assert_allclose(-moved[:3, :3].T @ moved[:3, 3], eye, atol=1e-5)
    np.testing.assert_allclose(moved[2, :3], forward, atol=1e-5)
    assert after[selected]["fov_y_deg"] == pytest.approx(keys[selected]["fov_y_deg"])
    for i, (a, b) in enumerate(zip(keys, after)):
        if i != selected:
            assert a["w2c"] == b["w2c"], f"keyframe {i + 1} changed"


def test_edits_update_the_live_figure_without_new_webgl_contexts(studio_page):
    page = studio_page
    page.evaluate("""() => { const gd = document.querySelector('#studio-3d .js-plotly-plot');
        window.__e2eScene = gd._fullData[0]._input || gd.data[0]; window.__e2ePlot = gd; }""")
    drv.open_tab(page, "Path")
    for k in range(10):  # 20 edits: 10 cell edits and 10 undos
        value = str(round(0.01 * (k + 1), 2))
        box = drv.cell(page, 1, "x")
        box.click()
        page.keyboard.type(value)
        page.keyboard.press("Enter")
        drv.wait_list_value(page, 1, "x", value)
        page.click("#studio-undo")
        drv.wait_list_value(page, 1, "x", "0")
        drv.wait_plot_stable(page)  # the undo's updates settled, as a person waits for the screen before typing
    drv.wait_plot_stable(page)
    same = page.evaluate("""() => { const gd = document.querySelector('#studio-3d .js-plotly-plot');
        return [gd === window.__e2ePlot, gd.data[0] === window.__e2eScene]; }""")
    assert same == [True, True], "an edit re-mounted the 3D view or re-sent the scene"
    sent = page.evaluate("() => document.querySelector('#studio-cameras textarea, #studio-cameras input').value.length")
    assert sent < 100_000  # the camera payload, not the scene
    warnings = [m for m in page.console if "Too many active WebGL contexts" in m]
    assert not warnings, warnings[:3]
    assert not page.page_errors, page.page_errors


def test_points_and_detail_are_settings(studio_page):
    page = studio_page
    drv.open_tab(page, "View")
    n0 = page.evaluate("() => document.querySelector('#studio-3d .js-plotly-plot')._fullData[0].x.length")
    page.locator("#studio-detail").get_by_text("low (6k vertices)").click()
    page.wait_for_function("(n) => { const t = document.querySelector('#studio-3d .js-plotly-plot')._fullData[0];"
                           " return t && t.x.length < n / 2; }", arg=n0, timeout=30_000)
    page.locator("#studio-view-style").get_by_text("points").click()
    page.wait_for_function("() => { const t = document.querySelector('#studio-3d .js-plotly-plot')._fullData[0];"
                           " return t && t.type === 'scatter3d' && t.mode === 'markers'; }", timeout=30_000)
    drv.wait_plot_stable(page)
    assert page.evaluate("() => document.querySelector('#studio-3d .js-plotly-plot')._fullData[0].x.length") <= 20_000
    drv.screenshot(page, "view3d-04-points", full_page=False)
    page.locator("#studio-view-style").get_by_text("coloured surface").click()
    page.locator("#studio-detail").get_by_text("standard (16k vertices)").click()
    page.wait_for_function("(n) => { const t = document.querySelector('#studio-3d .js-plotly-plot')._fullData[0];"
                           " return t && t.type === 'mesh3d' && t.x.length === n; }", arg=n0, timeout=30_000)
    drv.open_tab(page, "Path")
    warnings = [m for m in page.console if "Too many active WebGL contexts" in m]
    assert not warnings, warnings[:3]
