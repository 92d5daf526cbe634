"""The keyframe list as a person edits it, in headless Chromium: typing replaces a cell's value, Enter keeps the
cell focused, only the edited number changes (in look-at mode a moved camera keeps its look point, and the page
says so), a rejected value goes back with the reason in the status area, yaw/pitch/roll edits, holds and eases.

Checked against the project-JSON export of the path (exact cameras) and independent geometry.
"""
from __future__ import annotations

import numpy as np
import pytest

import studio_driver as drv

pytestmark = pytest.mark.e2e


def _rows(page) -> list[list[float]]:
    return drv.table_rows(page)


def _type_into(page, number: int, column: str, text: str, key: str = "Enter") -> None:
    drv.cell(page, number, column).click()
    page.keyboard.type(text)
    page.keyboard.press(key)


def _keyframes(page, tmp_path) -> list[dict]:
    data = drv.export_file(page, "json", tmp_path)
    drv.open_tab(page, "Path")
    return data["keyframes"]


def test_typing_replaces_the_value_in_place_and_keeps_focus(studio_page, tmp_path):
    page = studio_page
    before = _rows(page)
    note = page.inner_text("#studio-keyframes .studio-list-note")
    assert "keeps it aimed at its look point" in note  # the page says what moving a position does
    _type_into(page, 3, "y", "-0.25")
    drv.wait_list_value(page, 3, "y", "-0.25")
    focused = page.evaluate("() => [document.activeElement.dataset.row, document.activeElement.dataset.col]")
    assert focused == ["2", "y"], "the edited cell lost the focus"
    after = _rows(page)
    changed = [(r, c) for r in range(len(before)) for c in range(1, 8) if before[r][c] != after[r][c]]
    assert changed == [(2, 2)], f"more than the edited number changed: {changed}"
    assert after[2][2] == -0.25
    # the camera really is at the new position and still looks at the point the list shows
    kf = _keyframes(page, tmp_path)[2]
    w2c = np.array(kf["w2c"]).reshape(4, 4)
    pos = -w2c[:3, :3].T @ w2c[:3, 3]
    np.testing.assert_allclose(pos, after[2][1:4], atol=1e-4)
    target = np.array(after[2][4:7])
    np.testing.assert_allclose(w2c[2, :3], (target - pos) / np.linalg.norm(target - pos), atol=2e-4)
    drv.screenshot(page, "table-01-edited", full_page=False)


def test_tab_commits_and_moves_to_the_next_cell(studio_page):
    page = studio_page
    _type_into(page, 4, "x", "0.125", key="Tab")
    drv.wait_list_value(page, 4, "x", "0.125")
    focused = page.evaluate("() => [document.activeElement.dataset.row, document.activeElement.dataset.col]")
    assert focused == ["3", "y"]


def test_a_rejected_value_goes_back_and_says_why(studio_page):
    page = studio_page
    old = drv.cell(page, 2, "z").input_value()
    rows = _rows(page)
    _type_into(page, 2, "z", "abc")
    page.wait_for_function("() => /must be a number/.test(document.querySelector('#studio-status').innerText)")
    page.wait_for_function(f"""() => document.querySelector('#studio-keyframes input[data-row="1"][data-col="z"]').value === '{old}'""")
    assert "keyframe 2 z must be a number, got 'abc'" in drv.status_text(page)
    assert _rows(page) == rows
    _type_into(page, 2, "fov", "400")
    page.wait_for_function("() => /fov must be in \\(1, 179\\)/.test(document.querySelector('#studio-status').innerText)")
    assert drv.cell(page, 2, "fov").input_value() == "60"
    drv.screenshot(page, "table-02-rejected", full_page=False)
    # the message stays until the next action
    page.wait_for_timeout(11_000)
    assert "fov must be in (1, 179) degrees" in drv.status_text(page)
    _type_into(page, 2, "fov", "50")
    drv.wait_list_value(page, 2, "fov", "50")
    assert drv.status_text(page) == ""


def test_yaw_pitch_roll_edits_one_angle(studio_page, tmp_path):
    page = studio_page
    page.locator("#studio-table-mode").get_by_text("yaw/pitch/roll").click()
    page.wait_for_function("() => Array.from(document.querySelectorAll('#studio-keyframes th')).some((t) => t.innerText === 'yaw')")
    before = _rows(page)
    _type_into(page, 5, "yaw", "12")
    drv.wait_list_value(page, 5, "yaw", "12")
    after = _rows(page)
    changed = [(r, c) for r in range(len(before)) for c in range(1, 8) if before[r][c] != after[r][c]]
    assert changed == [(4, 4)]
    kf = _keyframes(page, tmp_path)[4]
    w2c = np.array(kf["w2c"]).reshape(4, 4)
    yaw, pitch = np.radians(after[4][4:6])
    # yaw turns right (toward +x), pitch looks up (toward -y): the viewing direction
    forward = np.array([np.sin(yaw) * np.cos(pitch), -np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
    np.testing.assert_allclose(w2c[2, :3], forward, atol=1e-4)
    np.testing.assert_allclose(-w2c[:3, :3].T @ w2c[:3, 3], after[4][1:4], atol=1e-4)
    page.locator("#studio-table-mode").get_by_text("look-at").click()
    page.wait_for_function("() => Array.from(document.querySelectorAll('#studio-keyframes th')).some((t) => t.innerText === 'look x')")


def test_holds_and_eases_from_the_list(studio_page, tmp_path):
    page = studio_page
    _type_into(page, 5, "hold", "12")
    drv.wait_list_value(page, 5, "hold", "12")
    page.locator('#studio-keyframes select[data-row="6"]').select_option("ease_in_out")
    drv.wait_list_value(page, 7, "ease", "ease_in_out")
    bars = page.locator("#studio-timeline .studio-tl-hold").count()
    assert bars == 1, "the timeline shows the hold"
    keys = _keyframes(page, tmp_path)
    assert keys[4]["hold"] == 12 and keys[6]["ease"] == "ease_in_out"
    assert all(k["hold"] == 0 for i, k in enumerate(keys) if i != 4)
    # a hold that does not fit the clip is refused and the cell shows the hold it had
    _type_into(page, 3, "hold", "500")
    page.wait_for_function("() => /Error/.test(document.querySelector('#studio-status').innerText)")
    page.wait_for_function("""() => document.querySelector('#studio-keyframes input[data-row="2"][data-col="hold"]').value === '0'""")
    drv.screenshot(page, "table-03-holds", full_page=False)


def test_clicking_a_number_selects_that_keyframe(studio_page):
    page = studio_page
    rows = _rows(page)
    page.locator('#studio-keyframes .studio-kf-num[data-row="5"]').click()
    drv.wait_summary(page, "s.endsWith('selected #6')")
    assert _rows(page) == rows
    assert page.locator("#studio-keyframes tr.studio-selected").get_attribute("data-row") == "5"
    assert not page.page_errors, page.page_errors
