"""A real server with the demo story, and Debian's chromium driven by Playwright.

Playwright never downloads a browser here: it launches ``/usr/bin/chromium`` (``.ci/run``
installs it). Every page a test opens is watched for console errors and uncaught
exceptions, which fail the test; screenshots go to the test's temporary folder and, when
``AIWARDEN_SCREENSHOTS`` names a folder, there too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.seed import seed
from tests.server.live import ThreadServer, settings_for

CHROMIUM = Path(os.environ.get("AIWARDEN_CHROMIUM", "/usr/bin/chromium"))
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    """One Playwright per process: its sync API runs an event loop in this thread, and a
    second ``sync_playwright()`` beside it is refused ("inside the asyncio loop")."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    with sync_api.sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Any) -> Iterator[Any]:
    b = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                   args=["--no-sandbox", "--disable-dev-shm-usage"])
    yield b
    b.close()


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadServer, dict]]:
    """The demo story on SQLite; the evaluation loop is off so the seed decides when."""
    tmp = tmp_path_factory.mktemp("dash")
    settings = settings_for(f"sqlite:///{tmp / 'dash.db'}", tmp, evaluate_every=0.0)
    with ThreadServer(settings) as srv:
        yield srv, seed(srv.url)


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Where screenshots go: the session's temporary folder, plus AIWARDEN_SCREENSHOTS."""
    folders = [tmp_path_factory.mktemp("screenshots")]
    if os.environ.get("AIWARDEN_SCREENSHOTS"):
        folders.append(Path(os.environ["AIWARDEN_SCREENSHOTS"]))
        folders[-1].mkdir(parents=True, exist_ok=True)
    return folders


class Watched:
    """A page whose console errors and uncaught exceptions are collected."""

    def __init__(self, page: Any, shots: list[Path]) -> None:
        self.page, self.shots, self.problems = page, shots, []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"uncaught: {exc}"))
        page.on("response", self._response)

    def _console(self, msg: Any) -> None:
        if msg.type == "error" or (msg.type == "warning" and "ECharts" in msg.text):
            self.problems.append(f"console {msg.type}: {msg.text}")

    def _response(self, response: Any) -> None:
        if response.status >= 500:
            self.problems.append(f"HTTP {response.status} for {response.url}")

    def open(self, url: str) -> Any:
        """Load a page and wait for its lazy panels and charts."""
        response = self.page.goto(url)
        assert response is not None and response.status == 200, (url, response and
                                                                   response.status)
        self.settle()
        return response

    def settle(self) -> None:
        self.page.wait_for_load_state("networkidle")
        self.page.wait_for_function(
            "() => !document.querySelector('.loading') && "
            "[...document.querySelectorAll('.chart[data-chart]')]"
            ".every(c => c.dataset.rendered === 'true')", timeout=30_000)

    def shot(self, name: str) -> None:
        for folder in self.shots:
            self.page.screenshot(path=str(folder / f"{re.sub(r'[^a-z0-9-]+', '-', name)}.png"),
                                 full_page=True)


@pytest.fixture
def watched(browser: Any, shots: list[Path]) -> Iterator[Any]:
    """A fresh browser context (cookies and all) at laptop width; fails the test on any
    console error."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = Watched(context.new_page(), shots)
    yield page
    context.close()
    assert not page.problems, page.problems
