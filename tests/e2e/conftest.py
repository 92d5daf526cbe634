"""Fixtures for the browser tests: the real app in a subprocess and one headless Chromium page on it."""
from __future__ import annotations

import pytest

from studio_driver import StudioServer, browser_available, close_browser, launch_browser, wait_plot

PREVIEW_READY = "() => { const i = document.querySelector('#studio-preview img'); return !!(i && i.complete && i.naturalWidth); }"


@pytest.fixture(scope="session")
def studio_server():
    """`python app.py` on a free port (no weights, its own temp folders); stopped after the session."""
    why = browser_available()
    if why:
        pytest.skip(f"browser tests need Chromium + Playwright: {why}")
    server = StudioServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser_context(studio_server, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    downloads = tmp_path_factory.mktemp("downloads")
    with sync_playwright() as pw:
        ctx = launch_browser(pw, downloads, fast=True)
        ctx.set_default_timeout(60_000)
        yield ctx
        close_browser(ctx)


def open_fresh_page(context, url):
    """A new tab on the studio as a first visit (what an earlier test left in this browser's storage is
    cleared): default sample loaded, 3D view drawn, preview and keyframe list shown. Page errors and console
    messages are collected on `page.page_errors` and `page.console`."""
    page = context.new_page()
    errors: list[str] = []
    console: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.goto(url)
    page.evaluate("() => window.localStorage.clear()")
    page.reload()
    wait_ready(page)
    page.page_errors = errors
    page.console = console
    return page


def wait_ready(page) -> None:
    wait_plot(page)
    page.wait_for_function(PREVIEW_READY)
    page.wait_for_selector("#studio-keyframes input.studio-kf-cell")


@pytest.fixture(scope="module")
def studio_page(studio_server, browser_context):
    """One tab on the studio with the default sample loaded, its 3D view drawn and a preview shown."""
    page = open_fresh_page(browser_context, studio_server.url)
    yield page
    page.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failed e2e test, save a screenshot of the tab as tests/_artifacts/FAILED-<test>.png."""
    outcome = yield
    report = outcome.get_result()
    page = item.funcargs.get("studio_page") if hasattr(item, "funcargs") else None
    if report.when == "call" and report.failed and page is not None:
        try:
            from studio_driver import screenshot

            screenshot(page, f"FAILED-{item.name}")
        except Exception:  # noqa: BLE001 - a broken page must not hide the test's own failure
            pass
