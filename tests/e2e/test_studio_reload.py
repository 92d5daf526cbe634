"""Nothing lost on reload, in headless Chromium: the path (keyframes, holds), the interpolation settings, the
scene choice and the selection come back from the browser's storage; an uploaded image comes back while the
server still has it, and otherwise the page says to upload it again (the path is kept)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import studio_driver as drv
from conftest import wait_ready

pytestmark = pytest.mark.e2e

TOP = (0.5, 0.03)


def _reload(page) -> None:
    page.wait_for_timeout(1_500)  # the browser state is written after each change
    page.reload()
    wait_ready(page)


def _state(page) -> dict:
    return {"rows": drv.table_rows(page), "summary": drv.summary_text(page),
            "interpolation": page.locator("#studio-interpolation input:checked").get_attribute("value"),
            "constant_speed": page.locator("#studio-constant-speed input").is_checked()}


def test_path_settings_and_selection_survive_a_reload(studio_page):
    page = studio_page
    drv.click_and_wait_summary(page, "#studio-new-path", "s.startsWith('1 keyframe')")
    drv.orbit(page, 60, 0, start=TOP)
    drv.click_and_wait_summary(page, "#studio-add-view", "s.startsWith('2 keyframes')")
    drv.orbit(page, 60, 0, start=TOP)
    drv.click_and_wait_summary(page, "#studio-add-view", "s.startsWith('3 keyframes')")
    drv.cell(page, 2, "hold").click()
    page.keyboard.type("6")
    page.keyboard.press("Enter")
    drv.wait_list_value(page, 2, "hold", "6")
    page.locator("#studio-interpolation").get_by_text("linear").click()
    drv.wait_summary(page, "s.includes('| linear')")
    page.locator("#studio-constant-speed").get_by_text("Constant speed").click()
    drv.wait_summary(page, "s.includes('constant speed')")
    page.locator('#studio-keyframes .studio-kf-num[data-row="1"]').click()
    drv.wait_summary(page, "s.endsWith('selected #2')")
    before = _state(page)
    _reload(page)
    drv.wait_summary(page, "s.startsWith('3 keyframes')")
    assert _state(page) == before
    assert "Restored your camera path" in drv.status_text(page)
    assert "sample: living_room" in page.inner_text("#studio-scene-status")
    drv.screenshot(page, "reload-01-restored", full_page=False)


def test_an_uploaded_image_comes_back_while_the_server_has_it(studio_page, studio_server, tmp_path):
    page = studio_page
    img = np.zeros((600, 800, 3), dtype=np.uint8)
    img[:, :400] = [30, 160, 90]
    img[200:400, 300:500] = [220, 200, 40]
    Image.fromarray(img).save(tmp_path / "mine.png")
    depth = np.full((600, 800), 3.0, dtype=np.float32)
    np.save(tmp_path / "mine_depth.npy", depth)
    drv.open_tab(page, "Scene")
    page.set_input_files("#studio-image input[type=file]", str(tmp_path / "mine.png"))
    page.set_input_files("#studio-depth input[type=file]", str(tmp_path / "mine_depth.npy"))
    page.wait_for_timeout(500)
    page.click("#studio-build-scene")
    page.wait_for_function("() => /upload \\(depth file\\)/.test(document.querySelector('#studio-scene-status').innerText)",
                           timeout=60_000)
    status = page.inner_text("#studio-scene-status")
    drv.open_tab(page, "Path")
    drv.click_and_wait_summary(page, "#studio-new-path", "s.startsWith('1 keyframe')")
    _reload(page)
    page.wait_for_function("() => /upload \\(depth file\\)/.test(document.querySelector('#studio-scene-status').innerText)")
    assert page.inner_text("#studio-scene-status") == status
    assert drv.summary_text(page).startswith("1 keyframe")
    # the server forgot the upload (its folders are swept after some hours): the page asks for it again
    for folder in Path(studio_server.tmp, "studio").glob("upload-*"):
        shutil.rmtree(folder)
    _reload(page)
    page.wait_for_function("() => /upload it again/.test(document.querySelector('#studio-status').innerText)")
    assert "sample: living_room" in page.inner_text("#studio-scene-status")
    assert drv.summary_text(page).startswith("1 keyframe")  # the path is kept
    drv.screenshot(page, "reload-02-upload-gone", full_page=False)
    assert not page.page_errors, page.page_errors
