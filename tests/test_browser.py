"""The hub as a person sees it: Debian's chromium, driven by Playwright, against `onyxia-hub up`.

Signs in through the login form, lands on the catalog (the spawn form), chooses a service
and its options with the keyboard and the selects, launches, follows JupyterHub's
spawn-pending page and its progress messages into JupyterLab, whose Hub Control Panel
leads to My services, and takes the screenshots
of docs/screenshots/ (login, catalog, JupyterLab; written to
test-artifacts/screenshots unless ONYXIA_HUB_SCREENSHOTS says otherwise: helpers/browser.py).
One real spawn in this module: it costs about a CPU-second and 130 MiB.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers.browser import EventStreamRecorder, launch_chromium, new_page, screenshot

pytestmark = pytest.mark.browser

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


USER = "browser-user"  # one account for the catalog tests; its one server is started last


def sign_in_to_catalog(page, make_user) -> None:
    """Sign in as USER (created on first use) and wait for the catalog JupyterHub shows."""
    user = make_user(USER)
    sign_in(page, USER, user.password)
    # /hub/login -> /hub/ -> /hub/spawn: no server yet, the spawn form is the landing page
    page.wait_for_url(re.compile(r"/hub/spawn(\?|$)"))
    page.locator("#launch").wait_for()


def checked_service(page) -> str:
    return page.locator('input[name="service"]:checked').get_attribute("value")


def visible_options(page) -> list[str]:
    """The services whose options fieldset is shown (only the chosen one's, with JavaScript)."""
    sets = page.locator("fieldset.onyxia-options")
    return [
        sets.nth(i).get_attribute("data-service")
        for i in range(sets.count())
        if sets.nth(i).is_visible()
    ]


def servers_of(admin, name: str) -> dict:
    r = admin.api("GET", f"/users/{name}")
    assert r.status_code == 200, r.text
    return r.json()["servers"]


def test_sign_in_lands_on_the_catalog(page, admin, make_user):
    sign_in_to_catalog(page, make_user)
    assert page.title() == "Onyxia Hub"
    assert page.locator("h1").first.inner_text().strip() == "Launch a service"

    # cards, the catalog's default chosen, its options the only ones shown
    cards = page.locator(".onyxia-card")
    shown = [cards.nth(i).get_attribute("data-service") for i in range(cards.count())]
    assert {"jupyter-python", "jupyter-r", "vscode-python", "jupyter-pyspark"} <= set(shown)
    assert "pytorch-gpu" not in shown and "teachers-only" not in shown  # other groups'
    assert checked_service(page) == "jupyter-python"
    assert visible_options(page) == ["jupyter-python"]
    assert page.locator(".onyxia-card.border-primary").get_attribute("data-service") == (
        "jupyter-python"
    )
    assert page.locator("#cpu--jupyter-python").input_value() == "1"
    assert page.locator("#memory--jupyter-python").input_value() == "2Gi"

    # a service this machine cannot run says why, next to a radio that cannot be chosen
    vscode = page.locator("#service-vscode-python")
    assert vscode.is_disabled()
    reason = page.locator("#unavailable-vscode-python")
    assert vscode.get_attribute("aria-describedby") == "unavailable-vscode-python"
    assert reason.is_visible()
    assert "needs the program code-server" in reason.inner_text()
    # at full strength: no fading (opacity) on the reason or around it, unlike the label
    opacity = (
        "e => { let o = 1; for (; e; e = e.parentElement) o *= getComputedStyle(e).opacity;"
        " return o; }"
    )
    assert reason.evaluate(opacity) == 1

    # the quota gauges, with accessible names and values; none for GPUs, which this
    # user's groups grant none of (a "0 of 0" gauge would be a full, red bar)
    text = page.locator(".onyxia-quota").inner_text()
    for label in ("Servers: 0 of 2", "CPU: 0 of 8 cores", "Memory: 0 GiB of 16 GiB"):
        assert label in text, text
    assert "GPUs" not in text, text
    assert page.locator(".onyxia-gauge").count() == 3
    for name in ("Servers used", "CPU used", "Memory used"):
        bar = page.get_by_role("progressbar", name=name)
        assert bar.get_attribute("aria-valuenow") == "0", name
    assert page.locator('.onyxia-gauge[data-level="ok"]').count() == 3

    screenshot(page, "catalog.png", full_page=True)  # down to the Launch button
    assert servers_of(admin, USER) == {}  # showing the catalog starts nothing


def test_link_prefills_the_catalog_and_starts_nothing(page, admin, make_user):
    sign_in_to_catalog(page, make_user)
    page.goto("/hub/spawn?opt-service=jupyter-python&opt-cpu=2")
    notice = page.locator("#prefill-notice")
    assert notice.is_visible()
    assert "a link alone never starts a server" in notice.inner_text()
    assert re.search(r"/hub/spawn\?", page.url), page.url  # no redirect to spawn-pending
    assert checked_service(page) == "jupyter-python"
    assert page.locator("#cpu--jupyter-python").input_value() == "2"
    assert page.locator("#memory--jupyter-python").input_value() == "2Gi"  # the default
    assert servers_of(admin, USER) == {}
    # the next visit shows the form as it was, without the link's values
    page.goto("/hub/spawn")
    assert page.locator("#prefill-notice").count() == 0
    assert page.locator("#cpu--jupyter-python").input_value() == "1"
    assert servers_of(admin, USER) == {}


def test_launch_from_the_catalog_with_the_keyboard(page, hub, admin, make_user):
    hops: list[str] = []  # every page load of the tab, redirects included
    page.on(
        "request",
        lambda request: (
            hops.append(request.url.removeprefix(hub.url))
            if request.is_navigation_request() and request.frame == page.main_frame
            else None
        ),
    )
    shown: list[str] = []  # the pages the tab rendered (answered 200, not redirected)
    page.on(
        "response",
        lambda response: (
            shown.append(response.url.removeprefix(hub.url).split("?")[0])
            if response.request.is_navigation_request()
            and response.frame == page.main_frame
            and response.status == 200
            else None
        ),
    )
    # Not page.route(): Playwright routes no request that a redirect makes, and the
    # spawn-pending page is always reached by the redirect of the form's POST.
    streams = EventStreamRecorder(page)
    sign_in_to_catalog(page, make_user)
    try:
        # Tab from the top of the page reaches the service radios (the checked one)
        page.locator("body").focus()
        for _ in range(30):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.name") == "service":
                break
        focused = page.evaluate("document.activeElement.id")
        assert focused == "service-jupyter-python", focused

        # an arrow key chooses the next service that can run; its options follow
        page.keyboard.press("ArrowDown")
        other = checked_service(page)
        assert other != "jupyter-python"
        assert page.evaluate("document.activeElement.id") == f"service-{other}"
        assert visible_options(page) == [other]
        page.keyboard.press("ArrowUp")
        assert checked_service(page) == "jupyter-python"
        assert visible_options(page) == ["jupyter-python"]

        # Tab goes on to the chosen service's options; an arrow key changes a closed select
        # (Chromium on Linux): CPU 1 -> 0.5, memory 2 GiB -> 1 GiB, the presets below
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "version--jupyter-python"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "cpu--jupyter-python"
        page.keyboard.press("ArrowUp")
        assert page.locator("#cpu--jupyter-python").input_value() == "0.5"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "memory--jupyter-python"
        page.keyboard.press("ArrowUp")
        memory = page.locator("#memory--jupyter-python")
        assert memory.input_value() == "1Gi"
        assert memory.locator("option:checked").inner_text() == "1 GiB"

        # past the options, Tab reaches Launch (the other services' radios are skipped:
        # one tab stop per radio group), and Enter submits the form
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "launch"
        page.keyboard.press("Enter")
        # POST /hub/spawn -> /hub/spawn-pending/browser-user (progress bar while starting,
        # reloaded when ready) -> /user/browser-user/ -> /user/browser-user/lab
        page.wait_for_url(re.compile(rf"/user/{USER}/lab"), timeout=SPAWN_TIMEOUT_MS)
        page.locator("#jp-main-dock-panel").wait_for(timeout=SPAWN_TIMEOUT_MS)
        page.locator(".jp-Launcher").first.wait_for(timeout=SPAWN_TIMEOUT_MS)
        path = [hop.split("?")[0] for hop in hops]
        wanted = ["/hub/spawn", f"/hub/spawn-pending/{USER}", f"/user/{USER}/lab"]
        remaining = iter(path)
        assert all(hop in remaining for hop in wanted), hops  # in this order

        # The POST waits 1 s for the start: a slower start renders the pending page, whose
        # EventSource gets JupyterHub's "Server requested", then every message of the
        # start so far (the spawner replays them), then "Server ready", and reloads. A
        # start done within that second redirects the pending page straight to the server:
        # no stream then. The recorder keeps the messages although the page is gone.
        events = streams.events_from(f"/hub/api/users/{USER}/server/progress")
        streams.detach()
        messages = [json.loads(event.data).get("message", "") for event in events]
        if f"/hub/spawn-pending/{USER}" not in shown:
            assert messages == [], messages
        else:
            assert all(f"/hub/spawn-pending/{USER}" in event.document for event in events)
            assert messages and messages[-1] == f"Server ready at /user/{USER}/", messages
            if len(messages) > 1:  # the stream opened while the server was starting
                assert messages[0] == "Server requested", messages
                for expected in (
                    "Checking your choice",
                    "Preparing your home directory",
                    "Setting your limits (0.5 CPU, 1 GiB)",
                    "Starting Jupyter Python",
                ):
                    assert expected in messages, messages

        page.wait_for_load_state("networkidle", timeout=SPAWN_TIMEOUT_MS)
        screenshot(page, "jupyterlab.png")

        server = servers_of(admin, USER)[""]
        assert server["ready"], server
        options = server["user_options"]
        assert options["service"] == "jupyter-python", options
        assert options["memory"] == "1Gi" and str(options["cpu"]) == "0.5", options

        # JupyterLab's File > Hub Control Panel opens the hub's home in a new tab: that is
        # My services, where the running server is listed with Stop
        page.get_by_role("menuitem", name="File").click()
        with page.expect_popup() as opened:
            page.get_by_role("menuitem", name="Hub Control Panel").click()
        panel = opened.value
        panel.wait_for_url(re.compile(r"/services/portal/services$"))
        assert panel.locator("h1").first.inner_text().strip() == "My services"
        assert panel.locator("#nav-services").get_attribute("aria-current") == "page"
        assert panel.locator(".portal-stop").first.is_visible()
        panel.close()

        # while it runs, the nav bar's Launch opens the catalog for a second server
        # (JupyterHub's /hub/spawn would send the user into the running one), a link's
        # options kept; leaving that form and coming back reuses the same name (a name
        # per visit would fill the named-server limit with servers never launched)
        for _ in range(2):
            page.goto("/hub/spawn?opt-cpu=2")
            page.wait_for_url(re.compile(rf"/hub/spawn/{USER}/server-2\?opt-cpu=2$"))
            page.locator("#launch").wait_for()
            assert page.locator("#cpu--jupyter-python").input_value() == "2"
        page.locator("#nav-launch").click()
        page.wait_for_url(re.compile(rf"/hub/spawn/{USER}/server-2$"))
        # with next (JupyterHub's own links to a server), JupyterHub's behaviour
        page.goto(f"/hub/spawn?next=/user/{USER}/lab")
        page.wait_for_url(re.compile(rf"/user/{USER}/lab"))
    finally:
        admin.stop_server(USER)
    assert servers_of(admin, USER) == {}
