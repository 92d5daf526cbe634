"""The studio as a person uses it, in headless Chromium: open, load a sample, apply a preset, orbit the 3D
view and add that view as a keyframe, scrub the preview, undo, export, import a bad file and a good one.

The tests share one tab (module scope) and run in file order; each checks what is on the page against
numbers computed here from the engine (never against the studio's own handlers). Screenshots go to
tests/_artifacts/.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import studio_driver as drv

pytestmark = pytest.mark.e2e

SAMPLE = "living_room"
FRAMES = 121
PRESET_KEYS = 9  # a preset is 9 editable keyframes (frames 0, 15, ..., 120)
EMPTY_CORNER = (0.08, 0.05)  # of the 3D view: above the room in the default view, no cloud point there
WORLD_FROM_DISPLAY = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # display (x, z, -y) of world (x, y, z)


@pytest.fixture(scope="module")
def scene():
    """The sample's seed camera as the studio builds it (model size 704x1280)."""
    from engine import samples
    from engine.scene import build_scene

    assert SAMPLE in samples.list_samples()
    image, depth = samples.load_sample(SAMPLE)
    return build_scene(image, depth, 704, 1280)


def _centres(w2cs) -> np.ndarray:
    w2cs = np.asarray(w2cs, dtype=np.float64)
    return -np.einsum("tji,tj->ti", w2cs[:, :3, :3], w2cs[:, :3, 3])


def _path_trace_world(page) -> np.ndarray:
    path = drv.plot_info(page)["path"]
    assert path is not None, "the 3D view has no path trace"
    display = np.stack([path["x"], path["y"], path["z"]], axis=1)
    return display @ WORLD_FROM_DISPLAY.T


def _open_files_panel(page) -> None:
    drv.open_files(page)


def _export(page, fmt: str, tmp_path) -> dict:
    return drv.export_file(page, fmt, tmp_path)


def _wait_status(page, pattern: str) -> str:
    page.wait_for_function(
        """(pat) => { const m = document.querySelector('#studio-status'); return !!(m && new RegExp(pat, 'i').test(m.innerText)); }""",
        arg=pattern, timeout=30_000)
    return drv.status_text(page)


def _clear_import(page) -> None:
    """Remove the file left in the import box (gradio keeps the last upload there) so it takes a new one."""
    if page.locator("#studio-import input[type=file]").count():
        return
    page.locator("#studio-import button").filter(has_text="").evaluate_all(
        "(bs) => { const b = bs.find((x) => /clear|remove|delete/i.test(x.getAttribute('aria-label') || x.title || '')); "
        "if (b) b.click(); }")
    page.locator("#studio-import input[type=file]").wait_for(state="attached", timeout=10_000)


# ---------------------------------------------------------------------------------------------------------


def test_opens_with_sample_scene_3d_view_and_preview(studio_page, scene):
    from engine import cameras

    page = studio_page
    status = page.inner_text("#studio-scene-status")
    assert f"sample: {SAMPLE}" in status and "1280x704" in status and "FOV 60.0" in status
    info = drv.plot_info(page)
    assert 1_000 < info["cloud_points"] <= 60_000  # the surface's vertex budget
    names = [t["name"] for t in info["traces"]]
    assert "scene surface" in names and "path" in names and "current frame" in names
    assert info["canvas"] and min(info["canvas"]) > 100  # a WebGL canvas with a real size
    # the default path is the official zoom_in preset: the camera moves straight forward
    expected = _centres(cameras.preset_trajectory("zoom_in", scene.w2c, scene.K, FRAMES, 0.3, "center_facing")[0])
    np.testing.assert_allclose(_path_trace_world(page), expected, atol=1e-4)
    size = page.evaluate("() => { const i = document.querySelector('#studio-preview img'); "
                         "return [i.naturalWidth, i.naturalHeight]; }")
    assert size == [640, 352]
    assert drv.summary_text(page).startswith(f"{PRESET_KEYS} keyframes | {FRAMES} frames")
    assert page.locator("#studio-preset input").input_value() == "zoom_in"
    # the unset FOV box is empty (with a hint), not a misleading 0
    drv.open_tab(page, "Scene")
    fov_box = page.locator("#studio-fov :is(input, textarea)")
    assert fov_box.input_value(timeout=5_000) == "" and fov_box.get_attribute("placeholder")
    drv.open_tab(page, "Path")
    drv.screenshot(page, "01-open")
    assert not page.page_errors, page.page_errors


