"""The small traps, in headless Chromium: Duplicate inserts after the selected keyframe, the selection stays on
the same keyframe across undo and redo, New path and Delete down to one keyframe (which says what a path needs),
each export is its own download under its plain name, Cancel is off while nothing runs, and the Generate panel
starts collapsed without weights, with a plain list of downloads, the commands folded away and the no-text-encoder
mode offered."""
from __future__ import annotations

import pytest

import studio_driver as drv

pytestmark = pytest.mark.e2e


def test_duplicate_inserts_after_the_selected_keyframe(studio_page):
    page = studio_page
    rows = drv.table_rows(page)
    page.locator('#studio-keyframes .studio-kf-num[data-row="2"]').click()
    drv.wait_summary(page, "s.endsWith('selected #3')")
    drv.click_and_wait_summary(page, "#studio-duplicate", f"s.startsWith('{len(rows) + 1} keyframes')")
    after = drv.table_rows(page)
    assert drv.summary_text(page).endswith("selected #4")
    assert after[3][1:8] == rows[2][1:8]  # the copy sits right after the original
    assert [r[1:8] for r in after[:3] + after[4:]] == [r[1:8] for r in rows]


def test_selection_stays_on_the_same_keyframe_across_undo_and_redo(studio_page):
    page = studio_page
    rows = drv.table_rows(page)
    page.locator('#studio-keyframes .studio-kf-num[data-row="5"]').click()
    drv.wait_summary(page, "s.endsWith('selected #6')")
    chosen = rows[5][1:8]
    page.click("#studio-move-up")  # keyframe 6 becomes 5
    drv.wait_summary(page, "s.endsWith('selected #5')")
    page.click("#studio-undo")
    drv.wait_summary(page, "s.endsWith('selected #6')")
    assert drv.table_rows(page)[5][1:8] == chosen
    page.click("#studio-redo")
    drv.wait_summary(page, "s.endsWith('selected #5')")
    assert drv.table_rows(page)[4][1:8] == chosen


def test_new_path_and_delete_down_to_one_keyframe(studio_page):
    page = studio_page
    drv.click_and_wait_summary(page, "#studio-new-path", "s.startsWith('1 keyframe')")
    assert "needs two" in drv.summary_text(page)
    assert drv.table_rows(page)[0][1:4] == [0, 0, 0]  # the input camera
    page.click("#studio-delete")
    page.wait_for_function("() => /last keyframe cannot be deleted/.test(document.querySelector('#studio-status').innerText)")
    page.click("#studio-undo")  # New path is undone like any edit
    drv.wait_summary(page, "s.startsWith('10 keyframes')")
    page.click("#studio-redo")
    drv.wait_summary(page, "s.startsWith('1 keyframe')")
    drv.screenshot(page, "traps-01-new-path", full_page=False)


def test_each_export_is_its_own_download_with_its_plain_name(studio_page, tmp_path):
    page = studio_page
    page.click("#studio-undo")
    drv.wait_summary(page, "s.startsWith('10 keyframes')")
    first, name1 = drv.export_file(page, "nerfstudio", tmp_path, parse=False)
    page.wait_for_timeout(200)
    second, name2 = drv.export_file(page, "json", tmp_path, parse=False)
    assert name1 == "camera_path.json" and name2 == "path.json"
    assert page.locator("#studio-export-file a[download]").count() == 2
    assert first.read_text() != second.read_text()
    drv.open_tab(page, "Path")


def test_generate_panel_without_weights(studio_page):
    page = studio_page
    panel = page.locator("#studio-generate-panel")
    assert not page.locator("#studio-prompt").is_visible(), "the panel should start collapsed without weights"
    panel.get_by_text("Generate video (GEN3C)").click()
    page.locator("#studio-weights-status").wait_for(state="visible")
    text = page.inner_text("#studio-weights-status")
    assert "nvidia/GEN3C-Cosmos-7B" in text and "about 15 GB" in text and "about 45 GB" in text
    details = page.locator("#studio-weights-status details")
    assert details.count() == 1 and not details.evaluate("(d) => d.open")  # the commands are folded away
    assert not page.locator("#studio-weights-status details pre").is_visible()
    assert page.locator("#studio-no-text-encoder").is_visible()
    assert page.locator("#studio-cancel").is_disabled() and page.locator("#studio-generate").is_disabled()
    page.locator("#studio-generate-panel").scroll_into_view_if_needed()
    drv.screenshot(page, "traps-02-generate-panel", full_page=True)
    assert not page.page_errors, page.page_errors
