"""One navigation and one admin place, as people see them in Chromium.

The nav bar has the same entries on the hub's pages (Launch, the token page, the password
page) and the portal's (My services, My account, My storage): four for a user, Admin as a
fifth for administrators. JupyterHub's Home, which its logo and error pages link to, leads
to My services. Admin opens People (accounts and hub users in one list), with tabs to the
portal's Servers and to JupyterHub's page for groups and admin rights. A user added on
that JupyterHub page gets an account that nobody can sign in to until an administrator
sets its password on People. No server is started here.
"""

from __future__ import annotations

import re
import secrets

import pytest

from onyxia_hub.auth.navigation import free_server_name
from tests.helpers.browser import launch_chromium, screenshot, signed_in
from tests.helpers.client import HubClient

pytestmark = pytest.mark.browser

USER_ENTRIES = ["Launch", "My services", "My storage", "My account", "Courses"]
PAGES = [  # hub pages and service pages: one nav bar
    ("/hub/spawn", "launch"),
    ("/hub/token", None),
    ("/hub/change-password", "account"),
    ("/services/portal/services", "services"),
    ("/services/portal/storage", "storage"),
    ("/services/portal/account", "account"),
    ("/services/courses/", "courses"),
]


@pytest.fixture(scope="module")
def browser():
    with launch_chromium() as browser:
        yield browser


def nav_entries(page) -> list[str]:
    links = page.locator("#thenavbar ul.navbar-nav.me-auto a.nav-link")
    return [links.nth(i).inner_text().strip() for i in range(links.count())]


def current_entry(page) -> str | None:
    current = page.locator('#thenavbar a.nav-link[aria-current="page"]')
    assert current.count() <= 1
    return current.get_attribute("id").removeprefix("nav-") if current.count() else None


def test_one_navigation_for_users_and_admins(browser, hub, make_user, hub_admin_password):
    user = make_user("nav-user")
    page = signed_in(browser, hub, "nav-user", user.password)
    for path, current in PAGES:
        page.goto(path)
        assert nav_entries(page) == USER_ENTRIES, path
        assert current_entry(page) == current, path

    # Home (the logo's target, JupyterHub's error pages' link) is My services
    page.goto("/hub/home")
    assert page.url.endswith("/services/portal/services")
    page.goto("/hub/token")
    page.locator("#jupyterhub-logo a").click()
    page.wait_for_url(re.compile(r"/services/portal/services$"))

    # the keyboard reaches every entry, in order, right after the logo
    page.goto("/services/portal/account")
    page.locator("body").focus()
    page.keyboard.press("Tab")
    reached = []
    for _ in USER_ENTRIES:
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.textContent.trim()"))
    assert reached == USER_ENTRIES

    # the token and password pages are reachable from My account
    page.get_by_role("link", name="API tokens").click()
    page.wait_for_url(re.compile(r"/hub/token$"))
    page.goto("/services/portal/account")
    page.get_by_role("link", name="Change your password").click()
    page.wait_for_url(re.compile(r"/hub/change-password$"))

    # no Admin, and the admin pages refuse
    assert page.locator("#nav-admin").count() == 0
    assert page.goto("/hub/accounts").status == 403
    page.context.close()

    admin = signed_in(browser, hub, "admin", hub_admin_password)
    for path, _current in PAGES:
        admin.goto(path)
        assert nav_entries(admin) == [*USER_ENTRIES, "Admin"], path
    admin.locator("#nav-admin").click()
    admin.wait_for_url(re.compile(r"/hub/accounts$"))
    assert current_entry(admin) == "admin"
    tabs = admin.get_by_role("navigation", name="Administration").get_by_role("link")
    assert tabs.all_inner_texts() == ["People", "Servers", "Groups and admin rights"]
    assert admin.locator("#admin-tab-people").get_attribute("aria-current") == "page"
    admin.locator("#admin-tab-servers").click()
    admin.wait_for_url(re.compile(r"/services/portal/admin$"))
    assert current_entry(admin) == "admin"
    assert admin.locator("#admin-tab-servers").get_attribute("aria-current") == "page"
    admin.locator("#admin-tab-hub").click()
    admin.wait_for_url(re.compile(r"/hub/admin"))
    assert current_entry(admin) == "admin"
    admin.locator("#admin-tab-people").click()
    admin.wait_for_url(re.compile(r"/hub/accounts$"))
    admin.context.close()