def test_apply_preset_draws_the_official_trajectory(studio_page, scene):
    from engine import cameras

    page = studio_page
    page.locator("#studio-preset input").click()
    page.get_by_role("option", name="left", exact=True).click()
    before = _path_trace_world(page)
    page.click("#studio-apply-preset")
    page.wait_for_function(
        """() => { const gd = document.querySelector('#studio-3d .js-plotly-plot');
                   const p = gd && gd._fullData && gd._fullData.find((t) => t.name === 'path');
                   return p && Math.abs(p.x[p.x.length - 1]) > 1e-3; }""")
    w2cs, _ = cameras.preset_trajectory("left", scene.w2c, scene.K, FRAMES, 0.3, "center_facing")
    expected = _centres(w2cs)
    got = _path_trace_world(page)
    assert not np.allclose(got, before, atol=1e-3)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    last = drv.table_row(page, PRESET_KEYS)
    np.testing.assert_allclose(last[1:4], expected[-1], atol=2e-4)
    assert last[7] == pytest.approx(60.0, abs=1e-3)
    drv.screenshot(page, "02-preset-left")
    # Load puts the sample back with the default zoom_in path
    drv.open_tab(page, "Scene")
    page.click("#studio-load-sample")
    page.wait_for_function(
        """() => { const gd = document.querySelector('#studio-3d .js-plotly-plot');
                   const p = gd && gd._fullData && gd._fullData.find((t) => t.name === 'path');
                   return p && Math.abs(p.x[p.x.length - 1]) < 1e-6; }""")
    zoom = _centres(cameras.preset_trajectory("zoom_in", scene.w2c, scene.K, FRAMES, 0.3, "center_facing")[0])
    np.testing.assert_allclose(_path_trace_world(page), zoom, atol=1e-4)
    drv.open_tab(page, "Path")
    page.wait_for_function("() => document.querySelector('#studio-preset input').value === 'zoom_in'")


def _expected_view_pose(view: dict):
    """World position, forward and up of the plotly camera `view` (independent of studio.viewcam)."""
    lo = np.array([view["ranges"][a][0] for a in "xyz"])
    hi = np.array([view["ranges"][a][1] for a in "xyz"])
    aspect = np.array([view["aspect"][a] for a in "xyz"])
    unit = (hi - lo) / aspect  # display units per normalised unit
    vec = {k: np.array([view["camera"][k][a] for a in "xyz"], dtype=np.float64) for k in ("eye", "center", "up")}
    eye = WORLD_FROM_DISPLAY @ ((lo + hi) / 2 + vec["eye"] * unit)
    centre = WORLD_FROM_DISPLAY @ ((lo + hi) / 2 + vec["center"] * unit)
    up = WORLD_FROM_DISPLAY @ (vec["up"] * unit)
    forward = (centre - eye) / np.linalg.norm(centre - eye)
    up = up - up.dot(forward) * forward
    return eye, forward, up / np.linalg.norm(up)


