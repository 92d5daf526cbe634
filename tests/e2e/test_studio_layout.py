"""One screen, in headless Chromium: at 1440x900 (and at 1920x1080) the 3D view, the warped preview, the frame
slider, the preset controls with Apply, Add from view and the keyframe list are all on screen at once without
scrolling, none covering another; and the layout stays put as texts change (coverage, summary, messages)."""
from __future__ import annotations

import pytest

import studio_driver as drv
from conftest import wait_ready

pytestmark = pytest.mark.e2e

ON_SCREEN = ("#studio-3d", "#studio-preview", "#studio-frame", "#studio-preset", "#studio-apply-preset",
             "#studio-add-view", "#studio-keyframes", "#studio-status")


def _boxes(page) -> dict:
    return page.evaluate("""(sels) => Object.fromEntries(sels.map((s) => { const r = document.querySelector(s).getBoundingClientRect();
        return [s, [r.left, r.top, r.right, r.bottom]]; }))""", list(ON_SCREEN))


def _check_one_screen(page, width: int, height: int) -> None:
    assert page.evaluate("() => [window.scrollX, window.scrollY]") == [0, 0]
    boxes = _boxes(page)
    for sel, (left, top, right, bottom) in boxes.items():
        assert right - left > 20 and bottom - top > 10, f"{sel} is not shown"
        assert left >= 0 and top >= 0 and right <= width + 0.5 and bottom <= height + 0.5, \
            f"{sel} at {left:.0f},{top:.0f}-{right:.0f},{bottom:.0f} is off the {width}x{height} screen"
    # the keyframe list shows at least five rows without scrolling the page
    rows = page.evaluate("""(h) => Array.from(document.querySelectorAll('#studio-keyframes tr[data-row]'))
        .filter((r) => r.getBoundingClientRect().bottom <= h).length""", height)
    assert rows >= 5
    big = ["#studio-3d", "#studio-preview", "#studio-keyframes"]
    for i, a in enumerate(big):
        for b in big[i + 1:]:
            (l1, t1, r1, b1), (l2, t2, r2, b2) = boxes[a], boxes[b]
            assert r1 <= l2 or r2 <= l1 or b1 <= t2 or b2 <= t1, f"{a} and {b} overlap"


@pytest.mark.parametrize("width,height", [(1440, 900), (1920, 1080)])
def test_everything_for_path_editing_fits_one_screen(studio_page, width, height):
    page = studio_page
    page.set_viewport_size({"width": width, "height": height})
    page.reload()
    wait_ready(page)
    drv.wait_plot_stable(page)
    _check_one_screen(page, width, height)
    drv.screenshot(page, f"layout-{width}x{height}", full_page=False)


def test_layout_stays_put_as_texts_change(studio_page):
    page = studio_page
    page.set_viewport_size({"width": 1440, "height": 900})
    page.reload()
    wait_ready(page)
    drv.wait_plot_stable(page)
    before = _boxes(page)
    drv.set_slider(page, "studio-frame", 77)  # the coverage text changes
    page.wait_for_function("() => document.querySelector('#studio-coverage').innerText.startsWith('frame 77:')")
    drv.cell(page, 3, "x").click()
    page.keyboard.type("0.2")
    page.keyboard.press("Enter")  # the summary grows ("... (7/8 as preset) ...")
    drv.wait_list_value(page, 3, "x", "0.2")
    drv.cell(page, 3, "x").click()
    page.keyboard.type("oops")
    page.keyboard.press("Enter")  # an error message
    page.wait_for_function("() => /must be a number/.test(document.querySelector('#studio-status').innerText)")
    page.wait_for_timeout(300)
    after = _boxes(page)
    for sel in ON_SCREEN:
        assert after[sel] == pytest.approx(before[sel], abs=1.0), f"{sel} moved: {before[sel]} -> {after[sel]}"
    assert not page.page_errors, page.page_errors
