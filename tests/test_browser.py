"""The hub as a person sees it: Debian's chromium, driven by Playwright, against `onyxia-hub up`.

Signs in through the login form, follows JupyterHub to the spawn-pending page and into
JupyterLab, and saves the screenshots of docs/screenshots/ (login, portal home, JupyterLab).
One real spawn in this module: it costs about a CPU-second and 130 MiB.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers.browser import launch_chromium, new_page

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
SPAWN_TIMEOUT_MS = 90_000  # a start costs 1-3 s here; CI machines are slower


@pytest.fixture(scope="module")
def browser():
    """Chromium for this module's tests (about a second to launch).

    Module- and not session-scoped on purpose: while Playwright's sync API is open, asyncio
    believes a loop is running on the main thread, and every pytest-asyncio test after it
    fails with "Runner.run() cannot be called from a running event loop".
    """
    with launch_chromium() as browser:
        yield browser


@pytest.fixture
def page(browser, hub):
    """A fresh page with its own cookies (nobody signed in), pointed at the hub."""
    page = new_page(browser, base_url=hub.url)
    page.set_default_timeout(30_000)
    yield page
    page.context.close()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path))
    assert path.stat().st_size > 5_000, f"{path} looks empty"
    return path


def sign_in(page, username: str, password: str) -> None:
    page.goto("/hub/login")
    page.locator("#username_input").fill(username)
    page.locator("#password_input").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_login_page_names_the_product(page):
    page.goto("/hub/login")
    assert page.title() == "Onyxia Hub"
    assert page.locator("#login-main h1").first.inner_text() == "Onyxia Hub"
    assert page.locator("#jupyterhub-logo").inner_text().strip() == "Onyxia Hub"
    assert page.get_by_role("button", name="Sign in").is_visible()
    screenshot(page, "login.png")


def test_wrong_password_shows_the_form_again(page, make_user):
    user = make_user("browser-wrong-password")
    sign_in(page, "browser-wrong-password", user.password + "-wrong")
    error = page.locator(".login_error")
    error.wait_for()
    assert "Invalid username or password" in error.inner_text()
    assert re.search(r"/hub/login(\?|$)", page.url), page.url
    assert page.locator("#password_input").is_visible()
    assert page.locator("#password_input").input_value() == ""
    assert page.locator("#username_input").input_value() == "browser-wrong-password"
    r = page.request.get("/hub/api/user")
    assert r.status == 403, "a failed sign-in must not leave the browser signed in"


def test_sign_in_spawns_jupyterlab(page, hub, admin, make_user):
    user = make_user("browser-user")
    hops: list[str] = []  # every page load of the tab, redirects included
    page.on(
        "request",
        lambda request: (
            hops.append(request.url.removeprefix(hub.url))
            if request.is_navigation_request() and request.frame == page.main_frame
            else None
        ),
    )
    pending_pages: list[str] = []

    def keep_pending_page(route):
        response = route.fetch(max_redirects=0)  # the browser follows redirects itself
        if response.status == 200:
            pending_pages.append(response.text())
        route.fulfill(response=response)

    page.route(re.compile(r"/hub/spawn-pending/"), keep_pending_page)
    try:
        sign_in(page, "browser-user", user.password)

        # /hub/login -> /hub/spawn (the default server starts: no options form) ->
        # /hub/spawn-pending/browser-user (progress bar while starting) -> /user/browser-user/lab
        page.wait_for_url(re.compile(r"/user/browser-user/lab"), timeout=SPAWN_TIMEOUT_MS)
        page.locator("#jp-main-dock-panel").wait_for(timeout=SPAWN_TIMEOUT_MS)
        page.locator(".jp-Launcher").first.wait_for(timeout=SPAWN_TIMEOUT_MS)
        path = [hop.split("?")[0] for hop in hops]
        wanted = [
            "/hub/login",
            "/hub/spawn",
            "/hub/spawn-pending/browser-user",
            "/user/browser-user/lab",
        ]
        remaining = iter(path)
        assert all(hop in remaining for hop in wanted), hops  # in this order
        # The pending page is rendered only when the start outlasts the wait of /hub/spawn
        # (JupyterHub's slow_spawn_timeout): a 1-s start often goes straight to the server.
        for html in pending_pages:
            assert 'id="progress-bar"' in html and "<title>Onyxia Hub</title>" in html
        page.wait_for_load_state("networkidle", timeout=SPAWN_TIMEOUT_MS)
        screenshot(page, "jupyterlab.png")

        page.goto("/hub/home")
        welcome = page.locator("h1", has_text="Welcome to Onyxia Hub")
        assert welcome.inner_text().strip() == "Welcome to Onyxia Hub, browser-user"
        assert page.locator("#stop").is_visible()  # the running server can be stopped here
        screenshot(page, "home.png")
    finally:
        admin.stop_server("browser-user")
    assert admin.api("GET", "/users/browser-user").json()["servers"] == {}