def test_add_keyframe_from_rotated_3d_view(studio_page, tmp_path):
    page = studio_page
    first = drv.table_row(page, 1)
    start = drv.view_camera(page)
    view = drv.orbit(page, 70, 0, start=EMPTY_CORNER)  # ends off the cloud: no plotly_click (see below)
    drv.wait_plot_stable(page)
    view = drv.view_camera(page)
    moved = np.array([view["live"]["eye"][a] for a in "xyz"])
    assert not np.allclose(moved, [start["live"]["eye"][a] for a in "xyz"], atol=1e-2), "the drag did not orbit"
    for key in ("eye", "center"):  # what plotly saved equals what it draws
        np.testing.assert_allclose([view["layout"][key][a] for a in "xyz"], [view["live"][key][a] for a in "xyz"],
                                   atol=1e-6)
    view["camera"] = view["live"]
    eye, forward, up = _expected_view_pose(view)

    count = drv.keyframe_count(page)
    page.click("#studio-add-view")
    drv.wait_summary(page, f"s.startsWith('{count + 1} keyframes')")
    assert drv.table_row(page, 1) == first, "orbiting the view changed keyframe 1"
    row = drv.table_row(page, 2)  # inserted after the selected keyframe (1) and selected
    assert drv.summary_text(page).endswith("selected #2")
    np.testing.assert_allclose(row[1:4], eye, atol=2e-4)
    look = np.array(row[4:7]) - np.array(row[1:4])
    np.testing.assert_allclose(look / np.linalg.norm(look), forward, atol=2e-4)
    assert row[7] == pytest.approx(60.0, abs=1e-3)  # the frame's FOV (keyframe 1's), not plotly's 45
    # every column, down to "fov", is inside the table's visible width
    edges = page.evaluate("""() => { const v = document.querySelector('#studio-keyframes .studio-list-scroll');
        const ths = Array.from(document.querySelectorAll('#studio-keyframes th'));
        return [v.getBoundingClientRect().right + 0.5, Math.max(...ths.map((t) => t.getBoundingClientRect().right))]; }""")
    assert edges[1] <= edges[0], f"keyframe table columns end at {edges[1]:.0f} px, beyond its right edge {edges[0]:.0f}"
    drv.screenshot(page, "03-added-from-view")

    saved = _export(page, "json", tmp_path)
    w2c = np.array(saved["keyframes"][1]["w2c"], dtype=np.float64).reshape(4, 4)
    np.testing.assert_allclose(-w2c[:3, :3].T @ w2c[:3, 3], eye, atol=1e-6)
    np.testing.assert_allclose(w2c[2, :3], forward, atol=1e-6)  # camera +z = viewing direction
    np.testing.assert_allclose(-w2c[1, :3], up, atol=1e-6)  # camera -y = the view's up (roll kept)


def test_scrub_changes_the_preview_and_back(studio_page):
    page = studio_page
    drv.scroll_table(page, False)
    src0 = drv.preview_src(page)
    drv.preview_pixels_apart(page, keep_as="frame 0")
    frame0 = page.inner_text("#studio-coverage")
    slider = page.locator("#studio-frame input[type=range]")
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)  # a click on the track
    src1 = drv.wait_preview_change(page, src0)
    value = int(slider.input_value())
    assert 60 < value < FRAMES
    page.wait_for_function(f"() => document.querySelector('#studio-coverage').innerText.startsWith('frame {value}:')")
    assert drv.preview_pixels_apart(page, compare_with="frame 0") > 0.05  # another frame: another picture
    drv.screenshot(page, "04-scrubbed")
    drv.set_slider(page, "studio-frame", 0)
    drv.wait_preview_change(page, src1)
    page.wait_for_function("() => document.querySelector('#studio-coverage').innerText.startsWith('frame 0:')")
    # the same frame renders the same picture: up to a few pixels, where the splat's depth ties can resolve
    # either way between two renders (seen in the browser: two pictures of frame 0 a few pixels apart)
    assert drv.preview_pixels_apart(page, compare_with="frame 0") <= 0.005
    assert page.inner_text("#studio-coverage") == frame0


def test_undo_removes_the_added_keyframe(studio_page):
    page = studio_page
    count = drv.keyframe_count(page)
    assert count == PRESET_KEYS + 1  # the keyframe added from the view
    drv.open_tab(page, "Path")
    page.locator("#studio-undo").scroll_into_view_if_needed()
    assert page.locator("#studio-undo").is_enabled()
    page.click("#studio-undo")
    drv.wait_summary(page, f"s.startsWith('{PRESET_KEYS} keyframes')")
    drv.scroll_table(page, True)
    numbers = [int(r[0]) for r in drv.table_rows(page)]
    assert max(numbers) == PRESET_KEYS and count not in numbers
    page.wait_for_function("() => !document.querySelector('#studio-redo').disabled")