def test_a_user_added_on_jupyterhub_admin_page_needs_a_password_from_people(
    browser, hub, hub_admin_password
):
    name = "added-" + secrets.token_hex(3)
    admin = signed_in(browser, hub, "admin", hub_admin_password)
    admin.goto("/hub/admin")
    admin.get_by_role("button", name="Add Users").click()
    admin.locator("#add-user-textarea").fill(name)
    admin.locator("#add-user-textarea").blur()
    admin.get_by_role("button", name="Add Users").click()
    admin.get_by_text(name, exact=True).first.wait_for()

    # listed on People, without a password: nobody can sign in as them, nor sign up
    admin.locator("#admin-tab-people").click()
    admin.wait_for_url(re.compile(r"/hub/accounts$"))
    row = admin.locator(f'tr[data-username="{name}"]')
    assert "no password yet" in row.inner_text()
    for attempt in ("", "password", name):
        assert HubClient(hub.url).login(name, attempt).status_code == 403
    r = HubClient(hub.url).post_form(
        "/hub/signup",
        {"username": name, "password": "long-enough-9", "password_confirmation": "long-enough-9"},
    )
    assert r.status_code == 400 and "already taken" in r.text

    # the administrator sets one there: the user signs in with it and chooses their own
    initial = "initial-" + secrets.token_hex(6)
    row.get_by_label(f"Set password of {name}").fill(initial)
    row.get_by_role("button", name="Set password").click()
    message = admin.locator("#accounts-message").inner_text()
    assert message.startswith(f"The password of {name} was set"), message
    screenshot(admin, "admin-people.png", full_page=True)
    assert "must choose a password" in admin.locator(f'tr[data-username="{name}"]').inner_text()
    # signing in with it opens no session, only the form to choose their own
    user = signed_in(browser, hub, name, initial, landing=r"/hub/login")
    assert "choose your own before you go on" in user.locator("main, body").first.inner_text()
    user.goto("/hub/spawn")
    assert "/hub/login" in user.url
    user.context.close()

    # deleting them on People deletes the hub user and the account
    row = admin.locator(f'tr[data-username="{name}"]')
    admin.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name=f"Delete {name}").click()
    assert admin.locator("#accounts-message").inner_text().startswith(f"{name} was deleted")
    assert admin.locator(f'tr[data-username="{name}"]').count() == 0
    assert HubClient(hub.url).login(name, initial).status_code == 403
    admin.context.close()


def test_launch_reuses_a_server_never_launched_else_picks_a_new_name():
    assert free_server_name({"": (False, True)}) == "server-2"
    # a stopped server that was launched is the user's: a new name, the first free one
    assert free_server_name({"": (True, True), "server-2": (False, True)}) == "server-3"
    assert free_server_name({"": (True, True), "server-3": (True, True)}) == "server-2"
    # one opened by an earlier visit and never launched is reused, whatever its name
    assert free_server_name({"": (True, True), "lab": (False, False)}) == "lab"
    assert free_server_name({"": (True, True), "lab": (True, False)}) == "server-2"


def test_launch_opens_the_catalog_for_the_default_server_while_it_is_free(hub, make_user):
    user = make_user("nav-user")
    r = user.get("/hub/spawn?opt-service=jupyter-r&opt-cpu=2", allow_redirects=False)
    assert r.status_code == 200 and 'id="prefill-notice"' in r.text
