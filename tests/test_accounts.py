"""Signing in on the embedded hub: accounts, passwords, lock-outs, sign-ups, approval.

Everything goes through the real pages of a running hub (login form, XSRF tokens,
cookies), as a browser would.
"""

from __future__ import annotations

import secrets
from html import unescape

import pytest

from tests.helpers.client import HubClient, first_password_ticket, login_error, page_message


def fresh_name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def create_account(admin: HubClient, name: str, password: str):
    return admin.post_form(
        "/hub/accounts", {"action": "create", "username": name, "password": password}
    )


def people_row(admin: HubClient, name: str) -> str:
    """The HTML of name's row on Admin > People."""
    return admin.get("/hub/accounts").text.split(f'data-username="{name}"')[1].split("</tr>")[0]


def test_login_page_is_branded_and_never_open(hub):
    client = HubClient(hub.url)
    r = client.get("/hub/login")
    assert r.status_code == 200
    assert "<title>Onyxia Hub</title>" in r.text
    assert 'href="/hub/signup"' in r.text
    # without signing in, nothing but the login page
    r = client.get("/hub/home", allow_redirects=False)
    assert r.status_code == 302 and r.headers["location"].startswith("/hub/login")
    r = client.api("GET", "/users")
    assert r.status_code == 403


def test_wrong_password_shows_the_form_again_with_an_error(hub):
    client = HubClient(hub.url)
    r = client.login("admin", "not-the-password")
    assert r.status_code == 403
    assert login_error(r.text) == "Invalid username or password"
    assert 'value="admin"' in r.text  # the username is kept
    assert 'name="password"' in r.text


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(hub):
    r = HubClient(hub.url).login(fresh_name("nobody"), "whatever-password")
    assert r.status_code == 403
    assert login_error(r.text) == "Invalid username or password"


def test_repeated_failures_lock_the_account_then_admin_unlocks(hub, admin):
    name, password = fresh_name("locked"), "right-" + secrets.token_hex(6)
    assert create_account(admin, name, password).status_code == 200
    client = HubClient(hub.url)
    for _ in range(4):  # tests/configs/fast-login.py: 4 failures lock for 120 s
        assert client.login(name, "wrong-password").status_code == 403
    r = client.login(name, password)  # even the right password is refused now
    assert r.status_code == 429
    assert "Too many failed sign-ins for this account. Try again in 2 minutes" in login_error(
        r.text
    )
    # the lock is stored, not only in memory: People shows it
    page = admin.get("/hub/accounts").text
    assert "locked after failed sign-ins" in page.split(f'data-username="{name}"')[1][:600]
    r = admin.post_form("/hub/accounts", {"action": "unlock", "username": name})
    assert page_message(r.text, "accounts-message") == f"{name} is unlocked."
    r = client.login(name, password)
    assert r.status_code == 200 and first_password_ticket(r.text)  # the password is right


def test_admin_created_account_must_choose_its_own_password(hub, admin):
    name, initial = fresh_name("newbie"), "initial-" + secrets.token_hex(6)
    r = create_account(admin, name, initial)
    assert "Give them the initial password" in page_message(r.text, "accounts-message")
    client = HubClient(hub.url)
    r = client.login(name, initial)
    # the password an administrator gave opens no session: only the form to choose one
    assert r.status_code == 200 and "choose your own before you go on" in r.text
    ticket = first_password_ticket(r.text)
    assert ticket and initial not in r.text
    r = client.get("/hub/spawn", allow_redirects=False)
    assert r.status_code == 302 and r.headers["location"].startswith("/hub/login")
    assert client.get("/services/portal/services").url.split("?")[0].endswith("/hub/login")

    cases = [
        ("same-as-given", initial, initial, "Choose a password of your own, not the one"),
        ("too-short", "short", "short", "Passwords need at least 8 characters."),
        ("common", "password123", "password123", "This password is too common"),
        ("mismatch", "first-choice-1", "second-choice-2", "The password and its confirmation"),
    ]
    for _case, new, confirmation, message in cases:
        r = client.post_form(
            "/hub/change-password",
            {"ticket": ticket, "new_password": new, "new_password_confirmation": confirmation},
        )
        assert r.status_code == 400
        assert page_message(r.text, "password-message").startswith(message)
        assert first_password_ticket(r.text) == ticket  # the same form again
    r = client.post_form(
        "/hub/change-password",
        {"ticket": "forged", "new_password": "forged-choice-1", "new_password_confirmation":
         "forged-choice-1"},
    )  # fmt: skip
    assert r.status_code == 403 and "This page has expired" in r.text

    chosen = "chosen-" + secrets.token_hex(8)
    r = client.post_form(
        "/hub/change-password",
        {"ticket": ticket, "new_password": chosen, "new_password_confirmation": chosen},
        allow_redirects=False,
    )
    assert r.status_code == 302
    assert client.get("/hub/spawn", allow_redirects=False).status_code == 200  # signed in
    # the ticket is spent; the given password is gone, the chosen one works
    r = HubClient(hub.url).post_form(
        "/hub/change-password",
        {"ticket": ticket, "new_password": "again-choice-1", "new_password_confirmation":
         "again-choice-1"},
    )  # fmt: skip
    assert r.status_code == 403
    assert HubClient(hub.url).login(name, initial).status_code == 403
    assert HubClient(hub.url).login(name, chosen).status_code == 302