def test_export_nerfstudio_parses(studio_page, scene, tmp_path):
    from engine import cameras

    page = studio_page
    data = _export(page, "nerfstudio", tmp_path)
    assert data["render_height"] == 704 and data["render_width"] == 1280
    assert len(data["keyframes"]) == drv.keyframe_count(page) == PRESET_KEYS
    assert len(data["camera_path"]) == FRAMES
    w2cs, _ = cameras.preset_trajectory("zoom_in", scene.w2c, scene.K, FRAMES, 0.3, "center_facing")
    for t in (0, 60, FRAMES - 1):
        c2w_gl = np.array(data["camera_path"][t]["camera_to_world"], dtype=np.float64).reshape(4, 4)
        c2w = np.linalg.inv(np.asarray(w2cs[t], dtype=np.float64))
        np.testing.assert_allclose(c2w_gl[:3, 3], c2w[:3, 3], atol=1e-5)
        # OpenGL camera axes: x right, y up, z back = OpenCV's x, -y, -z
        np.testing.assert_allclose(c2w_gl[:3, :3], c2w[:3, :3] * np.array([1, -1, -1]), atol=1e-5)
        assert data["camera_path"][t]["fov"] == pytest.approx(60.0, abs=1e-3)
    drv.screenshot(page, "05-exported")


def test_import_bad_file_changes_nothing_and_says_why(studio_page, tmp_path):
    page = studio_page
    _open_files_panel(page)
    summary, trace = drv.summary_text(page), _path_trace_world(page)
    bad = tmp_path / "broken_path.json"
    bad.write_text('{"camera_path": [1, 2')
    page.set_input_files("#studio-import input[type=file]", str(bad))
    text = _wait_status(page, "broken_path.json is not valid JSON")
    assert text.lower().startswith("error")
    drv.screenshot(page, "06-bad-import")
    assert drv.summary_text(page) == summary
    np.testing.assert_array_equal(_path_trace_world(page), trace)


def test_import_exported_project_file_round_trips(studio_page, tmp_path):
    page = studio_page
    # a 3-keyframe project file made with the engine, then exported back through the UI
    from engine.paths import CameraPath, Keyframe, save_path_json

    kfs = [Keyframe.from_look_at([x, 0.0, 0.1 * i], [0.0, 0.0, 3.0], 60.0, 0.0) for i, x in enumerate((-0.2, 0.0, 0.2))]
    source = tmp_path / "three_keys.json"
    save_path_json(CameraPath(tuple(kfs)), source)
    _clear_import(page)
    page.set_input_files("#studio-import input[type=file]", str(source))
    drv.wait_summary(page, "s.startsWith('3 keyframes')")
    _wait_status(page, "Imported a path with 3 keyframes")
    rows = [drv.table_row(page, n) for n in (1, 3)]
    np.testing.assert_allclose(rows[0][1:4], [-0.2, 0.0, 0.0], atol=1e-4)
    np.testing.assert_allclose(rows[1][1:4], [0.2, 0.0, 0.2], atol=1e-4)
    back = _export(page, "json", tmp_path)
    assert len(back["keyframes"]) == 3
    for kf, got in zip(kfs, back["keyframes"]):
        np.testing.assert_allclose(np.array(got["w2c"]).reshape(4, 4), kf.w2c, atol=1e-9)
    drv.screenshot(page, "07-imported")
    assert not page.page_errors, page.page_errors


# last: if it fails, the drag has edited keyframe 1 (an undoable edit the tests above must not see).
# plotly's gl3d emits plotly_click on the press over a point, so the press is put on a cloud point.
def test_orbit_drag_ending_on_the_cloud_does_not_edit_keyframes(studio_page):
    page = studio_page
    drv.scroll_table(page, False)
    first = drv.table_row(page, 1)
    page.evaluate("() => { window.__e2eClick = 0; const b = document.querySelector('#studio-click-point textarea, "
                  "#studio-click-point input'); if (b) b.addEventListener('input', () => window.__e2eClick++); }")
    drv.wait_plot_stable(page)
    before = drv.view_camera(page)["layout"]["eye"]
    start = drv.cloud_point_under_mouse(page)
    assert start is not None, "no point of the cloud found under the mouse"
    drv.drag_plot(page, 40, 0, start=start)  # pressed on a cloud point, moved, released over the cloud
    drv.wait_plot_stable(page)
    assert page.evaluate("() => window.__e2eClick") == 0, "an orbit drag was sent to the studio as a point click"
    assert drv.table_row(page, 1) == first
    after = drv.view_camera(page)
    assert not np.allclose([after["layout"]["eye"][a] for a in "xyz"], [before[a] for a in "xyz"], atol=1e-3), \
        "the drag did not orbit the view"
    np.testing.assert_allclose([after["layout"]["eye"][a] for a in "xyz"], [after["live"]["eye"][a] for a in "xyz"],
                               atol=1e-6)
