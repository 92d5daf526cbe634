"""Scene set-up as a person does it, in headless Chromium: an upload shows what the model will see (crop or pad)
before building; without MoGe weights the message is shown whole (paths in angle brackets included) and stays
until the next action; a depth file without intrinsics builds the scene and the status says the FOV was assumed
and how the image was cropped; the sample menu follows the scene shown; messages never move the layout.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import studio_driver as drv

pytestmark = pytest.mark.e2e

LAYOUT = ("#studio-3d", "#studio-preview", "#studio-frame", "#studio-keyframes", "#studio-apply-preset",
          "#studio-add-view", "#studio-status")


@pytest.fixture(scope="module")
def upload(tmp_path_factory):
    """A 1600x1200 photo-like image and a matching depth map (.npy, no intrinsics)."""
    folder = tmp_path_factory.mktemp("upload")
    h, w = 1200, 1600
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 120)], axis=-1).astype(np.uint8)
    img[400:800, 600:1000] = [200, 40, 40]
    Image.fromarray(img).save(folder / "photo.png")
    depth = np.full((h, w), 4.0, dtype=np.float32)
    depth[400:800, 600:1000] = 2.0
    np.save(folder / "photo_depth.npy", depth)
    return folder / "photo.png", folder / "photo_depth.npy"


def _boxes(page) -> dict:
    return page.evaluate("""(sels) => Object.fromEntries(sels.map((s) => { const r = document.querySelector(s).getBoundingClientRect();
        return [s, [Math.round(r.x), Math.round(r.y), Math.round(r.width), Math.round(r.height)]]; }))""", list(LAYOUT))


def test_upload_shows_the_crop_and_the_pad_before_building(studio_page, upload):
    from engine.images import plan_fit

    page = studio_page
    drv.open_tab(page, "Scene")
    page.set_input_files("#studio-image input[type=file]", str(upload[0]))
    page.wait_for_function("() => { const i = document.querySelector('#studio-fit-preview img'); return !!(i && i.naturalWidth); }")
    crop = plan_fit((1200, 1600), 704, 1280, "crop")
    text = page.inner_text("#studio-fit-text")
    assert "crop: 1600x1200" in text and f"{crop.crop_y} px cut top and bottom" in text and "1280x704" in text
    size = page.evaluate("() => { const i = document.querySelector('#studio-fit-preview img'); return [i.naturalWidth, i.naturalHeight]; }")
    assert abs(size[0] / size[1] - 1280 / 704) < 0.03  # the thumbnail is the model's frame
    drv.screenshot(page, "scene-01-crop-preview", full_page=False)
    page.locator("#studio-fit").get_by_text("pad").click()
    pad = plan_fit((1200, 1600), 704, 1280, "pad")
    page.wait_for_function("() => /^pad:/.test(document.querySelector('#studio-fit-text').innerText)")
    assert f"{pad.pad_x} px black bars left and right" in page.inner_text("#studio-fit-text")
    page.locator("#studio-fit").get_by_text("crop").click()
    page.wait_for_function("() => /^crop:/.test(document.querySelector('#studio-fit-text').innerText)")


def test_missing_moge_message_is_whole_and_stays_until_the_next_action(studio_page):
    from engine.depth import MOGE_HELP

    page = studio_page
    boxes = _boxes(page)
    page.click("#studio-build-scene")
    page.wait_for_function("() => /MoGe/.test(document.querySelector('#studio-status').innerText)")
    text = drv.status_text(page)
    assert "<weights>/moge/model.pt" in text  # shown literally, not eaten as an HTML tag
    assert text == f"Error: {MOGE_HELP}"  # the whole message
    assert _boxes(page) == boxes, "the message moved the layout"
    drv.screenshot(page, "scene-02-moge-missing", full_page=False)
    page.wait_for_timeout(12_000)
    assert drv.status_text(page) == f"Error: {MOGE_HELP}"
    drv.open_tab(page, "Path")
    page.click("#studio-apply-preset")  # the next action clears it
    page.wait_for_function("() => !/MoGe/.test(document.querySelector('#studio-status').innerText)")


def test_depth_file_without_intrinsics_builds_and_says_what_was_assumed(studio_page, upload):
    page = studio_page
    drv.open_tab(page, "Scene")
    if not page.locator("#studio-fit-preview img").count():
        page.set_input_files("#studio-image input[type=file]", str(upload[0]))
    page.set_input_files("#studio-depth input[type=file]", str(upload[1]))
    page.wait_for_timeout(500)
    page.click("#studio-build-scene")
    page.wait_for_function("() => /upload \\(depth file\\)/.test(document.querySelector('#studio-scene-status').innerText)",
                           timeout=60_000)
    status = page.inner_text("#studio-scene-status")
    # the engine assumes 60 degrees for the whole image; the crop keeps 704 of its 960 rows
    cropped = np.degrees(2 * np.arctan(np.tan(np.radians(30.0)) * 704 / 960))
    assert f"FOV {cropped:.1f} deg (assumed 60.0 deg for the whole 1600x1200 image: the depth file has no intrinsics)" in status
    assert "crop: 1600x1200 scaled x0.8 to 1280x960, 128 px cut top and bottom -> 1280x704" in status
    assert page.locator("#studio-sample input").input_value() == ""  # the sample menu no longer names a sample
    drv.wait_plot(page)
    drv.screenshot(page, "scene-03-upload-built", full_page=False)


def test_sample_menu_follows_the_scene_shown(studio_page):
    page = studio_page
    drv.open_tab(page, "Scene")
    page.locator("#studio-sample input").click()
    page.get_by_role("option", name="tabletop", exact=True).click()
    page.click("#studio-load-sample")
    page.wait_for_function("() => /sample: tabletop/.test(document.querySelector('#studio-scene-status').innerText)")
    assert page.locator("#studio-sample input").input_value() == "tabletop"
    assert "FOV" in page.inner_text("#studio-scene-status")
    assert not page.page_errors, page.page_errors
