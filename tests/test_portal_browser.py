"""My services and My account as a person uses them: Debian's chromium through Playwright.

Signs in on the hub's login page, follows the nav bar's links into the portal, fills in
My account (and gets a refusal naming the field), relaunches a saved configuration and
watches it start, copies its share link, stops and deletes the server, and takes the
screenshots of docs/screenshots/portal-*.png (the admin view included; written to
test-artifacts/screenshots unless ONYXIA_HUB_SCREENSHOTS says otherwise: helpers/browser.py).
One real spawn in this module.
"""

from __future__ import annotations

import secrets

import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.helpers.browser import launch_chromium, screenshot, signed_in

pytestmark = pytest.mark.browser

USER = "portal-dora"


@pytest.fixture(scope="module")
def browser():
    """Module-scoped on purpose (see tests/helpers/browser.py)."""
    with launch_chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def dora(make_user, portal_client):
    return portal_client(make_user(USER))


def test_my_account_in_the_browser(browser, hub, dora):
    page = signed_in(browser, hub, USER, dora.client.password)
    page.get_by_role("link", name="My account").click()
    page.wait_for_url("**/services/portal/account")
    assert page.title() == "My account · Onyxia Hub"
    token = "ghp_" + secrets.token_urlsafe(24)
    page.get_by_label("Name", exact=True).fill("Dora Explorer")
    page.get_by_label("E-mail").fill("dora@example")  # no domain: refused
    page.get_by_label("Personal access token").fill(token)
    page.get_by_label("Default repository").fill("https://git.example.org/dora/maps.git")
    page.get_by_label("Default branch").fill("main")
    page.get_by_role("button", name="Save").click()
    error = page.locator("#git_email-help")
    assert "must be an e-mail address" in error.inner_text()
    assert page.get_by_label("E-mail").get_attribute("aria-describedby") == "git_email-help"
    assert page.get_by_label("Personal access token").input_value() == ""  # never sent back
    page.get_by_label("E-mail").fill("dora@example.org")
    page.get_by_label("Personal access token").fill(token)
    page.get_by_role("button", name="Save").click()
    page.locator("#portal-done").wait_for()
    assert page.locator("#portal-done").inner_text() == "Your account settings are saved."
    assert token not in page.content()
    assert f"ending in …{token[-4:]}" in page.locator("#git_token-help").inner_text()
    screenshot(page, "portal-account.png", full_page=True)
    page.context.close()


def test_my_services_in_the_browser(browser, hub, dora, admin, hub_admin_password):
    r = dora.api(
        "POST",
        "configurations",
        json={
            "name": "Python, small",
            "server_name": "lab",
            "user_options": {"service": "jupyter-python", "cpu": "0.5", "memory": "1Gi"},
        },
    )
    assert r.status_code == 201, r.text
    page = signed_in(browser, hub, USER, dora.client.password)
    page.get_by_role("link", name="My services").click()
    page.wait_for_url("**/services/portal/services")
    assert page.locator("#portal-no-servers").is_visible()
    row = page.locator("tr.portal-configuration")
    assert "Jupyter Python" in row.locator(".portal-description").inner_text()
    share = row.locator("input.portal-share").input_value()
    assert share.startswith(hub.url + "/hub/spawn?opt-service=jupyter-python")
    row.get_by_role("button", name="Copy").click()
    row.get_by_role("button", name="Copied").wait_for(timeout=5_000)

    row.get_by_role("button", name="Launch").click()  # the spawn of this module
    page.wait_for_url("**/services/portal/services?done=launched&server=lab")
    card = page.locator('article.portal-server[data-server="lab"]')
    if card.get_attribute("data-status") == "starting":  # as it is here: starts take seconds
        seen = set()  # what the card's progress line said, as the page polled it
        for _ in range(100):
            try:
                seen.update(
                    page.evaluate(
                        "() => [...document.querySelectorAll('.portal-progress-message')]"
                        ".map(e => e.textContent.trim())"
                    )
                )
            except PlaywrightError:  # the page reloads itself once the server is up
                page.wait_for_load_state()
            if card.count() and card.get_attribute("data-status") != "starting":
                break
            page.wait_for_timeout(100)
        steps = ("Checking", "Reserving", "Preparing", "Setting", "Starting", "Waiting", "Server")
        assert any(m.startswith(steps) for m in seen), seen
    page.locator('article.portal-server[data-server="lab"][data-status="ready"]').wait_for(
        timeout=90_000
    )
    assert page.locator("#portal-done").count() == 0  # the "is starting" notice is gone
    card = page.locator('article.portal-server[data-server="lab"]')
    assert card.locator(".portal-resources").inner_text() == "0.5 CPU, 1 GiB"
    assert card.get_by_role("link", name="Open").get_attribute("href") == f"/user/{USER}/lab/"
    assert "Servers: 1 of 2" in page.locator("#portal-quota").inner_text()
    screenshot(page, "portal-services.png", full_page=True)

    # the admin's view of it
    admin_page = signed_in(browser, hub, "admin", hub_admin_password)
    admin_page.goto("/services/portal/admin")
    admin_page.get_by_label("User name contains").fill("dora")
    admin_page.get_by_role("button", name="Filter").click()
    admin_page.wait_for_url("**/admin?user=dora**")
    rows = admin_page.locator("tr.admin-server")
    assert rows.count() == 1 and "Jupyter Python" in rows.inner_text()
    screenshot(admin_page, "portal-admin.png", full_page=True)
    admin_page.context.close()

    card.get_by_role("button", name="Stop").click()
    page.wait_for_url("**/services/portal/services?done=stopped&server=lab")
    assert page.locator("#portal-done").inner_text() == "Server 'lab' is stopping."
    page.locator('article.portal-server[data-server="lab"][data-status="stopped"]').or_(
        page.locator('article.portal-server[data-server="lab"][data-status="stopping"]')
    ).wait_for()
    for _ in range(120):  # stopped: it can be deleted
        page.reload()
        if (
            page.locator('article.portal-server[data-server="lab"]').get_attribute("data-status")
            == "stopped"
        ):
            break
        page.wait_for_timeout(500)
    page.locator('article.portal-server[data-server="lab"]').get_by_role(
        "button", name="Delete"
    ).click()
    page.wait_for_url("**/services/portal/services?done=deleted&server=lab")
    page.context.close()