def test_a_signed_in_user_changes_their_password_with_the_current_one(hub, make_user):
    user = make_user("changer")
    cases = [
        ("wrong-current", user.password + "x", "abcdefgh-long", "Your current password is not"),
        ("same-as-current", user.password, user.password, "The new password must differ"),
    ]
    for _case, current, new, message in cases:
        r = user.post_form(
            "/hub/change-password",
            {"current_password": current, "new_password": new, "new_password_confirmation": new},
        )
        assert r.status_code == 400
        assert page_message(r.text, "password-message").startswith(message)
    chosen = "changed-" + secrets.token_hex(8)
    r = user.post_form(
        "/hub/change-password",
        {"current_password": user.password, "new_password": chosen,
         "new_password_confirmation": chosen},
    )  # fmt: skip
    assert r.status_code == 200
    assert page_message(r.text, "password-message") == "Your password was changed."
    assert HubClient(hub.url).login("changer", chosen).status_code == 302


def test_sign_up_waits_for_approval(hub, admin):
    name, password = fresh_name("applicant"), "applicant-" + secrets.token_hex(6)
    client = HubClient(hub.url)
    r = client.post_form(
        "/hub/signup", {"username": name, "password": password, "password_confirmation": password}
    )
    assert r.status_code == 200
    assert "once an administrator approves it" in page_message(r.text, "signup-message")

    r = client.login(name, password)
    assert r.status_code == 403
    assert login_error(r.text) == "Your account is waiting for an administrator's approval."

    page = admin.get("/hub/accounts").text
    assert "waiting for approval" in page.split(f'data-username="{name}"')[1][:400]
    r = admin.post_form("/hub/accounts", {"action": "approve", "username": name})
    assert page_message(r.text, "accounts-message") == f"{name} can now sign in."
    assert client.login(name, password).status_code == 302

    r = HubClient(hub.url).post_form(
        "/hub/signup", {"username": name, "password": password, "password_confirmation": password}
    )
    assert r.status_code == 400
    assert page_message(r.text, "signup-message") == f"The username {name!r} is already taken."


SIGNUP_REFUSALS = [
    ("admin-name", "admin", "password-ok-1", "The username 'admin' is reserved."),
    ("uppercase-and-space", "Bad Name", "password-ok-1", "Usernames are 1 to 32 characters"),
    ("leading-digit", "1abc", "password-ok-1", "Usernames are 1 to 32 characters"),
    ("trailing-dash", "abc-", "password-ok-1", "Usernames are 1 to 32 characters"),
    ("double-dash", "ab--cd", "password-ok-1", "Usernames cannot contain '--'."),
    ("too-long", "a" * 33, "password-ok-1", "Usernames are 1 to 32 characters"),
    ("unicode", "ünïcode", "password-ok-1", "Usernames are 1 to 32 characters"),
    ("path", "../etc", "password-ok-1", "Usernames are 1 to 32 characters"),
    ("short-password", "fine-name", "short", "Passwords need at least 8 characters."),
    ("common-password", "fine-name", "password123", "This password is too common"),
    ("bcrypt-limit", "fine-name", "x" * 73, "Passwords can have at most 72 bytes."),
]


