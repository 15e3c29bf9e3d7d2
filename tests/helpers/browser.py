"""Debian's chromium driven through Playwright, for tests that look at pages as a person does.

Pytest-independent: `launch_chromium()` is a context manager yielding a Playwright `Browser`.

    with launch_chromium() as browser:
        page = browser.new_page(base_url=hub.url)
        page.goto("/hub/login")

Playwright's own browser builds are never downloaded (`playwright install` cannot work on
this project's machines, whose network is closed): the browser is Debian's chromium, which
`scripts/test-prerequisites` installs. `ONYXIA_HUB_TEST_CHROMIUM` may name another binary.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = Path(os.environ.get("ONYXIA_HUB_TEST_CHROMIUM", "/usr/bin/chromium"))

# Headless in a container as root, with no network but the loopback: without the
# background-networking flags chromium keeps trying to reach Google's services and misbehaves.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

# Large enough for JupyterLab's launcher and the hub's pages to look as on a laptop.
VIEWPORT = {"width": 1280, "height": 800}


class ChromiumMissing(RuntimeError):
    pass


def chromium_path() -> Path:
    """The chromium binary to drive, or a ChromiumMissing that says how to get it."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    found = shutil.which("chromium")
    hint = f" (there is a chromium at {found}: set ONYXIA_HUB_TEST_CHROMIUM)" if found else ""
    raise ChromiumMissing(
        f"{CHROMIUM} is missing{hint}. Install Debian's chromium by running "
        "scripts/test-prerequisites (as root, or with passwordless sudo); "
        "never `playwright install`, which downloads a browser build and cannot work here."
    )


@contextmanager
def launch_chromium(
    *,
    headless: bool = True,
    extra_args: tuple[str, ...] = (),
    timeout_ms: float = 30_000,
    **launch_options,
) -> Iterator:
    """Start Playwright and Debian's chromium; yield the `Browser`; close both at the end.

    Each launch uses a fresh, temporary user-data directory (Playwright's default), removed
    when the browser closes. Uses Playwright's sync API: call it outside a running asyncio
    event loop (plain pytest tests and fixtures are). While it is open, asyncio sees
    Playwright's loop as running on this thread, so async tests (pytest-asyncio) cannot run
    meanwhile: keep a pytest fixture around it module-scoped, never session-scoped.
    """
    executable = chromium_path()
    from playwright.sync_api import sync_playwright  # import late: a clear error first

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable),
            headless=headless,
            args=[*CHROMIUM_ARGS, *extra_args],
            timeout=timeout_ms,
            **launch_options,
        )
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser, base_url: str | None = None, **context_options):
    """A page in its own context (own cookies), with the standard viewport and a base URL.

    Closing the page's context (`page.context.close()`) drops its cookies.
    """
    context_options.setdefault("viewport", VIEWPORT)
    context = browser.new_context(base_url=base_url, **context_options)
    return context.new_page()


def signed_in(browser, hub, name: str, password: str, landing: str = r"/hub/spawn"):
    """A new page signed in as name through the login form, once it reached landing (a
    regular expression of the URL: the catalog for a user with no server running)."""
    page = new_page(browser, base_url=hub.url)
    page.set_default_timeout(30_000)
    page.goto("/hub/login")
    page.locator("#username_input").fill(name)
    page.locator("#password_input").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(landing))
    return page


class EventStreamRecorder:
    """Every server-sent event the page's EventSources receive, as the browser got them.

    Listens to Chromium's DevTools protocol (`Network.eventSourceMessageReceived`) on a
    session of its own: nothing in the page changes, and the record outlives the page's
    navigations (JupyterHub's spawn-pending page reloads itself into the server as soon as
    its "ready" event arrives, taking its `#progress-log` along). Chromium only.

        recorder = EventStreamRecorder(page)
        ...  # the page opens an EventSource
        for event in recorder.events_from("/server/progress"):
            event.data, event.document  # '{"progress": 0, ...}', the page that listened
    """

    @dataclass(frozen=True)
    class Event:
        url: str  # the stream's URL
        document: str  # the URL of the page that opened the stream
        data: str

    def __init__(self, page):
        self._requests: dict[str, tuple[str, str]] = {}  # request id -> (URL, page URL)
        self.events: list[EventStreamRecorder.Event] = []  # in the order received
        self._session = page.context.new_cdp_session(page)
        self._session.on("Network.requestWillBeSent", self._on_request)
        self._session.on("Network.eventSourceMessageReceived", self._on_message)
        self._session.send("Network.enable")

    def _on_request(self, params: dict) -> None:
        request = params["request"]
        self._requests[params["requestId"]] = (request["url"], params.get("documentURL", ""))

    def _on_message(self, params: dict) -> None:
        url, document = self._requests.get(params["requestId"], ("", ""))
        self.events.append(self.Event(url, document, params["data"]))

    def events_from(self, url_part: str) -> list[EventStreamRecorder.Event]:
        """The events of the streams whose URL contains `url_part`."""
        return [event for event in self.events if url_part in event.url]

    def detach(self) -> None:
        self._session.detach()


# Screenshots go to test-artifacts/screenshots (ignored by git), so that a test run leaves
# the working tree as it was. To refresh the documentation's:
#   ONYXIA_HUB_SCREENSHOTS=docs/screenshots scripts/test -k browser
SCREENSHOTS = Path(
    os.environ.get("ONYXIA_HUB_SCREENSHOTS")
    or Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
)


def screenshot(page, name: str, *, full_page: bool = False) -> Path:
    """Save page as SCREENSHOTS/name, checking the image is not blank."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 5_000, f"{path} looks empty"
    return path
