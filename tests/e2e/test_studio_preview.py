"""Preview feedback, in headless Chromium: the coverage chart marks the current frame, the path video loops and
visibly refreshes after an edit, "What the model receives" shows each cache buffer's render and mask at the
current frame, and foreground masking (on by default) is a toggle that changes what the preview shows."""
from __future__ import annotations

import re

import pytest

import studio_driver as drv

pytestmark = pytest.mark.e2e


def _coverage_mark(page):
    return page.evaluate("""() => { const c = document.querySelector('#studio-coverage-plot .js-plotly-plot');
        const s = c && c.layout && c.layout.shapes && c.layout.shapes.find((x) => x.name === 'current frame');
        return s ? s.x0 : null; }""")


def _percent(text: str) -> float:
    return float(re.search(r"([0-9.]+)% covered", text).group(1))


def test_coverage_chart_marks_the_current_frame(studio_page):
    page = studio_page
    page.wait_for_function("() => !!document.querySelector('#studio-coverage-plot .js-plotly-plot')", timeout=60_000)
    assert _coverage_mark(page) == 0
    drv.set_slider(page, "studio-frame", 60)
    page.wait_for_function("() => document.querySelector('#studio-coverage').innerText.startsWith('frame 60:')")
    page.wait_for_function("() => { const c = document.querySelector('#studio-coverage-plot .js-plotly-plot');"
                           " const s = c.layout.shapes.find((x) => x.name === 'current frame'); return s && s.x0 === 60; }")
    drv.screenshot(page, "preview-01-coverage-mark", full_page=False)


def test_path_video_loops_and_refreshes_after_an_edit(studio_page):
    page = studio_page
    page.wait_for_function("() => { const v = document.querySelector('#studio-preview-video video');"
                           " return !!(v && v.src && v.readyState >= 2); }", timeout=60_000)
    assert page.evaluate("() => document.querySelector('#studio-preview-video video').loop")
    page.wait_for_function("() => document.querySelector('#studio-preview-video video').currentTime > 0.2",
                           timeout=20_000)  # it plays by itself
    old = page.evaluate("() => document.querySelector('#studio-preview-video video').src")
    page.evaluate("""() => { window.__e2eFlash = 0; const w = document.querySelector('#studio-preview-video');
        new MutationObserver(() => { if (w.classList.contains('studio-flash')) window.__e2eFlash++; })
          .observe(w, {attributes: true, attributeFilter: ['class']}); }""")
    drv.cell(page, 5, "x").click()
    page.keyboard.type("0.3")
    page.keyboard.press("Enter")
    drv.wait_list_value(page, 5, "x", "0.3")
    page.wait_for_function("(old) => { const v = document.querySelector('#studio-preview-video video');"
                           " return v.src !== old && v.readyState >= 2; }", arg=old, timeout=60_000)
    page.wait_for_function("() => window.__e2eFlash > 0", timeout=10_000)  # the refresh is visible
    assert page.evaluate("() => document.querySelector('#studio-preview-video video').loop")


def test_what_the_model_receives(studio_page):
    page = studio_page
    drv.open_tab(page, "What the model receives")
    page.wait_for_function("() => document.querySelectorAll('#studio-model-inputs img').length >= 4", timeout=30_000)
    captions = page.locator("#studio-model-inputs").inner_text()
    assert "buffer 1 (seed): render" in captions
    assert re.search(r"buffer 1 \(seed\): mask, \d+% covered", captions)
    assert "buffer 2: empty in chunk 1" in captions
    first = page.evaluate("() => Array.from(document.querySelectorAll('#studio-model-inputs img'), (i) => i.src)")
    drv.set_slider(page, "studio-frame", 110)
    page.wait_for_function("(old) => { const s = Array.from(document.querySelectorAll('#studio-model-inputs img'), (i) => i.src);"
                           " return s.length >= 4 && s[0] !== old[0]; }", arg=first, timeout=30_000)
    drv.screenshot(page, "preview-02-model-inputs", full_page=False)
    drv.open_tab(page, "Preview")


def test_foreground_masking_is_a_toggle_on_by_default(studio_page):
    page = studio_page
    box = page.locator("#studio-foreground-masking input")
    assert box.is_checked()
    drv.set_slider(page, "studio-frame", 120)
    page.wait_for_function("() => document.querySelector('#studio-coverage').innerText.startsWith('frame 120:')")
    masked = _percent(page.inner_text("#studio-coverage"))
    src = drv.preview_src(page)
    box.click()
    drv.wait_preview_change(page, src)
    page.wait_for_function(f"() => !document.querySelector('#studio-coverage').innerText.includes('{masked}%')")
    unmasked = _percent(page.inner_text("#studio-coverage"))
    assert unmasked > masked, "foreground masking should hide part of what the cache shows off the input view"
    box.click()
    page.wait_for_function(f"() => document.querySelector('#studio-coverage').innerText.includes('{masked}%')")
    assert not page.page_errors, page.page_errors