@pytest.mark.parametrize(
    "case,name,password,message", SIGNUP_REFUSALS, ids=[c[0] for c in SIGNUP_REFUSALS]
)
def test_sign_up_refusals_name_the_problem(hub, case, name, password, message):
    client = HubClient(hub.url)
    r = client.post_form(
        "/hub/signup", {"username": name, "password": password, "password_confirmation": password}
    )
    assert r.status_code == 400
    assert message in page_message(r.text, "signup-message")


def test_oversized_fields_are_refused_not_processed(hub):
    client = HubClient(hub.url)
    r = client.post_form(
        "/hub/signup", {"username": "a" * 10_000, "password": "x", "password_confirmation": "x"}
    )
    assert r.status_code == 400
    assert "The field 'username' is too long (over 128 characters)" in unescape(r.text)
    assert "Traceback" not in r.text


def test_account_changes_need_the_xsrf_token(hub, admin):
    name = fresh_name("csrf")
    # a form on another site cannot carry the hub's XSRF token
    r = admin.post_form(
        "/hub/accounts",
        {"action": "create", "username": name, "password": "whatever-123"},
        xsrf=False,
    )
    assert r.status_code == 403
    r = admin.post_form(
        "/hub/accounts",
        {"action": "create", "username": name, "password": "whatever-123", "_xsrf": "forged"},
        xsrf=False,
    )
    assert r.status_code == 403
    # and a GET (a link, an <img>) changes nothing
    admin.get(f"/hub/accounts?action=create&username={name}&password=whatever-123")
    assert f'data-username="{name}"' not in admin.get("/hub/accounts").text


def test_only_admins_manage_accounts(hub, make_user):
    user = make_user("plain-user")
    assert user.get("/hub/accounts").status_code == 403
    r = user.post_form(
        "/hub/accounts",
        {"action": "create", "username": fresh_name("x"), "password": "whatever-123"},
    )
    assert r.status_code == 403
    anonymous = HubClient(hub.url)
    r = anonymous.get("/hub/accounts", allow_redirects=False)
    assert r.status_code == 302 and "/hub/login" in r.headers["location"]


def test_admin_actions_refuse_unknown_accounts_and_actions(admin):
    r = admin.post_form("/hub/accounts", {"action": "approve", "username": "no-such-user"})
    assert r.status_code == 404
    assert page_message(r.text, "accounts-message") == "There is no account named 'no-such-user'."
    r = admin.post_form("/hub/accounts", {"action": "explode", "username": "admin"})
    assert r.status_code == 400
    assert page_message(r.text, "accounts-message") == "Unknown action 'explode'."
    r = admin.post_form("/hub/accounts", {"action": "revoke", "username": "admin"})
    assert r.status_code == 400
    assert page_message(r.text, "accounts-message") == "You cannot revoke your own account."


def test_password_reset_by_admin_forces_a_new_choice(hub, admin, make_user):
    user = make_user("forgetful")
    temporary = "temporary-" + secrets.token_hex(6)
    r = admin.post_form(
        "/hub/accounts", {"action": "reset", "username": "forgetful", "password": temporary}
    )
    assert "they choose their own at their next sign-in" in page_message(r.text, "accounts-message")
    assert HubClient(hub.url).login("forgetful", user.password).status_code == 403
    r = HubClient(hub.url).login("forgetful", temporary)
    assert r.status_code == 200 and first_password_ticket(r.text)  # no session: choose one


def test_revoked_account_cannot_sign_in(hub, admin, make_user):
    user = make_user("leaver")
    admin.post_form("/hub/accounts", {"action": "revoke", "username": "leaver"})
    r = HubClient(hub.url).login("leaver", user.password)
    assert r.status_code == 403
    assert "waiting for an administrator's approval" in login_error(r.text)
    admin.post_form("/hub/accounts", {"action": "approve", "username": "leaver"})
    assert HubClient(hub.url).login("leaver", user.password).status_code == 302


