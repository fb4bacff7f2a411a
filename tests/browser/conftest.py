"""Fixtures of the browser tests: Debian's Chromium driven by Playwright, and where screenshots go.

Playwright's own browser download is not used: the tests launch the system Chromium (`/usr/bin/chromium`, or
`TASKLEDGER_CHROMIUM`), which `scripts/_setup.sh test` installs. A missing browser fails the tests, never
skips them: CI must run them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, ViewportSize, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


def chromium_executable() -> str:
    wanted = os.environ.get("TASKLEDGER_CHROMIUM") or "/usr/bin/chromium"
    found = shutil.which(wanted)
    if found is None:
        pytest.fail(f"the browser tests need Chromium at {wanted}: run scripts/test (it installs Debian's "
                    "chromium) or `apt-get install chromium`, or set TASKLEDGER_CHROMIUM to a Chromium binary",
                    pytrace=False)
    return found


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=chromium_executable(), headless=True,
                                          args=["--no-sandbox", "--disable-dev-shm-usage"], timeout=30_000)
    yield launched
    launched.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the pages' screenshots go: a temporary folder, or `TASKLEDGER_SCREENSHOTS` (relative to the
    repository; `TASKLEDGER_SCREENSHOTS=docs/screenshots` makes the images the README shows)."""
    chosen = os.environ.get("TASKLEDGER_SCREENSHOTS")
    if not chosen:
        return tmp_path_factory.mktemp("screenshots")
    folder = Path(chosen) if Path(chosen).is_absolute() else ROOT / chosen
    folder.mkdir(parents=True, exist_ok=True)
    return folder
