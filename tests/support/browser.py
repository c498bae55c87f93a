"""Real headless Chromium (Debian's, never a downloaded build) driven by Playwright, and the
checks every page gets: no console errors, no failed requests."""
from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

VIEWPORT = {"width": 1440, "height": 900}


def chromium_path() -> str:
    """The Chromium executable; the browser tests are skipped (with the reason) without one."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Chromium is not installed (make test installs it as root: apt-get install chromium)")
    return found


@dataclass
class PageProblems:
    """Console errors, uncaught exceptions, failed requests and HTTP error answers of a page."""

    seen: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> None:
        page.on("console", lambda m: self.seen.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.seen.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.seen.append(f"request failed: {r.method} {r.url} {r.failure}"))
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("response", lambda r: self.seen.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless Chromium browser, closed on exit."""
    from playwright.async_api import async_playwright

    executable = chromium_path()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, headless=True,
                                                   args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield browser
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def checked_page(browser: Any, screenshot: Path) -> AsyncIterator[tuple[Any, PageProblems]]:
    """A fresh page (its own session storage) at a laptop's size; on a clean exit it saves a
    screenshot to ``screenshot`` and asserts the page logged no console error and had no
    failed request, before it is closed (closing aborts its open streams)."""
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    problems = PageProblems()
    problems.watch(page)
    try:
        try:
            yield page, problems
        finally:  # a failing test's page is worth a look too
            await page.screenshot(path=str(screenshot))
        assert problems.seen == [], problems.seen
    except BaseException as exc:
        exc.add_note(f"page problems: {problems.seen}; screenshot: {screenshot}")
        raise
    finally:
        await context.close()