def test_local_accounts_have_password_and_accounts_pages_in_reach(admin, make_user):
    # the password page from My account; People (accounts) behind the admins' Admin entry
    account = make_user("menu-user").get("/services/portal/account").text
    assert 'href="/hub/change-password"' in account and 'href="/hub/accounts"' not in account
    account = admin.get("/services/portal/account").text
    assert 'href="/hub/change-password"' in account
    assert 'id="nav-admin" href="/hub/accounts"' in account


def test_users_added_through_the_rest_api_wait_for_a_password_set_on_people(hub, admin):
    name = fresh_name("rest")
    r = admin.api("POST", "/users", json={"usernames": [name]})
    assert r.status_code == 201, r.text
    row = people_row(admin, name)
    assert "no password yet" in row and "Set password" in row
    for attempt in ("", "anything-at-all", name):
        assert HubClient(hub.url).login(name, attempt).status_code == 403
    # nobody can take the name by signing up (sign-up is open on this hub)
    r = HubClient(hub.url).post_form(
        "/hub/signup",
        {"username": name, "password": "long-enough-9", "password_confirmation": "long-enough-9"},
    )
    assert r.status_code == 400 and "already taken" in unescape(r.text)

    initial = "initial-" + secrets.token_hex(6)
    r = admin.post_form("/hub/accounts", {"action": "reset", "username": name, "password": initial})
    assert page_message(r.text, "accounts-message").startswith(f"The password of {name} was set")
    r = HubClient(hub.url).first_sign_in(name, initial, "own-choice-" + secrets.token_hex(4))
    assert r.status_code == 302

    # deleting the user through the REST API deletes the account too
    assert admin.api("DELETE", f"/users/{name}").status_code == 204
    assert f'data-username="{name}"' not in admin.get("/hub/accounts").text
    assert HubClient(hub.url).login(name, initial).status_code == 403


def test_a_name_accounts_refuse_gets_no_account_through_the_rest_api(admin):
    r = admin.api("POST", "/users/x');alert(1);('")
    assert r.status_code == 400, r.text
    assert "alert(1)" not in admin.get("/hub/accounts").text


@pytest.mark.parametrize("email", ["o'brien@example.org", "a#b@example.org"])
def test_an_email_the_account_table_refuses_is_a_clear_error(hub, admin, email):
    name = fresh_name("mail")
    r = HubClient(hub.url).post_form(
        "/hub/signup",
        {"username": name, "email": email, "password": "long-enough-9",
         "password_confirmation": "long-enough-9"},
    )  # fmt: skip
    assert r.status_code == 400
    assert "E-mail: accounts take addresses of letters" in unescape(r.text)
    r = admin.post_form(
        "/hub/accounts",
        {"action": "create", "username": name, "email": email, "password": "long-enough-9"},
    )
    assert r.status_code == 400
    assert page_message(r.text, "accounts-message").startswith("E-mail: accounts take")
    assert f'value="{name}"' in r.text  # what was typed is kept


def test_people_lists_hub_users_with_their_servers_and_deletes_them(hub, admin, make_user):
    user = make_user("deletable")
    row = people_row(admin, "deletable")
    assert "active" in row and "Delete" in row
    r = admin.post_form("/hub/accounts", {"action": "delete", "username": "admin"})
    assert r.status_code == 400
    assert page_message(r.text, "accounts-message") == "You cannot delete your own account."
    r = admin.post_form("/hub/accounts", {"action": "delete", "username": "deletable"})
    assert r.status_code == 200
    assert page_message(r.text, "accounts-message").startswith("deletable was deleted")
    assert admin.api("GET", "/users/deletable").status_code == 404
    assert HubClient(hub.url).login("deletable", user.password).status_code == 403


def test_no_password_in_pages_or_logs(hub, admin, hub_admin_password, make_user):
    user = make_user("discreet")
    for page in ("/hub/accounts", "/hub/home", "/hub/admin"):
        assert user.password not in admin.get(page).text
        assert hub_admin_password not in admin.get(page).text
    logs = hub.all_output() + (hub.state_dir / "logs" / "hub.log").read_text()
    assert user.password not in logs
    assert hub_admin_password not in logs
