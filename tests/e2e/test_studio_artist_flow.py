"""Done when: an artist makes a five-keyframe path with holds from scratch, framing each keyframe by eye, in under
two minutes of clicks, with no reading beyond the on-screen help. This drives that flow as a person would (only
what is on screen: New path, Look through keyframe, orbit and zoom the 3D view, Add from view, the hold cells),
counts the actions and the time, and checks the result in the exported path."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

import studio_driver as drv

pytestmark = pytest.mark.e2e

MAX_SECONDS = 120
MAX_ACTIONS = 30


class Actions:
    """Counts what a person does: a click, a drag, a scroll, typing one value."""

    def __init__(self, page):
        self.page, self.count, self.log = page, 0, []

    def click(self, selector: str) -> None:
        self.page.click(selector)
        self._done(f"click {selector}")

    def drag(self, dx: float, dy: float) -> None:
        drv.orbit(self.page, dx, dy, start=(0.5, 0.03), attempts=1)
        self._done(f"drag {dx},{dy}")

    def scroll(self, dy: float) -> None:
        box = self.page.locator(drv.PLOT).bounding_box()
        self.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.1)
        self.page.mouse.wheel(0, dy)
        self._done(f"scroll {dy}")

    def type_into(self, number: int, column: str, text: str) -> None:
        drv.cell(self.page, number, column).click()
        self.page.keyboard.type(text)
        self.page.keyboard.press("Enter")
        self._done(f"type {text} into keyframe {number} {column}")

    def _done(self, what: str) -> None:
        self.count += 1
        self.log.append(what)


def test_five_keyframes_with_holds_from_scratch_in_under_two_minutes(studio_page, tmp_path):
    page = studio_page
    act = Actions(page)
    t0 = time.perf_counter()
    act.click("#studio-new-path")
    drv.wait_summary(page, "s.startsWith('1 keyframe')")
    act.click("#studio-look-through")  # start from what the input camera sees
    page.wait_for_timeout(300)
    moves = [(-70, 0), (60, 10), (70, -15), (60, 0)]
    for k, (dx, dy) in enumerate(moves, start=2):
        act.drag(dx, dy)  # frame the next shot by eye
        if k == 3:
            act.scroll(-120)  # a little closer for this one
            page.wait_for_timeout(400)
        framed = drv.view_camera(page)["live"]
        act.click("#studio-add-view")
        drv.wait_summary(page, f"s.startsWith('{k} keyframes') && s.endsWith('selected #{k}')")
        drv.wait_plot_stable(page, quiet_ms=400)
        shown = drv.view_camera(page)["live"]
        for key in ("eye", "center"):  # adding the shot does not move the view the artist framed
            np.testing.assert_allclose([shown[key][a] for a in "xyz"], [framed[key][a] for a in "xyz"], atol=1e-6)
    act.type_into(3, "hold", "12")
    drv.wait_list_value(page, 3, "hold", "12")
    act.type_into(5, "hold", "20")
    drv.wait_list_value(page, 5, "hold", "20")
    drv.wait_summary(page, "s.startsWith('5 keyframes')")
    page.wait_for_function("() => { const i = document.querySelector('#studio-preview img'); return !!(i && i.complete && i.naturalWidth); }")
    took = time.perf_counter() - t0
    print(json.dumps({"flow": "five keyframes with holds", "actions": act.count, "seconds": round(took, 1),
                      "log": act.log}))
    drv.screenshot(page, "flow-01-five-keyframes", full_page=False)
    assert act.count <= MAX_ACTIONS and took < MAX_SECONDS, f"{act.count} actions in {took:.0f} s"

    data = drv.export_file(page, "json", tmp_path)
    keys = data["keyframes"]
    assert len(keys) == 5 and [k["hold"] for k in keys] == [0, 0, 12, 0, 20]
    centres = [-np.array(k["w2c"]).reshape(4, 4)[:3, :3].T @ np.array(k["w2c"]).reshape(4, 4)[:3, 3] for k in keys]
    np.testing.assert_allclose(centres[0], 0, atol=1e-9)  # the input camera
    assert min(np.linalg.norm(a - b) for i, a in enumerate(centres) for b in centres[i + 1:]) > 1e-3  # five shots
    ns = drv.export_file(page, "nerfstudio", tmp_path)
    frames = [np.array(f["camera_to_world"]).reshape(4, 4) for f in ns["camera_path"]]
    assert len(frames) == 121
    still = [np.allclose(a, b) for a, b in zip(frames, frames[1:])]
    assert sum(still) >= 12 + 20  # the holds: the camera stays put for those frames
    assert not page.page_errors, page.page_errors
