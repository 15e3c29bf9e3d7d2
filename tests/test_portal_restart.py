"""The portal across sign-outs, hub restarts and crashes, on a hub of its own.

Settings (My account, saved configurations) live in the portal's store, not in the hub's
auth_state: they survive signing out and in, a clean restart, and a `kill -9` of the hub.
A portal whose hub died exits by itself; one that cannot (stopped) is ended by the next
`onyxia-hub up` before it takes the port. No spawn in this module.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import time

import pytest

from onyxia_hub.db import portal as migrate
from tests.helpers import procs
from tests.helpers.client import HubClient
from tests.helpers.secrets import SecretScanner


@pytest.fixture(scope="module")
def lone_hub(new_hub):
    return new_hub("portal-restart")


def sign_up(hub, admin_password: str, name: str) -> HubClient:
    """An account made by the admin, signed in with the password its user chose."""
    admin = HubClient(hub.url)
    assert admin.login("admin", admin_password).status_code == 302
    initial = "initial-" + secrets.token_urlsafe(8)
    r = admin.post_form(
        "/hub/accounts", {"action": "create", "username": name, "password": initial}
    )
    assert r.status_code == 200
    client = HubClient(hub.url)
    client.password = "chosen-" + secrets.token_urlsafe(12)
    r = client.first_sign_in(name, initial, client.password)
    assert r.status_code == 302
    return client


def portal_pids_of(hub) -> list[int]:
    return [
        p.pid
        for p in procs.processes()
        if p.cmdline[1:3] == ["-m", "onyxia_hub.portal"]
        and p.environ.get("ONYXIA_PORTAL_PID_FILE", "").startswith(str(hub.state_dir))
    ]


def wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not procs.alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_settings_survive_sign_out_restart_and_crash(lone_hub, hub_admin_password, portal_client):
    hub = lone_hub
    carol = portal_client(sign_up(hub, hub_admin_password, "portal-carol"))
    token = "ghp_" + secrets.token_urlsafe(24)
    r = carol.api(
        "PATCH",
        "account",
        json={
            "git_name": "Carol",
            "git_email": "carol@example.org",
            "git_token": token,
            "git_repository": "https://git.example.org/carol/thesis.git",
            "git_branch": "draft",
        },
    )
    assert r.status_code == 200, r.text
    r = carol.api(
        "POST",
        "configurations",
        json={
            "name": "R for the course",
            "user_options": {"service": "jupyter-python", "cpu": "1"},
        },
    )
    assert r.status_code == 201, r.text
    expected = carol.api("GET", "account").json()

    def settings(client) -> dict:
        """What the pages and the API show, after the visit that signs the browser in."""
        page = client.get("account")
        assert page.status_code == 200 and "carol@example.org" in page.text, page.url
        account = client.api("GET", "account")
        assert account.status_code == 200, account.text
        names = [c["name"] for c in client.api("GET", "configurations").json()["configurations"]]
        return {**account.json(), "configurations": names}

    expected["configurations"] = ["R for the course"]

    # sign out through the portal's link: the portal forgets its cookie, the hub its session
    r = carol.get("logout")
    assert "/hub/login" in r.url, r.url
    assert carol.get("account").url.startswith(hub.url + "/hub/login")
    assert carol.client.login("portal-carol", carol.client.password).status_code == 302
    assert settings(carol) == expected

    # a clean restart: the new portal process re-authenticates the browser by itself
    hub.restart()
    assert settings(carol) == expected
    head = migrate.head_revision()
    assert re.search(rf"portal\] Store sqlite:///\S+ at revision {head}$", hub.output(), re.M)
    assert "upgraded from" not in hub.output()  # the schema was already at its head

    # kill -9 of the hub: its portal notices and exits by itself
    [orphan] = portal_pids_of(hub)
    hub.crash()
    assert wait_gone(orphan), "the portal outlived its hub"
    hub.start()
    assert settings(carol) == expected

    # a portal that could not exit (stopped) is ended by the next start, which takes its port
    [stuck] = portal_pids_of(hub)
    os.kill(stuck, signal.SIGSTOP)
    hub.crash()
    hub.start()
    assert wait_gone(stuck, 1), "onyxia-hub up left the old portal running"
    assert settings(carol) == expected

    # the token went through all of it without being written anywhere in clear
    scanner = SecretScanner({"carol's git token": token})
    findings = scanner.scan_logs(hub) + scanner.scan_files(hub.state_dir)
    findings += scanner.scan_pages(
        carol.client, ["/services/portal/account", "/services/portal/api/account"]
    )
    SecretScanner.assert_clean(findings)
